//! Connections to Postgres, all made from one [`DbConfig`]: the pool the handlers share (and
//! `webhooks migrate` uses) and the session connection `listen` holds.
//!
//! A connection can die quietly: a Lambda is frozen for minutes between invocations, and a
//! NAT, proxy or failover may drop it meanwhile. So a pooled connection is verified (an empty
//! query, at most [`VERIFY_TIMEOUT`]) before it is handed out, and a dead one is replaced;
//! TCP keepalives and a TCP user timeout notice a peer that vanished mid-statement; every
//! answer is awaited at most [`CLIENT_TIMEOUT`]; and a statement that failed because its
//! connection broke is run once more on a fresh one ([`with_retry`]). A dropped connection
//! costs a retry, never a hang until the Lambda timeout.
//!
//! A client that stops waiting does not stop the server: the statement would go on, and might
//! commit after its retry did. So every statement that writes runs in a transaction that the
//! server itself ends after [`STATEMENT_TIMEOUT`] (`SET LOCAL statement_timeout`, see
//! [`sql::BOUNDED_BEGIN`]; transaction poolers refuse the setting as a startup option), shorter
//! than the client's wait: by the time the client gives up and retries, the first try has
//! rolled back or committed, and the retry is idempotent either way. Reads are only bounded by
//! the client: one left running changes nothing.
//!
//! Statements run as unnamed, explicitly typed statements ([`query`]), so the pool works
//! through PgBouncer in transaction mode, Supabase's pooler and RDS Proxy. Migrations:
//! [`crate::schema`] (`webhooks migrate`), on a connection from the same pool.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Timeouts};
use futures::Stream;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, Row, Statement};

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::DbConfig;
pub mod sql;

use crate::error::Error;
use crate::error::Result;

