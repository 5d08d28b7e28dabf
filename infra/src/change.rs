//! What an `apply` did (or, in a dry run, would do) to one resource.

use std::fmt;

/// The effect of `apply` on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It existed and differed; these fields were changed.
    Updated(Vec<FieldChange>),
    /// It existed exactly as wanted; nothing was sent.
    Unchanged,
}

impl Change {
    /// Compares what exists with what is wanted: `Unchanged` when `changes` is empty.
    pub fn from_changes(changes: Vec<FieldChange>) -> Self {
        if changes.is_empty() {
            Self::Unchanged
        } else {
            Self::Updated(changes)
        }
    }

    /// One word for a report: "created", "updated", "unchanged", or in a dry run
    /// "would be created" and "would be updated".
    pub fn verb(&self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Self::Created, false) => "created",
            (Self::Created, true) => "would be created",
            (Self::Updated(_), false) => "updated",
            (Self::Updated(_), true) => "would be updated",
            (Self::Unchanged, _) => "unchanged",
        }
    }

    /// The field changes of an update; empty otherwise.
    pub fn fields(&self) -> &[FieldChange] {
        match self {
            Self::Updated(fields) => fields,
            _ => &[],
        }
    }
}

/// One field that differs between what exists and what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field, named as in the API (e.g. `ScheduleExpression`, `Target.RoleArn`).
    pub field: &'static str,
    /// What it is now; `None` when unset.
    pub from: Option<String>,
    /// What it becomes; `None` when it is to be unset.
    pub to: Option<String>,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| {
            v.as_deref()
                .map_or("(unset)".to_owned(), |v| format!("{v:?}"))
        };
        write!(
            f,
            "{}: {} -> {}",
            self.field,
            show(&self.from),
            show(&self.to)
        )
    }
}

/// Lists the fields whose values differ, in the order given.
pub fn diff_fields(
    current: &[(&'static str, Option<String>)],
    desired: &[(&'static str, Option<String>)],
) -> Vec<FieldChange> {
    current
        .iter()
        .zip(desired)
        .filter(|((_, now), (_, want))| now != want)
        .map(|((field, now), (_, want))| FieldChange {
            field,
            from: now.clone(),
            to: want.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_fields_are_listed() {
        let s = |v: &str| Some(v.to_owned());
        let now = [("A", s("1")), ("B", s("2")), ("C", None)];
        let want = [("A", s("1")), ("B", s("3")), ("C", s("x"))];
        let changes = diff_fields(&now, &want);
        assert_eq!(
            changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["B: \"2\" -> \"3\"", "C: (unset) -> \"x\""]
        );
        assert_eq!(Change::from_changes(changes).verb(true), "would be updated");
        assert_eq!(Change::from_changes(vec![]), Change::Unchanged);
    }
}
