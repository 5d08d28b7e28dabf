//! One finding of `webhooks doctor` and how bad it is; all of them, and their human form.

use serde::Serialize;

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

/// The human form: one line per finding, then a summary.
pub fn render_posture(p: &Posture) -> String {
    let mut t = Table::new(&["", "check", "finding"]);
    for c in &p.checks {
        t.row(vec![
            c.severity.label().to_owned(),
            c.check.to_owned(),
            c.message.clone(),
        ]);
    }
    let mut out = t.render();
    out.push_str(&match (p.problems, p.warnings) {
        (0, 0) => "\nhealthy\n".to_owned(),
        (0, w) => format!("\nhealthy, {w} warning(s)\n"),
        (n, w) => format!("\n{n} problem(s), {w} warning(s)\n"),
    });
    out
}
