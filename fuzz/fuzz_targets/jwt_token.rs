//! Fuzz target `jwt_token`: see `checks::jwt_token` for what it feeds and what must hold.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jwt_token(data));
