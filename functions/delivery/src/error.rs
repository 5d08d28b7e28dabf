//! The library's error type. A receiver's 5xx, a timeout or a refused connection is *not* an
//! error here: it is a `AttemptResult` that gets recorded. Errors are what
//! stops the engine itself: bad configuration or input, or an unreachable database.

use std::fmt::Write as _;

/// Everything that can stop a handler. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is missing or invalid; names the variable, never its value.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The invocation event is not one this handler accepts.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// A function-URL invocation without the right bearer token.
    #[error("unauthorized: missing or wrong bearer token")]
    Unauthorized,
    /// A statement failed or the connection broke.
    #[error("database: {}", chain(.0))]
    Database(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool: none could be opened, or all were in use.
    #[error("database: {}", pool_error(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The database could not be reached: where (host, port and database; never the user or
    /// password) and why.
    #[error("could not connect to the database at {target}: {cause}")]
    Unreachable {
        /// `host:port` and the database name.
        target: String,
        /// What failed (refused, timed out, no such database or role, authentication) and
        /// what to check.
        cause: String,
    },
    /// A statement got no answer in time: the connection dropped quietly or the server stalled.
    #[error("database: no answer within {} s (connection lost or server stalled)", .0.as_secs())]
    DatabaseTimeout(std::time::Duration),
    /// `listen` was pointed at a connection that cannot hold a LISTEN session.
    #[error("listen needs a session connection: {0}")]
    SessionRequired(String),
    /// The pool could not be built from the configuration.
    #[error("database pool setup: {0}")]
    PoolSetup(String),
    /// The HTTP client could not be built.
    #[error("HTTP client setup: {0}")]
    HttpSetup(String),
}

impl Error {
    /// A short, stable name for the error class (the Lambda `errorType`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "ConfigError",
            Error::InvalidEvent(_) => "InvalidEvent",
            Error::Unauthorized => "Unauthorized",
            Error::Database(_)
            | Error::Pool(_)
            | Error::PoolSetup(_)
            | Error::DatabaseTimeout(_)
            | Error::Unreachable { .. }
            | Error::SessionRequired(_) => "DatabaseError",
            Error::HttpSetup(_) => "HttpSetupError",
        }
    }

    /// True when the connection, not the statement, failed: no connection could be had, it
    /// broke or was closed by the server (SQLSTATE classes 08 and 57), or it stopped answering.
    /// Running the statement again on a fresh connection may well succeed.
    pub(crate) fn is_connection(&self) -> bool {
        match self {
            Error::Pool(_) | Error::DatabaseTimeout(_) | Error::Unreachable { .. } => true,
            Error::Database(err) => match err.code() {
                Some(code) => matches!(code.code().get(..2), Some("08" | "57")),
                None => {
                    err.is_closed()
                        || std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
                }
            },
            _ => false,
        }
    }
}

/// A pool's failure in words: the connection that could not be opened (and why), or all of
/// them in use.
fn pool_error(err: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::{PoolError, TimeoutType};
    match err {
        PoolError::Backend(err) => format!("could not connect: {}", connect_cause(err)),
        PoolError::Timeout(TimeoutType::Create) => {
            "could not connect: no answer in time (server down or unreachable)".to_owned()
        }
        PoolError::Timeout(TimeoutType::Wait) => {
            "no free connection in time: every one this process may hold (WEBHOOK_DB_POOL_SIZE) \
             is in use"
                .to_owned()
        }
        other => chain(other),
    }
}

/// Why a connection could not be opened, without the client's prefixes ("error connecting
/// to server", "db error").
fn connect_cause(err: &tokio_postgres::Error) -> String {
    let text = chain(err);
    let text = text
        .strip_prefix("error connecting to server: ")
        .unwrap_or(&text);
    text.strip_prefix("db error: ").unwrap_or(text).to_owned()
}

impl Error {
    /// This error as the operator should read it where a connection to `db` failed: the place
    /// it could not reach ([`Error::Unreachable`]); any other error as it is.
    pub fn reaching(self, db: &crate::config::DbConfig) -> Error {
        use deadpool_postgres::{PoolError, TimeoutType};
        const SERVER: &str = "check that the server is running and that DATABASE_URL names it";
        const URL: &str = "check the database, user and password in DATABASE_URL";
        let (cause, check) = match &self {
            Error::Pool(PoolError::Backend(err)) | Error::Database(err) if is_connect(err) => {
                let check = if err.as_db_error().is_some() {
                    URL
                } else {
                    SERVER
                };
                (connect_cause(err), check)
            }
            Error::Pool(PoolError::Timeout(TimeoutType::Create)) => {
                ("no answer in time".to_owned(), SERVER)
            }
            _ => return self,
        };
        let cause = format!("{cause}; {check}");
        Error::Unreachable {
            target: db.target(),
            cause,
        }
    }
}

/// True when `err` is a failure to open a connection (not a statement's).
fn is_connect(err: &tokio_postgres::Error) -> bool {
    err.to_string().starts_with("error connecting to server")
        || err
            .as_db_error()
            .is_some_and(|db| matches!(db.code().code().get(..2), Some("28" | "3D")))
}

/// What a Lambda function reports for an error: `errorType` is [`Error::kind`].
#[cfg(feature = "lambda")]
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.kind().into(),
            error_message: err.to_string(),
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Renders an error with its sources: tokio-postgres puts the server's message in the source.
/// Of a server error only the message and SQLSTATE are kept: its DETAIL may quote the values
/// of the row at fault, email addresses included.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = match inner.downcast_ref::<tokio_postgres::error::DbError>() {
            Some(db) => format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            ),
            None => inner.to_string(),
        };
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        source = inner.source();
    }
    out
}