/// How long to wait for a new connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long a pooled connection may take to answer the check before it is replaced.
pub(crate) const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a statement that writes may run, counted by the server (the `'15s'` of the
/// `BEGIN` statements in [`crate::sql`]; a test keeps them equal).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest the client waits for any answer: longer than [`STATEMENT_TIMEOUT`], so the
/// server's timeout ends a stalled write first.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Keepalive probes start after this much silence, then every [`KEEPALIVE_INTERVAL`].
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Data sent but unacknowledged this long means the peer is gone (Linux `TCP_USER_TIMEOUT`).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

impl DbConfig {
    /// Builds a pool of at most `pool_size` connections, TLS as [`crate::tls`] describes.
    /// Connections are opened lazily: a database that is down shows up on first use.
    pub fn pool(&self) -> Result<Pool> {
        let manager = Manager::from_config(
            self.postgres("booking-webhooks")?,
            crate::tls::connector(self.ca.as_ref()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(POOL_WAIT),
                create: Some(CONNECT_TIMEOUT),
                recycle: Some(VERIFY_TIMEOUT),
            })
            .build()
            .map_err(|e| Error::PoolSetup(e.to_string()))
    }

    /// Opens a session connection of its own, outside the pool (for LISTEN). Returns the
    /// client and the connection's messages, which must be polled for either to progress.
    pub(crate) async fn connect(
        &self,
        application_name: &str,
    ) -> Result<(
        Client,
        impl Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send + 'static,
    )> {
        let (client, mut connection) = self
            .postgres(application_name)?
            .connect(crate::tls::connector(self.ca.as_ref()))
            .await
            .map_err(|err| Error::from(err).reaching(self))?;
        let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        Ok((client, messages))
    }

    /// Where the URL points, for messages: `host:port` (each, when there are several) and the
    /// database — never the user or the password.
    pub fn target(&self) -> String {
        let Ok(pg) = tokio_postgres::Config::from_str(self.url.expose()) else {
            return "DATABASE_URL (not a valid URL)".to_owned();
        };
        let ports = pg.get_ports();
        let hosts: Vec<String> = pg
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                    tokio_postgres::config::Host::Unix(dir) => {
                        format!("{}/.s.PGSQL.{port}", dir.display())
                    }
                }
            })
            .collect();
        let hosts = if hosts.is_empty() {
            "localhost:5432".to_owned()
        } else {
            hosts.join(", ")
        };
        match pg.get_dbname() {
            Some(name) => format!("{hosts} (database {name})"),
            None => hosts,
        }
    }

    /// The URL's settings, plus what it leaves unset: a connect timeout, `application_name`,
    /// keepalives and the TCP user timeout.
    fn postgres(&self, application_name: &str) -> Result<tokio_postgres::Config> {
        let mut pg = tokio_postgres::Config::from_str(self.url.expose()).map_err(|_| {
            Error::PoolSetup("DATABASE_URL is not a valid PostgreSQL connection URL".into())
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name(application_name);
        }
        if pg.get_tcp_user_timeout().is_none() {
            pg.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        // The URL can only say what libpq's defaults are (2 h idle), so ours win.
        pg.keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(3);
        Ok(pg)
    }
}

/// Runs one statement from [`crate::sql`] with typed parameters, as an unnamed statement (no
/// prepared-statement state, so transaction poolers work), in the caller's transaction if there
/// is one; waits at most [`CLIENT_TIMEOUT`]. For reads: a write goes through
/// [`query_in_transaction`], which the server bounds too.
pub(crate) async fn query(
    db: &Client,
    statement: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>> {
    answered(db.query_typed(statement, params)).await
}

/// Runs a statement prepared on `db` (a session connection of its own that bounds its
/// statements on the server: see [`crate::engine::claim::SessionClaims`]), waiting at most
/// [`CLIENT_TIMEOUT`].
pub(crate) async fn query_prepared(
    db: &Client,
    statement: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    answered(db.query(statement, params)).await
}

/// Runs one statement like [`query`], in a transaction of its own opened by `begin`
/// ([`sql::BOUNDED_BEGIN`], [`sql::CLAIM_BEGIN`], [`sql::ORDERED_CLAIM_BEGIN`]: each bounds
/// the statement on the server). The three messages are pipelined, so this is still one round
/// trip; if the statement fails, the `COMMIT` rolls back.
pub(crate) async fn query_in_transaction(
    db: &Client,
    begin: &str,
    statement: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>> {
    // Each future sends its message when first polled, and join! polls them in order.
    answered(async {
        let (begun, rows, committed) = tokio::join!(
            db.batch_execute(begin),
            db.query_typed(statement, params),
            db.batch_execute(sql::COMMIT),
        );
        begun?;
        let rows = rows?;
        committed?;
        Ok(rows)
    })
    .await
}

/// The answer of `request`, or [`Error::DatabaseTimeout`] after [`CLIENT_TIMEOUT`].
async fn answered<T>(request: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T> {
    tokio::time::timeout(CLIENT_TIMEOUT, request)
        .await
        .map_err(|_| Error::DatabaseTimeout(CLIENT_TIMEOUT))?
        .map_err(Error::from)
}

/// "Now" for work that computes a cut-off or an age before its statements run (the operator
/// commands, retention, the sweep's metrics): the fixed instant of `clock`, or the database
/// server's `now()` (one statement).
pub async fn now(db: &Client, clock: Clock) -> Result<DateTime<Utc>> {
    if let Clock::Fixed(at) = clock {
        return Ok(at);
    }
    let rows = query(
        db,
        sql::CURRENT_TIME,
        &[(&clock.sql_now(), Type::TIMESTAMPTZ)],
    )
    .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(Utc::now()),
    }
}

/// Runs `work` on a pooled connection; if it fails because the connection broke (or none
/// could be had), runs it once more on a fresh one. `work` must be safe to repeat: every
/// statement in [`crate::sql`] is (a claim that committed unseen only leases rows until the
/// lease expires; recording is idempotent).
pub(crate) async fn with_retry<T, Fut>(pool: &Pool, work: impl Fn(Object) -> Fut) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let first = match pool.get().await {
        Ok(db) => work(db).await,
        Err(err) => Err(err.into()),
    };
    match first {
        Err(err) if err.is_connection() => {
            tracing::warn!(error = %err, "database connection failed; retrying on a fresh one");
            work(pool.get().await?).await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bounded_begin_says_the_statement_timeout() {
        let said = format!("statement_timeout = '{}s'", STATEMENT_TIMEOUT.as_secs());
        for begin in [
            sql::BOUNDED_BEGIN,
            sql::CLAIM_BEGIN,
            sql::ORDERED_CLAIM_BEGIN,
            sql::SESSION_CLAIMS_SETUP,
        ] {
            assert!(begin.contains(&said), "{begin}");
        }
        assert!(CLIENT_TIMEOUT > STATEMENT_TIMEOUT);
    }

    #[test]
    fn the_target_names_host_port_and_database_never_the_password() {
        let target = |url: &str| DbConfig::new(url).target();
        assert_eq!(
            target("postgres://app:s3cret@db.example.com:6543/bookings?sslmode=require"),
            "db.example.com:6543 (database bookings)"
        );
        assert_eq!(
            target("postgres://postgres@127.0.0.1/test"),
            "127.0.0.1:5432 (database test)"
        );
        assert_eq!(
            target("postgres://a,b:5433/x"),
            "a:5432, b:5433 (database x)"
        );
        assert!(!target("postgres://app:s3cret@h/d").contains("s3cret"));
    }
}
