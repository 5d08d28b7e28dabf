//! `infra dashboard apply | show | delete` against moto server, one per test: what `apply`
//! wrote is read back with a plain `GetDashboard` call. Then the body itself: every widget's
//! metric is one the functions emit (derived from `delivery`, see `contract`) or one AWS
//! publishes, every emitted metric is shown, the grid holds; and the picture in
//! docs/operations.md is this body drawn with a sample run's numbers.
//!
//! # Layout
//! - `sample`: twelve hours of invocations, written by `delivery::metrics`' own builders.
//! - `picture`: the dashboard drawn as SVG from its body and those numbers.

mod picture;
mod sample;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result, ensure};
use infra::aws::{Clients, sdk_error};
use infra::change::{Change, Report};
use infra::dashboard::{self, DashboardDelete, DashboardSet};
use serde_json::{Value, json};

use crate::contract::{emitted, is_emitted};
use crate::support::aws::{REGION, dashboard_set, emulator, run_cli};

/// The stored body of dashboard `name`, read with a plain SDK call; `None` when absent.
async fn stored(clients: &Clients, name: &str) -> Result<Option<Value>> {
    let got = clients.cloudwatch.get_dashboard().dashboard_name(name);
    match got.send().await {
        Ok(out) => Ok(Some(serde_json::from_str(
            out.dashboard_body().context("a body")?,
        )?)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_dashboard_not_found_error()) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error(e)),
    }
}

fn change(report: &Report) -> &Change {
    assert_eq!(report.items.len(), 1, "{report:?}");
    &report.items[0].change
}

fn changed_fields(report: &Report) -> Vec<&'static str> {
    change(report).fields().iter().map(|c| c.field).collect()
}

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_updates_the_widgets_that_differ() -> Result<()> {
    let (_moto, _, clients) = emulator().await?;
    let wanted = dashboard_set("booking-webhooks");

    let plan = dashboard::apply(
        &clients,
        &DashboardSet {
            dry_run: true,
            ..wanted.clone()
        },
    )
    .await?;
    assert_eq!(change(&plan), &Change::Created);
    assert!(
        plan.to_string()
            .contains("dashboard booking-webhooks: would be created"),
        "{plan}"
    );
    assert_eq!(stored(&clients, "booking-webhooks").await?, None);

    let first = dashboard::apply(&clients, &wanted).await?;
    assert_eq!(change(&first), &Change::Created);
    assert_eq!(
        stored(&clients, "booking-webhooks").await?,
        Some(wanted.wanted(REGION))
    );

    let second = dashboard::apply(&clients, &wanted).await?;
    assert_eq!(change(&second), &Change::Unchanged);
    let arn = second.items[0].arn.as_deref().unwrap_or_default();
    assert!(arn.ends_with(":dashboard/booking-webhooks"), "{arn}");

    // The sweep deployed under another name: only the two AWS/Lambda graphs change.
    let renamed = DashboardSet {
        function_name: "sweeper".into(),
        ..wanted.clone()
    };
    let third = dashboard::apply(&clients, &renamed).await?;
    assert_eq!(
        changed_fields(&third),
        ["Lambda duration", "Lambda invocations and errors"]
    );
    let body = stored(&clients, "booking-webhooks")
        .await?
        .context("stored")?;
    assert!(
        body.to_string().contains(r#""FunctionName","sweeper""#),
        "{body}"
    );

    // Someone widens the time range and adds a graph by hand: apply names both and puts the
    // dashboard back.
    let mut edited = renamed.wanted(REGION);
    edited["start"] = json!("-PT3D");
    let widgets = edited["widgets"].as_array_mut().context("widgets")?;
    widgets.push(json!({ "type": "text", "x": 0, "y": 40, "width": 6, "height": 2, "properties": { "markdown": "mine" } }));
    (clients.cloudwatch.put_dashboard())
        .dashboard_name("booking-webhooks")
        .dashboard_body(edited.to_string())
        .send()
        .await
        .map_err(sdk_error)?;
    let repaired = dashboard::apply(&clients, &renamed).await?;
    assert_eq!(
        changed_fields(&repaired),
        ["start", "widgets added by hand"]
    );
    assert_eq!(
        stored(&clients, "booking-webhooks").await?,
        Some(renamed.wanted(REGION))
    );

    let delete = DashboardDelete {
        name: wanted.name.clone(),
        dry_run: true,
    };
    let plan = dashboard::delete(&clients, &delete).await?;
    assert_eq!(change(&plan), &Change::Deleted);
    assert!(stored(&clients, "booking-webhooks").await?.is_some());
    let delete = DashboardDelete {
        dry_run: false,
        ..delete
    };
    assert_eq!(
        change(&dashboard::delete(&clients, &delete).await?),
        &Change::Deleted
    );
    assert_eq!(stored(&clients, "booking-webhooks").await?, None);
    assert_eq!(
        change(&dashboard::delete(&clients, &delete).await?),
        &Change::Absent
    );
    Ok(())
}

#[tokio::test]
async fn the_command_line_applies_shows_and_deletes_the_dashboard() -> Result<()> {
    let (moto, config, _) = emulator().await?;
    // Every input is a flag, so WEBHOOK_… variables in the developer's shell change nothing.
    let common = [
        "--region",
        REGION,
        "--endpoint-url",
        moto.endpoint.as_str(),
        "--name",
        "bw",
    ];
    let apply = |dry_run: bool| {
        let mut args = vec!["dashboard", "apply", "--dispatch-function-name", "dispatch"];
        args.extend([
            "--function-name",
            "retry-sweep",
            "--group",
            "booking-webhooks",
        ]);
        args.extend(dry_run.then_some("--dry-run"));
        [args.as_slice(), &common].concat()
    };
    let out = run_cli(&config, apply(true)).await?;
    assert_eq!(
        out,
        "dry run: nothing was changed; the plan is\ndashboard bw: would be created\n"
    );
    assert_eq!(
        run_cli(&config, apply(false)).await?,
        "dashboard bw: created\n"
    );
    let out = run_cli(&config, apply(false)).await?;
    assert!(
        out.starts_with("dashboard bw: unchanged (arn:aws:cloudwatch::"),
        "{out}"
    );

    let show = [["dashboard", "show"].as_slice(), &common].concat();
    let shown: Value = serde_json::from_str(&run_cli(&config, show.clone()).await?)?;
    assert_eq!(shown["DashboardName"], "bw");
    assert!(shown["DashboardArn"].is_string(), "{shown}");
    assert_eq!(
        shown["DashboardBody"],
        dashboard_set("booking-webhooks").wanted(REGION)
    );

    let delete = [["dashboard", "delete"].as_slice(), &common].concat();
    assert_eq!(
        run_cli(&config, delete.clone()).await?,
        "dashboard bw: deleted\n"
    );
    assert_eq!(run_cli(&config, delete).await?, "dashboard bw: absent\n");
    let err = run_cli(&config, show)
        .await
        .expect_err("show without a dashboard fails");
    ensure!(err.to_string().contains("infra dashboard apply"), "{err:#}");
    Ok(())
}

/// One series a metric widget asks for: a metric (namespace, name, dimensions, options) or a
/// search expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Series {
    Metric {
        namespace: String,
        name: String,
        dimensions: BTreeMap<String, String>,
        options: Value,
    },
    Search {
        namespace: String,
        keys: BTreeSet<String>,
        name: String,
        options: Value,
    },
}

