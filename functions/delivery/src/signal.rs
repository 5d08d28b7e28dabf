//! How the long-running commands are asked to stop: Ctrl-C, or SIGTERM (what process managers
//! and `make demo` send).

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Completes on the first Ctrl-C or SIGTERM. Both are watched from the moment this is
/// called, not from the first poll: a command that is still connecting when the signal comes
/// (its shutdown future not yet awaited) would otherwise die by the signal's default action.
/// A signal that cannot be watched is ignored here (it keeps its default action).
pub fn stop_requested() -> impl Future<Output = ()> {
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        let received = |watched: Option<tokio::signal::unix::Signal>| async move {
            match watched {
                Some(mut watched) => {
                    watched.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
        }
    }
}
