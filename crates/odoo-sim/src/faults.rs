//! Fault injection: scripted failures the server answers instead of (or before) the real
//! call, so clients can be tested against the ways a real Odoo and its proxies fail.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// An HTTP status with an HTML page, as a proxy or werkzeug sends it; `Retry-After` if given.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Waits before answering normally.
    Delay(Duration),
    /// Starts a 200 answer and cuts the connection mid-body.
    Drop,
    /// Runs the call (its effect is committed), then cuts the connection mid-answer: the
    /// client cannot tell whether a `create` happened, as after a proxy timeout.
    AnswerLost,
    /// A 200 answer whose JSON is truncated.
    MalformedJson,
    /// An Odoo exception of any class name (e.g. `odoo.exceptions.AccessDenied`).
    OdooError { name: String, message: String },
    /// Answers `true` without running the call: an override that swallows the work (what a
    /// client must catch by reading the records again).
    Swallowed,
}

/// Which calls a rule applies to: a model (`common` for the common service, `object` for
/// every model call) and optionally a method.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    pub model: Option<String>,
    pub method: Option<String>,
}

impl Target {
    fn matches(&self, model: &str, method: &str) -> bool {
        self.model
            .as_deref()
            .is_none_or(|m| m == model || (m == "object" && model != "common"))
            && self.method.as_deref().is_none_or(|m| m == method)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    pub target: Target,
    /// Matching calls to let through before the fault starts.
    pub after_calls: u32,
    /// How many times it fires; `None` means every time.
    pub times: Option<u32>,
}

impl FaultRule {
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            target: Target::default(),
            after_calls: 0,
            times: Some(1),
        }
    }

    pub fn times(mut self, times: u32) -> FaultRule {
        self.times = Some(times);
        self
    }

    pub fn always(mut self) -> FaultRule {
        self.times = None;
        self
    }

    pub fn after(mut self, calls: u32) -> FaultRule {
        self.after_calls = calls;
        self
    }

    pub fn on(mut self, model: &str, method: Option<&str>) -> FaultRule {
        self.target = Target {
            model: Some(model.to_owned()),
            method: method.map(str::to_owned),
        };
        self
    }

    /// `AccessDenied` once after `calls` successful calls: a key revoked or a session
    /// expired mid-run, as a client must survive it by re-authenticating.
    pub fn access_denied_after(calls: u32) -> FaultRule {
        FaultRule::new(Fault::OdooError {
            name: "odoo.exceptions.AccessDenied".into(),
            message: "Access Denied".into(),
        })
        .on("object", None)
        .after(calls)
    }
}

