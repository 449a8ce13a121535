//! Fuzz target `jsonl_reader`: see `millstream_fuzz::fuzz_jsonl` for the input layout and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| millstream_fuzz::fuzz_jsonl(data));
