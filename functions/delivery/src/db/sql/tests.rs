//! The statements held to what they share.

use super::claims::{DUE_CLAIM, FOLLOWER_CLAIM, FRESH_CLAIM, IDS_CLAIM};
use super::now::SEND_NOW_CLAIM;

/// A parameter's number in one statement, and its role in all of them.
type Role = (&'static str, &'static str);

/// The parameters of each claim, by role: the statements number them differently.
const ROLES: &[(&str, &str, &[Role])] = &[
    (
        "DUE_CLAIM",
        DUE_CLAIM,
        &[("$2", "<now>"), ("$3", "<lease>"), ("$5", "<supersede>")],
    ),
    (
        "IDS_CLAIM",
        IDS_CLAIM,
        &[("$2", "<now>"), ("$3", "<lease>"), ("$4", "<supersede>")],
    ),
    (
        "FRESH_CLAIM",
        FRESH_CLAIM,
        &[("$2", "<now>"), ("$3", "<lease>"), ("$4", "<supersede>")],
    ),
    (
        "SEND_NOW_CLAIM",
        SEND_NOW_CLAIM,
        &[("$2", "<now>"), ("$3", "<lease>"), ("$4", "<supersede>")],
    ),
    (
        "FOLLOWER_CLAIM",
        FOLLOWER_CLAIM,
        &[("$2", "<now>"), ("$3", "<lease>"), ("$5", "<supersede>")],
    ),
];

/// `text` from the first `start` to the end of the first `end` after it (to the end of
/// `text` when `end` is empty).
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)?;
    if end.is_empty() {
        return Some(&text[from..]);
    }
    let to = text[from..].find(end)? + from + end.len();
    Some(&text[from..to])
}

/// The claims write their shared decision rule out in full (they must paste into psql);
/// a fix that lands in all but one would silently break per-booking order. Each
/// fragment must be the same in every claim, its parameters read by role.
#[test]
fn the_claims_share_one_decision_rule() {
    let fragments: [(&str, &str, &str); 3] = [
        (
            "the newer lateral",
            "LEFT JOIN LATERAL (",
            ") newer ON true",
        ),
        (
            "the turn predicate",
            "AND (d.webhook_type = 'new_request'",
            "FOR SHARE SKIP LOCKED) idle)))",
        ),
        (
            "the lease and RETURNING tail",
            "UPDATE webhook_deliveries d",
            "",
        ),
    ];
    for (what, start, end) in fragments {
        let mut seen: Vec<(&str, String)> = Vec::new();
        for (name, statement, roles) in ROLES {
            let fragment =
                between(statement, start, end).unwrap_or_else(|| panic!("{name} has no {what}"));
            let mut by_role = fragment.to_owned();
            for (number, role) in roles.iter() {
                by_role = by_role.replace(number, role);
            }
            seen.push((name, by_role));
        }
        for (name, fragment) in &seen[1..] {
            assert_eq!(
                fragment, &seen[0].1,
                "{what} of {name} differs from {}'s",
                seen[0].0
            );
        }
    }
}
