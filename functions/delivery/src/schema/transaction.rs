//! refinery inside a transaction we already hold.
//!
//! refinery's own implementation for a `tokio_postgres::Client` opens and commits a
//! transaction per migration, so a failure in V4 would leave V1–V3 applied. [`InTransaction`]
//! runs refinery's statements (its history table, each migration, each history row) on an
//! open [`Transaction`] instead: whoever opened it decides whether everything commits or
//! nothing does. The migration files themselves are unchanged and still apply with `psql -f`.

use refinery::Migration;
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::Transaction;

/// refinery's history table, in the schema the migrations apply to.
pub(crate) const HISTORY_TABLE: &str = "refinery_schema_history";

/// Whether the history table exists in the current schema (absent before the first run).
const HISTORY_EXISTS: &str =
    "SELECT to_regclass(quote_ident(current_schema()) || '.refinery_schema_history') IS NOT NULL";

/// refinery's connection, borrowed from an open transaction.
pub(crate) struct InTransaction<'a, 'c> {
    tx: &'a Transaction<'c>,
}

impl<'a, 'c> InTransaction<'a, 'c> {
    pub(crate) fn new(tx: &'a Transaction<'c>) -> Self {
        InTransaction { tx }
    }
}

/// Why refinery's statements failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    /// A statement failed.
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    /// A row of the history table is not what refinery writes.
    #[error("{HISTORY_TABLE} row for version {version}: {problem}")]
    Row { version: i32, problem: String },
}

impl AsyncTransaction for InTransaction<'_, '_> {
    type Error = HistoryError;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, HistoryError> {
        let mut count = 0;
        for query in queries {
            self.tx.batch_execute(query).await?;
            count += 1;
        }
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for InTransaction<'_, '_> {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, HistoryError> {
        let mut applied = Vec::new();
        for row in self.tx.query(query, &[]).await? {
            let version: i32 = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            let applied_on: String = row.try_get(2)?;
            let checksum: String = row.try_get(3)?;
            let bad = |problem: String| HistoryError::Row { version, problem };
            let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339)
                .map_err(|e| bad(format!("applied_on is not RFC 3339: {e}")))?;
            let checksum = checksum
                .parse::<u64>()
                .map_err(|_| bad("checksum is not a number".into()))?;
            applied.push(Migration::applied(version, name, applied_on, checksum));
        }
        Ok(applied)
    }
}

impl AsyncMigrate for InTransaction<'_, '_> {}

/// The names (`V1__booking_requests`, …) of the migrations refinery would apply now.
pub(crate) async fn pending(
    tx: &Transaction<'_>,
    runner: &refinery::Runner,
) -> crate::Result<Vec<String>> {
    let applied: Vec<i32> = if tx.query_one(HISTORY_EXISTS, &[]).await?.try_get(0)? {
        InTransaction::new(tx)
            .get_applied_migrations(HISTORY_TABLE)
            .await?
            .iter()
            .map(Migration::version)
            .collect()
    } else {
        Vec::new()
    };
    Ok(runner
        .get_migrations()
        .iter()
        .filter(|m| !applied.contains(&m.version()))
        .map(ToString::to_string)
        .collect())
}
