//! The commands of the pages: every fenced `sh` block (indented ones too, as in a list), one
//! command per line, a line ending in `\` continued on the next.

use std::path::Path;

/// The pages whose commands are checked: README.md, every page of docs/, and
/// migrations/README.md.
pub fn pages(root: &Path) -> Vec<String> {
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    let mut pages = vec!["README.md".to_owned()];
    pages.extend(docs);
    pages.push("migrations/README.md".to_owned());
    pages
}

/// One command as a reader would paste it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocCommand {
    /// The page, relative to the repository.
    pub page: String,
    /// Its first line's number in the page (1-based).
    pub line: usize,
    /// The title of the `## ` section it is in (empty before the first).
    pub section: String,
    /// The command, continuation lines included (joined by newlines, as written).
    pub text: String,
}

impl DocCommand {
    /// The command's first line without its trailing comment, for messages.
    pub fn short(&self) -> String {
        let first = self.text.lines().next().unwrap_or_default();
        let code = first.split(" #").next().unwrap_or(first).trim_end();
        code.trim_end_matches('\\').trim_end().to_owned()
    }

    /// Its first words, for a table: at least two, as many as fit in 40 characters, then
    /// `…`; a word longer than that is cut.
    pub fn brief(&self) -> String {
        let short = self.short();
        let mut brief = String::new();
        for (n, word) in short.split_whitespace().enumerate() {
            let word = match word.char_indices().nth(36) {
                Some((cut, _)) => format!("{}…", &word[..cut]),
                None => word.to_owned(),
            };
            if n >= 2 && brief.len() + word.len() >= 40 {
                brief.push_str(" …");
                break;
            }
            if !brief.is_empty() {
                brief.push(' ');
            }
            brief.push_str(&word);
        }
        brief
    }
}

/// Every command of every page of [`pages`], in page order.
pub fn commands(root: &Path) -> Vec<DocCommand> {
    pages(root)
        .iter()
        .flat_map(|page| {
            let text =
                std::fs::read_to_string(root.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            commands_of(page, &text)
        })
        .collect()
}

/// The commands of the `sh` blocks of `text`.
pub fn commands_of(page: &str, text: &str) -> Vec<DocCommand> {
    let mut found = Vec::new();
    let mut indent: Option<usize> = None;
    let mut pending: Option<DocCommand> = None;
    let mut section = String::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        match indent {
            None => {
                if let Some(title) = raw.strip_prefix("## ") {
                    section = title.trim().to_owned();
                }
                if trimmed == "```sh" {
                    indent = Some(raw.len() - trimmed.len());
                }
            }
            Some(_) if trimmed.starts_with("```") => indent = None,
            Some(width) => {
                let line = raw
                    .get(width.min(raw.len() - trimmed.len())..)
                    .unwrap_or(raw);
                match pending.as_mut() {
                    Some(command) => {
                        command.text.push('\n');
                        command.text.push_str(line);
                    }
                    None if line.trim().is_empty() || line.trim_start().starts_with('#') => {
                        continue;
                    }
                    None => {
                        pending = Some(DocCommand {
                            page: page.to_owned(),
                            line: n + 1,
                            section: section.clone(),
                            text: line.to_owned(),
                        })
                    }
                }
                if !line.trim_end().ends_with('\\') {
                    found.extend(pending.take());
                }
            }
        }
    }
    found
}

#[test]
fn blocks_give_one_command_per_line_and_continuations_join() {
    let page = "text\n\n```sh\nmake demo    # the story\n\n# a comment\npsql x -c \\\n  \"SELECT 1\"\n```\n\n1. step:\n\n   ```sh\n   webhooks doctor\n   ```\n```sql\nSELECT 2;\n```\n";
    let found = commands_of("p.md", page);
    let texts: Vec<&str> = found.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "make demo    # the story",
            "psql x -c \\\n  \"SELECT 1\"",
            "webhooks doctor"
        ]
    );
    assert_eq!((found[0].line, found[1].line, found[2].line), (4, 7, 14));
    assert_eq!(found[0].short(), "make demo");
    assert_eq!(found[1].short(), "psql x -c");
    let long = DocCommand {
        text: "cargo run -q -p infra -- schedule delete --purge --dry-run".into(),
        ..found[0].clone()
    };
    assert_eq!(long.brief(), "cargo run -q -p infra -- schedule delete …");
}
