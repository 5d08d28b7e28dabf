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

/// The history as refinery holds it (empty before the first run).
pub(crate) async fn applied(tx: &Transaction<'_>) -> super::Result<Vec<super::history::Applied>> {
    if !tx
        .query_one(HISTORY_EXISTS, &[])
        .await?
        .try_get::<_, bool>(0)?
    {
        return Ok(Vec::new());
    }
    Ok(InTransaction::new(tx)
        .get_applied_migrations(HISTORY_TABLE)
        .await?
        .iter()
        .map(|m| super::history::Applied {
            version: m.version(),
            name: m.name().to_owned(),
            checksum: m.checksum(),
        })
        .collect())
}

/// refinery's history row for `migration`, as refinery writes it: inserted, or (`update`)
/// replacing the row of the same version.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    migration: &Migration,
    update: bool,
) -> super::Result<()> {
    let applied_on = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let (version, name, checksum) = (
        migration.version(),
        migration.name(),
        migration.checksum().to_string(),
    );
    let statement = if update {
        HISTORY_UPDATE
    } else {
        HISTORY_INSERT
    };
    tx.execute(statement, &[&version, &name, &applied_on, &checksum])
        .await?;
    Ok(())
}

/// A history row as refinery inserts it (`applied_on` RFC 3339 text, the checksum as text).
const HISTORY_INSERT: &str =
    "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
VALUES ($1, $2, $3, $4)";

/// The row of a version, rewritten for the text applied now.
const HISTORY_UPDATE: &str = "UPDATE refinery_schema_history
   SET name = $2, applied_on = $3, checksum = $4
 WHERE version = $1";

/// The names (`V1__booking_requests`, …) of the migrations refinery would apply now.
pub(crate) async fn pending(
    tx: &Transaction<'_>,
    runner: &refinery::Runner,
) -> super::Result<Vec<String>> {
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
