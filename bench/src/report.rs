//! The figures beside their targets: printed as a table and written into `bench/RESULTS.md`
//! between two marker lines (the hand-written notes around them are kept).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

const BEGIN: &str = "<!-- make bench: generated from here -->";
const END: &str = "<!-- make bench: generated up to here -->";

/// Whether a figure meets its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    /// No pass mark: the figure is reported (the issue asks for it).
    Reported,
    /// The scenario failed; the message says why.
    Error(String),
}

impl Verdict {
    pub fn of(met: bool) -> Self {
        if met { Verdict::Met } else { Verdict::NotMet }
    }

    fn word(&self) -> &str {
        match self {
            Verdict::Met => "MET",
            Verdict::NotMet => "NOT MET",
            Verdict::Reported => "reported",
            Verdict::Error(_) => "ERROR",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn new(figure: &str, value: String, target: &str, verdict: Verdict) -> Self {
        Row {
            figure: figure.to_owned(),
            value,
            target: target.to_owned(),
            verdict,
        }
    }
}

/// Everything one `make bench` run found.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Per scenario: a heading and markdown lines (every run, every command).
    pub sections: Vec<(String, Vec<String>)>,
}

impl Report {
    /// A scenario's figures, or the error that stopped it (as one ERROR row).
    pub fn add(&mut self, scenario: &str, outcome: anyhow::Result<Section>) {
        match outcome {
            Ok(section) => {
                self.rows.extend(section.rows);
                self.sections.push((section.title, section.lines));
            }
            Err(err) => {
                let message = format!("{err:#}");
                eprintln!("bench: {scenario} failed: {message}");
                self.rows.push(Row::new(
                    scenario,
                    "—".into(),
                    "—",
                    Verdict::Error(message.clone()),
                ));
                self.sections
                    .push((scenario.to_owned(), vec![format!("**Failed**: {message}")]));
            }
        }
    }

    pub fn failed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Error(_)))
    }

    /// "N of M targets met", and the errors.
    pub fn tally(&self) -> String {
        let count = |v: &Verdict| self.rows.iter().filter(|r| &r.verdict == v).count();
        let (met, not_met) = (count(&Verdict::Met), count(&Verdict::NotMet));
        let errors = self
            .rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Error(_)))
            .count();
        format!(
            "{met} of {} targets met, {not_met} not met; {errors} scenario(s) failed",
            met + not_met
        )
    }

    /// The table as aligned plain text.
    pub fn text_table(&self) -> String {
        let head = ["figure", "measured", "target", "verdict"];
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.figure.clone(),
                    r.value.clone(),
                    r.target.clone(),
                    r.verdict.word().to_owned(),
                ]
            })
            .collect();
        let width = |i: usize| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2), width(3)];
        let line = |c: [&str; 4]| {
            let mut s = String::new();
            for (i, cell) in c.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
            }
            s.trim_end().to_owned() + "\n"
        };
        let mut out = line(head);
        out += &line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
        for c in &cells {
            out += &line(c.each_ref().map(String::as_str));
        }
        out
    }

    /// The generated part of RESULTS.md.
    pub fn markdown(&self, preamble: &[String]) -> String {
        let mut out = String::new();
        for line in preamble {
            out += line;
            out += "\n";
        }
        out += &format!("\n{}.\n", self.tally());
        out += "\n| figure | measured | target | verdict |\n|---|---|---|---|\n";
        for r in &self.rows {
            let verdict = match &r.verdict {
                Verdict::Met => "**MET**".to_owned(),
                Verdict::NotMet => "**NOT MET**".to_owned(),
                Verdict::Reported => "reported".to_owned(),
                Verdict::Error(e) => format!("**ERROR**: {}", e.replace('|', "/")),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {verdict} |",
                r.figure, r.value, r.target
            );
        }
        for (title, lines) in &self.sections {
            let _ = write!(out, "\n### {title}\n\n");
            for line in lines {
                out += line;
                out += "\n";
            }
        }
        out
    }

    /// Replaces the generated part of `path` (or appends it, markers included).
    pub fn write(&self, path: &Path, preamble: &[String]) -> anyhow::Result<()> {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let generated = format!("{BEGIN}\n{}{END}\n", self.markdown(preamble));
        let new = match (old.find(BEGIN), old.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!(
                    "{}{generated}{}",
                    &old[..b],
                    &old[e + END.len()..].trim_start_matches('\n')
                )
            }
            _ => format!("{}\n{generated}", old.trim_end()),
        };
        std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
    }
}

/// What a scenario hands back.
#[derive(Debug, Default)]
pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
    pub lines: Vec<String>,
}

impl Section {
    pub fn new(title: &str) -> Self {
        Section {
            title: title.to_owned(),
            ..Section::default()
        }
    }

    pub fn row(&mut self, figure: &str, value: String, target: &str, verdict: Verdict) {
        self.rows.push(Row::new(figure, value, target, verdict));
    }

    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}
