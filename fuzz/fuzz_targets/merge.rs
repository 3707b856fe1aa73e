#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| polykey_fuzz::merge(data));
