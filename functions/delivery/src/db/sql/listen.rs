//! The NOTIFY channels: the capture wake-up that `webhooks listen` follows, and the probe that
//! tells a session from a transaction pooler.

/// The NOTIFY channel the capture triggers send delivery ids on (see `V3__capture_triggers`).
pub const CAPTURE_CHANNEL: &str = "webhook_delivery";

/// The subscription to [`CAPTURE_CHANNEL`].
pub const CAPTURE_LISTEN: &str = "LISTEN webhook_delivery";

/// The channel `listen` checks its connection with: a NOTIFY sent from another connection
/// must reach it, or the connection is not a session (see [`crate::listen`]).
pub const SESSION_PROBE_CHANNEL: &str = "webhook_session_probe";

/// The subscription to [`SESSION_PROBE_CHANNEL`].
pub const SESSION_PROBE_LISTEN: &str = "LISTEN webhook_session_probe";

/// The end of [`SESSION_PROBE_LISTEN`].
pub const SESSION_PROBE_UNLISTEN: &str = "UNLISTEN webhook_session_probe";

/// Sends the token `$1` on [`SESSION_PROBE_CHANNEL`].
pub const SESSION_PROBE: &str = "SELECT pg_notify('webhook_session_probe', $1)";
