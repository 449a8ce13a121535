//! Fuzz target `parquet_reader`: see `millstream_fuzz::fuzz_parquet` for the input layout and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| millstream_fuzz::fuzz_parquet(data));
