//! The paths a hostile role, receiver or input could use (issue 8), each closed and tested
//! against a real Postgres set up like Supabase's: the API roles `anon` and `authenticated`
//! exist and default privileges grant them every new table, sequence and function.
//!
//! - the wake-up scripts ignore session settings (`infra/sql/check-wakeup.sh`);
//! - a freshly created `booking_requests` and everything of ours is closed to the API roles;
//! - hostile addresses are captured as `skipped`, and the stored payload is bounded;
//! - `http://` to a remote host is refused at cold start;
//! - no log line carries an address or the bearer token;
//! - `listen` never logs what a hostile NOTIFY carried.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use delivery::Clock;
use delivery::listen::{ListenOptions, listen};
use delivery::replay::{Requeue, requeue};
use delivery::sweep::{SweepOptions, sweep};
use serde_json::json;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::support::db::{base_url, connect, url_with_schema};
use crate::support::{Receiver, Reply, TestDb, deps, deps_with};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Creates Supabase's API roles if they are missing. Roles are cluster-wide and other tests
/// use them too: created idempotently (also when a concurrent test creates them at the same
/// moment), never dropped.
async fn ensure_api_roles(admin: &Client) {
    admin
        .batch_execute(
            "DO $$
             DECLARE
                 api_role text;
             BEGIN
                 FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
                     BEGIN
                         EXECUTE format('CREATE ROLE %I NOLOGIN', api_role);
                     EXCEPTION WHEN duplicate_object OR unique_violation THEN
                         NULL;
                     END;
                 END LOOP;
             END
             $$",
        )
        .await
        .expect("create anon and authenticated");
}

/// A schema set up like Supabase's `public` — the API roles may use it, and default
/// privileges grant them every table, sequence and function created in it — then `before`
/// (SQL run in the schema, e.g. an app's own table), then the migrations.
async fn supabase_like_db(before: &str) -> TestDb {
    let schema = format!("it_{}", Uuid::new_v4().simple());
    let admin = connect(&base_url()).await;
    ensure_api_roles(&admin).await;
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             GRANT USAGE ON SCHEMA {schema} TO anon, authenticated;
             ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON TABLES TO anon, authenticated;
             ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON SEQUENCES TO anon, authenticated;
             ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT ALL ON FUNCTIONS TO anon, authenticated;"
        ))
        .await
        .expect("create a Supabase-like schema");
    let url = url_with_schema(&base_url(), &schema);
    let pool = delivery::DbConfig::new(url.clone()).pool().expect("pool");
    // Built before migrating, so the schema is dropped even if a migration fails.
    let db = TestDb { schema, url, pool };
    let client = db.client().await;
    client.batch_execute(before).await.expect("the app's setup");
    delivery::schema::migrate_quietly(&db.pool)
        .await
        .expect("migrations apply");
    db
}

/// A connection acting as `role` (SET ROLE, like PostgREST does for each request).
async fn client_as(db: &TestDb, role: &str) -> Client {
    let client = db.client().await;
    client
        .batch_execute(&format!("SET ROLE {role}"))
        .await
        .expect("set role");
    client
}

fn is_permission_denied(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
}

/// Hole 1: the wake-up triggers took their target from settings any session can `SET`. The
/// script stubs `net.http_post`, Vault and `aws_lambda.invoke`, sets the attacker's targets in
/// the session of a role that may only insert bookings, and asserts the calls use the
/// owner-only settings or do not happen.
#[test]
fn wakeup_scripts_ignore_what_a_session_sets() {
    let config: tokio_postgres::Config = base_url().parse().expect("DATABASE_URL parses");
    let mut command = Command::new(workspace_root().join("infra/sql/check-wakeup.sh"));
    if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
        command.env("PGHOST", host);
    }
    if let Some(port) = config.get_ports().first() {
        command.env("PGPORT", port.to_string());
    }
    if let Some(user) = config.get_user() {
        command.env("PGUSER", user);
    }
    if let Some(password) = config.get_password() {
        command.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
    }
    let output = command.output().expect("run infra/sql/check-wakeup.sh");
    assert!(
        output.status.success(),
        "check-wakeup.sh failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("all checks passed"));
}

