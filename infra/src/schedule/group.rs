//! The schedule group: created when missing, deleted by `delete --purge` only when empty,
//! since deleting a group deletes every schedule in it.

use anyhow::{Context as _, bail};

use crate::aws::{Clients, none_if_not_found, sdk_error};
use crate::change::Change;

/// Default schedule group: our own rather than `default`, so that it scopes the execution
/// role's trust and a teardown removes everything with it.
pub const DEFAULT_GROUP: &str = "booking-webhooks";

/// The group every account has; it can be neither created nor deleted.
const AWS_DEFAULT_GROUP: &str = "default";

/// Creates `group` unless it exists; with `dry_run`, only reads. Fails on AWS errors, and
/// when the group is being deleted.
pub async fn ensure(clients: &Clients, group: &str, dry_run: bool) -> anyhow::Result<Change> {
    if group == AWS_DEFAULT_GROUP || exists(clients, group).await? {
        return Ok(Change::Unchanged);
    }
    if !dry_run {
        let created = clients.scheduler.create_schedule_group().name(group);
        (created.send().await.map_err(sdk_error))
            .with_context(|| format!("creating schedule group {group}"))?;
    }
    Ok(Change::Created)
}

async fn exists(clients: &Clients, group: &str) -> anyhow::Result<bool> {
    let got = clients.scheduler.get_schedule_group().name(group);
    let got = (none_if_not_found(got.send().await))
        .with_context(|| format!("reading schedule group {group}"))?;
    // A group being deleted still answers, but schedules cannot be created in it.
    if got.as_ref().and_then(|g| g.state()).map(|s| s.as_str()) == Some("DELETING") {
        bail!("schedule group {group} is being deleted; run apply again once it is gone");
    }
    Ok(got.is_some())
}

/// Deletes `group` unless it is `default` or holds a schedule other than `ours` (then
/// [`Change::Kept`], with the reason); with `dry_run`, only reads. Fails on AWS errors.
pub async fn purge(
    clients: &Clients,
    group: &str,
    ours: &str,
    dry_run: bool,
) -> anyhow::Result<Change> {
    let scheduler = &clients.scheduler;
    if group == AWS_DEFAULT_GROUP {
        return Ok(Change::Kept(
            "the default group cannot be deleted".to_owned(),
        ));
    }
    if !exists(clients, group).await? {
        return Ok(Change::Absent);
    }
    // Every page: a group may hold more schedules than one answer lists.
    let list = scheduler.list_schedules().group_name(group);
    let listed: Result<Vec<_>, _> = list.into_paginator().items().send().collect().await;
    let listed = (listed.map_err(sdk_error)).with_context(|| format!("listing group {group}"))?;
    let names = listed.into_iter().filter_map(|s| s.name);
    let others: Vec<_> = names.filter(|n| n != ours).collect();
    if !others.is_empty() {
        return Ok(Change::Kept(format!(
            "it still holds {}",
            others.join(", ")
        )));
    }
    if !dry_run {
        let deleted = scheduler.delete_schedule_group().name(group).send().await;
        (deleted.map_err(sdk_error)).with_context(|| format!("deleting schedule group {group}"))?;
    }
    Ok(Change::Deleted)
}
