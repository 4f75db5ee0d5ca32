#![no_main]
//! See `memsentry_fuzz_harness::status` for the input format and what is checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| memsentry_fuzz_harness::status(data));
