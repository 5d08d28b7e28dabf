//! The configuration read from a map: defaults, bounds, secrets never echoed.

use super::*;
use std::collections::HashMap;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let mut map: HashMap<String, String> = [
        (
            "DATABASE_URL",
            "postgres://app:hunter2@db.internal:5432/app",
        ),
        (
            "WEBHOOK_URL",
            "https://notify.example.com/functions/v1/send-booking-notification",
        ),
        ("WEBHOOK_AUTH_TOKEN", "tok-abc123"),
        ("WEBHOOK_SIGNING_SECRET", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in pairs {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    move |name| map.get(name).cloned()
}

#[test]
fn defaults_match_the_documented_contract() -> Result<(), ConfigError> {
    let config = Config::from_lookup(lookup(&[]))?;
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(
        config.retry.schedule.delays(),
        &[
            Duration::from_secs(300),
            Duration::from_secs(900),
            Duration::from_secs(2700)
        ]
    );
    assert_eq!(config.retry.jitter, 0.1);
    assert_eq!(config.sweep_batch, 100);
    assert_eq!(config.webhook_origin(), "https://notify.example.com");
    Ok(())
}

#[test]
fn a_missing_variable_is_named() {
    let err = Config::from_lookup(lookup(&[("WEBHOOK_URL", "  ")])).err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some("WEBHOOK_URL: is required but not set".into())
    );
}

#[test]
fn every_missing_variable_is_named_at_once() {
    let err = Config::from_lookup(|_| None).err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some(
            "DATABASE_URL: is required but not set (also missing: WEBHOOK_URL, \
             WEBHOOK_AUTH_TOKEN, WEBHOOK_SIGNING_SECRET)"
                .into()
        )
    );
}

#[test]
fn bad_numbers_name_the_variable_and_range() {
    let err = Config::from_lookup(lookup(&[("WEBHOOK_TIMEOUT_MS", "ten")])).err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some("WEBHOOK_TIMEOUT_MS: must be an integer from 1 to 900000, got \"ten\"".into())
    );
    assert!(Config::from_lookup(lookup(&[("WEBHOOK_SWEEP_BATCH", "0")])).is_err());
    assert!(Config::from_lookup(lookup(&[("WEBHOOK_RETRY_JITTER", "1.5")])).is_err());
    assert!(Config::from_lookup(lookup(&[("WEBHOOK_RETRY_SCHEDULE", "5m,soon")])).is_err());
    assert!(Config::from_lookup(lookup(&[("WEBHOOK_URL", "ftp://x.example")])).is_err());
}

#[test]
fn plain_http_is_refused_except_to_loopback_or_when_allowed() {
    for url in [
        "http://notify.example.com/hook",
        "http://10.0.0.7/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost.example.com/hook",
    ] {
        let err = Config::from_lookup(lookup(&[("WEBHOOK_URL", url)])).err();
        assert!(
            err.as_ref().is_some_and(|e| e.var == "WEBHOOK_URL"
                && e.problem.contains("must be https://")
                && e.problem.contains("WEBHOOK_ALLOW_HTTP=1")),
            "{url}: {err:?}"
        );
    }
    for url in [
        "http://127.0.0.1:8787/hook",
        "http://127.1.2.3/hook",
        "http://[::1]:8787/hook",
        "http://LOCALHOST/hook",
        "https://notify.example.com/hook",
    ] {
        assert!(
            Config::from_lookup(lookup(&[("WEBHOOK_URL", url)])).is_ok(),
            "{url}"
        );
    }
    let allowed = [
        ("WEBHOOK_URL", "http://notify.internal/hook"),
        ("WEBHOOK_ALLOW_HTTP", "1"),
    ];
    assert!(Config::from_lookup(lookup(&allowed)).is_ok());
    let not_a_flag = [
        ("WEBHOOK_URL", "http://notify.internal/hook"),
        ("WEBHOOK_ALLOW_HTTP", "yes please"),
    ];
    let err = Config::from_lookup(lookup(&not_a_flag)).err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some("WEBHOOK_ALLOW_HTTP: must be 1 or 0".into())
    );
}