/// Reads one entry of a widget's `metrics` array, in the forms the body uses:
/// `[namespace, name, (key, value)…, {options}]`, or `[{"expression": "SEARCH(…)", …}]`.
pub(crate) fn series(entry: &Value) -> Series {
    let items = entry.as_array().expect("a metrics entry is an array");
    if let [options] = items.as_slice() {
        let expression = options["expression"].as_str().expect("an expression");
        // SEARCH('{Namespace,Key1,Key2} MetricName="Name"', 'Stat', period)
        let inner = expression
            .strip_prefix("SEARCH('{")
            .and_then(|e| e.split_once('}'))
            .expect("a SEARCH over one schema");
        let mut schema = inner.0.split(',').map(str::to_owned);
        let namespace = schema.next().expect("a namespace");
        let name = inner
            .1
            .split('"')
            .nth(1)
            .expect("MetricName=\"…\"")
            .to_owned();
        let options = options.clone();
        return Series::Search {
            namespace,
            keys: schema.collect(),
            name,
            options,
        };
    }
    let text: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
    let options = items
        .last()
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let [namespace, name, pairs @ ..] = text.as_slice() else {
        panic!("namespace and name: {entry}");
    };
    assert!(pairs.len() % 2 == 0, "dimension pairs: {entry}");
    let dimensions = pairs
        .chunks(2)
        .map(|p| (p[0].to_owned(), p[1].to_owned()))
        .collect();
    Series::Metric {
        namespace: (*namespace).into(),
        name: (*name).into(),
        dimensions,
        options,
    }
}

