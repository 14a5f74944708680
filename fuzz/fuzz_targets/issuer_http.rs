//! Fuzz target `issuer_http`: see `checks::issuer_http` for what it feeds and what must hold.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::issuer_http(data));
