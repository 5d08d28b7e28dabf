//! Comparing the database with the definitions: functions by body (`prosrc`, kept verbatim),
//! `SECURITY DEFINER` and settings; triggers and views against a twin created from the
//! definition on a temporary copy, in a savepoint rolled back afterwards.

use tokio_postgres::GenericClient;

use super::{Context, Kind, OBJECTS, Object};
use crate::schema::Result;

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