/// Hole 2: V1 created `booking_requests` open to Supabase's API roles (anyone with the anon
/// key could read every address, or approve a booking and make us mail its student).
#[tokio::test]
async fn anon_and_authenticated_can_neither_read_nor_approve_bookings_on_a_fresh_install() {
    let db = supabase_like_db("").await;
    let booking = db
        .insert_booking(Some("tutor@example.com"), Some("student@example.com"))
        .await;

    for role in ["anon", "authenticated"] {
        let api = client_as(&db, role).await;
        match api.query("SELECT * FROM booking_requests", &[]).await {
            Ok(rows) => assert!(rows.is_empty(), "{role} reads bookings"),
            Err(err) => assert!(is_permission_denied(&err), "{role}: {err}"),
        }
        match api
            .execute(
                "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
                &[&booking],
            )
            .await
        {
            Ok(n) => assert_eq!(n, 0, "{role} approves a booking"),
            Err(err) => assert!(is_permission_denied(&err), "{role}: {err}"),
        }
        let insert = api
            .execute(
                "INSERT INTO booking_requests (tutor_email) VALUES ('victim@example.com')",
                &[],
            )
            .await;
        assert!(
            insert.as_ref().is_err_and(is_permission_denied),
            "{role} inserts a booking: {insert:?}"
        );
        let requeue = api
            .query("SELECT * FROM retry_failed_webhooks()", &[])
            .await;
        assert!(
            requeue.as_ref().is_err_and(is_permission_denied),
            "{role} requeues deliveries: {requeue:?}"
        );
    }
    assert_eq!(
        db.count("SELECT count(*) FROM webhook_deliveries WHERE webhook_type = 'approved'")
            .await,
        0,
        "nothing approved, nobody mailed"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM booking_requests WHERE status = 'pending'")
            .await,
        1
    );

    // Every table, view, sequence and function the migrations made: nothing for PUBLIC (the
    // default EXECUTE on functions included), anon or authenticated.
    let client = db.pool.get().await.expect("connection");
    let open: Vec<String> = client
        .query(
            "WITH objects AS (
                 SELECT c.oid::regclass::text AS name,
                        coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)) AS acl
                   FROM pg_class c
                  WHERE c.relnamespace = current_schema()::regnamespace
                    AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
                 UNION ALL
                 SELECT p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f', p.proowner))
                   FROM pg_proc p
                  WHERE p.pronamespace = current_schema()::regnamespace
             )
             SELECT o.name || ' to ' || CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
               FROM objects o, aclexplode(o.acl) a
              WHERE a.grantee = 0 OR a.grantee::regrole::text IN ('anon', 'authenticated')
              ORDER BY 1",
            &[],
        )
        .await
        .expect("privileges")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        open.is_empty(),
        "granted to the API roles (revoke it in the migration that creates it): {open:#?}"
    );
    let rls: bool = client
        .query_one(
            "SELECT relrowsecurity FROM pg_class WHERE oid = 'booking_requests'::regclass",
            &[],
        )
        .await
        .expect("relrowsecurity")
        .get(0);
    assert!(rls, "row level security on the booking table we created");
}

