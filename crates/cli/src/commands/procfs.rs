//! What the benchmarks read in Linux's `/proc`: CPU and memory of processes, busy time of
//! the machine. Every reading is `None` (or empty) where `/proc` does not have it.

use std::collections::HashMap;

/// User + system CPU seconds from a `stat` line (in USER_HZ = 100).
pub fn cpu_of_stat(text: &str) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `/proc/<pid>/<file>`, or `/proc/self/<file>` for this process.
fn process_file(pid: Option<u32>, file: &str) -> Option<String> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    };
    std::fs::read_to_string(path).ok()
}

/// User + system CPU seconds of a process so far (this one with `None`).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    cpu_of_stat(&process_file(pid, "stat")?)
}

/// User + system CPU seconds of the calling thread so far.
pub fn thread_cpu_seconds() -> Option<f64> {
    cpu_of_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// A number of `/proc/<pid>/status` (`VmRSS`, `VmHWM` in kB, `Threads`); this process's
/// with `None`.
pub fn status_value(pid: Option<u32>, key: &str) -> Option<u64> {
    process_file(pid, "status")?
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Busy CPU seconds of the whole machine so far, all CPUs summed (`/proc/stat`).
pub fn machine_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(index, _)| *index != 3 && *index != 4)
        .map(|(_, value)| value)
        .sum();
    Some(busy / 100.0)
}

/// CPU seconds so far of each PostgreSQL server process connected to the pool's database
/// (a scratch database nothing else uses); empty when the server's processes are not in
/// this `/proc`.
pub async fn backend_cpu(pool: &sqlx::PgPool) -> HashMap<i32, f64> {
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    pids.into_iter()
        .filter_map(|pid| Some((pid, cpu_seconds(Some(u32::try_from(pid).ok()?))?)))
        .collect()
}

/// The server's CPU between two [`backend_cpu`] readings (processes that started in between
/// count from zero; ones that ended in between are missed).
pub fn backend_cpu_used(before: &HashMap<i32, f64>, after: &HashMap<i32, f64>) -> Option<f64> {
    if after.is_empty() {
        return None;
    }
    Some(
        after
            .iter()
            .map(|(pid, cpu)| cpu - before.get(pid).copied().unwrap_or(0.0))
            .sum(),
    )
}
