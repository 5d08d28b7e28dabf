//! Ids as typed on the command line — whole, or the first digits that the tables, the demo and
//! the receiver print — resolved to whole ids before a command does anything. An id that names
//! no delivery is a problem found (exit 1); one that names several could not run (exit 2).

use delivery::ops::ids::{IdPrefix, Named, resolve_ids};
use tokio_postgres::Client;

/// The deliveries `given` name, in order; `None` when some name none (said on stderr).
pub(crate) async fn resolve(
    db: &Client,
    given: &[IdPrefix],
) -> Result<Option<Vec<Named>>, Box<dyn std::error::Error>> {
    match resolve_ids(db, given).await? {
        Ok(named) => Ok(Some(named)),
        Err(unresolved) if unresolved.ambiguous.is_empty() => {
            eprintln!("{unresolved}");
            Ok(None)
        }
        Err(unresolved) => Err(unresolved.to_string().into()),
    }
}
