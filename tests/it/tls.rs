//! TLS to Postgres follows libpq's `sslmode`, and a CA bundle makes the certificate checked.

use crate::support::{TestDb, deps_for_url};

/// A bundle of public CAs (Debian's): real certificates, none of which issued the local
/// server's self-signed one.
const PUBLIC_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[tokio::test]
async fn the_pool_encrypts_when_the_url_requires_it() {
    let db = TestDb::new().await;
    let deps = deps_for_url(
        &format!("{}&sslmode=require", db.url),
        "http://127.0.0.1:9/x",
        &[],
    );
    let client = deps
        .pool
        .get()
        .await
        .expect("a TLS connection (the server must have ssl = on; `make db` sets that up)");
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted);
    let captured: i64 = client
        .query_one("SELECT count(*) FROM webhook_deliveries", &[])
        .await
        .expect("schema reachable")
        .get(0);
    assert_eq!(captured, 0);
}

#[tokio::test]
async fn a_ca_bundle_that_did_not_issue_the_servers_certificate_refuses_the_connection() {
    let db = TestDb::new().await;
    let deps = deps_for_url(
        &format!("{}&sslmode=require", db.url),
        "http://127.0.0.1:9/x",
        &[("WEBHOOK_DB_CA_FILE", PUBLIC_CAS)],
    );
    let err = deps
        .pool
        .get()
        .await
        .err()
        .map(|e| delivery::Error::from(e).to_string())
        .unwrap_or_default();
    assert!(
        err.contains("certificate"),
        "expected a certificate error, got: {err:?}"
    );
}
