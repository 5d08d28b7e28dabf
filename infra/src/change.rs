//! What a command did (or, in a dry run, would do) to each resource, and the field-by-field
//! comparison behind "updated".

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
    /// It existed and differed; these fields were changed.
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
        let mut changes = Vec::new();
        for ((field, now), (_, want)) in now.iter().zip(wanted) {
            if now != want {
                let (from, to) = (text(now), text(want));
                changes.push(FieldChange { field, from, to });
            }
        }
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
        match dry_run {
            true => format!("would be {verb}"),
            false => verb.to_owned(),
        }
    }
}

/// One field that differs between what exists and what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field, named as in the API (e.g. `ScheduleExpression`, `Target.RoleArn`).
    pub field: &'static str,
    /// What it is now, as printed; `None` when unset.
    pub from: Option<String>,
    /// What it becomes, as printed; `None` when it is to be unset.
    pub to: Option<String>,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".to_owned());
        write!(
            f,
            "{}: {} -> {}",
            self.field,
            show(&self.from),
            show(&self.to)
        )
    }
}

/// One resource in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What kind of resource: "schedule group", "execution role", "schedule", "alarm".
    pub kind: &'static str,
    /// Its name (`group/name` for a schedule).
    pub name: String,
    /// Its ARN, when known and worth printing.
    pub arn: Option<String>,
    /// What happened to it.
    pub change: Change,
}

/// What a command did, or in a dry run would do, resource by resource: printed one line per
/// resource, then one indented line per changed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// The resources, in the order they were handled.
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

    /// The first resource of `kind`, if the report has one.
    pub fn item(&self, kind: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.kind == kind)
    }

    /// What happened to the first resource of `kind`, if the report has one.
    pub fn change(&self, kind: &str) -> Option<&Change> {
        self.item(kind).map(|item| &item.change)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing was changed; the plan is")?;
        }
        for Item {
            kind,
            name,
            arn,
            change,
        } in &self.items
        {
            write!(f, "{kind} {name}: {}", change.describe(self.dry_run))?;
            if let Some(arn) = arn {
                write!(f, " ({arn})")?;
            }
            writeln!(f)?;
            for field in change.fields() {
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
