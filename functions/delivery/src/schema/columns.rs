//! Checking, before anything changes, that an existing table has the columns we rely on.
//!
//! PL/pgSQL resolves `NEW.<column>` only when a trigger fires, so without this check a
//! migration "succeeds" against a `booking_requests` whose `id` is a bigint or that has no
//! `student_email`, and every later booking insert fails. The same check guards the import
//! from the seed's `webhook_failures` table.

use tokio_postgres::Transaction;

use super::Result;

/// What a column must be (see `sql/columns.sql`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// `uuid`.
    Uuid,
    /// `text`, `varchar`, `char` or `citext`.
    Text,
    /// Text as above, or an enum having the given labels (comma-separated).
    TextOrEnum(&'static str),
    /// `smallint`, `integer` or `bigint`.
    Integer,
    /// `timestamptz` or `timestamp`.
    Timestamp,
}

/// A column a caller relies on.
pub(crate) type Need = (&'static str, Kind);

/// What the capture triggers read from `booking_requests` (V3): `NEW.id` is passed as a uuid,
/// the addresses as text, and `status` is compared with 'approved'/'rejected' and passed on as
/// the notification type. Every other column is the app's business.
pub(crate) const BOOKING_COLUMNS: &[Need] = &[
    ("id", Kind::Uuid),
    ("tutor_email", Kind::Text),
    ("student_email", Kind::Text),
    ("status", Kind::TextOrEnum("approved,rejected")),
];

/// What adoption reads from the seed's `webhook_failures` (TASK_20_COMPLETION.md's table).
pub(crate) const SEED_COLUMNS: &[Need] = &[
    ("id", Kind::Uuid),
    ("booking_id", Kind::Uuid),
    ("webhook_type", Kind::TextOrEnum("")),
    ("recipient_email", Kind::Text),
    ("attempt_count", Kind::Integer),
    ("last_error", Kind::Text),
    ("last_attempt_at", Kind::Timestamp),
    ("next_retry_at", Kind::Timestamp),
    ("max_retries", Kind::Integer),
    ("status", Kind::TextOrEnum("")),
    ("created_at", Kind::Timestamp),
    ("resolved_at", Kind::Timestamp),
];

/// See `sql/columns.sql`.
const CHECK_COLUMNS: &str = include_str!("sql/columns.sql");

/// One way a table does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The column, or `None` when the relation itself is not a table.
    pub column: Option<String>,
    /// What is there: `missing`, or the declared type.
    pub found: String,
    /// What it must be.
    pub needed: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.column, self.found.as_str()) {
            (None, found) => write!(f, "it {found}; it must be {}", self.needed),
            (Some(column), "missing") => {
                write!(f, "column {column} is missing; it must be {}", self.needed)
            }
            (Some(column), found) => {
                write!(f, "column {column} is {found}; it must be {}", self.needed)
            }
        }
    }
}

/// The ways `table` (in the current schema) does not have `needs`; empty when it fits or does
/// not exist.
pub(crate) async fn mismatches(
    tx: &Transaction<'_>,
    table: &str,
    needs: &[Need],
) -> Result<Vec<Mismatch>> {
    let names: Vec<&str> = needs.iter().map(|(name, _)| *name).collect();
    let kinds: Vec<&str> = needs
        .iter()
        .map(|(_, kind)| match kind {
            Kind::Uuid => "uuid",
            Kind::Text => "text",
            Kind::TextOrEnum(_) => "text_or_enum",
            Kind::Integer => "integer",
            Kind::Timestamp => "timestamp",
        })
        .collect();
    let labels: Vec<&str> = needs
        .iter()
        .map(|(_, kind)| match kind {
            Kind::TextOrEnum(labels) => labels,
            _ => "",
        })
        .collect();
    let rows = tx
        .query(CHECK_COLUMNS, &[&table, &names, &kinds, &labels])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Mismatch {
                column: row.try_get(0)?,
                found: row.try_get(1)?,
                needed: row.try_get(2)?,
            })
        })
        .collect()
}
