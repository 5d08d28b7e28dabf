//! How the long-running commands are asked to stop: Ctrl-C, or SIGTERM (what process managers
//! and `make demo` send).

/// Completes on the first Ctrl-C or SIGTERM (only Ctrl-C if SIGTERM cannot be watched).
pub async fn stop_requested() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
