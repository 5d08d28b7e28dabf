//! One page's commands run as a reader runs them: in one bash at the repository root, in the
//! page's order (what one command exports, the next sees), each one's exit status and output
//! recorded between markers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::blocks::DocCommand;

/// What a page's shell starts with: its environment (nothing else of the test's), and the
/// values the page writes for this machine replaced by the test's own (the docs' local
/// database by a scratch one, say).
#[derive(Debug, Clone, Default)]
pub struct Setting {
    /// Variables of the shell.
    pub env: Vec<(String, String)>,
    /// `(as written, as run)`.
    pub substitutions: Vec<(String, String)>,
}

/// What became of one command.
#[derive(Debug)]
pub struct Outcome {
    /// The command.
    pub command: DocCommand,
    /// Its exit status; `None` when the page's time ran out before it ended.
    pub status: Option<i32>,
    /// What it printed (stdout and stderr, interleaved).
    pub output: String,
}

/// The marker that brackets each command's output; a control character no command prints.
const MARK: char = '\u{1f}';

/// Runs `commands` (all of one page) in `setting`, at most `limit` in all.
pub fn run_page(
    root: &Path,
    commands: &[DocCommand],
    setting: &Setting,
    limit: Duration,
) -> Vec<Outcome> {
    let mut script = String::from("exec 2>&1 </dev/null\n");
    for (i, command) in commands.iter().enumerate() {
        let mut text = command.text.clone();
        for (written, run) in &setting.substitutions {
            text = text.replace(written, run);
        }
        script.push_str(&format!(
            "printf '\\n\\x1fbegin {i}\\n'\n{text}\n__status=$?\nprintf '\\n\\x1fend {i} %s\\n' \"$__status\"\n"
        ));
    }
    let log = std::env::temp_dir().join(format!(
        "docs-{}-{}.log",
        std::process::id(),
        commands
            .first()
            .map_or("none", |c| c.page.as_str())
            .replace('/', "-")
    ));
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .current_dir(root)
        .env_clear()
        .envs(setting.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("run bash");
    let started = Instant::now();
    while child.try_wait().expect("wait for bash").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20)); // polling a child process
    }
    let printed = std::fs::read(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    outcomes(commands, &String::from_utf8_lossy(&printed))
}

/// Each command's status and output, read from the markers in `printed`.
fn outcomes(commands: &[DocCommand], printed: &str) -> Vec<Outcome> {
    let mut found: Vec<(Option<i32>, String)> = vec![(None, String::new()); commands.len()];
    let mut current: Option<usize> = None;
    for line in printed.lines() {
        match line.strip_prefix(MARK) {
            Some(marker) => {
                let words: Vec<&str> = marker.split(' ').collect();
                match words.as_slice() {
                    ["begin", i] => current = i.parse().ok(),
                    ["end", i, status] => {
                        if let Some(slot) = i.parse::<usize>().ok().and_then(|i| found.get_mut(i)) {
                            slot.0 = status.parse().ok();
                        }
                        current = None;
                    }
                    _ => {}
                }
            }
            None => {
                if let Some(slot) = current.and_then(|i| found.get_mut(i)) {
                    slot.1.push_str(line);
                    slot.1.push('\n');
                }
            }
        }
    }
    commands
        .iter()
        .cloned()
        .zip(found)
        .map(|(command, (status, output))| Outcome {
            command,
            status,
            output: output.trim().to_owned(),
        })
        .collect()
}
