//! Structured logs: JSON lines when the log stream is not a terminal or `--log-format json`,
//! readable text otherwise. Commands log on stderr (stdout stays for their output); the
//! daemon (`run`), which has no other output, logs on stdout as container platforms expect.

use clap::ValueEnum;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal, text otherwise.
    Auto,
    Json,
    Text,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Accepts Python's level names too (the seed's `POLLER_LOG_LEVEL=WARNING`).
pub fn normalise(level: &str) -> String {
    match level.trim().to_ascii_uppercase().as_str() {
        "WARNING" => "warn".to_owned(),
        "CRITICAL" | "FATAL" => "error".to_owned(),
        "DEBUG" | "INFO" | "ERROR" | "TRACE" | "WARN" => level.trim().to_ascii_lowercase(),
        _ => level.to_owned(),
    }
}

pub fn init(level: &str, format: LogFormat, stream: LogStream) -> Result<(), String> {
    let level = normalise(level);
    let filter = EnvFilter::try_new(&level)
        .map_err(|error| format!("invalid log level {level:?}: {error}"))?;
    let json = match (format, stream) {
        (LogFormat::Json, _) => true,
        (LogFormat::Text, _) => false,
        (LogFormat::Auto, LogStream::Stderr) => !std::io::stderr().is_terminal(),
        (LogFormat::Auto, LogStream::Stdout) => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || -> Box<dyn std::io::Write> {
            match stream {
                LogStream::Stdout => Box::new(std::io::stdout()),
                LogStream::Stderr => Box::new(std::io::stderr()),
            }
        });
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    result.map_err(|error| format!("could not start logging: {error}"))
}
