//! Who can reach the data: row level security on the outbox tables, and `booking_requests`
//! where Supabase's API roles reach it.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::finding::{Check, Severity, check};
use crate::db::{query, sql};
use crate::error::Result;

pub(super) const OUTBOX_TABLES: [&str; 4] = [
    "webhook_attempts",
    "webhook_deliveries",
    // Whoever can write it can hold every delivery (a pause) until they fail.
    "webhook_endpoints",
    "webhook_verify_horizon",
];

pub(super) const API_ROLES: [&str; 3] = ["PUBLIC", "anon", "authenticated"];

pub(super) struct TableSecurity {
    pub(super) name: String,
    pub(super) exists: bool,
    pub(super) owner: Option<String>,
    pub(super) rls: bool,
    pub(super) reachable_by: Vec<String>,
}

pub(super) async fn table_security(db: &Client, tables: &[&str]) -> Result<Vec<TableSecurity>> {
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    let rows = query(db, sql::TABLE_SECURITY, &[(&tables, Type::TEXT_ARRAY)]).await?;
    rows.iter()
        .map(|r| {
            Ok(TableSecurity {
                name: r.try_get(0)?,
                exists: r.try_get(1)?,
                owner: r.try_get(2)?,
                rls: r.try_get(3)?,
                reachable_by: r.try_get(4)?,
            })
        })
        .collect()
}

pub(super) async fn row_level_security(db: &Client) -> Result<Vec<Check>> {
    const NAME: &str = "row-level-security";
    let mut tables: Vec<&str> = OUTBOX_TABLES.to_vec();
    tables.push("booking_requests");
    let mut checks = Vec::new();
    for t in table_security(db, &tables).await? {
        let outbox = t.name != "booking_requests";
        let reachable = t.reachable_by.join(", ");
        checks.push(match (t.exists, t.rls, t.reachable_by.is_empty()) {
            (false, _, _) => check(
                NAME,
                Severity::Problem,
                format!("table {} is MISSING: run `webhooks migrate`", t.name),
            ),
            (true, false, _) if outbox => check(
                NAME,
                Severity::Problem,
                format!(
                    "row level security is OFF on {}: any role granted access reads every \
                     recipient address. Fix: ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
                    t.name, t.name
                ),
            ),
            (true, _, false) if outbox => check(
                NAME,
                Severity::Problem,
                format!(
                    "{reachable} hold privileges on {}: on Supabase that exposes it through the \
                     REST API. Fix: REVOKE ALL ON {} FROM {reachable};",
                    t.name, t.name
                ),
            ),
            (true, false, false) => check(
                NAME,
                Severity::Problem,
                format!(
                    "booking_requests has row level security OFF while {reachable} hold \
                     privileges on it: anyone with the API key can read addresses and approve \
                     bookings, making this system mail anyone. Enable RLS with the app's policies."
                ),
            ),
            (true, rls, _) => check(
                NAME,
                Severity::Ok,
                if rls {
                    format!("row level security is on for {}", t.name)
                } else {
                    format!("{}: no API role can reach it", t.name)
                },
            ),
        });
    }
    Ok(checks)
}
