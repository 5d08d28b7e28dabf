//! The machine a run measured: CPU, memory, kernel, Postgres, nginx, load, commit.

use std::process::Command;

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let out = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            first_line(&String::from_utf8_lossy(&out))
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// The 1-, 5- and 15-minute load averages.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One line per fact, for the results file.
pub fn describe(postgres: &str) -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    vec![
        format!("- CPU: {cores} × {model}; memory {memory}"),
        format!("- kernel: {}", command("uname", &["-sr"])),
        format!("- Postgres: {postgres}"),
        format!(
            "- receiver: {} (one worker; see below)",
            command(crate::nginx::NGINX, &["-v"])
        ),
        format!(
            "- commit: {}",
            command("git", &["log", "-1", "--format=%h %s"])
        ),
    ]
}
