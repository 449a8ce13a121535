//! Fuzz target `csv_reader`: see `millstream_fuzz::fuzz_csv` for the input layout and what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| millstream_fuzz::fuzz_csv(data));
