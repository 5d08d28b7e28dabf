//! The CloudWatch dashboard beside the alarms: `infra dashboard apply | show | delete`. The
//! wanted body ([`body::body`]) is compared with the stored one widget by widget ([`fields`])
//! and written whole (`PutDashboard`) when missing or different. What it shows: METRICS.md,
//! "The dashboard", and docs/operations.md, "Dashboard".

use anyhow::Context as _;
use aws_sdk_cloudwatch::operation::get_dashboard::GetDashboardOutput;
use clap::Args;
use serde_json::{Value, json};

use crate::aws::{Clients, none_if_not_found, sdk_error};
use crate::change::{Change, Field, Missing, Report};
use crate::schedule::group::DEFAULT_GROUP;

pub mod body;

use body::{Names, TITLES};

/// Which dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DashboardName {
    /// Dashboard name.
    #[arg(
        long,
        env = "WEBHOOK_DASHBOARD_NAME",
        default_value = "booking-webhooks"
    )]
    pub name: String,
}

/// What the dashboard must show: the arguments of `infra dashboard apply`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DashboardSet {
    #[command(flatten)]
    pub name: DashboardName,
    /// Name of the dispatch function, whose `AWS/Lambda` duration and errors it shows.
    #[arg(
        long,
        env = "WEBHOOK_DISPATCH_FUNCTION_NAME",
        default_value = "dispatch"
    )]
    pub dispatch_function_name: String,
    /// Name of the retry-sweep function, whose `AWS/Lambda` duration and errors it shows.
    #[arg(
        long,
        env = "WEBHOOK_SWEEP_FUNCTION_NAME",
        default_value = "retry-sweep"
    )]
    pub function_name: String,
    /// Schedule group of the sweep's schedule, whose `AWS/Scheduler` metrics it shows.
    #[arg(long, env = "WEBHOOK_SCHEDULE_GROUP", default_value = DEFAULT_GROUP)]
    pub group: String,
    /// Only read, and print what would change.
    #[arg(long)]
    pub dry_run: bool,
}

impl DashboardSet {
    /// The body the dashboard must have, for metrics in `region`.
    pub fn wanted(&self, region: &str) -> Value {
        body::body(Names {
            region,
            dispatch: self.dispatch_function_name.trim(),
            sweep: self.function_name.trim(),
            group: self.group.trim(),
        })
    }
}

/// What `apply` compares: the time range, then each widget of ours by title (at its place in
/// the body), then any widget added after ours (by hand: `apply` removes it).
pub fn fields(body: &Value) -> Vec<Field> {
    let widgets = body["widgets"].as_array().map_or(&[][..], Vec::as_slice);
    let mut fields = vec![
        ("start", body["start"].clone()),
        ("periodOverride", body["periodOverride"].clone()),
    ];
    for (i, title) in TITLES.into_iter().enumerate() {
        fields.push((title, widgets.get(i).cloned().unwrap_or(Value::Null)));
    }
    let added = widgets.get(TITLES.len()..).filter(|rest| !rest.is_empty());
    fields.push(("widgets added by hand", json!(added)));
    fields
}

/// The dashboard as stored, or `None` if it does not exist.
async fn get(clients: &Clients, name: &str) -> anyhow::Result<Option<GetDashboardOutput>> {
    let got = clients.cloudwatch.get_dashboard().dashboard_name(name);
    none_if_not_found(got.send().await).with_context(|| format!("reading dashboard {name}"))
}

/// A stored body as JSON; one that is not (CloudWatch validates, so never) differs from ours
/// in every field, and `apply` rewrites it.
fn stored_body(dashboard: &GetDashboardOutput) -> Value {
    let text = dashboard.dashboard_body().unwrap_or_default();
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Makes the dashboard exist exactly as `wanted` says, reported created, updated (with the
/// widgets that changed) or unchanged; writes only when it differs, nothing with `dry_run`.
/// Fails on AWS errors, and when CloudWatch refuses the body.
pub async fn apply(clients: &Clients, wanted: &DashboardSet) -> anyhow::Result<Report> {
    let name = wanted.name.name.trim();
    let body = wanted.wanted(&clients.region);
    let existing = get(clients, name).await?;
    let now = existing.as_ref().map(stored_body);
    let change = Change::plan(now.as_ref(), &body, fields);
    if change != Change::Unchanged && !wanted.dry_run {
        let put = clients.cloudwatch.put_dashboard().dashboard_name(name);
        let put = put.dashboard_body(body.to_string()).send().await;
        let put = put.map_err(sdk_error);
        let put = put.with_context(|| format!("writing dashboard {name}"))?;
        // Warnings only: a body CloudWatch cannot use is refused with an error.
        for message in put.dashboard_validation_messages() {
            let (path, text) = (message.data_path(), message.message());
            tracing::warn!(
                "dashboard {name}: {} {}",
                path.unwrap_or(""),
                text.unwrap_or("")
            );
        }
    }
    let arn = existing.and_then(|d| d.dashboard_arn);
    let mut report = Report::new(wanted.dry_run);
    report.push("dashboard", name, arn, change);
    Ok(report)
}

/// The dashboard as `show` prints it: name, ARN and body (as JSON, not a string). Fails with
/// [`Missing`] when it does not exist, and on AWS errors.
pub async fn show(clients: &Clients, name: &DashboardName) -> anyhow::Result<Value> {
    let name = name.name.trim();
    let dashboard = get(clients, name).await?;
    let missing = || {
        Missing(format!(
            "dashboard {name} does not exist: run `infra dashboard apply`"
        ))
    };
    let dashboard = dashboard.ok_or_else(missing)?;
    Ok(json!({
        "DashboardName": dashboard.dashboard_name(),
        "DashboardArn": dashboard.dashboard_arn(),
        "DashboardBody": stored_body(&dashboard),
    }))
}

/// What `infra dashboard delete` removes.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DashboardDelete {
    #[command(flatten)]
    pub name: DashboardName,
    /// Only read, and print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Deletes the dashboard; one that does not exist is reported absent. Fails on AWS errors.
pub async fn delete(clients: &Clients, options: &DashboardDelete) -> anyhow::Result<Report> {
    let name = options.name.name.trim();
    let exists = get(clients, name).await?.is_some();
    if exists && !options.dry_run {
        // Someone else deleting it in between gives the same result: not an error.
        let delete = clients.cloudwatch.delete_dashboards().dashboard_names(name);
        none_if_not_found(delete.send().await)
            .with_context(|| format!("deleting dashboard {name}"))?;
    }
    let change = if exists {
        Change::Deleted
    } else {
        Change::Absent
    };
    let mut report = Report::new(options.dry_run);
    report.push("dashboard", name, None, change);
    Ok(report)
}