/// Whoever can write the notification service's health can hold every delivery until it
/// fails (a pause three days long) or flood the service (the pace): the API roles can neither
/// read nor write it, even where default privileges grant them every new table.
#[tokio::test]
async fn anon_and_authenticated_cannot_pause_or_read_the_notification_service() {
    let db = supabase_like_db("").await;
    let owner = db.client().await;
    owner
        .execute(
            "INSERT INTO webhook_endpoints (origin) VALUES ('https://notify.example.com')",
            &[],
        )
        .await
        .expect("the workers' row");
    for role in ["anon", "authenticated"] {
        let api = client_as(&db, role).await;
        for attack in [
            "SELECT * FROM webhook_endpoints",
            "UPDATE webhook_endpoints SET paused_until = now() + interval '3 days'",
            "INSERT INTO webhook_endpoints (origin, paused_until) VALUES ('https://x.example', 'infinity')",
            "UPDATE webhook_endpoints SET next_send_at = 'infinity'",
        ] {
            let result = api.execute(attack, &[]).await;
            assert!(
                result.as_ref().is_err_and(is_permission_denied),
                "{role}: {attack}: {result:?}"
            );
        }
    }
    let paused: i64 = owner
        .query_one(
            "SELECT count(*) FROM webhook_endpoints WHERE paused_until IS NOT NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(paused, 0);
}

/// Hole 2, the other half: when the app created `booking_requests` itself, its privileges and
/// policies are its own business and the migrations leave them as they are.
#[tokio::test]
async fn an_app_owned_booking_table_keeps_its_own_privileges_and_policies() {
    let app_table = "
        CREATE TABLE booking_requests (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            student_email text,
            tutor_email   text,
            status        text NOT NULL DEFAULT 'pending',
            notes         text
        );
        GRANT SELECT, INSERT ON booking_requests TO authenticated;";
    let db = supabase_like_db(app_table).await;
    let client = db.pool.get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT relrowsecurity,
                    has_table_privilege('authenticated', 'booking_requests', 'SELECT'),
                    has_table_privilege('authenticated', 'booking_requests', 'INSERT'),
                    has_table_privilege('anon', 'booking_requests', 'SELECT')
               FROM pg_class WHERE oid = 'booking_requests'::regclass",
            &[],
        )
        .await
        .expect("privileges");
    let state: (bool, bool, bool, bool) = (row.get(0), row.get(1), row.get(2), row.get(3));
    // The default privileges granted anon everything on the app's table too: still there.
    assert_eq!(
        state,
        (false, true, true, true),
        "(rls, auth select, auth insert, anon select)"
    );
}

