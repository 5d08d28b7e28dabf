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

/// Whether this database has the listener's flag (V18), a sequence; an older schema does not
/// (nor one where something else took its name), and listen then only follows NOTIFYs.
pub const LISTENER_FLAG_EXISTS: &str = "SELECT coalesce((SELECT relkind = 'S' FROM pg_class \
     WHERE oid = to_regclass('webhook_listener_awake_until')), false)";

/// Raises the listener's flag: the capture triggers skip NOTIFY until `$1` milliseconds from
/// now on the database's clock (V18). Returns the value set, which [`LISTENER_ASLEEP`] takes.
/// `setval` is not transactional: every session sees it at once, whatever this one does next.
pub const LISTENER_AWAKE: &str = "SELECT setval('webhook_listener_awake_until', \
     (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $1::bigint)";

/// Lowers the flag if it still holds `$1`, the value this listener set (another listener may
/// have set its own since, which is left alone); whatever it holds when `$1` is NULL (a
/// listener starting: one that died polling may have left it raised).
pub const LISTENER_ASLEEP: &str = "SELECT setval('webhook_listener_awake_until', 0) \
     WHERE $1::bigint IS NULL \
        OR pg_sequence_last_value('webhook_listener_awake_until') = $1::bigint";

/// The transactions running now (their 64-bit ids), taken right after [`LISTENER_ASLEEP`]: a
/// booking that read the flag raised and did not NOTIFY is one of them, or has committed.
pub const RUNNING_TRANSACTIONS: &str =
    "SELECT ARRAY(SELECT txid_snapshot_xip(txid_current_snapshot()))";

/// Which of the transactions `$1` are still running.
pub const STILL_RUNNING: &str = "SELECT ARRAY(SELECT x FROM unnest($1::bigint[]) AS x \
     WHERE txid_status(x) = 'in progress')";
