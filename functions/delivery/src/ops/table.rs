//! Plain-text tables and time spans for the commands' human output (their `--json` output is
//! the structured form; the convention: [`crate::ops::output`]). Columns are padded to their
//! widest cell and numbers align right; a table wider than the terminal narrows its wrapping
//! columns, whose cells then wrap onto more lines, and a row's note is a full-width line
//! beneath it.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::ops::output::{Style, Tone};

/// A wrapping column is never narrowed below this (or its header's longest word).
const MIN_WRAP: usize = 12;

/// The space between columns.
const GAP: &str = "  ";

/// A cell's text and colour.
type Cell = (String, Tone);

/// A table: a header row and data rows of equal width, each row with an optional note.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    wrap: Vec<bool>,
    rows: Vec<(Vec<Cell>, Option<Cell>)>,
}

impl Table {
    /// A table with these column titles. A title starting with `>` is right-aligned, one
    /// starting with `~` wraps when the table is too wide (the mark is not shown).
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header
                .iter()
                .map(|h| h.trim_start_matches(['>', '~']).to_owned())
                .collect(),
            right: header.iter().map(|h| h.starts_with('>')).collect(),
            wrap: header.iter().map(|h| h.starts_with('~')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of plain cells (missing cells are blank, extra cells dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.row_toned(cells.into_iter().map(|c| (c, Tone::Plain)).collect());
    }

    /// Adds a row whose cells have colours.
    pub fn row_toned(&mut self, cells: Vec<Cell>) {
        let mut cells: Vec<Cell> = cells
            .into_iter()
            .map(|(text, tone)| (one_line(&text), tone))
            .collect();
        cells.resize(self.header.len(), (String::new(), Tone::Plain));
        self.rows.push((cells, None));
    }

    /// Puts `text` on a line of its own under the last row, across the table's width.
    pub fn note(&mut self, text: &str, tone: Tone) {
        if let Some((_, note)) = self.rows.last_mut() {
            *note = Some((one_line(text), tone));
        }
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text fitted to `style`'s width, one line per row (more where a cell
    /// wraps), each ending in a newline.
    pub fn render(&self, style: &Style) -> String {
        let widths = self.fit(style.width);
        let mut out = String::new();
        let header: Vec<Cell> = self
            .header
            .iter()
            .map(|h| (h.clone(), Tone::Plain))
            .collect();
        self.push_row(&mut out, &header, &widths, style);
        for (cells, note) in &self.rows {
            self.push_row(&mut out, cells, &widths, style);
            if let Some((text, tone)) = note {
                let lines = wrap(text, style.width.saturating_sub(4).max(MIN_WRAP));
                for (n, line) in lines.iter().enumerate() {
                    let mark = if n == 0 { "└" } else { " " };
                    out.push_str(&format!("  {mark} {}\n", style.paint(line, *tone)));
                }
            }
        }
        out
    }

    /// Column widths: each as wide as its widest cell, then the wrapping ones narrowed, the
    /// widest first, until the table fits `width` (or none can narrow any more).
    fn fit(&self, width: usize) -> Vec<usize> {
        let cells = |i: usize| {
            std::iter::once(&self.header[i]).chain(self.rows.iter().map(move |(r, _)| &r[i].0))
        };
        let mut widths: Vec<usize> = (0..self.header.len())
            .map(|i| cells(i).map(|c| c.chars().count()).max().unwrap_or(0))
            .collect();
        let floors: Vec<usize> = (0..self.header.len())
            .map(|i| match self.wrap[i] {
                true => longest_word(&self.header[i]).max(MIN_WRAP).min(widths[i]),
                false => widths[i],
            })
            .collect();
        let gaps = GAP.len() * self.header.len().saturating_sub(1);
        while widths.iter().sum::<usize>() + gaps > width {
            let narrowable = (0..widths.len())
                .filter(|&i| widths[i] > floors[i])
                .max_by_key(|&i| widths[i]);
            match narrowable {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        widths
    }

    fn push_row(&self, out: &mut String, cells: &[Cell], widths: &[usize], style: &Style) {
        let lines: Vec<Vec<String>> = cells
            .iter()
            .zip(widths)
            .map(|((text, _), &w)| wrap(text, w))
            .collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for n in 0..height {
            let mut line = Vec::with_capacity(cells.len());
            for (i, (_, tone)) in cells.iter().enumerate() {
                let text = lines[i].get(n).map_or("", String::as_str);
                let pad = " ".repeat(widths[i].saturating_sub(text.chars().count()));
                let text = style.paint(text, *tone);
                line.push(match self.right[i] {
                    true => format!("{pad}{text}"),
                    false => format!("{text}{pad}"),
                });
            }
            out.push_str(line.join(GAP).trim_end());
            out.push('\n');
        }
    }
}

/// `text` in lines of at most `width` characters, broken at spaces; a word longer than a line
/// is cut across lines. At least one line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let (len, word_len) = (line.chars().count(), word.chars().count());
        if len > 0 && len + 1 + word_len <= width {
            line.push(' ');
            line.push_str(word);
            continue;
        }
        if len > 0 {
            lines.push(std::mem::take(&mut line));
        }
        let chars: Vec<char> = word.chars().collect();
        let mut pieces = chars.chunks(width).peekable();
        while let Some(piece) = pieces.next() {
            let piece: String = piece.iter().collect();
            match pieces.peek() {
                Some(_) => lines.push(piece),
                None => line = piece,
            }
        }
    }
    lines.push(line);
    lines
}

/// `text` wrapped to `style`'s width, each line ending in a newline.
pub fn paragraph(text: &str, style: &Style) -> String {
    wrap(&one_line(text), style.width)
        .into_iter()
        .map(|line| line + "\n")
        .collect()
}

fn longest_word(text: &str) -> usize {
    text.split(' ')
        .map(|w| w.chars().count())
        .max()
        .unwrap_or(0)
}

/// Text on one line: control characters (newlines, escapes) become spaces, so a stored error
/// cannot break the layout or drive the terminal.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A time span in seconds as the two largest units: `45s`, `3m 20s`, `2h 5m`, `3d 4h`.
pub fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// An instant as RFC 3339 in UTC to the second, e.g. `2026-11-29T10:00:00Z`; `-` when absent.
pub fn instant(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// An instant relative to `now`: `5m 0s ago`, `in 2h 5m`; `-` when absent.
pub fn relative(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        None => "-".to_owned(),
        Some(at) if at <= now => format!("{} ago", span((now - at).num_seconds())),
        Some(at) => format!("in {}", span((at - now).num_seconds())),
    }
}

/// An optional value, `-` when absent.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Text cut to `max` characters on one line (newlines become spaces), `…` marking a cut.
pub fn clip(text: &str, max: usize) -> String {
    let flat = one_line(text);
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let mut t = Table::new(&["type", ">count"]);
        t.row(vec!["new_request".into(), "7".into()]);
        t.row(vec!["all".into(), "1234".into()]);
        assert_eq!(
            t.render(&Style::plain(80)),
            "type         count\nnew_request      7\nall           1234\n"
        );
    }

    #[test]
    fn a_table_too_wide_wraps_its_wrapping_column_to_fit() {
        let mut t = Table::new(&["", "check", "~finding"]);
        let long = "the NOTIFY queue is 80% full: a listening session stopped reading. ".repeat(3);
        t.row(vec!["PROBLEM".into(), "notify".into(), long.clone()]);
        t.note("a note\nwith a newline", Tone::Plain);
        let text = t.render(&Style::plain(60));
        assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
        assert!(text.lines().count() > 4, "{text}");
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(
            words.join(" ").contains(long.trim()),
            "nothing lost: {text}"
        );
        assert!(text.ends_with("  └ a note with a newline\n"), "{text}");
    }

    #[test]
    fn words_wrap_at_spaces_and_long_ones_are_cut() {
        assert_eq!(
            wrap("HTTP 503 Service Unavailable", 12),
            ["HTTP 503", "Service", "Unavailable"]
        );
        assert_eq!(
            wrap("2026-11-29T10:00:00Z", 10),
            ["2026-11-29", "T10:00:00Z"]
        );
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(200), "3m 20s");
        assert_eq!(span(7_500), "2h 5m");
        assert_eq!(span(273_600), "3d 4h");
        assert_eq!(span(-5), "0s");
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(1);
        assert_eq!(
            relative(Some(now - chrono::Duration::seconds(300)), now),
            "5m 0s ago"
        );
        assert_eq!(
            relative(Some(now + chrono::Duration::seconds(7_500)), now),
            "in 2h 5m"
        );
    }

    #[test]
    fn clipping_keeps_one_line() {
        assert_eq!(clip("HTTP 503\nbody", 40), "HTTP 503 body");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