/// Hole 3: any text in an email column was queued and sent, however long or strange.
#[tokio::test]
async fn hostile_addresses_are_skipped_with_a_reason_and_the_booking_commits() {
    let db = TestDb::new().await;
    let long = format!("{}@example.com", "a".repeat(10 * 1024));
    let huge = format!("{}@example.com", "b".repeat(5 * 1024 * 1024));
    let cases: Vec<(&str, &str)> = vec![
        (&long, "tutor_email is longer than 254 bytes"),
        (&huge, "tutor_email is longer than 254 bytes"),
        (
            "first last@example.com",
            "tutor_email contains whitespace or control characters",
        ),
        (
            "tutor@example.com\nBcc: all@example.com",
            "tutor_email contains whitespace or control characters",
        ),
        (
            "tutor@example.com\r",
            "tutor_email contains whitespace or control characters",
        ),
        (
            "tutor\u{a0}@example.com",
            "tutor_email contains whitespace or control characters",
        ),
        (
            "tutor\u{202e}moc.elpmaxe@x.com",
            "tutor_email contains whitespace or control characters",
        ),
        (
            "tutor.example.com",
            "tutor_email is not a plain local@domain address",
        ),
        (
            "tutor@example@com",
            "tutor_email is not a plain local@domain address",
        ),
        (
            "@example.com",
            "tutor_email is not a plain local@domain address",
        ),
        ("tutor@", "tutor_email is not a plain local@domain address"),
        (
            "tutor@example.com,victim@example.com",
            "tutor_email is not a plain local@domain address",
        ),
        (
            "Tutor <tutor@example.com>",
            "tutor_email contains whitespace or control characters",
        ),
    ];
    let mut bookings = Vec::new();
    for (address, _) in &cases {
        bookings.push(db.insert_booking(Some(address), None).await);
    }
    let client = db.pool.get().await.expect("connection");
    for ((address, reason), booking) in cases.iter().zip(&bookings) {
        let row = client
            .query_one(
                "SELECT d.status, d.last_error, d.recipient_email, d.payload->'email',
                        octet_length(d.payload::text), b.tutor_email = $2
                   FROM webhook_deliveries d JOIN booking_requests b ON b.id = d.booking_id
                  WHERE d.booking_id = $1",
                &[booking, address],
            )
            .await
            .expect("one delivery per booking");
        let shown: String = address.chars().take(40).collect();
        assert_eq!(row.get::<_, String>(0), "skipped", "{shown:?}");
        assert_eq!(
            row.get::<_, Option<String>>(1).as_deref(),
            Some(*reason),
            "{shown:?}"
        );
        assert_eq!(
            row.get::<_, Option<String>>(2),
            None,
            "{shown:?}: no address stored"
        );
        assert_eq!(row.get::<_, serde_json::Value>(3), json!(null), "{shown:?}");
        assert!(row.get::<_, i32>(4) < 200, "{shown:?}: a small payload");
        assert!(
            row.get::<_, bool>(5),
            "{shown:?}: the booking committed unchanged"
        );
    }

    // Plain addresses still go out, trimmed of surrounding spaces.
    let fine = [
        "first.last+tag@example.co.uk",
        "o'brien@example.com",
        "ünïcødé@exämple.de",
    ];
    for address in fine {
        db.insert_booking(Some(address), None).await;
    }
    db.insert_booking(Some("  padded@example.com  "), None)
        .await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let options = SweepOptions {
        batch_size: 100,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    let report = sweep(
        &deps,
        options,
        Clock::Fixed(Utc::now() + chrono::Duration::minutes(1)),
    )
    .await
    .expect("the sweep runs");
    let sent: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("JSON")["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        sent.len(),
        4,
        "only the plain addresses are sent: {report:?}"
    );
    for address in fine.iter().chain(&["padded@example.com"]) {
        assert!(
            sent.iter().any(|s| s == address),
            "{address} sent: {sent:?}"
        );
    }

    // The bound holds whoever writes the row, not only capture.
    let oversized = client
        .execute(
            "INSERT INTO webhook_deliveries (booking_id, webhook_type, payload)
             VALUES (gen_random_uuid(), 'new_request', jsonb_build_object('email', repeat('x', 9000)))",
            &[],
        )
        .await;
    assert!(
        oversized
            .as_ref()
            .is_err_and(|e| e.code() == Some(&SqlState::CHECK_VIOLATION)
                && e.as_db_error()
                    .and_then(|d| d.constraint())
                    .is_some_and(|c| c == "webhook_deliveries_payload_size_check")),
        "{oversized:?}"
    );
}

/// Hole 4: the bearer token could be configured to travel over plain HTTP. The real `dispatch`
/// binary (built by `make test`) must stop at cold start, naming the variable.
#[test]
fn http_to_a_remote_host_is_refused_at_cold_start() {
    let binary = workspace_root().join("target/debug/dispatch");
    assert!(
        binary.exists(),
        "{} missing: run `make test` (or cargo build -p dispatch)",
        binary.display()
    );
    let run = |url: &str, allow_http: Option<&str>| {
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("DATABASE_URL", "postgres://u@127.0.0.1:9/db")
            .env("WEBHOOK_URL", url)
            .env("WEBHOOK_AUTH_TOKEN", "tok-cold-start-7c1e")
            .env("WEBHOOK_SIGNING_SECRET", crate::support::SIGNING_SECRET)
            // No Lambda runtime API listens here: a start-up that passes validation fails
            // on its first request for an event instead.
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("AWS_LAMBDA_FUNCTION_NAME", "dispatch")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test");
        if let Some(flag) = allow_http {
            command.env("WEBHOOK_ALLOW_HTTP", flag);
        }
        let output = command.output().expect("run the dispatch binary");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    let (ok, stderr) = run("http://notify.example.com/hook", None);
    assert!(!ok);
    assert!(
        stderr.contains("WEBHOOK_URL") && stderr.contains("must be https://"),
        "{stderr}"
    );
    assert!(!stderr.contains("tok-cold-start-7c1e"), "{stderr}");

    // Loopback, or the explicit opt-out, passes validation (and then fails on the missing
    // runtime API, not on WEBHOOK_URL).
    for (url, flag) in [
        ("http://127.0.0.1:8787/hook", None),
        ("http://notify.internal/hook", Some("1")),
    ] {
        let (_, stderr) = run(url, flag);
        assert!(!stderr.contains("WEBHOOK_URL"), "{url}: {stderr}");
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hole 5: the failure log line carried the receiver's error excerpt, and receivers echo
/// what they were sent. The whole lifecycle — capture, immediate dispatch, retries through
/// 5xx, 429, 4xx, a redirect and a refused connection, a manual requeue, success — runs
/// with distinctive values under the production log format at TRACE level; no captured line
/// may hold the address or the token. The stored excerpt keeps the address but masks the
/// token.
#[tokio::test]
async fn no_log_line_carries_an_address_or_the_token() {
    const TUTOR: &str = "zq7-tutor-leakcheck@example.org";
    const STUDENT: &str = "zq7-student-leakcheck@example.org";
    const TOKEN: &str = "tok-zq7-leakcheck-5b0d";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .finish();
    // This test's runtime is single-threaded: everything it runs logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = TestDb::new().await;
    let echo = format!("no mailbox {TUTOR} / {STUDENT}; you sent Authorization: Bearer {TOKEN}");
    let receiver = Receiver::start(Reply::status(500).body(echo.clone())).await;
    let deps = deps_with(&db, &receiver.url, &[("WEBHOOK_AUTH_TOKEN", TOKEN)]);
    let refused = deps_with(
        &db,
        &crate::support::receiver::refusing_url().await,
        &[("WEBHOOK_AUTH_TOKEN", TOKEN)],
    );
    let booking = db.insert_booking(Some(TUTOR), Some(STUDENT)).await;
    db.client()
        .await
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("approve");
    let ids = vec![
        db.delivery_id(booking, "new_request").await,
        db.delivery_id(booking, "approved").await,
    ];

    let t0 = Utc::now();
    let at = |minutes: i64| Clock::Fixed(t0 + chrono::Duration::minutes(minutes));
    let options = SweepOptions {
        batch_size: 10,
        budget: Duration::from_secs(60),
        deadline: None,
    };
    delivery::dispatch::handle(json!({ "limit": 10 }), &deps, at(0), None)
        .await
        .expect("dispatch");
    receiver.set_default(
        Reply::status(429)
            .header("retry-after", "60")
            .body(echo.clone()),
    );
    sweep(&deps, options, at(10)).await.expect("sweep");
    receiver.set_default(Reply::status(422).body(echo.clone()));
    sweep(&deps, options, at(60)).await.expect("sweep");
    let replay = Requeue {
        max_retries: 3,
        ..Requeue::default()
    };
    requeue(&db.pool, &replay, at(61)).await.expect("requeue");
    sweep(&refused, options, at(62)).await.expect("sweep");
    receiver.set_default(Reply::status(302).header(
        "location",
        format!("https://example.org/to/{TUTOR}?t={TOKEN}"),
    ));
    sweep(&deps, options, at(120)).await.expect("sweep");
    requeue(&db.pool, &replay, at(121)).await.expect("requeue");
    receiver.set_default(Reply::status(200).body(echo.clone()));
    sweep(&deps, options, at(122)).await.expect("sweep");

    for id in &ids {
        assert_eq!(db.delivery(*id).await.status, "succeeded");
        let kinds: Vec<Option<String>> = db
            .attempts(*id)
            .await
            .into_iter()
            .map(|a| a.error_kind)
            .collect();
        assert_eq!(
            kinds,
            [
                Some("http_5xx"),
                Some("http_4xx"),
                Some("http_4xx"),
                Some("connect"),
                Some("redirect"),
                None
            ]
            .map(|k| k.map(str::to_owned)),
            "the whole lifecycle ran"
        );
    }

    let lines = captured.lines();
    let failures = lines
        .iter()
        .filter(|l| l.contains("delivery attempt failed"))
        .count();
    assert_eq!(failures, 10, "every failed attempt was logged: {lines:#?}");
    for line in &lines {
        for secret in [TUTOR, STUDENT, "leakcheck", TOKEN] {
            assert!(!line.contains(secret), "{secret} in a log line: {line}");
        }
    }

    // The excerpt stays in webhook_attempts, where only the owner reads it, token masked.
    let client = db.pool.get().await.expect("connection");
    let excerpts: Vec<String> = client
        .query(
            "SELECT error FROM webhook_attempts WHERE error_kind IN ('http_5xx', 'http_4xx', 'redirect')",
            &[],
        )
        .await
        .expect("excerpts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(excerpts.len(), 8);
    for excerpt in &excerpts {
        assert!(excerpt.contains(TUTOR), "the excerpt is kept: {excerpt}");
        assert!(!excerpt.contains(TOKEN), "token masked: {excerpt}");
        assert!(excerpt.contains("[redacted]"), "{excerpt}");
    }
    let _ = std::io::stderr().flush();
}

/// Any role that may NOTIFY on the capture channel controls the payload `webhooks listen`
/// reads. A hostile one — forged log lines, terminal escape codes, the 8000-byte maximum — is
/// counted in one bounded warning, its text never written, and listening goes on. The text
/// format is used: the JSON one escapes control characters, the text one would not.
#[tokio::test]
async fn listen_never_logs_what_a_hostile_notify_carried() {
    const MARKER: &str = "zq8-notify-inject";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // This test's runtime is single-threaded: everything it runs logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = TestDb::new().await;
    let receiver = Receiver::start(Reply::status(200)).await;
    let deps = deps(&db, &receiver.url);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listening = async {
        let shutdown = async {
            let _ = stopped.await;
        };
        let options = ListenOptions { sweep_every: None };
        listen(&deps, Clock::System, options, shutdown).await
    };
    // Just under the server's 8000-byte limit for a payload.
    let hostile = format!(
        "\n2026-01-01T00:00:00Z  INFO delivered {MARKER}\n\u{1b}[2J\u{1b}]0;{MARKER}\u{7}{}",
        MARKER.repeat(460)
    );
    let scenario = async {
        // Captured before listening: the catch-up sends it once LISTEN is in place, so every
        // NOTIFY from here on reaches the listener.
        db.booking_with_delivery().await;
        receiver.wait_for(1, Duration::from_secs(15)).await;
        db.client()
            .await
            .execute(
                "SELECT pg_notify('webhook_delivery', $1)",
                &[&hostile.as_str()],
            )
            .await
            .expect("hostile notify");
        // Notified after the hostile one, so handled after (or with) it: still dispatched.
        let (_, after) = db.booking_with_delivery().await;
        let requests = receiver.wait_for(2, Duration::from_secs(15)).await;
        assert_eq!(requests[1].header("webhook-id"), after.to_string());
        // The listener's catch-up may have claimed the second booking before it read the
        // queued notifications: stop only once it has handled them (its warning is logged).
        let handled = async {
            while !captured
                .lines()
                .iter()
                .any(|l| l.contains("not delivery ids"))
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(15), handled)
            .await
            .expect("the listener reads the hostile notification");
        let _ = stop.send(());
    };
    let (listened, ()) = tokio::join!(listening, scenario);
    listened.expect("listen ends cleanly on shutdown");

    let lines = captured.lines();
    let warning: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("not delivery ids"))
        .collect();
    assert_eq!(warning.len(), 1, "{lines:#?}");
    assert!(
        warning[0].contains("ignored=1")
            && warning[0].contains(&format!("longest_bytes={}", hostile.len())),
        "{}",
        warning[0]
    );
    assert!(warning[0].len() < 300, "{}", warning[0]);
    for line in &lines {
        assert!(!line.contains(MARKER), "payload text in a log line: {line}");
        assert!(
            !line.contains('\u{1b}'),
            "an escape code in a log line: {line}"
        );
    }
    let _ = std::io::stderr().flush();
}
