//! How every `webhooks` command prints, one convention for all of them:
//!
//! - **For people** (the default): text and tables that fit the terminal — `COLUMNS` wide, else
//!   100 columns; long cells wrap, ids are shown by their first 8 digits (every command that
//!   takes ids accepts those). Colour only when standard output is a terminal, and never with
//!   `NO_COLOR` set (<https://no-color.org>).
//! - **For scripts** (`--json`): one JSON document, keys in camelCase everywhere — the style
//!   of the Lambda functions' own reports and events, which callers already rely on. Values
//!   that come from the database (statuses, webhook types, error kinds) keep their stored
//!   spelling (`new_request`, `http_5xx`).

use std::io::IsTerminal as _;

use serde::Serialize;

/// The width when `COLUMNS` does not say.
pub const DEFAULT_WIDTH: usize = 100;

/// The narrowest a table is laid out for, whatever `COLUMNS` says.
const MIN_WIDTH: usize = 40;

/// How the human form is laid out: its width and whether it may use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Columns available.
    pub width: usize,
    /// ANSI colour allowed.
    pub colour: bool,
}

/// What a piece of text means, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// No colour.
    #[default]
    Plain,
    /// As it should be (green).
    Good,
    /// Worth a look (yellow).
    Warn,
    /// Wrong (red).
    Bad,
    /// Secondary (dim).
    Dim,
}

impl Style {
    /// The style for standard output, from the environment: `COLUMNS` (else
    /// [`DEFAULT_WIDTH`]), colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Style {
        let columns = std::env::var("COLUMNS").ok();
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            width: width_from(columns.as_deref()),
            colour: std::io::stdout().is_terminal() && !no_colour,
        }
    }

    /// Plain text this wide (tests, logs).
    pub fn plain(width: usize) -> Style {
        Style {
            width: width.max(MIN_WIDTH),
            colour: false,
        }
    }

    /// `text` in the colour of `tone`, when colour is allowed.
    pub fn paint(&self, text: &str, tone: Tone) -> String {
        let code = match tone {
            Tone::Plain => return text.to_owned(),
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
            Tone::Dim => "2",
        };
        if self.colour && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

impl Default for Style {
    fn default() -> Self {
        Style::plain(DEFAULT_WIDTH)
    }
}

/// The width `COLUMNS` gives (at least [`MIN_WIDTH`]), else [`DEFAULT_WIDTH`].
fn width_from(columns: Option<&str>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
        .map_or(DEFAULT_WIDTH, |w| w.max(MIN_WIDTH))
}

/// What a command prints: `value` as pretty JSON when `json`, else its human form, laid out
/// in [`Style::detect`]'s style. Ends with a newline.
pub fn render<T: Serialize>(
    value: &T,
    json: bool,
    human: impl FnOnce(&Style) -> String,
) -> Result<String, serde_json::Error> {
    if json {
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        Ok(text)
    } else {
        let mut text = human(&Style::detect());
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

/// A delivery or booking id as the tables show it: its first 8 digits (what the receiver and
/// the demo print, and what every command accepts).
pub fn short_id(id: &uuid::Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_comes_from_columns_else_100() {
        assert_eq!(width_from(None), 100);
        assert_eq!(width_from(Some("132")), 132);
        assert_eq!(width_from(Some(" 80 ")), 80);
        assert_eq!(width_from(Some("0")), 100);
        assert_eq!(width_from(Some("wide")), 100);
        assert_eq!(width_from(Some("10")), MIN_WIDTH);
    }

    #[test]
    fn colour_only_when_allowed() {
        let plain = Style::plain(80);
        assert_eq!(plain.paint("PROBLEM", Tone::Bad), "PROBLEM");
        let coloured = Style {
            colour: true,
            ..plain
        };
        assert_eq!(coloured.paint("ok", Tone::Good), "\x1b[32mok\x1b[0m");
        assert_eq!(coloured.paint("ok", Tone::Plain), "ok");
    }

    #[test]
    fn ids_are_shown_by_their_first_eight_digits() {
        let id: uuid::Uuid = "381ff777-6a0e-4c1b-9a51-2f1f3a7d9c10"
            .parse()
            .unwrap_or_default();
        assert_eq!(short_id(&id), "381ff777");
    }
}
