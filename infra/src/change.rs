//! What a command did (or, in a dry run, would do) to each resource, and the field-by-field
//! comparison behind "updated".

use std::error::Error as StdError;
use std::fmt;

use serde_json::Value;

/// One field of a resource, named as in the API (nested names joined by `.`, as in
/// `Target.RoleArn`), with its value as JSON; `null` when unset.
pub type Field = (&'static str, Value);

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It existed and differed in these fields, which were changed.
    Updated(Vec<FieldChange>),
    /// It existed exactly as wanted; nothing was sent.
    Unchanged,
    /// It was deleted.
    Deleted,
    /// It did not exist, so there was nothing to delete.
    Absent,
    /// It was left in place, for the reason given.
    Kept(String),
}

impl Change {
    /// Compares what exists with what is wanted, field by field (both list the same fields in
    /// the same order): `Unchanged` when no value differs.
    pub fn between(now: &[Field], wanted: &[Field]) -> Self {
        let text = |v: &Value| (!v.is_null()).then(|| v.to_string());
        let differ = now.iter().zip(wanted).filter(|(now, want)| now.1 != want.1);
        let changes = differ.map(|((field, now), (_, want))| FieldChange {
            field,
            from: text(now),
            to: text(want),
        });
        Self::updated(changes.collect())
    }

    /// `Created` when nothing exists, else what [`Change::between`] finds in `fields`.
    pub fn plan<T>(now: Option<&T>, wanted: &T, fields: fn(&T) -> Vec<Field>) -> Self {
        let between = |now| Self::between(&fields(now), &fields(wanted));
        now.map_or(Self::Created, between)
    }

    /// `Updated` with `changes`, or `Unchanged` when there are none.
    pub fn updated(changes: Vec<FieldChange>) -> Self {
        if changes.is_empty() {
            Self::Unchanged
        } else {
            Self::Updated(changes)
        }
    }

    /// The field changes of an update; empty otherwise.
    pub fn fields(&self) -> &[FieldChange] {
        match self {
            Self::Updated(fields) => fields,
            _ => &[],
        }
    }

    fn describe(&self, dry_run: bool) -> String {
        let verb = match self {
            Self::Created => "created",
            Self::Updated(_) => "updated",
            Self::Deleted => "deleted",
            Self::Unchanged => return "unchanged".to_owned(),
            Self::Absent => return "absent".to_owned(),
            Self::Kept(why) => return format!("kept ({why})"),
        };
        if dry_run {
            format!("would be {verb}")
        } else {
            verb.to_owned()
        }
    }
}

/// One field that differs: what it is now and what it becomes, as printed (`None`: unset).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".to_owned());
        let (from, to) = (show(&self.from), show(&self.to));
        write!(f, "{}: {from} -> {to}", self.field)
    }
}

/// One resource in a [`Report`]: its kind ("schedule", "alarm", …), name, ARN when worth
/// printing, and what happened to it.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: &'static str,
    pub name: String,
    pub arn: Option<String>,
    pub change: Change,
}

/// What a command did, or in a dry run would do, resource by resource in the order handled:
/// printed one line per resource, then one indented line per changed field.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    pub items: Vec<Item>,
}

impl Report {
    /// An empty report.
    pub fn new(dry_run: bool) -> Self {
        let items = Vec::new();
        Self { dry_run, items }
    }

    /// Adds a resource.
    pub fn push(&mut self, kind: &'static str, name: &str, arn: Option<String>, change: Change) {
        let name = name.to_owned();
        self.items.push(Item {
            kind,
            name,
            arn,
            change,
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing was changed; the plan is")?;
        }
        for item in &self.items {
            let (kind, name, what) = (item.kind, &item.name, item.change.describe(self.dry_run));
            let arn = (item.arn.as_ref()).map_or(String::new(), |arn| format!(" ({arn})"));
            writeln!(f, "{kind} {name}: {what}{arn}")?;
            for field in item.change.fields() {
                writeln!(f, "  {field}")?;
            }
        }
        Ok(())
    }
}

/// The set fields as one JSON object, nested at the dots of their names (what `show` prints).
pub fn to_json(fields: impl IntoIterator<Item = Field>) -> Value {
    let mut json = Value::Object(serde_json::Map::new());
    for (name, value) in fields.into_iter().filter(|(_, v)| !v.is_null()) {
        let (parents, leaf) = name.rsplit_once('.').unwrap_or(("", name));
        let parents = parents.split('.').filter(|p| !p.is_empty());
        // Indexing a JSON null with a key makes it an object: the nesting builds itself.
        parents.fold(&mut json, |node, key| &mut node[key])[leaf] = value;
    }
    json
}

/// What `show` fails with when what it shows does not exist: a finding, not a failure to run
/// (`infra` exits 1 for it and 2 when it could not run). The text says what is missing and
/// which `apply` creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub String);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Missing {}
