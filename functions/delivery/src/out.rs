//! Standard output of the command line. A reader that quits early (`webhooks stats | head -1`,
//! `… | less` closed before the end) closes the pipe: that ends the output, not the command.
//! `println!` would panic there (exit 101, a stack trace) — after `migrate --adopt-seed` had
//! committed, a script would believe the adoption failed. Here the first failed write closes
//! the output for good, the command goes on, and its exit code says what it did.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` as it is.
pub fn print(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        CLOSED.store(true, Ordering::Relaxed);
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("stdout: {err}; no more output");
        }
    }
}

/// Writes `text` and a newline.
pub fn line(text: &str) {
    print(&format!("{text}\n"));
}

/// True once a write failed (the reader went away).
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}