/// Every series of every metric widget of `body`.
pub(crate) fn all_series(body: &Value) -> Vec<Series> {
    let widgets = body["widgets"].as_array().expect("widgets");
    let graphs = widgets.iter().filter(|w| w["type"] == "metric");
    let entries = graphs.flat_map(|w| {
        w["properties"]["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    });
    entries.map(|e| series(&e)).collect()
}

#[test]
fn every_graph_shows_what_the_functions_emit_or_aws_publishes_and_all_they_emit() {
    let emitted = emitted();
    let wanted = DashboardSet {
        dispatch_function_name: "notify-now".into(),
        function_name: "sweeper".into(),
        ..dashboard_set("webhooks")
    };
    let body = wanted.wanted(REGION);
    let lambda = BTreeSet::from(["Duration", "Errors", "Invocations", "Throttles"]);
    let scheduler = BTreeSet::from([
        "InvocationAttemptCount",
        "TargetErrorCount",
        "InvocationDroppedCount",
        "InvocationThrottleCount",
        "InvocationsSentToDeadLetterCount",
    ]);
    let mut shown = BTreeSet::new();
    for series in all_series(&body) {
        match &series {
            Series::Metric {
                namespace,
                name,
                dimensions,
                ..
            } if namespace == "BookingWebhooks" => {
                assert!(
                    is_emitted(&emitted, namespace, name, dimensions),
                    "no function emits {name} with {dimensions:?}"
                );
                shown.insert(name.clone());
            }
            Series::Metric {
                namespace,
                name,
                dimensions,
                ..
            } if namespace == "AWS/Lambda" => {
                assert!(lambda.contains(name.as_str()), "{series:?}");
                let function = dimensions.get("FunctionName").map(String::as_str);
                assert!(
                    matches!(function, Some("notify-now" | "sweeper")),
                    "{series:?}"
                );
                assert_eq!(dimensions.len(), 1, "{series:?}");
            }
            Series::Metric {
                namespace,
                name,
                dimensions,
                ..
            } if namespace == "AWS/Scheduler" => {
                assert!(scheduler.contains(name.as_str()), "{series:?}");
                let group = BTreeMap::from([("ScheduleGroup".to_owned(), "webhooks".to_owned())]);
                assert_eq!(dimensions, &group, "{series:?}");
            }
            Series::Search {
                namespace,
                keys,
                name,
                ..
            } => {
                let found = emitted.iter().any(|e| {
                    &e.namespace == namespace
                        && &e.name == name
                        && e.dimensions.keys().cloned().collect::<BTreeSet<_>>() == *keys
                });
                assert!(found, "no function emits {name} with dimensions {keys:?}");
                shown.insert(name.clone());
            }
            other => panic!("a metric from nowhere: {other:?}"),
        }
    }
    let names: BTreeSet<String> = emitted.into_iter().map(|e| e.name).collect();
    assert_eq!(
        shown, names,
        "every metric the functions emit is on the dashboard"
    );
}

#[test]
fn the_widgets_are_titled_in_order_and_tile_the_grid_without_overlap() {
    let body = dashboard_set("booking-webhooks").wanted(REGION);
    let widgets = body["widgets"].as_array().expect("widgets");
    let titles: Vec<&str> = widgets
        .iter()
        .map(|w| {
            w["properties"]["title"]
                .as_str()
                .unwrap_or("About this dashboard")
        })
        .collect();
    assert_eq!(titles, dashboard::body::TITLES);
    let mut taken = BTreeSet::new();
    for w in widgets {
        let at = |k: &str| w[k].as_u64().unwrap_or_else(|| panic!("{k} of {w}"));
        let (x, y, width, height) = (at("x"), at("y"), at("width"), at("height"));
        assert!(x + width <= 24, "inside the 24 columns: {w}");
        for cell in (x..x + width).flat_map(|cx| (y..y + height).map(move |cy| (cx, cy))) {
            assert!(taken.insert(cell), "overlap at {cell:?}: {w}");
        }
        if w["type"] == "metric" {
            assert_eq!(w["properties"]["region"], REGION, "{w}");
            assert_eq!(w["properties"]["period"], dashboard::body::PERIOD, "{w}");
        }
    }
    // The backlog graph marks the alarm's threshold, on the axis of the age.
    let annotation = &widgets[2]["properties"]["annotations"]["horizontal"][0];
    assert_eq!(annotation["value"], delivery::posture::BACKLOG_AGE_LIMIT_S);
    assert_eq!(annotation["yAxis"], "right");
}

#[test]
fn a_diff_names_the_widgets_that_differ() {
    let wanted = dashboard_set("booking-webhooks").wanted(REGION);
    let fields = dashboard::fields;
    assert_eq!(
        Change::between(&fields(&wanted), &fields(&wanted)),
        Change::Unchanged
    );
    let elsewhere = dashboard_set("booking-webhooks").wanted("us-east-1");
    let change = Change::between(&fields(&wanted), &fields(&elsewhere));
    let names: Vec<_> = change.fields().iter().map(|c| c.field).collect();
    assert_eq!(
        names,
        &dashboard::body::TITLES[1..],
        "every graph names its region"
    );
    let empty = Change::between(&fields(&json!({})), &fields(&wanted));
    assert_eq!(empty.fields().len(), 2 + dashboard::body::TITLES.len());
}

#[test]
fn the_picture_in_the_docs_is_the_current_body_drawn_with_sample_numbers() {
    let body = dashboard_set("booking-webhooks").wanted(REGION);
    let svg = picture::draw(&body, &sample::run());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/dashboard.svg");
    if std::env::var_os("UPDATE_DASHBOARD_PICTURE").is_some() {
        std::fs::write(path, &svg).expect("write docs/dashboard.svg");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == svg,
        "docs/dashboard.svg is not the current dashboard: redraw it with \
         UPDATE_DASHBOARD_PICTURE=1 cargo nextest run -p tests -E 'test(/dashboard::the_picture/)'"
    );
}
