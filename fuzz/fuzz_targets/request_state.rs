//! Fuzz target `request_state`: see `checks::request_state` for what it feeds and what must hold.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::request_state(data));
