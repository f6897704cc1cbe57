//! Structured logs: JSON lines when stderr is not a terminal or `--log-format json`, readable
//! text otherwise.
//!
//! One rule for every command: logs go to stderr, and stdout carries only the command's own
//! output (tables, summaries, `--json` objects), so that `odoo-bridge runs --json | jq` and
//! `odoo-bridge run > out` never mix the two. Container platforms collect both streams.

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

/// The level names `--log-level` accepts, alone or after `target=`; Python's names (the
/// seed's `POLLER_LOG_LEVEL=WARNING`) are accepted too.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Server notices (PostgreSQL's "relation … already exists, skipping") are not worth a log
/// line unless asked for by name.
const QUIET_TARGETS: &str = "sqlx::postgres::notice=warn";

/// One level name in lower case, Python's spellings mapped to ours; `None` if it is none.
fn level_name(word: &str) -> Option<&'static str> {
    match word.trim().to_ascii_lowercase().as_str() {
        "warning" => Some("warn"),
        "critical" | "fatal" => Some("error"),
        other => LEVELS.iter().copied().find(|level| *level == other),
    }
}

/// Checks a `--log-level` value: a level, or comma-separated `target=level` directives
/// (`info,odoo_rpc=debug`). An unknown word is refused rather than taken for a target name,
/// which would silently turn every log off.
pub fn parse_level(value: &str) -> Result<String, String> {
    let valid = || {
        format!(
            "use one of {} (or DEBUG, INFO, WARNING, ERROR), or target=level directives such as \"info,odoo_rpc=debug\"",
            LEVELS.join(", ")
        )
    };
    let mut directives = Vec::new();
    for directive in value.split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        let normalised = match directive.split_once('=') {
            Some((target, level)) if !target.trim().is_empty() => match level_name(level) {
                Some(level) => format!("{}={level}", target.trim()),
                None => {
                    return Err(format!(
                        "unknown log level {level:?} in {directive:?}: {}",
                        valid()
                    ));
                }
            },
            _ => match level_name(directive) {
                Some(level) => level.to_owned(),
                None => return Err(format!("unknown log level {directive:?}: {}", valid())),
            },
        };
        directives.push(normalised);
    }
    if directives.is_empty() {
        return Err(format!("the log level is empty: {}", valid()));
    }
    let filter = directives.join(",");
    EnvFilter::try_new(&filter).map_err(|error| format!("invalid log level {value:?}: {error}"))?;
    Ok(filter)
}

/// The filter odoo-bridge logs with, from a level `--log-level` accepted: server notices
/// stay quiet unless the level names their target.
pub fn normalise(level: &str) -> String {
    let level = parse_level(level).unwrap_or_else(|_| level.to_owned());
    if level.contains("sqlx") {
        level
    } else {
        format!("{level},{QUIET_TARGETS}")
    }
}

/// Starts logging on stderr with `level` (already checked by [`parse_level`]).
pub fn init(level: &str, format: LogFormat) -> Result<(), String> {
    let level = normalise(level);
    let filter = EnvFilter::try_new(&level)
        .map_err(|error| format!("invalid log level {level:?}: {error}"))?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted_in_either_spelling() {
        assert_eq!(parse_level("info").unwrap(), "info");
        assert_eq!(parse_level("WARNING").unwrap(), "warn");
        assert_eq!(parse_level(" Debug ").unwrap(), "debug");
        assert_eq!(
            parse_level("info, odoo_rpc=DEBUG").unwrap(),
            "info,odoo_rpc=debug"
        );
        assert_eq!(parse_level("off").unwrap(), "off");
    }

    #[test]
    fn unknown_levels_are_refused_with_the_valid_ones() {
        for bad in ["verbose", "info,odoo_rpc=loud", "", " , ", "=debug"] {
            let error = parse_level(bad).unwrap_err();
            assert!(
                error.contains("error, warn, info, debug, trace"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn server_notices_stay_quiet_unless_asked_for() {
        assert_eq!(normalise("INFO"), "info,sqlx::postgres::notice=warn");
        assert_eq!(
            normalise("info,sqlx::postgres::notice=info"),
            "info,sqlx::postgres::notice=info"
        );
    }
}
