//! The benchmarks' helper processes: started with piped standard input, so that they end when
//! this process does (their input reaches its end), and talking JSON lines on stdout.

use crate::exit::{Failure, failure};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a command to a child may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(300);

/// Standard input's lines, as they come; the channel closes at its end.
pub fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// A child process of the benchmark: killed when dropped. Children that talk answer commands
/// on stdin with JSON lines on stdout.
pub struct ChildProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Option<mpsc::UnboundedReceiver<String>>,
    /// Stopped with SIGTERM rather than by closing its input (`odoo-bridge run` does not
    /// read it).
    terminate: bool,
}

impl ChildProcess {
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        talks: bool,
    ) -> Result<ChildProcess, Failure> {
        command.stdin(Stdio::piped());
        if talks {
            command.stdout(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .map_err(|e| failure(format!("cannot start the {name} process: {e}")))?;
        let stdin = child.stdin.take();
        let lines = match child.stdout.take() {
            Some(stdout) if talks => {
                let (sender, receiver) = mpsc::unbounded_channel();
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if sender.send(line).is_err() {
                            break;
                        }
                    }
                });
                Some(receiver)
            }
            _ => None,
        };
        Ok(ChildProcess {
            name,
            child,
            stdin,
            lines,
            terminate: false,
        })
    }

    /// Makes [`ChildProcess::stop`] send SIGTERM, for a program that stops on it.
    pub fn stopped_by_sigterm(mut self) -> ChildProcess {
        self.terminate = true;
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next JSON line the child prints.
    pub async fn json_line(&mut self, within: Duration) -> Result<Value, Failure> {
        let name = self.name;
        let Some(lines) = self.lines.as_mut() else {
            return Err(failure(format!("the {name} process does not talk")));
        };
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(failure(format!(
                        "the {name} process ended ({}); its error is above",
                        status.map_or_else(|| "still running".to_owned(), |s| s.to_string())
                    )));
                }
                Err(_) => {
                    return Err(failure(format!(
                        "the {name} process did not answer within {} s",
                        within.as_secs()
                    )));
                }
            };
            if !line.trim_start().starts_with('{') {
                continue;
            }
            let value: Value = serde_json::from_str(&line)
                .map_err(|e| failure(format!("the {name} process printed {line:.200}: {e}")))?;
            if let Some(error) = value.get("error") {
                return Err(failure(format!("the {name} process: {error}")));
            }
            return Ok(value);
        }
    }

    pub async fn ask(&mut self, command: &str) -> Result<Value, Failure> {
        let name = self.name;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(failure(format!("the {name} process's input is closed")));
        };
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| failure(format!("cannot talk to the {name} process: {e}")))?;
        self.json_line(ASK_TIMEOUT).await
    }

    /// Closes its input (or sends SIGTERM) and waits up to 10 s for it to end, then kills it.
    pub async fn stop(mut self) {
        self.stdin = None;
        if self.terminate
            && let Some(pid) = i32::try_from(self.pid())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
