//! What to run and how big, from the environment. `BENCH_QUICK=1` shrinks every size so a
//! development run takes about a minute (and leaves `bench/RESULTS.md` alone unless
//! `BENCH_WRITE=1`); each size can also be set on its own.
//!
//! | variable | full | quick | meaning |
//! |---|---|---|---|
//! | `BENCH_ONLY` | all | all | comma-separated scenarios: drain, shapes, capture, outside, latency, lambda, history, scaleout, coldstart |
//! | `BENCH_BACKLOG` | 10000 | 2000 | deliveries per drain run |
//! | `BENCH_BIG_BACKLOG` | 100000 | 10000 | the backlog that must scale linearly |
//! | `BENCH_RUNS` | 3 | 1 | runs per drain figure (median reported) |
//! | `BENCH_PGBENCH_SECS` | 5 | 2 | seconds per pgbench run |
//! | `BENCH_PGBENCH_ROUNDS` | 3 | 1 | adjacent rounds per capture setting (median ratio) |
//! | `BENCH_OUTSIDE_SECS` | 8 | 2 | seconds per pgbench run of the outside capture method |
//! | `BENCH_OUTSIDE_ROUNDS` | 5 | 1 | its rounds (median ratio) |
//! | `BENCH_LONG_SECS` | 40 | 6 | the long-lived-connection pgbench run |
//! | `BENCH_LATENCY_BOOKINGS` | 1000 | 200 | bookings committed at `BENCH_LATENCY_RATE`/s (100) |
//! | `BENCH_INVOKES` | 50 | 10 | warm `dispatch` invocations under `cargo lambda watch` |
//! | `BENCH_HISTORY_ROWS` | 1000000 | 50000 | resolved historic rows (against 1,000) |
//! | `BENCH_SCALEOUT_BACKLOG` | 20000 | 4000 | backlog shared by 1, 2, 4 sweep processes |
//! | `BENCH_COLD_STARTS` | 20 | 5 | cold starts per Lambda binary (median) |
//! | `BENCH_WRITE` | 1 | 0 | rewrite `bench/RESULTS.md` |
//!
//! The engine's own settings (`WEBHOOK_SWEEP_BATCH`, `WEBHOOK_SWEEP_CONCURRENCY`,
//! `WEBHOOK_DB_POOL_SIZE`, `RUST_LOG`, …) pass through to every process it starts, so settings can
//! be compared; unset, the engine's defaults are measured.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};

/// Every scenario, in the order they run.
pub const SCENARIOS: [&str; 9] = [
    "drain",
    "shapes",
    "capture",
    "outside",
    "latency",
    "lambda",
    "history",
    "scaleout",
    "coldstart",
];

/// The sizes of one run.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub quick: bool,
    pub only: BTreeSet<String>,
    pub backlog: u64,
    pub big_backlog: u64,
    pub runs: usize,
    pub pgbench_secs: u64,
    pub pgbench_rounds: usize,
    pub outside_secs: u64,
    pub outside_rounds: usize,
    pub long_secs: u64,
    pub latency_bookings: usize,
    pub latency_rate: u64,
    pub invokes: usize,
    pub history_rows: u64,
    pub scaleout_backlog: u64,
    pub cold_starts: usize,
    pub write: bool,
}

impl Knobs {
    /// Reads the environment; an unparsable value is an error naming the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        let quick = flag("BENCH_QUICK")?.unwrap_or(false);
        let pick = |full: u64, fast: u64| if quick { fast } else { full };
        let only = match std::env::var("BENCH_ONLY") {
            Ok(list) if !list.trim().is_empty() => {
                let names: BTreeSet<String> = list
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(bad) = names.iter().find(|n| !SCENARIOS.contains(&n.as_str())) {
                    bail!(
                        "BENCH_ONLY: unknown scenario {bad:?} (known: {})",
                        SCENARIOS.join(", ")
                    );
                }
                names
            }
            _ => SCENARIOS.iter().map(|s| (*s).to_owned()).collect(),
        };
        Ok(Knobs {
            quick,
            only,
            backlog: number("BENCH_BACKLOG", pick(10_000, 2_000))?,
            big_backlog: number("BENCH_BIG_BACKLOG", pick(100_000, 10_000))?,
            runs: number("BENCH_RUNS", pick(3, 1))?.max(1) as usize,
            pgbench_secs: number("BENCH_PGBENCH_SECS", pick(5, 2))?.max(1),
            pgbench_rounds: number("BENCH_PGBENCH_ROUNDS", pick(3, 1))?.max(1) as usize,
            outside_secs: number("BENCH_OUTSIDE_SECS", pick(8, 2))?.max(1),
            outside_rounds: number("BENCH_OUTSIDE_ROUNDS", pick(5, 1))?.max(1) as usize,
            long_secs: number("BENCH_LONG_SECS", pick(40, 6))?.max(4),
            latency_bookings: number("BENCH_LATENCY_BOOKINGS", pick(1_000, 200))?.max(1) as usize,
            latency_rate: number("BENCH_LATENCY_RATE", 100)?.max(1),
            invokes: number("BENCH_INVOKES", pick(50, 10))?.max(1) as usize,
            history_rows: number("BENCH_HISTORY_ROWS", pick(1_000_000, 50_000))?.max(1_000),
            scaleout_backlog: number("BENCH_SCALEOUT_BACKLOG", pick(20_000, 4_000))?.max(1),
            cold_starts: number("BENCH_COLD_STARTS", pick(20, 5))?.max(1) as usize,
            write: flag("BENCH_WRITE")?.unwrap_or(!quick),
        })
    }

    /// Whether `scenario` is selected.
    pub fn runs_scenario(&self, scenario: &str) -> bool {
        self.only.contains(scenario)
    }

    /// The sizes as `NAME=value` words, for the results file.
    pub fn describe(&self) -> String {
        format!(
            "BENCH_QUICK={} BENCH_BACKLOG={} BENCH_BIG_BACKLOG={} BENCH_RUNS={} \
             BENCH_PGBENCH_SECS={} BENCH_PGBENCH_ROUNDS={} BENCH_OUTSIDE_SECS={} BENCH_OUTSIDE_ROUNDS={} BENCH_LONG_SECS={} \
             BENCH_LATENCY_BOOKINGS={} BENCH_LATENCY_RATE={} BENCH_INVOKES={} \
             BENCH_HISTORY_ROWS={} BENCH_SCALEOUT_BACKLOG={} BENCH_COLD_STARTS={}",
            u8::from(self.quick),
            self.backlog,
            self.big_backlog,
            self.runs,
            self.pgbench_secs,
            self.pgbench_rounds,
            self.outside_secs,
            self.outside_rounds,
            self.long_secs,
            self.latency_bookings,
            self.latency_rate,
            self.invokes,
            self.history_rows,
            self.scaleout_backlog,
            self.cold_starts,
        )
    }
}

fn number(var: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse()
            .with_context(|| format!("{var}: expected a whole number, got {v:?}")),
        _ => Ok(default),
    }
}

fn flag(var: &str) -> anyhow::Result<Option<bool>> {
    match std::env::var(var).ok().as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("1" | "true" | "yes" | "on") => Ok(Some(true)),
        Some("0" | "false" | "no" | "off") => Ok(Some(false)),
        Some(other) => bail!("{var}: expected 1 or 0, got {other:?}"),
    }
}
