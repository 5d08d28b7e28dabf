//! Delivery ids as operators type them: whole, or a prefix of their hex digits — the
//! 8-character ids that the demo, the receiver and the tables print (`webhooks show 381ff777`).
//! A prefix must name exactly one delivery: one that matches none is unknown, one that matches
//! several is ambiguous, and the command says which instead of guessing.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::{query, sql};
use crate::error::Result;

/// A delivery id or a prefix of it, as typed: hex digits, hyphens anywhere ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPrefix {
    /// As typed (for messages).
    typed: String,
    /// The lowest and highest ids it covers (equal for a whole id).
    low: Uuid,
    high: Uuid,
}

impl FromStr for IdPrefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        let valid = !digits.is_empty()
            && digits.len() <= 32
            && digits.chars().all(|c| c.is_ascii_hexdigit());
        if !valid {
            return Err(format!(
                "{:?} is not a delivery id: give its hex digits, whole or the first few \
                 (e.g. 381ff777)",
                crate::text::truncate(text, 60)
            ));
        }
        let padded = |fill: char| {
            let mut hex = digits.to_ascii_lowercase();
            hex.extend(std::iter::repeat_n(fill, 32 - digits.len()));
            Uuid::parse_str(&hex).map_err(|e| e.to_string())
        };
        Ok(IdPrefix {
            typed: text.to_owned(),
            low: padded('0')?,
            high: padded('f')?,
        })
    }
}

impl fmt::Display for IdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.typed)
    }
}

impl From<Uuid> for IdPrefix {
    fn from(id: Uuid) -> Self {
        IdPrefix {
            typed: id.to_string(),
            low: id,
            high: id,
        }
    }
}

/// A delivery an id named, with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The delivery's whole id.
    pub id: Uuid,
    /// Its status now.
    pub status: String,
}

/// Ids that did not name exactly one delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unresolved {
    /// Named no delivery.
    pub unknown: Vec<String>,
    /// Named several: the prefix and the first two it matches.
    pub ambiguous: Vec<(String, Vec<Uuid>)>,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        for typed in &self.unknown {
            lines.push(format!("no delivery with id {typed}"));
        }
        for (typed, matches) in &self.ambiguous {
            let matches: Vec<String> = matches.iter().map(Uuid::to_string).collect();
            lines.push(format!(
                "id {typed} is ambiguous: it begins {} and more; give more of its digits",
                matches.join(", ")
            ));
        }
        f.write_str(&lines.join("\n"))
    }
}

/// The delivery each of `given` names, in order (once each); or what did not name exactly
/// one. Whole ids are looked up as they are, prefixes by a range of the primary key.
pub async fn resolve_ids(
    db: &Client,
    given: &[IdPrefix],
) -> Result<Result<Vec<Named>, Unresolved>> {
    let lows: Vec<Uuid> = given.iter().map(|g| g.low).collect();
    let highs: Vec<Uuid> = given.iter().map(|g| g.high).collect();
    let rows = query(
        db,
        sql::DELIVERY_IDS_BY_PREFIX,
        &[(&lows, Type::UUID_ARRAY), (&highs, Type::UUID_ARRAY)],
    )
    .await?;
    let mut matches: Vec<Vec<Named>> = vec![Vec::new(); given.len()];
    for row in &rows {
        let n: i64 = row.try_get(0)?;
        let slot = usize::try_from(n - 1).ok().and_then(|i| matches.get_mut(i));
        if let Some(slot) = slot {
            slot.push(Named {
                id: row.try_get(1)?,
                status: row.try_get(2)?,
            });
        }
    }
    let mut unresolved = Unresolved::default();
    let mut named: Vec<Named> = Vec::new();
    for (typed, found) in given.iter().zip(matches) {
        match found.as_slice() {
            [] => unresolved.unknown.push(typed.typed.clone()),
            [one] => {
                if !named.iter().any(|n| n.id == one.id) {
                    named.push(one.clone());
                }
            }
            several => unresolved
                .ambiguous
                .push((typed.typed.clone(), several.iter().map(|n| n.id).collect())),
        }
    }
    if unresolved.unknown.is_empty() && unresolved.ambiguous.is_empty() {
        Ok(Ok(named))
    } else {
        Ok(Err(unresolved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_covers_the_ids_that_begin_with_it() {
        let prefix: IdPrefix = "381FF777".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            prefix.low.to_string(),
            "381ff777-0000-0000-0000-000000000000"
        );
        assert_eq!(
            prefix.high.to_string(),
            "381ff777-ffff-ffff-ffff-ffffffffffff"
        );
        let whole = "0b7e3c1e-6a0e-4c1b-9a51-2f1f3a7d9c10";
        let whole: IdPrefix = whole.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(whole.low, whole.high);
        assert_eq!(whole.to_string(), "0b7e3c1e-6a0e-4c1b-9a51-2f1f3a7d9c10");
    }

    #[test]
    fn what_is_not_hex_is_refused_with_an_example() {
        for bad in ["", "-", "not-a-uuid", "381ff777g", &"a".repeat(33), "💥"] {
            let err = bad.parse::<IdPrefix>().err().unwrap_or_default();
            assert!(err.contains("e.g. 381ff777"), "{bad:?}: {err}");
        }
    }
}
