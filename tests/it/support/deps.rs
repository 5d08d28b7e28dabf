//! Engine dependencies for a test database and receiver, configured like production except
//! where a test says otherwise (jitter off so times are exact).

use std::collections::HashMap;

use delivery::{Config, Deps};

use super::TestDb;

/// The bearer token tests configure.
pub const TOKEN: &str = "test-token-6d1f";
/// The signing secret tests configure (the Standard Webhooks example key).
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Dependencies delivering to `webhook_url` from `db`.
pub fn deps(db: &TestDb, webhook_url: &str) -> Deps {
    deps_with(db, webhook_url, &[])
}

/// Like [`deps`], with extra or overriding environment variables.
pub fn deps_with(db: &TestDb, webhook_url: &str, vars: &[(&str, &str)]) -> Deps {
    deps_for_url(&db.url, webhook_url, vars)
}

/// Dependencies on the database at `database_url`.
pub fn deps_for_url(database_url: &str, webhook_url: &str, vars: &[(&str, &str)]) -> Deps {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", database_url),
        ("WEBHOOK_URL", webhook_url),
        ("WEBHOOK_AUTH_TOKEN", TOKEN),
        ("WEBHOOK_SIGNING_SECRET", SIGNING_SECRET),
        ("WEBHOOK_RETRY_JITTER", "0"),
        ("WEBHOOK_TIMEOUT_MS", "5000"),
        ("WEBHOOK_DISPATCH_WAIT_MS", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let config =
        Config::from_lookup(|name| env.get(name).cloned()).expect("valid test configuration");
    Deps::new(config).expect("deps")
}
