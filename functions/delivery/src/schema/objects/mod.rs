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

use tokio_postgres::GenericClient;

use crate::schema::Result;

/// What an object is, and what its check needs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A function, by its signature as `to_regprocedure` reads it.
    Function(&'static str),
    /// A view.
    View,
    /// A trigger on `table` (a table, or a view: the twin is made alike).
    Trigger { table: &'static str, on_view: bool },
}

/// One object and its current definition.
#[derive(Debug, Clone, Copy)]
struct Object {
    name: &'static str,
    kind: Kind,
    sql: &'static str,
}

/// In the order they are created: functions, then the views, then the triggers that need both.
const OBJECTS: &[Object] = &[
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
       EXISTS (SELECT 1
                 FROM pg_class c
                WHERE c.relnamespace = current_schema()::regnamespace
                  AND c.relname = 'email_logs'
                  AND NOT (c.relkind = 'v'
                           AND pg_get_viewdef(c.oid) ~ '\\mwebhook_deliveries\\M')),
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('booking_requests')
                  AND attname = 'created_at' AND attnum > 0 AND NOT attisdropped)";

/// A function's body, `SECURITY DEFINER` and settings.
const FUNCTION: &str = "
SELECT p.prosrc, p.prosecdef, coalesce(p.proconfig, '{}'::text[])
  FROM pg_proc p
 WHERE p.oid = to_regprocedure($1)";

/// A view's definition as PostgreSQL deparses it, and its options.
const VIEW: &str = "
SELECT pg_get_viewdef(c.oid), coalesce(c.reloptions, '{}'::text[])
  FROM pg_class c
 WHERE c.oid = to_regclass($1) AND c.relkind = 'v'";

/// A trigger's definition with its table left out (the twin's differs), and whether it fires.
const TRIGGER: &str = "
SELECT regexp_replace(pg_get_triggerdef(t.oid), ' ON \\S+ ', ' ON _ '), t.tgenabled::text
  FROM pg_trigger t
 WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal";

/// How the objects are named here.
#[derive(Debug, Clone)]
struct Context {
    /// The schema, quoted as an identifier.
    schema: String,
    /// Our `email_logs` view's name.
    email_logs: &'static str,
    /// How `booking_requests.created_at` is read (`NULL` without the column).
    created_at: &'static str,
}

impl Context {
    async fn read(db: &impl GenericClient) -> Result<Context> {
        let row = db.query_one(CONTEXT, &[]).await?;
        let foreign_email_logs: bool = row.try_get(1)?;
        let dated: bool = row.try_get(2)?;
        Ok(Context {
            schema: row.try_get(0)?,
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

/// How an object differs from its current definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Difference {
    /// It is not there.
    Missing,
    /// It is there with another definition (what differs).
    Altered(String),
    /// A trigger that is there as defined but does not fire (disabled, or replica only).
    Disabled,
}

/// One object that is not as this build defines it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// `function notify_new_booking()`, `view webhook_failures`, `trigger … on booking_requests`.
    pub object: String,
    /// How it differs.
    pub difference: Difference,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.difference {
            Difference::Missing => write!(f, "{} is missing", self.object),
            Difference::Altered(what) => {
                write!(f, "{} differs from this build's: {what}", self.object)
            }
            Difference::Disabled => write!(f, "{} is disabled", self.object),
        }
    }
}

impl Drift {
    /// True when the object's definition is wrong (not merely a trigger switched off).
    pub fn is_definition(&self) -> bool {
        self.difference != Difference::Disabled
    }
}

/// Compares every object with its current definition, in a savepoint of `db`'s open
/// transaction that is rolled back (the twins go with it). Empty when all is as defined.
pub(crate) async fn drift(db: &impl GenericClient) -> Result<Vec<Drift>> {
    let context = Context::read(db).await?;
    db.batch_execute("SAVEPOINT webhooks_twins").await?;
    let found = compare_all(db, &context).await;
    db.batch_execute("ROLLBACK TO SAVEPOINT webhooks_twins; RELEASE SAVEPOINT webhooks_twins")
        .await?;
    found
}

async fn compare_all(db: &impl GenericClient, context: &Context) -> Result<Vec<Drift>> {
    let mut found = Vec::new();
    for object in OBJECTS {
        let name = context.name(object);
        let (label, difference) = match object.kind {
            Kind::Function(signature) => (
                format!("function {signature}"),
                compare_function(db, context, object, signature).await?,
            ),
            Kind::View => (
                format!("view {name}"),
                compare_view(db, context, object, &name).await?,
            ),
            Kind::Trigger { table, on_view } => (
                format!("trigger {name} on {table}"),
                compare_trigger(db, context, object, table, on_view).await?,
            ),
        };
        if let Some(difference) = difference {
            found.push(Drift {
                object: label,
                difference,
            });
        }
    }
    Ok(found)
}

async fn compare_function(
    db: &impl GenericClient,
    context: &Context,
    object: &Object,
    signature: &str,
) -> Result<Option<Difference>> {
    let expected = FunctionText::parse(&context.fill(object.sql));
    let rows = db.query(FUNCTION, &[&context.qualified(signature)]).await?;
    let Some(row) = rows.first() else {
        return Ok(Some(Difference::Missing));
    };
    let (body, definer, config): (String, bool, Vec<String>) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let mut what = Vec::new();
    if body != expected.body {
        what.push("its body".to_owned());
    }
    if definer != expected.definer {
        what.push(if expected.definer {
            "it is not SECURITY DEFINER".to_owned()
        } else {
            "it is SECURITY DEFINER".to_owned()
        });
    }
    if config != expected.config {
        what.push(format!("its settings ({})", config.join("; ")));
    }
    Ok((!what.is_empty()).then(|| Difference::Altered(what.join(", "))))
}

async fn compare_view(
    db: &impl GenericClient,
    context: &Context,
    object: &Object,
    name: &str,
) -> Result<Option<Difference>> {
    let ours = db.query(VIEW, &[&context.qualified(name)]).await?;
    let Some(ours) = ours.first() else {
        return Ok(Some(Difference::Missing));
    };
    let twin_name = format!("webhooks_view_twin_{name}");
    let twin = context.fill(object.sql).replacen(
        &format!("CREATE OR REPLACE VIEW {}", context.qualified(name)),
        &format!("CREATE TEMP VIEW {twin_name}"),
        1,
    );
    db.batch_execute(&twin).await?;
    let twin = db
        .query_one(VIEW, &[&format!("pg_temp.{twin_name}")])
        .await?;
    let (ours_def, ours_options): (String, Vec<String>) = (ours.try_get(0)?, ours.try_get(1)?);
    let (twin_def, twin_options): (String, Vec<String>) = (twin.try_get(0)?, twin.try_get(1)?);
    Ok(if ours_def != twin_def {
        Some(Difference::Altered("its query".to_owned()))
    } else if ours_options != twin_options {
        Some(Difference::Altered(format!(
            "its options ({})",
            ours_options.join(", ")
        )))
    } else {
        None
    })
}

async fn compare_trigger(
    db: &impl GenericClient,
    context: &Context,
    object: &Object,
    table: &str,
    on_view: bool,
) -> Result<Option<Difference>> {
    let name = context.name(object);
    let ours = db
        .query(TRIGGER, &[&context.qualified(table), &name])
        .await?;
    let Some(ours) = ours.first() else {
        return Ok(Some(Difference::Missing));
    };
    let twin_table = format!("webhooks_table_twin_{table}");
    let copy = if on_view {
        format!(
            "CREATE TEMP VIEW {twin_table} AS SELECT * FROM {}",
            context.qualified(table)
        )
    } else {
        format!(
            "CREATE TEMP TABLE {twin_table} (LIKE {})",
            context.qualified(table)
        )
    };
    db.batch_execute(&copy).await?;
    // The object files put the table at the end of its line (a test checks it).
    let twin = context.fill(object.sql).replacen(
        &format!(" ON {}\n", context.qualified(table)),
        &format!(" ON pg_temp.{twin_table}\n"),
        1,
    );
    db.batch_execute(&twin).await?;
    let twin = db
        .query_one(TRIGGER, &[&format!("pg_temp.{twin_table}"), &name])
        .await?;
    let (ours_def, enabled): (String, String) = (ours.try_get(0)?, ours.try_get(1)?);
    let twin_def: String = twin.try_get(0)?;
    db.batch_execute(&format!(
        "DROP {} {twin_table}",
        if on_view { "VIEW" } else { "TABLE" }
    ))
    .await?;
    Ok(if ours_def != twin_def {
        Some(Difference::Altered("its definition".to_owned()))
    } else if enabled == "D" || enabled == "R" {
        Some(Difference::Disabled)
    } else {
        None
    })
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

/// The parts of a `CREATE FUNCTION` statement PostgreSQL keeps as they are.
#[derive(Debug, PartialEq, Eq)]
struct FunctionText {
    body: String,
    definer: bool,
    config: Vec<String>,
}

impl FunctionText {
    fn parse(sql: &str) -> FunctionText {
        // The body is between `AS $tag$` and the next `$tag$`.
        let body = sql
            .find("AS $")
            .and_then(|at| {
                let rest = &sql[at + 3..];
                let tag_end = rest[1..].find('$')? + 2;
                let tag = &rest[..tag_end];
                let body = &rest[tag_end..];
                body.find(tag).map(|end| body[..end].to_owned())
            })
            .unwrap_or_default();
        let head = sql.split("AS $").next().unwrap_or_default();
        let config = head
            .lines()
            .filter_map(|line| line.trim().strip_prefix("SET "))
            .map(|set| set.replacen(" = ", "=", 1))
            .collect();
        FunctionText {
            body,
            definer: head.lines().any(|line| line.trim() == "SECURITY DEFINER"),
            config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_text_gives_its_body_definer_and_settings() {
        let text = FunctionText::parse(
            "-- note\nCREATE OR REPLACE FUNCTION s.f()\nRETURNS trigger\nLANGUAGE plpgsql\n\
             SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp\nAS $body$\nBEGIN\n  \
             RETURN NULL; -- $$ inside\nEND\n$body$",
        );
        assert_eq!(text.body, "\nBEGIN\n  RETURN NULL; -- $$ inside\nEND\n");
        assert!(text.definer);
        assert_eq!(text.config, vec!["search_path=pg_catalog, pg_temp"]);
        let plain =
            FunctionText::parse("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$");
        assert_eq!(plain.body, " SELECT 1 ");
        assert!(!plain.definer && plain.config.is_empty());
    }

    #[test]
    fn every_object_file_names_its_object_with_the_schema() {
        for object in OBJECTS {
            let name = object.name;
            let created = match object.kind {
                Kind::Function(_) => format!("CREATE OR REPLACE FUNCTION @schema@.{name}("),
                Kind::View => format!("CREATE OR REPLACE VIEW @schema@.{name} "),
                Kind::Trigger { table, .. } => {
                    assert!(
                        object.sql.contains(&format!(" ON @schema@.{table}\n")),
                        "{name}"
                    );
                    format!("CREATE OR REPLACE TRIGGER {name}\n")
                }
            };
            assert!(object.sql.contains(&created), "{name}: {created}");
        }
    }
}
