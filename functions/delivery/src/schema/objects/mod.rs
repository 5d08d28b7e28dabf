//! The current definitions of the objects the migrations create and later migrations replace —
//! the capture functions and triggers, the views, the retry function — and the check that the
//! database holds exactly these. Tables are the migrations' alone: their history is refinery's.
//!
//! Why: refinery's history says which migrations ran, not what is there now. A rollback to the
//! pg_net system drops our triggers and views and puts the old functions back; a hand edit or
//! an old migration's text pasted into psql brings back capture without its address checks.
//! So `webhooks migrate` compares every object with its definition here, `webhooks migrate
//! --repair` (and adoption) reinstalls these definitions, and `webhooks doctor` reports what
//! differs. Each file here is the object's current text with `@schema@` for the schema; the
//! migration that last changed it produces the same object (a test compares them).
//!
//! Compared: a function's body (`prosrc`, kept verbatim by PostgreSQL), `SECURITY DEFINER` and
//! settings; a trigger's and a view's definition as PostgreSQL deparses it, against a *twin*
//! created from the text here on a temporary copy of its table, in a savepoint that is rolled
//! back — so the comparison holds on any PostgreSQL version and for any column types the app's
//! table has (an enum `status`, say). Needs the TEMP privilege, which every role has by default.
//!
//! # Layout
//! - `compare`: what differs ([`drift`]).

mod compare;

use tokio_postgres::GenericClient;

use crate::schema::Result;
pub(crate) use compare::drift;
pub use compare::{Difference, Drift};

/// What an object is, and what its check needs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// A function, by its signature as `to_regprocedure` reads it.
    Function(&'static str),
    /// A view.
    View,
    /// A trigger on `table` (a table, or a view: the twin is made alike).
    Trigger { table: &'static str, on_view: bool },
}

/// One object and its current definition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Object {
    name: &'static str,
    kind: Kind,
    sql: &'static str,
}

/// In the order they are created: functions, then the views, then the triggers that need both.
pub(super) const OBJECTS: &[Object] = &[
    Object {
        name: "capture_booking_webhook",
        kind: Kind::Function("capture_booking_webhook(uuid,text,text)"),
        sql: include_str!("capture_booking_webhook.sql"),
    },
    Object {
        name: "notify_new_booking",
        kind: Kind::Function("notify_new_booking()"),
        sql: include_str!("notify_new_booking.sql"),
    },
    Object {
        name: "notify_status_update",
        kind: Kind::Function("notify_status_update()"),
        sql: include_str!("notify_status_update.sql"),
    },
    Object {
        name: "retry_failed_webhooks",
        kind: Kind::Function(
            "retry_failed_webhooks(uuid[],timestamptz,integer,timestamptz,boolean)",
        ),
        sql: include_str!("retry_failed_webhooks.sql"),
    },
    Object {
        name: "webhook_failures_read_only",
        kind: Kind::Function("webhook_failures_read_only()"),
        sql: include_str!("webhook_failures_read_only.sql"),
    },
    Object {
        name: "webhook_failures",
        kind: Kind::View,
        sql: include_str!("webhook_failures.sql"),
    },
    Object {
        name: "@email_logs@",
        kind: Kind::View,
        sql: include_str!("email_logs.sql"),
    },
    Object {
        name: "webhook_health_stats",
        kind: Kind::View,
        sql: include_str!("webhook_health_stats.sql"),
    },
    Object {
        name: "webhook_error_patterns",
        kind: Kind::View,
        sql: include_str!("webhook_error_patterns.sql"),
    },
    Object {
        name: "webhook_stats",
        kind: Kind::View,
        sql: include_str!("webhook_stats.sql"),
    },
    Object {
        name: "webhook_missing_deliveries",
        kind: Kind::View,
        sql: include_str!("webhook_missing_deliveries.sql"),
    },
    Object {
        name: "trigger_new_booking_notification",
        kind: Kind::Trigger {
            table: "booking_requests",
            on_view: false,
        },
        sql: include_str!("trigger_new_booking_notification.sql"),
    },
    Object {
        name: "trigger_status_update_notification",
        kind: Kind::Trigger {
            table: "booking_requests",
            on_view: false,
        },
        sql: include_str!("trigger_status_update_notification.sql"),
    },
    Object {
        name: "webhook_failures_read_only",
        kind: Kind::Trigger {
            table: "webhook_failures",
            on_view: true,
        },
        sql: include_str!("trigger_webhook_failures_read_only.sql"),
    },
];

