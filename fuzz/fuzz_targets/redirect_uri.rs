//! Fuzz target `redirect_uri`: see `checks::redirect_uri` for what it feeds and what must hold.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::redirect_uri(data));