#[test]
fn retention_is_off_unless_set_to_a_day_or_more() -> Result<(), ConfigError> {
    assert_eq!(Config::from_lookup(lookup(&[]))?.retention, None);
    assert_eq!(
        Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "off")]))?.retention,
        None
    );
    assert_eq!(
        Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "30d")]))?.retention,
        Some(Duration::from_secs(30 * 86_400))
    );
    let short = Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "2h")])).err();
    assert_eq!(
        short.map(|e| e.to_string()),
        Some("WEBHOOK_RETENTION: must be at least 1d (or off), got \"2h\"".into())
    );
    assert!(Config::from_lookup(lookup(&[("WEBHOOK_RETENTION", "a month")])).is_err());
    Ok(())
}

#[test]
fn supersede_is_on_unless_turned_off() -> Result<(), ConfigError> {
    assert!(Config::from_lookup(lookup(&[]))?.supersede);
    for (value, on) in [("off", false), ("OFF", false), ("0", false), ("on", true)] {
        let config = Config::from_lookup(lookup(&[("WEBHOOK_SUPERSEDE", value)]))?;
        assert_eq!(config.supersede, on, "{value}");
    }
    let err = Config::from_lookup(lookup(&[("WEBHOOK_SUPERSEDE", "sometimes")])).err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some("WEBHOOK_SUPERSEDE: must be on or off".into())
    );
    Ok(())
}

#[test]
fn a_database_ca_file_must_hold_certificates() {
    let missing =
        Config::from_lookup(lookup(&[("WEBHOOK_DB_CA_FILE", "/nonexistent/ca.pem")])).err();
    assert!(
        missing.is_some_and(|e| e.var == "WEBHOOK_DB_CA_FILE" && e.problem.contains("cannot read"))
    );
    let not_pem = Config::from_lookup(lookup(&[("WEBHOOK_DB_CA_FILE", "Cargo.toml")])).err();
    assert!(
        not_pem.is_some_and(
            |e| e.var == "WEBHOOK_DB_CA_FILE" && e.problem.contains("no PEM certificate")
        )
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug() -> Result<(), ConfigError> {
    let bad_secret = "whsec_not*base64*hunter2";
    let err = Config::from_lookup(lookup(&[("WEBHOOK_SIGNING_SECRET", bad_secret)])).err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("WEBHOOK_SIGNING_SECRET:"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let err = Config::from_lookup(lookup(&[(
        "DATABASE_URL",
        "postgres://u:hunter2@h:notaport/db",
    )]))
    .err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with("DATABASE_URL:") && !text.contains("hunter2"),
        "{text}"
    );

    let debug = format!("{:?}", Config::from_lookup(lookup(&[]))?);
    for secret in ["hunter2", "tok-abc123", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }
    Ok(())
}

/// `.env.example` is the documentation users copy: it must parse, and it must mention
/// every variable this module reads.
#[test]
fn the_env_example_is_valid_and_complete() -> Result<(), ConfigError> {
    let example = include_str!("../../../../.env.example");
    let (mut vars, mut documented) = (HashMap::new(), Vec::new());
    for line in example.lines().map(str::trim) {
        let active = !line.starts_with('#');
        if let Some((k, v)) = line.trim_start_matches("# ").split_once('=')
            && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            documented.push(k.to_owned());
            if active {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let config = Config::from_lookup(|name| vars.get(name).cloned())?;
    assert_eq!(config.timeout, Duration::from_secs(10));
    let source = [
        include_str!("mod.rs"),
        include_str!("database.rs"),
        include_str!("env.rs"),
        include_str!("endpoint.rs"),
    ]
    .concat();
    let names = source.split('"').filter(|s| {
        (s.starts_with("WEBHOOK_") || *s == "DATABASE_URL")
            && !s.ends_with('_')
            && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    });
    for var in names {
        assert!(
            documented.iter().any(|d| d == var),
            "{var} is read but not documented in .env.example"
        );
    }
    Ok(())
}
