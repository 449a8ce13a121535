//! Fuzz target `checkpoint_manifest`: see `millstream_fuzz::fuzz_manifest` for the input layout and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| millstream_fuzz::fuzz_manifest(data));
