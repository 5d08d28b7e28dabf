//! `infra`: deploy-time code of the booking webhooks. It creates and keeps in line the
//! EventBridge Scheduler schedule that invokes the `retry-sweep` Lambda function every ten
//! minutes (in the cloud nothing runs the sweep unless this schedule exists), the CloudWatch
//! alarms that say when deliveries fail or stall, and the dashboard beside them.
//!
//! `infra schedule apply`, `infra alarms apply` and `infra dashboard apply` are idempotent:
//! each reads first, creates what is missing, updates only what differs, and reports each
//! resource as created, updated (with the fields that changed) or unchanged (`--dry-run`
//! reports without writing).
//! AWS access uses the standard credential chain and honours `AWS_ENDPOINT_URL`, so the
//! integration tests run it against moto.
//!
//! # Layout
//! Each module imports only those below it:
//! - [`cli`]: the `infra` command line; flags with `WEBHOOK_…`/`AWS_…` fallbacks.
//! - [`schedule`]: the wanted schedule, built in the SDK's types; apply/show/delete.
//!   - [`schedule::role`]: the IAM execution role Scheduler assumes (trust + least-privilege
//!     policy).
//!   - [`schedule::target`]: the function the schedule invokes, resolved and checked.
//!   - [`schedule::group`]: the schedule group, created when missing, purged only when empty.
//! - [`alarms`]: the CloudWatch alarms on the functions' metrics and on AWS's own.
//! - [`dashboard`]: the CloudWatch dashboard beside the alarms; apply/show/delete.
//!   - [`dashboard::body`]: its widgets, on the metrics of METRICS.md and AWS's own.
//! - [`metrics`]: the values of METRICS.md that the alarms and the dashboard repeat.
//! - [`change`]: created / updated (which fields) / unchanged, deleted / absent / kept.
//! - [`aws`]: SDK configuration, clients, and SDK errors as messages.
//! - `args`: command-line values as the commands read them ("" is unset).
//!
//! The optional SQL that wakes `dispatch` from Postgres in the cloud lives in `infra/sql/`,
//! apart from the default migrations; docs/deploy.md explains it.

pub mod alarms;
mod args;
pub mod aws;
pub mod change;
pub mod cli;
pub mod dashboard;
pub mod metrics;
pub mod schedule;
