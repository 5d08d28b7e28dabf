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
    /// No connection could be had from the pool.
    #[error("database pool: {}", chain(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
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
            | Error::SessionRequired(_) => "DatabaseError",
            Error::HttpSetup(_) => "HttpSetupError",
        }
    }

    /// True when the connection, not the statement, failed: no connection could be had, it
    /// broke or was closed by the server (SQLSTATE classes 08 and 57), or it stopped answering.
    /// Running the statement again on a fresh connection may well succeed.
    pub(crate) fn is_connection(&self) -> bool {
        match self {
            Error::Pool(_) | Error::DatabaseTimeout(_) => true,
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
