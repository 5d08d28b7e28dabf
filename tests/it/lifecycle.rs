//! The second time through (issue 20): adopting again after a rollback, repairing by the
//! doctor's advice, upgrading a database that an intermediate build migrated, applying by hand
//! with psql, and keeping released migrations append-only.
//!
//! # Layout
//! - `ledger`: released migrations are never edited; new ones come last.
//! - `history`: a database an intermediate build migrated, brought up by `--repair`;
//!   `--print-sql` applied with psql, then doctor.
//! - `repair`: doctor's advice followed literally, on a dropped trigger and on capture
//!   functions replaced by V3's text.
//! - `cycles`: adopt → roll back → adopt …; decisions judged with today's booking; the old
//!   sender stopped before the takeover.

mod cycles;
mod history;
mod ledger;
mod repair;