/// Parses the command line's `--fault` syntax:
/// `KIND[:ARG][xTIMES][@MODEL[/METHOD]][+AFTER]`, where KIND is a status code (`503`,
/// `429:5` for `Retry-After: 5`), `delay:2s`, `drop`, `malformed`, `swallow` (answers `true` without doing anything), or `error:<exception name>`.
/// `lost` runs the call, then cuts the answer.
/// Examples: `503x3`, `429:2x5@sale.order/search_read`, `error:odoo.exceptions.AccessDenied+100`.
impl FromStr for FaultRule {
    type Err = String;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let help = || {
            format!(
                "invalid fault {spec:?}: expected KIND[:ARG][xTIMES][@MODEL[/METHOD]][+AFTER], e.g. 503x3, 429:2x5, delay:2s, drop, malformed, error:odoo.exceptions.AccessDenied+100"
            )
        };
        let (rest, after) = match spec.rsplit_once('+') {
            Some((rest, after)) => (rest, after.parse::<u32>().map_err(|_| help())?),
            None => (spec, 0),
        };
        let (rest, target) = match rest.split_once('@') {
            Some((rest, target)) => {
                let (model, method) = match target.split_once('/') {
                    Some((model, method)) => (model.to_owned(), Some(method.to_owned())),
                    None => (target.to_owned(), None),
                };
                (
                    rest,
                    Target {
                        model: Some(model),
                        method,
                    },
                )
            }
            None => (rest, Target::default()),
        };
        let (kind, times) = match rest.rsplit_once('x') {
            Some((kind, times))
                if times.chars().all(|c| c.is_ascii_digit()) && !times.is_empty() =>
            {
                (kind, Some(times.parse::<u32>().map_err(|_| help())?))
            }
            _ if rest.ends_with("x*") => (rest.trim_end_matches("x*"), None),
            _ => (rest, Some(1)),
        };
        let (name, argument) = match kind.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (kind, None),
        };
        let fault = match name {
            "drop" => Fault::Drop,
            "lost" => Fault::AnswerLost,
            "malformed" => Fault::MalformedJson,
            "swallow" => Fault::Swallowed,
            "delay" => {
                let text = argument.ok_or_else(help)?;
                let duration = if let Some(ms) = text.strip_suffix("ms") {
                    Duration::from_millis(ms.parse().map_err(|_| help())?)
                } else {
                    Duration::from_secs_f64(text.trim_end_matches('s').parse().map_err(|_| help())?)
                };
                Fault::Delay(duration)
            }
            "error" => {
                let exception = argument.ok_or_else(help)?.to_owned();
                let message = match exception.rsplit('.').next() {
                    Some("AccessDenied") => "Access Denied".to_owned(),
                    _ => format!("Simulated {exception}"),
                };
                Fault::OdooError {
                    name: exception,
                    message,
                }
            }
            status => {
                let status: u16 = status.parse().map_err(|_| help())?;
                if !(400..=599).contains(&status) {
                    return Err(help());
                }
                Fault::Status {
                    status,
                    retry_after: argument.map(str::to_owned),
                }
            }
        };
        Ok(FaultRule {
            fault,
            target,
            after_calls: after,
            times,
        })
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<(FaultRule, u32)>>,
}

impl Faults {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<(FaultRule, u32)>> {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn push(&self, rule: FaultRule) {
        self.rules().push((rule, 0));
    }

    pub fn clear(&self) {
        self.rules().clear();
    }

    /// The fault to apply to this call, if any; consumes one firing of the first rule that
    /// matches and is due. Every matching rule counts the call.
    pub fn take(&self, model: &str, method: &str) -> Option<Fault> {
        let mut rules = self.rules();
        let mut chosen = None;
        for (rule, seen) in rules.iter_mut() {
            if !rule.target.matches(model, method) {
                continue;
            }
            *seen += 1;
            if chosen.is_some() || *seen <= rule.after_calls {
                continue;
            }
            match rule.times.as_mut() {
                Some(0) => {}
                Some(left) => {
                    *left -= 1;
                    chosen = Some(rule.fault.clone());
                }
                None => chosen = Some(rule.fault.clone()),
            }
        }
        rules.retain(|(rule, _)| rule.times != Some(0));
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_syntax() {
        let rule: FaultRule = "429:2x5@sale.order/search_read+3"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rule.fault,
            Fault::Status {
                status: 429,
                retry_after: Some("2".into())
            }
        );
        assert_eq!(rule.times, Some(5));
        assert_eq!(rule.after_calls, 3);
        assert_eq!(rule.target.model.as_deref(), Some("sale.order"));
        assert_eq!(rule.target.method.as_deref(), Some("search_read"));
        assert_eq!(
            "delay:150ms".parse::<FaultRule>().map(|r| r.fault),
            Ok(Fault::Delay(Duration::from_millis(150)))
        );
        assert_eq!("503x*".parse::<FaultRule>().map(|r| r.times), Ok(None));
        assert!("teapot".parse::<FaultRule>().is_err());
        assert!("200".parse::<FaultRule>().is_err());
    }

    #[test]
    fn rules_fire_after_their_delay_and_run_out() {
        let faults = Faults::default();
        faults.push(FaultRule::new(Fault::Drop).times(2).after(1));
        assert_eq!(faults.take("res.partner", "read"), None);
        assert_eq!(faults.take("res.partner", "read"), Some(Fault::Drop));
        assert_eq!(faults.take("res.partner", "read"), Some(Fault::Drop));
        assert_eq!(faults.take("res.partner", "read"), None);
    }
}