/// Takes back every privilege PUBLIC and Supabase's API roles may hold on what [`reinstall`]
/// creates (default privileges grant them every new function and view).
const REVOKE: &str = include_str!("revoke.sql");

/// What the database says about the schema the objects live in.
const CONTEXT: &str = "
SELECT quote_ident(current_schema()),
       quote_literal(quote_ident(current_schema()) || '.webhook_listener_awake_until'),
       EXISTS (SELECT 1
                 FROM pg_class c
                WHERE c.relnamespace = current_schema()::regnamespace
                  AND c.relname = 'email_logs'
                  AND NOT (c.relkind = 'v'
                           AND pg_get_viewdef(c.oid) ~ '\\mwebhook_deliveries\\M')),
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('booking_requests')
                  AND attname = 'created_at' AND attnum > 0 AND NOT attisdropped)";

/// How the objects are named here.
#[derive(Debug, Clone)]
pub(super) struct Context {
    /// The schema, quoted as an identifier.
    schema: String,
    /// The listener's flag (V18), `<schema>.webhook_listener_awake_until` as a string literal:
    /// the capture functions look it up by name when they run (`to_regclass`), so a missing
    /// sequence means "notify", never a failed booking insert.
    listener_flag: String,
    /// Our `email_logs` view's name.
    email_logs: &'static str,
    /// How `booking_requests.created_at` is read (`NULL` without the column).
    created_at: &'static str,
}

impl Context {
    async fn read(db: &impl GenericClient) -> Result<Context> {
        let row = db.query_one(CONTEXT, &[]).await?;
        let foreign_email_logs: bool = row.try_get(2)?;
        let dated: bool = row.try_get(3)?;
        Ok(Context {
            schema: row.try_get(0)?,
            listener_flag: row.try_get(1)?,
            email_logs: if foreign_email_logs {
                "webhook_email_logs"
            } else {
                "email_logs"
            },
            created_at: if dated {
                "b.created_at::timestamptz"
            } else {
                "NULL::timestamptz"
            },
        })
    }

    /// `text` with the placeholders filled in.
    fn fill(&self, text: &str) -> String {
        text.replace("@schema@", &self.schema)
            .replace("@listener_flag@", &self.listener_flag)
            .replace("@email_logs@", self.email_logs)
            .replace("@created_at@", self.created_at)
    }

    fn name(&self, object: &Object) -> String {
        self.fill(object.name)
    }

    fn qualified(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }
}

/// Installs the current definition of every object, in `db`'s open transaction: functions,
/// views (replaced in place, or dropped and created when their columns changed), triggers
/// (enabled), then the privileges taken back. Idempotent. Returns what was not as defined
/// before (empty: nothing to do, and nothing was changed).
pub(crate) async fn reinstall(db: &impl GenericClient) -> Result<Vec<Drift>> {
    let before = drift(db).await?;
    if before.is_empty() {
        return Ok(before);
    }
    let context = Context::read(db).await?;
    for object in OBJECTS {
        let sql = context.fill(object.sql);
        match object.kind {
            Kind::View => {
                db.batch_execute("SAVEPOINT webhooks_view").await?;
                if db.batch_execute(&sql).await.is_err() {
                    // CREATE OR REPLACE cannot drop or retype columns: start over.
                    let name = context.qualified(&context.name(object));
                    db.batch_execute(&format!(
                        "ROLLBACK TO SAVEPOINT webhooks_view; DROP VIEW IF EXISTS {name}"
                    ))
                    .await?;
                    db.batch_execute(&sql).await?;
                }
                db.batch_execute("RELEASE SAVEPOINT webhooks_view").await?;
            }
            Kind::Trigger { table, .. } => {
                db.batch_execute(&sql).await?;
                if table == "booking_requests" {
                    db.batch_execute(&format!(
                        "ALTER TABLE {} ENABLE TRIGGER {}",
                        context.qualified(table),
                        context.name(object)
                    ))
                    .await?;
                }
            }
            Kind::Function(_) => db.batch_execute(&sql).await?,
        }
    }
    db.batch_execute(&context.fill(REVOKE)).await?;
    Ok(before)
}
