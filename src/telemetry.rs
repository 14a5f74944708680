//! Logging set-up with tracing-subscriber: an env filter and text or JSON output.
//! Tests stay quiet unless `RUST_LOG` asks otherwise.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, replaces the configured filter.
/// Calling it twice is harmless (the second call is ignored), which keeps tests simple.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    // Colours only for a person at a terminal: in a file or a pipe, escape codes are noise, and
    // writing them was a third of the cost of each audit line.
    let ansi = std::io::stdout().is_terminal();
    let builder = fmt().with_env_filter(filter).with_target(true).with_ansi(ansi);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
