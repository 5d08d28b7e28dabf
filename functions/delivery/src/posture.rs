//! A deployment's posture (`webhooks doctor`): what is wrong, in plain words, with what to do.
//!
//! Checked, in order of harm: the capture triggers exist and fire (a disabled trigger loses
//! every notification silently); the capture functions are SECURITY DEFINER, owned by the
//! outbox's owner, resolve names in `pg_catalog` only and are not executable by others; who
//! besides the owner may create objects in the schema; every function, trigger and view is
//! this build's definition (bodies compared, not only attributes); row level security on
//! the outbox tables (and on `booking_requests` where Supabase's API roles can reach it); the
//! due backlog and its age; migrations current; the NOTIFY switch against whether anything
//! listens; a wake-up trigger; when anything was last sent. Everything is read from the
//! catalogs through the caller's `search_path`, so it checks the schema the functions use.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::Result;
use crate::db::query;
use crate::db::sql;
use crate::schema::HistoryState;
use crate::table::{Table, span};

/// How bad a finding is. Only [`Severity::Problem`] makes `doctor` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// As it should be.
    Ok,
    /// Worth knowing, nothing to do.
    Info,
    /// Works, but costs something or may surprise.
    Warning,
    /// Notifications are or will be lost, late, or exposed.
    Problem,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "WARNING",
            Severity::Problem => "PROBLEM",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `capture-triggers`.
    pub check: &'static str,
    /// How bad.
    pub severity: Severity,
    /// What was found and, if wrong, what to do.
    pub message: String,
}

/// All findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Posture {
    /// Findings, in the order checked.
    pub checks: Vec<Check>,
    /// How many are problems.
    pub problems: usize,
    /// How many are warnings.
    pub warnings: usize,
}

impl Posture {
    fn new(checks: Vec<Check>) -> Posture {
        let count = |s| checks.iter().filter(|c| c.severity == s).count();
        Posture {
            problems: count(Severity::Problem),
            warnings: count(Severity::Warning),
            checks,
        }
    }

    /// True when no finding is a problem.
    pub fn is_healthy(&self) -> bool {
        self.problems == 0
    }
}

/// The oldest due row may wait this long before it is a problem (the backlog-age alarm's
/// threshold in `METRICS.md`).
pub const BACKLOG_AGE_LIMIT_S: i64 = 1_800;

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

const OUTBOX_TABLES: [&str; 3] = [
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_verify_horizon",
];

const API_ROLES: [&str; 3] = ["PUBLIC", "anon", "authenticated"];

/// Runs every check at `now`; migrations are judged against this build's.
pub async fn check_posture(db: &Client, now: DateTime<Utc>) -> Result<Posture> {
    let mut checks = Vec::new();
    checks.extend(capture_triggers(db).await?);
    checks.extend(capture_functions(db).await?);
    checks.push(schema_create(db).await?);
    let migrated = migrations(db).await?;
    // Against a schema that is behind, or whose history refinery refuses, comparing
    // definitions says nothing new: the migrations finding says what to run first.
    if migrated.severity == Severity::Ok || migrated.severity == Severity::Warning {
        checks.extend(definitions(db).await?);
    }
    checks.extend(row_level_security(db).await?);
    checks.push(backlog(db, now).await?);
    checks.push(migrated);
    checks.push(completeness(db).await?);
    let (notify, listeners) = notify(db).await?;
    checks.extend(notify);
    checks.push(wake_up(db, listeners).await?);
    checks.push(last_attempt(db, now).await?);
    Ok(Posture::new(checks))
}

fn check(check: &'static str, severity: Severity, message: impl Into<String>) -> Check {
    Check {
        check,
        severity,
        message: message.into(),
    }
}

