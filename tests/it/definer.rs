//! The capture functions are SECURITY DEFINER: they run as their owner. A role that may CREATE
//! in a schema on their search_path could otherwise define an exact-type overload of a built-in
//! they call (an exact match beats pg_catalog's variadic `jsonb_build_object`) and run its own
//! code as the owner on the next booking insert (issue 21). Tested in a database of its own,
//! so the overloads in `public` touch no other test.

use delivery::DbConfig;
use uuid::Uuid;

use crate::support::db::{base_url, connect};
use crate::support::scratch::ScratchDb;

/// The overloads an attacker plants, each recording who ran it.
const OVERLOADS: &str = "
CREATE TABLE {schema}.pwned (who text, via text);
GRANT INSERT ON {schema}.pwned TO PUBLIC;
CREATE FUNCTION {schema}.jsonb_build_object(text, text, text, uuid, text, text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.pwned VALUES (current_user, '{schema}.jsonb_build_object');
    RETURN '{}'::jsonb;
END $$;
CREATE FUNCTION {schema}.btrim(text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.pwned VALUES (current_user, '{schema}.btrim');
    RETURN $1;
END $$;
";

#[tokio::test]
async fn a_role_that_may_create_in_the_schema_cannot_run_code_as_the_owner() {
    let db = ScratchDb::new().await;
    let mut config = DbConfig::new(db.url.clone());
    config.pool_size = 2;
    delivery::schema::migrate_quietly(&config.pool().expect("pool"))
        .await
        .expect("migrate");
    let client = db.client().await;
    let schema: String = client
        .query_one("SELECT current_schema()::text", &[])
        .await
        .expect("schema")
        .get(0);
    let attacker = format!("attacker_{}", Uuid::new_v4().simple());
    client
        .batch_execute(&format!(
            "CREATE ROLE {attacker} NOLOGIN;
             GRANT CREATE, USAGE ON SCHEMA {schema}, public TO {attacker};
             GRANT INSERT ON booking_requests TO {attacker};"
        ))
        .await
        .expect("the attacker role");
    // The attacker plants overloads in the schema of the capture functions and in public.
    for place in [schema.as_str(), "public"] {
        client
            .batch_execute(&format!(
                "SET ROLE {attacker}; {} RESET ROLE;",
                OVERLOADS.replace("{schema}", place)
            ))
            .await
            .unwrap_or_else(|e| panic!("overloads in {place}: {e}"));
    }
    // The app inserts and approves bookings as usual (the owner's code runs the capture).
    let booking: Uuid = client
        .query_one(
            "INSERT INTO booking_requests (tutor_email, student_email) \
             VALUES ('tutor@example.com', ' student@example.com') RETURNING id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    client
        .execute(
            "UPDATE booking_requests SET status = 'approved' WHERE id = $1",
            &[&booking],
        )
        .await
        .expect("approve");
    for place in [schema.as_str(), "public"] {
        let ran: i64 = client
            .query_one(&format!("SELECT count(*) FROM {place}.pwned"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(ran, 0, "an overload in {place} ran inside the capture");
    }
    // Capture itself worked, with pg_catalog's functions.
    let payloads: Vec<serde_json::Value> = client
        .query(
            "SELECT payload FROM webhook_deliveries WHERE booking_id = $1 ORDER BY capture_seq",
            &[&booking],
        )
        .await
        .expect("deliveries")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(payloads.len(), 2);
    assert_eq!(
        payloads[1]["email"], "student@example.com",
        "btrim was pg_catalog's"
    );

    // doctor rates the functions fine, and warns about who may create in the schema.
    client
        .batch_execute(&format!("GRANT CREATE ON SCHEMA {schema} TO PUBLIC"))
        .await
        .expect("grant");
    let now = chrono::Utc::now();
    let posture = delivery::posture::check_posture(&client, now)
        .await
        .expect("doctor");
    let functions: Vec<_> = posture
        .checks
        .iter()
        .filter(|c| c.check == "capture-functions")
        .collect();
    assert!(
        functions
            .iter()
            .all(|c| c.severity == delivery::posture::Severity::Ok),
        "{functions:#?}"
    );
    let create = posture
        .checks
        .iter()
        .find(|c| c.check == "schema-create")
        .expect("schema-create finding");
    assert_eq!(create.severity, delivery::posture::Severity::Warning);
    assert!(
        create.message.contains("PUBLIC may create"),
        "{}",
        create.message
    );

    drop(client);
    // The database goes first: the role owns objects in it.
    drop(db);
    connect(&base_url())
        .await
        .batch_execute(&format!("DROP ROLE {attacker}"))
        .await
        .expect("drop the attacker");
}
