//! Capture: the triggers exist and fire, the functions are ours and safe to run as their
//! owner (definer, owner, `search_path` of `pg_catalog` only, not callable by the API roles),
//! who may create objects beside them, and every definition is this build's.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::finding::{Check, Severity, check};
use super::security::{API_ROLES, table_security};
use crate::db::{query, sql};
use crate::error::Result;

const CAPTURE_TRIGGERS: [(&str, &str, &str); 2] = [
    (
        "trigger_new_booking_notification",
        "notify_new_booking",
        "new bookings",
    ),
    (
        "trigger_status_update_notification",
        "notify_status_update",
        "approvals and rejections",
    ),
];

const CAPTURE_FUNCTIONS: [&str; 3] = [
    "capture_booking_webhook(uuid,text,text)",
    "notify_new_booking()",
    "notify_status_update()",
];

pub(super) async fn triggers_on(db: &Client, table: &str) -> Result<Vec<(String, String, String)>> {
    let rows = query(db, sql::TABLE_TRIGGERS, &[(&table, Type::TEXT)]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

pub(super) async fn capture_triggers(db: &Client) -> Result<Vec<Check>> {
    const NAME: &str = "capture-triggers";
    let found = triggers_on(db, "booking_requests").await?;
    let mut checks = Vec::new();
    for (trigger, function, what) in CAPTURE_TRIGGERS {
        let found = found.iter().find(|(name, _, _)| name == trigger);
        checks.push(match found {
            None => check(
                NAME,
                Severity::Problem,
                format!(
                    "trigger {trigger} on booking_requests is MISSING: {what} are not captured and \
                     never notified. Fix: `webhooks migrate --repair`, then `webhooks verify` lists \
                     the bookings it missed."
                ),
            ),
            Some((_, _, f)) if f != function => check(
                NAME,
                Severity::Problem,
                format!(
                    "trigger {trigger} calls {f}() instead of {function}(): {what} may not be \
                     captured. Fix: `webhooks migrate --repair`."
                ),
            ),
            Some((_, enabled, _)) if enabled == "D" => check(
                NAME,
                Severity::Problem,
                format!(
                    "trigger {trigger} is DISABLED: {what} are not captured and never notified. \
                     Fix: ALTER TABLE booking_requests ENABLE TRIGGER {trigger}; (or `webhooks \
                     migrate --repair`), then `webhooks verify` lists the bookings it missed."
                ),
            ),
            Some((_, enabled, _)) if enabled == "R" => check(
                NAME,
                Severity::Problem,
                format!(
                    "trigger {trigger} fires only in replica mode: {what} are not captured in \
                     normal operation. Fix: ALTER TABLE booking_requests ENABLE TRIGGER {trigger};"
                ),
            ),
            Some(_) => check(
                NAME,
                Severity::Ok,
                format!("trigger {trigger} is enabled: {what} are captured"),
            ),
        });
    }
    Ok(checks)
}

pub(super) async fn capture_functions(db: &Client) -> Result<Vec<Check>> {
    const NAME: &str = "capture-functions";
    let outbox_owner = table_security(db, &["webhook_deliveries"])
        .await?
        .into_iter()
        .next()
        .and_then(|t| t.owner);
    let signatures: Vec<String> = CAPTURE_FUNCTIONS.iter().map(|s| (*s).to_owned()).collect();
    let rows = query(db, sql::FUNCTIONS, &[(&signatures, Type::TEXT_ARRAY)]).await?;
    let mut checks = Vec::new();
    for r in &rows {
        let signature: String = r.try_get(0)?;
        let definer: Option<bool> = r.try_get(1)?;
        let owner: Option<String> = r.try_get(2)?;
        let bypasses_rls: Option<bool> = r.try_get(3)?;
        let config: Option<Vec<String>> = r.try_get(4)?;
        let executors: Option<Vec<String>> = r.try_get(5)?;
        let Some(definer) = definer else {
            checks.push(check(
                NAME,
                Severity::Problem,
                format!(
                    "function {signature} is MISSING: the capture triggers fail, and with them \
                     every booking insert or approval. Fix: `webhooks migrate --repair`."
                ),
            ));
            continue;
        };
        let mut wrong = Vec::new();
        if !definer {
            wrong.push(
                "it is not SECURITY DEFINER, so it runs with the booking writer's rights and row \
                 level security refuses its insert (the booking fails)"
                    .to_owned(),
            );
        }
        let owner = owner.unwrap_or_default();
        if outbox_owner.as_deref().is_some_and(|o| o != owner) && bypasses_rls != Some(true) {
            wrong.push(format!(
                "it is owned by {owner}, not by the outbox's owner {}, so row level security \
                 refuses its insert (fix: ALTER FUNCTION {signature} OWNER TO {})",
                outbox_owner.as_deref().unwrap_or("?"),
                outbox_owner.as_deref().unwrap_or("?"),
            ));
        }
        let search_path = config
            .unwrap_or_default()
            .into_iter()
            .find_map(|s| s.strip_prefix("search_path=").map(str::to_owned));
        match search_path {
            Some(path) if pinned_to_catalog(&path) => {}
            Some(path) => wrong.push(format!(
                "its search_path ({path}) is not `pg_catalog, pg_temp`: a role that may CREATE \
                 in a schema on it can define an overload of a built-in it calls and run its own \
                 code as {owner}, and a caller's temporary table could shadow the outbox (fix: \
                 `webhooks migrate --repair` installs the current definition)"
            )),
            None => wrong.push(
                "its search_path is not pinned, so a caller could shadow webhook_deliveries or \
                 the built-ins it calls with objects of their own (fix: `webhooks migrate \
                 --repair` installs the current definition)"
                    .to_owned(),
            ),
        }
        let exposed: Vec<String> = executors
            .unwrap_or_default()
            .into_iter()
            .filter(|e| API_ROLES.contains(&e.as_str()))
            .collect();
        if !exposed.is_empty() {
            wrong.push(format!(
                "{} may call it directly and queue mail to any address (fix: REVOKE ALL ON \
                 FUNCTION {signature} FROM {})",
                exposed.join(", "),
                exposed.join(", ")
            ));
        }
        checks.push(if wrong.is_empty() {
            check(
                NAME,
                Severity::Ok,
                format!(
                    "{signature}: SECURITY DEFINER, owned by {owner}, search_path pg_catalog, \
                     pg_temp, not callable by API roles"
                ),
            )
        } else {
            check(
                NAME,
                Severity::Problem,
                format!("{signature}: {}.", wrong.join("; ")),
            )
        });
    }
    Ok(checks)
}

/// Every function, trigger and view compared with this build's definition: a body that is not
/// ours (an old migration's text run by hand brings back capture without its address checks)
/// is a problem even when owner, definer and search_path look right.
pub(super) async fn definitions(db: &Client) -> Result<Vec<Check>> {
    const NAME: &str = "definitions";
    let drift = match crate::schema::drift(db).await {
        Ok(drift) => drift,
        Err(err) => {
            return Ok(vec![check(
                NAME,
                Severity::Problem,
                format!("the definitions could not be compared: {err}"),
            )]);
        }
    };
    let wrong: Vec<String> = drift
        .iter()
        .filter(|d| d.is_definition())
        .map(ToString::to_string)
        .collect();
    Ok(if wrong.is_empty() {
        vec![check(
            NAME,
            Severity::Ok,
            "every function, trigger and view is this build's definition",
        )]
    } else {
        wrong
            .into_iter()
            .map(|what| {
                check(
                    NAME,
                    Severity::Problem,
                    format!(
                        "{what}. Fix: `webhooks migrate --repair` reinstalls the current \
                         definitions in one transaction."
                    ),
                )
            })
            .collect()
    })
}

/// True for a definer function's search_path that resolves names in pg_catalog only (and
/// pg_temp, last: PostgreSQL never looks up functions or operators there).
fn pinned_to_catalog(path: &str) -> bool {
    let entries: Vec<&str> = path
        .split(',')
        .map(|e| e.trim().trim_matches('"'))
        .collect();
    entries == ["pg_catalog", "pg_temp"]
}

pub(super) async fn schema_create(db: &Client) -> Result<Check> {
    const NAME: &str = "schema-create";
    let rows = query(db, sql::SCHEMA_CREATE, &[]).await?;
    let Some(row) = rows.first() else {
        return Ok(check(
            NAME,
            Severity::Info,
            "schema privileges not readable",
        ));
    };
    let schema: Option<String> = row.try_get(0)?;
    let mut creators: Vec<String> = row.try_get(1)?;
    // Every role holds what PUBLIC holds: naming the API roles too would only repeat it.
    if creators.iter().any(|c| c == "PUBLIC") {
        creators = vec!["PUBLIC".to_owned()];
    }
    let schema = schema.unwrap_or_default();
    Ok(if creators.is_empty() {
        check(
            NAME,
            Severity::Ok,
            format!("neither PUBLIC nor an API role may create objects in schema {schema:?}"),
        )
    } else {
        let who = creators.join(", ");
        check(
            NAME,
            Severity::Warning,
            format!(
                "{who} may create objects in schema {schema:?} (every database created on \
                 PostgreSQL 14 or older lets PUBLIC create in `public`): such a role can define \
                 functions and operators that shadow built-ins for any code that resolves names \
                 there — the app's own SECURITY DEFINER functions included. The capture \
                 functions resolve names in pg_catalog only. Fix: REVOKE CREATE ON SCHEMA \
                 {schema} FROM {who};"
            ),
        )
    })
}