async fn triggers_on(db: &Client, table: &str) -> Result<Vec<(String, String, String)>> {
    let rows = query(db, sql::TABLE_TRIGGERS, &[(&table, Type::TEXT)]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

async fn capture_triggers(db: &Client) -> Result<Vec<Check>> {
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

struct TableSecurity {
    name: String,
    exists: bool,
    owner: Option<String>,
    rls: bool,
    reachable_by: Vec<String>,
}

async fn table_security(db: &Client, tables: &[&str]) -> Result<Vec<TableSecurity>> {
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    let rows = query(db, sql::TABLE_SECURITY, &[(&tables, Type::TEXT_ARRAY)]).await?;
    rows.iter()
        .map(|r| {
            Ok(TableSecurity {
                name: r.try_get(0)?,
                exists: r.try_get(1)?,
                owner: r.try_get(2)?,
                rls: r.try_get(3)?,
                reachable_by: r.try_get(4)?,
            })
        })
        .collect()
}

async fn capture_functions(db: &Client) -> Result<Vec<Check>> {
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
async fn definitions(db: &Client) -> Result<Vec<Check>> {
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

async fn schema_create(db: &Client) -> Result<Check> {
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

async fn row_level_security(db: &Client) -> Result<Vec<Check>> {
    const NAME: &str = "row-level-security";
    let mut tables: Vec<&str> = OUTBOX_TABLES.to_vec();
    tables.push("booking_requests");
    let mut checks = Vec::new();
    for t in table_security(db, &tables).await? {
        let outbox = t.name != "booking_requests";
        let reachable = t.reachable_by.join(", ");
        checks.push(match (t.exists, t.rls, t.reachable_by.is_empty()) {
            (false, _, _) => check(
                NAME,
                Severity::Problem,
                format!("table {} is MISSING: run `webhooks migrate`", t.name),
            ),
            (true, false, _) if outbox => check(
                NAME,
                Severity::Problem,
                format!(
                    "row level security is OFF on {}: any role granted access reads every \
                     recipient address. Fix: ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
                    t.name, t.name
                ),
            ),
            (true, _, false) if outbox => check(
                NAME,
                Severity::Problem,
                format!(
                    "{reachable} hold privileges on {}: on Supabase that exposes it through the \
                     REST API. Fix: REVOKE ALL ON {} FROM {reachable};",
                    t.name, t.name
                ),
            ),
            (true, false, false) => check(
                NAME,
                Severity::Problem,
                format!(
                    "booking_requests has row level security OFF while {reachable} hold \
                     privileges on it: anyone with the API key can read addresses and approve \
                     bookings, making this system mail anyone. Enable RLS with the app's policies."
                ),
            ),
            (true, rls, _) => check(
                NAME,
                Severity::Ok,
                if rls {
                    format!("row level security is on for {}", t.name)
                } else {
                    format!("{}: no API role can reach it", t.name)
                },
            ),
        });
    }
    Ok(checks)
}

async fn backlog(db: &Client, now: DateTime<Utc>) -> Result<Check> {
    const NAME: &str = "backlog";
    let backlog = crate::health::read_backlog(db, Some(now)).await?;
    let (due, age) = (backlog.due, backlog.oldest_due_age_s as i64);
    Ok(if due == 0 {
        check(NAME, Severity::Ok, "nothing is due")
    } else if age > BACKLOG_AGE_LIMIT_S {
        check(
            NAME,
            Severity::Problem,
            format!(
                "{due} deliveries are due, the oldest for {}: the retry sweep is not running or not \
                 keeping up. Check its schedule and errors (docs/operations.md, \"Backlog age\"); \
                 `webhooks sweep` sends them now.",
                span(age)
            ),
        )
    } else {
        check(
            NAME,
            Severity::Ok,
            format!("{due} deliveries are due, the oldest for {}", span(age)),
        )
    })
}

/// The migration history judged by refinery's rules ([`crate::schema::judge_history`]): what
/// `webhooks migrate` would apply, refuse, or need `--repair` for.
async fn migrations(db: &Client) -> Result<Check> {
    const NAME: &str = "migrations";
    let has_table = match query(db, sql::MIGRATION_TABLE, &[]).await?.first() {
        Some(row) => row.try_get(0)?,
        None => false,
    };
    let mut applied: Vec<(i32, String, u64)> = Vec::new();
    if has_table {
        for r in query(db, sql::APPLIED_MIGRATIONS, &[]).await? {
            let checksum: String = r.try_get(2)?;
            applied.push((
                r.try_get(0)?,
                r.try_get(1)?,
                checksum.parse().unwrap_or_default(),
            ));
        }
    }
    let judged = crate::schema::judge_history(&applied);
    let lines = |state: HistoryState| -> Vec<String> {
        judged
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(line, _)| line.clone())
            .collect()
    };
    let (pending, repairable, refused, newer) = (
        lines(HistoryState::Pending),
        lines(HistoryState::Repairable),
        lines(HistoryState::Refused),
        lines(HistoryState::Newer),
    );
    Ok(if !refused.is_empty() {
        check(
            NAME,
            Severity::Problem,
            format!(
                "{}: webhooks migrate refuses this history, and --repair cannot set it right \
                 (compare with migrations/README.md)",
                refused.join("; ")
            ),
        )
    } else if !repairable.is_empty() {
        check(
            NAME,
            Severity::Problem,
            format!(
                "{}: a build between releases migrated this database; `webhooks migrate \
                 --repair` brings it up (migrations/README.md)",
                repairable.join("; ")
            ),
        )
    } else if !pending.is_empty() {
        let names: Vec<&str> = pending
            .iter()
            .map(|p| p.trim_end_matches(" is not applied"))
            .collect();
        check(
            NAME,
            Severity::Problem,
            format!(
                "not applied: {}. Run `webhooks migrate` with this DATABASE_URL.",
                names.join(", ")
            ),
        )
    } else if !newer.is_empty() {
        check(
            NAME,
            Severity::Warning,
            format!(
                "{}: a newer build migrated this database; deploy it (this build's `webhooks \
                 migrate` refuses)",
                newer.join("; ")
            ),
        )
    } else {
        check(
            NAME,
            Severity::Ok,
            format!(
                "all {} migrations applied, as refinery records them (latest {})",
                applied.len(),
                applied
                    .last()
                    .map(|(v, n, _)| format!("V{v}__{n}"))
                    .unwrap_or_default()
            ),
        )
    })
}

async fn completeness(db: &Client) -> Result<Check> {
    const NAME: &str = "completeness";
    let rows = query(db, sql::VERIFY_HORIZON, &[]).await?;
    let Some(row) = rows.first() else {
        return Ok(check(
            NAME,
            Severity::Info,
            "completeness horizon not readable",
        ));
    };
    let checked_from: Option<DateTime<Utc>> = row.try_get(0)?;
    let reason: Option<String> = row.try_get(1)?;
    let dated: bool = row.try_get(2)?;
    Ok(if !dated {
        check(
            NAME,
            Severity::Warning,
            "booking_requests has no created_at column: `webhooks verify` and the \
             MissingDeliveries metric cannot date bookings and check nothing, so a disabled \
             trigger would go unnoticed. Add the column, then run `webhooks migrate --repair` \
             (it rebuilds the completeness view).",
        )
    } else {
        check(
            NAME,
            Severity::Ok,
            match checked_from {
                Some(at) => format!(
                    "`webhooks verify` checks bookings created since {} ({})",
                    crate::table::instant(Some(at)),
                    reason.unwrap_or_default()
                ),
                None => "`webhooks verify` checks every booking (no horizon row)".to_owned(),
            },
        )
    })
}

async fn notify(db: &Client) -> Result<(Vec<Check>, i64)> {
    const NAME: &str = "notify";
    let rows = query(db, sql::NOTIFY_POSTURE, &[]).await?;
    let Some(row) = rows.first() else {
        return Ok((Vec::new(), 0));
    };
    let setting: String = row.try_get(0)?;
    let listeners: i64 = row.try_get(1)?;
    let queue_usage: f64 = row.try_get(2)?;
    let on = !matches!(
        setting.to_ascii_lowercase().as_str(),
        "off" | "false" | "0" | "no"
    );
    let mut checks = vec![match (on, listeners > 0) {
        (true, true) => check(
            NAME,
            Severity::Ok,
            format!("NOTIFY is on and {listeners} session(s) listen (webhooks listen)"),
        ),
        (true, false) => check(
            NAME,
            Severity::Warning,
            "NOTIFY is on but no session listens on webhook_delivery: every capturing commit pays \
             for a NOTIFY nobody reads (it serializes commits). Unless you run `webhooks listen`: \
             ALTER DATABASE <db> SET webhooks.notify = 'off';",
        ),
        (false, true) => check(
            NAME,
            Severity::Warning,
            format!(
                "{listeners} session(s) listen on webhook_delivery but NOTIFY is off (as this \
                 role sees it): they only pick deliveries up on their own sweep"
            ),
        ),
        (false, false) => check(NAME, Severity::Ok, "NOTIFY is off and nothing listens"),
    }];
    if queue_usage > 0.5 {
        checks.push(check(
            NAME,
            Severity::Problem,
            format!(
                "the NOTIFY queue is {:.0}% full: a listening session stopped reading. When it is \
                 full, every capturing commit fails. Restart the listener, or turn NOTIFY off.",
                queue_usage * 100.0
            ),
        ));
    }
    Ok((checks, listeners))
}

async fn wake_up(db: &Client, listeners: i64) -> Result<Check> {
    const NAME: &str = "wake-up";
    let triggers = triggers_on(db, "webhook_deliveries").await?;
    Ok(match triggers.first() {
        Some((name, enabled, function)) if enabled == "D" || enabled == "R" => check(
            NAME,
            Severity::Warning,
            format!(
                "wake-up trigger {name} ({function}) is disabled: first attempts wait for the \
                 retry sweep. Fix: ALTER TABLE webhook_deliveries ENABLE TRIGGER {name};"
            ),
        ),
        Some((name, _, function)) => check(
            NAME,
            Severity::Ok,
            format!("wake-up trigger {name} ({function}) dispatches each new delivery"),
        ),
        None if listeners > 0 => check(
            NAME,
            Severity::Info,
            "no wake-up trigger; `webhooks listen` dispatches each new delivery",
        ),
        None => check(
            NAME,
            Severity::Warning,
            "no wake-up trigger and nothing listens: first attempts wait for the retry sweep (up \
             to its interval). See infra/sql/ for the RDS and Supabase wake-up triggers.",
        ),
    })
}

async fn last_attempt(db: &Client, now: DateTime<Utc>) -> Result<Check> {
    let last: Option<DateTime<Utc>> = match query(db, sql::LAST_ATTEMPT, &[]).await?.first() {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(check(
        "last-attempt",
        Severity::Info,
        match last {
            Some(at) => format!(
                "the last attempt started {} ago",
                span((now - at).num_seconds())
            ),
            None => "no attempt recorded yet".to_owned(),
        },
    ))
}

/// The human form: one line per finding, then a summary.
pub fn render_posture(p: &Posture) -> String {
    let mut t = Table::new(&["", "check", "finding"]);
    for c in &p.checks {
        t.row(vec![
            c.severity.label().to_owned(),
            c.check.to_owned(),
            c.message.clone(),
        ]);
    }
    let mut out = t.render();
    out.push_str(&match (p.problems, p.warnings) {
        (0, 0) => "\nhealthy\n".to_owned(),
        (0, w) => format!("\nhealthy, {w} warning(s)\n"),
        (n, w) => format!("\n{n} problem(s), {w} warning(s)\n"),
    });
    out
}
