#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| polykey_fuzz::import_kdbx_payload(data));
