//! What the demo prints: numbered steps, explanations, checks, the rows that matter.
//! Colour only when stdout is a terminal (and `NO_COLOR` is unset), so logs and CI stay plain.

use std::fmt::Display;
use std::io::IsTerminal as _;

use delivery::receiver::Received;

/// The printer. Every check goes through [`Show::check`] so a failed one stops the demo.
pub struct Show {
    colour: bool,
}

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const BLUE: &str = "34";
const MAGENTA: &str = "35";
const CYAN: &str = "36";

impl Show {
    /// Colour when stdout is a terminal, `NO_COLOR` is unset and `TERM` is not `dumb`.
    pub fn new() -> Self {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Show { colour }
    }

    fn paint(&self, code: &str, text: impl Display) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The banner.
    pub fn title(&self, text: &str) {
        println!("{}", self.paint(BOLD, text));
    }

    /// A section or step heading, with a blank line before it.
    pub fn heading(&self, text: &str) {
        println!("\n{}", self.paint(&format!("{BOLD};{CYAN}"), text));
    }

    /// Prose: what happens and why.
    pub fn say(&self, text: &str) {
        for line in wrap(text, 88) {
            println!("   {line}");
        }
    }

    /// A command or statement the demo runs, as one could type it.
    pub fn run(&self, text: &str) {
        for (i, line) in text.lines().enumerate() {
            let prompt = if i == 0 { "$" } else { " " };
            println!("   {} {}", self.paint(DIM, prompt), self.paint(BLUE, line));
        }
    }

    /// What a command returned, in short.
    pub fn result(&self, text: &str) {
        println!("   {} {text}", self.paint(DIM, "→"));
    }

    /// A passed check.
    pub fn ok(&self, text: &str) {
        println!("   {} {text}", self.paint(GREEN, "✓"));
    }

    /// Passes (printing `what`) when `holds`, else fails with what was found instead.
    pub fn check(&self, holds: bool, what: &str, found: impl Display) -> anyhow::Result<()> {
        if holds {
            self.ok(what);
            Ok(())
        } else {
            anyhow::bail!("expected: {what}\n     found: {found}")
        }
    }

    /// A failure, at the end.
    pub fn failed(&self, text: &str) {
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            println!(
                "\n{} {}",
                self.paint(&format!("{BOLD};{RED}"), "✗"),
                self.paint(RED, first)
            );
        }
        for line in lines {
            println!("  {line}");
        }
    }

    /// A note that is not part of the story (set-up, fallbacks, clean-up).
    pub fn note(&self, text: &str) {
        println!("   {}", self.paint(YELLOW, text));
    }

    /// A line the receiver printed, as the receiver prints it.
    pub fn received(&self, received: &Received) {
        println!("   {} {received}", self.paint(MAGENTA, "receiver │"));
    }

    /// Rows under a header, columns aligned, empty values shown as `-`.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let head = line(header.iter().map(|h| (*h).to_owned()).collect());
        println!("     {}", self.paint(DIM, head));
        for row in rows {
            println!("     {}", line(row.clone()));
        }
    }
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// An optional value for a table cell.
pub fn cell<T: Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}
