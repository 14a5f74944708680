//! Fuzz target `last_event_id`: see `checks::last_event_id` for what it feeds and what must hold.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::last_event_id(data));
