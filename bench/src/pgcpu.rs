//! The database server's CPU time, read from `/proc`: every process named `postgres` (the
//! postmaster, its background processes and every backend), user plus system time, and the
//! time of the children the postmaster has already reaped (`cutime`/`cstime` of the
//! postmaster: a backend whose client disconnected during a measurement still counts). The
//! difference of two readings is what the server spent between them, whoever asked for it —
//! so a measurement on a shared machine includes other databases' work, like the WAL figure.

use std::time::Duration;

/// A reading of the server's accumulated CPU time, in clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct Reading(u64);

/// Reads it now. Errors only if `/proc` cannot be listed; a process that exits while it is
/// read is skipped (its time is then in the postmaster's reaped children, or lost to a tick).
pub fn read() -> anyhow::Result<Reading> {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        ticks += postgres_ticks(&stat).unwrap_or(0);
    }
    Ok(Reading(ticks))
}

/// The CPU time spent between two readings.
pub fn between(before: Reading, after: Reading) -> Duration {
    let ticks = after.0.saturating_sub(before.0);
    Duration::from_secs_f64(ticks as f64 / ticks_per_second())
}

/// utime + stime + cutime + cstime of one `/proc/<pid>/stat` line whose command is
/// `postgres`; `None` for another program or a line that does not parse.
fn postgres_ticks(stat: &str) -> Option<u64> {
    // "pid (comm) state ppid …": the command may hold spaces or parentheses, so split at the
    // last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    if stat.get(open + 1..close)? != "postgres" {
        return None;
    }
    // After the command: state (field 3) … utime is field 14, stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)? + field(16)? + field(17)?)
}

/// The kernel's clock ticks per second for `/proc` times (`getconf CLK_TCK`): 100 on every
/// Linux this runs on (it is fixed by the kernel's ABI for user space).
fn ticks_per_second() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_postgres_line_and_skips_others() {
        let line = "4242 (postgres) S 1 4242 4242 0 -1 4194560 1 0 0 0 7 3 11 2 20 0 1 0 5 0 0";
        assert_eq!(postgres_ticks(line), Some(7 + 3 + 11 + 2));
        let other = "4243 (nginx) S 1 4242 4242 0 -1 4194560 1 0 0 0 7 3 11 2 20 0 1 0 5 0 0";
        assert_eq!(postgres_ticks(other), None);
        assert_eq!(postgres_ticks("garbage"), None);
    }

    #[test]
    fn this_machine_has_a_server_to_read() {
        // The bench runs beside a local server: its processes are visible and have used time.
        let reading = read().expect("/proc is readable");
        assert!(reading.0 > 0, "no postgres process found in /proc");
    }
}
