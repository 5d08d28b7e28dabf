//! The operator commands and the functions' metrics (issue 11), on a real Postgres: each
//! test seeds a schema of its own with hand-computed figures, then checks the library
//! functions behind `webhooks stats | failures | show | cleanup | verify | doctor`, the EMF
//! lines the handlers write, and the real `webhooks` binary's output and exit codes.
//!
//! # Layout
//! - `seed`: a seeded data set (deliveries and attempts at known times) and its figures.
//! - `reads`: stats, failures, show.
//! - `cleanup`: retention by hand and in the sweep.
//! - `verify`: the completeness check.
//! - `doctor`: posture findings.
//! - `metrics`: EMF lines from dispatch and sweep, validated against the specification.
//! - `cli`: the built `webhooks` binary: output, `--json`, exit codes.
//! - `ids`: ids by unique prefix; unknown ids exit 1 everywhere; what each command needs.
//! - `output`: one convention for every command: camelCase `--json`, tables that fit,
//!   colour only on a terminal.
//! - `send`: `webhooks send`: a retrying delivery sent now, once; superseding respected.
//! - `closed_pipe`: every command with its stdout closed early (`| head -1`).
//! - `unmigrated`: the commands where `webhooks migrate` never ran (or an older one did).

mod cleanup;
pub(crate) mod cli;
mod closed_pipe;
mod doctor;
mod ids;
pub(crate) mod metrics;
mod output;
mod reads;
mod seed;
mod send;
mod unmigrated;
mod verify;

#[tokio::test]
async fn every_operations_statement_prepares_against_the_migrated_schema() {
    let db = crate::support::TestDb::new().await;
    let client = db.client().await;
    for (name, statement) in delivery::sql::OPERATIONS {
        client
            .prepare(statement)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}
