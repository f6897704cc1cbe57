//! What the benchmarks read in Linux's `/proc`, through the `procfs` crate: CPU and memory of
//! processes and threads, busy time of the machine. Every reading is `None` (or empty) where
//! `/proc` does not have it (another OS, a process that ended).

use procfs::process::{FDTarget, Process};
use std::collections::HashMap;

fn process(pid: Option<u32>) -> Option<Process> {
    match pid {
        Some(pid) => Process::new(i32::try_from(pid).ok()?).ok(),
        None => Process::myself().ok(),
    }
}

fn seconds(ticks: u64) -> f64 {
    ticks as f64 / procfs::ticks_per_second() as f64
}

/// User + system CPU seconds of a process so far (this one with `None`).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = process(pid)?.stat().ok()?;
    Some(seconds(stat.utime + stat.stime))
}

/// User + system CPU seconds of the calling thread so far.
pub fn thread_cpu_seconds() -> Option<f64> {
    use procfs::FromRead as _;
    let stat = procfs::process::Stat::from_file("/proc/thread-self/stat").ok()?;
    Some(seconds(stat.utime + stat.stime))
}

/// What [`status_value`] reads from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Resident memory now, KiB.
    Rss,
    /// Peak resident memory (high-water mark), KiB.
    PeakRss,
    Threads,
}

/// A number of a process's status; this process's with `None`.
pub fn status_value(pid: Option<u32>, what: Status) -> Option<u64> {
    let status = process(pid)?.status().ok()?;
    match what {
        Status::Rss => status.vmrss,
        Status::PeakRss => status.vmhwm,
        Status::Threads => Some(status.threads),
    }
}

/// Busy CPU seconds of the whole machine so far, all CPUs summed (`/proc/stat`): everything
/// but idle and iowait.
pub fn machine_busy_seconds() -> Option<f64> {
    use procfs::CurrentSI as _;
    let total = procfs::KernelStats::current().ok()?.total;
    let busy = total.user
        + total.nice
        + total.system
        + total.irq.unwrap_or(0)
        + total.softirq.unwrap_or(0)
        + total.steal.unwrap_or(0);
    Some(seconds(busy))
}

/// Per live thread of a process: `(name, CPU seconds, voluntary + involuntary context
/// switches)`.
pub fn threads(pid: u32) -> HashMap<u32, (String, f64, u64)> {
    let mut found = HashMap::new();
    let Some(tasks) = process(Some(pid)).and_then(|process| process.tasks().ok()) else {
        return found;
    };
    for task in tasks.flatten() {
        let Ok(stat) = task.stat() else { continue };
        let switches = task
            .status()
            .map(|status| {
                status.voluntary_ctxt_switches.unwrap_or(0)
                    + status.nonvoluntary_ctxt_switches.unwrap_or(0)
            })
            .unwrap_or(0);
        let Ok(tid) = u32::try_from(task.tid) else {
            continue;
        };
        found.insert(
            tid,
            (
                stat.comm.clone(),
                seconds(stat.utime + stat.stime),
                switches,
            ),
        );
    }
    found
}

/// Context switches of all of a process's live threads.
pub fn context_switches(pid: u32) -> u64 {
    threads(pid).values().map(|(_, _, switches)| switches).sum()
}

/// Open file descriptors of a process, and how many of them are sockets.
pub fn descriptors(pid: u32) -> (usize, usize) {
    let Some(fds) = process(Some(pid)).and_then(|process| process.fd().ok()) else {
        return (0, 0);
    };
    let mut total = 0;
    let mut sockets = 0;
    for fd in fds.flatten() {
        total += 1;
        if matches!(fd.target, FDTarget::Socket(_)) {
            sockets += 1;
        }
    }
    (total, sockets)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_readable() {
        assert!(cpu_seconds(None).is_some());
        assert!(thread_cpu_seconds().is_some());
        assert!(status_value(None, Status::PeakRss).unwrap() > 0);
        assert!(status_value(None, Status::Threads).unwrap() >= 1);
        assert!(machine_busy_seconds().unwrap() > 0.0);
        let me = std::process::id();
        assert!(!threads(me).is_empty());
        assert!(descriptors(me).0 >= 3);
    }
}
