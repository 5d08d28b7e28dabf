//! Applying: the pending migrations (with the history repairs of `--repair`), and the check of
//! every function, trigger and view against this build's definitions.

use tokio_postgres::Transaction;

use super::error::{Result, SchemaError, describe_db_error};
use super::{email_logs, embedded, history, known_migrations, objects, transaction};
use objects::Drift;

/// Compares the functions, triggers and views with this build's definitions; reinstalls what
/// differs when `repair`, and refuses otherwise (a trigger that is only disabled is said, not
/// refused: doctor reports it). Returns what was reinstalled.
pub(super) async fn check_objects(
    tx: &Transaction<'_>,
    repair: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<String>> {
    if !repair {
        let drift = objects::drift(tx).await?;
        let (wrong, disabled): (Vec<&Drift>, Vec<&Drift>) =
            drift.iter().partition(|d| d.is_definition());
        for d in disabled {
            say(&format!(
                "note: {d}: bookings are not captured while it is (`webhooks migrate --repair` \
                 enables it)"
            ));
        }
        if !wrong.is_empty() {
            return Err(SchemaError::Drift(
                wrong.iter().map(ToString::to_string).collect(),
            ));
        }
        return Ok(Vec::new());
    }
    let repaired: Vec<String> = objects::reinstall(tx)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    for line in &repaired {
        say(&format!("reinstalled: {line}"));
    }
    let left = objects::drift(tx).await?;
    if !left.is_empty() {
        return Err(SchemaError::Drift(
            left.iter().map(ToString::to_string).collect(),
        ));
    }
    if repaired.is_empty() {
        say("checked: every function, trigger and view is this build's");
    } else {
        say("checked: every function, trigger and view is this build's now");
    }
    Ok(repaired)
}

/// Applies the pending migrations inside `tx`, the email service's `email_logs` set aside
/// meanwhile.
pub(super) async fn apply_migrations(
    tx: &Transaction<'_>,
    repair: bool,
    say: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<String>> {
    let runner = embedded::migrations::runner();
    let applied = transaction::applied(tx).await?;
    let findings = history::compare(&applied, &known_migrations());
    // refinery would refuse it: only `--repair` goes on, and only when it knows how.
    if let Some((findings, repairable)) = history::refusal(&findings)
        && (!repair || !repairable)
    {
        return Err(SchemaError::History {
            findings,
            repairable,
        });
    }
    let pending = transaction::pending(tx, &runner).await?;
    if pending.is_empty() {
        say(&format!(
            "schema is current: all {} migrations applied, nothing to do",
            runner.get_migrations().len()
        ));
        return Ok(Vec::new());
    }
    let aside = email_logs::put_aside(tx).await?;
    let mut applied_now = Vec::new();
    for finding in &findings {
        if let Some(line) = repair_history(tx, &runner, finding).await? {
            say(&line);
            applied_now.push(line);
        }
    }
    let report = runner
        .run_async(&mut transaction::InTransaction::new(tx))
        .await
        .map_err(describe_migration_error)?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect();
    for name in &applied {
        say(&format!("applied migration {name}"));
    }
    if aside {
        email_logs::restore(tx).await?;
        say(
            "email_logs is not ours (the email service's table): left untouched; our view of \
             delivered notifications is webhook_email_logs here",
        );
    }
    Ok(applied)
}

/// Sets one history finding right (`--repair`): a known earlier text is replaced by the
/// current one, run again (it is re-runnable); a known late migration is applied out of order.
/// Each is recorded in the history as refinery records it. Returns what was done, if anything.
async fn repair_history(
    tx: &Transaction<'_>,
    runner: &refinery::Runner,
    finding: &history::Finding,
) -> Result<Option<String>> {
    let (name, update) = match finding {
        history::Finding::Divergent {
            name,
            earlier: Some(_),
        } => (name, true),
        history::Finding::Skipped {
            name,
            repairable: true,
        } => (name, false),
        _ => return Ok(None),
    };
    let Some(migration) = runner
        .get_migrations()
        .iter()
        .find(|m| m.to_string() == *name)
    else {
        return Ok(None);
    };
    tx.batch_execute(migration.sql().unwrap_or_default())
        .await
        .map_err(|e| SchemaError::Migration(format!("{name}: {}", describe_db_error(&e))))?;
    transaction::record(tx, migration, update).await?;
    Ok(Some(if update {
        format!(
            "repaired history: {name} applied with its current text (an earlier one was recorded)"
        )
    } else {
        format!(
            "repaired history: {name} applied out of order (later migrations were applied without it)"
        )
    }))
}

/// refinery's error with the server's message, detail and hint spelled out.
fn describe_migration_error(err: refinery::Error) -> SchemaError {
    if let refinery::error::Kind::Connection(what, source) = err.kind() {
        if let Some(transaction::HistoryError::Db(db)) = source.downcast_ref() {
            return SchemaError::Migration(format!("{what}: {}", describe_db_error(db)));
        }
        if let Some(inner) = source.source() {
            return SchemaError::Migration(format!("{what}: {inner}"));
        }
    }
    SchemaError::Refinery(err)
}
