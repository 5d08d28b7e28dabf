//! One finding of `webhooks doctor` and how bad it is; all of them, and their human form.

use serde::Serialize;

use crate::ops::output::{Style, Tone};
use crate::ops::table::Table;

/// How bad a finding is. Only [`Severity::Problem`] makes `doctor` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// As it should be.
    Ok,
    /// Worth knowing, nothing to do.
    Info,
    /// Works, but costs something or may surprise.
    Warning,
    /// Notifications are or will be lost, late, or exposed.
    Problem,
}

impl Severity {
    fn tone(self) -> Tone {
        match self {
            Severity::Ok => Tone::Good,
            Severity::Info => Tone::Dim,
            Severity::Warning => Tone::Warn,
            Severity::Problem => Tone::Bad,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "WARNING",
            Severity::Problem => "PROBLEM",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What was checked, e.g. `capture-triggers`.
    pub check: &'static str,
    /// How bad.
    pub severity: Severity,
    /// What was found and, if wrong, what to do.
    pub message: String,
}

/// All findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Posture {
    /// Findings, in the order checked.
    pub checks: Vec<Check>,
    /// How many are problems.
    pub problems: usize,
    /// How many are warnings.
    pub warnings: usize,
}

impl Posture {
    pub(super) fn new(checks: Vec<Check>) -> Posture {
        let count = |s| checks.iter().filter(|c| c.severity == s).count();
        Posture {
            problems: count(Severity::Problem),
            warnings: count(Severity::Warning),
            checks,
        }
    }

    /// True when no finding is a problem.
    pub fn is_healthy(&self) -> bool {
        self.problems == 0
    }
}

pub(super) fn check(check: &'static str, severity: Severity, message: impl Into<String>) -> Check {
    Check {
        check,
        severity,
        message: message.into(),
    }
}

/// The human form: one row per finding (the finding wrapped to the width), then a summary.
pub fn render_posture(p: &Posture, style: &Style) -> String {
    let mut t = Table::new(&["", "check", "~finding"]);
    for c in &p.checks {
        t.row_toned(vec![
            (c.severity.label().to_owned(), c.severity.tone()),
            (c.check.to_owned(), Tone::Plain),
            (c.message.clone(), Tone::Plain),
        ]);
    }
    let mut out = t.render(style);
    out.push_str(&match (p.problems, p.warnings) {
        (0, 0) => format!("\n{}\n", style.paint("healthy", Tone::Good)),
        (0, w) => format!("\n{}, {w} warning(s)\n", style.paint("healthy", Tone::Good)),
        (n, w) => format!(
            "\n{}, {w} warning(s)\n",
            style.paint(&format!("{n} problem(s)"), Tone::Bad)
        ),
    });
    out
}
