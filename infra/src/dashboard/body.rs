//! The dashboard's body: its widgets, each a graph of the functions' metrics (METRICS.md) or of
//! AWS's own, laid out on CloudWatch's 24-column grid, in the JSON of the `PutDashboard` API
//! ("Dashboard Body Structure and Syntax").

use serde_json::{Value, json};

use crate::metrics::{BACKLOG_AGE_LIMIT_S, BREAKER_OPEN_LIMIT_S, FUNCTIONS, NAMESPACE};

/// The title of every widget, in the order of the body: what `apply` compares one by one.
pub const TITLES: [&str; 12] = [
    "About this dashboard",
    "Deliveries by outcome",
    "Backlog: due deliveries and the oldest one's age",
    "Retrying, by webhook type",
    "Failed, by webhook type",
    "Attempt latency",
    "Invocation errors (the functions' own count)",
    "Lambda duration",
    "Lambda invocations and errors",
    "Scheduler: invoking the retry sweep",
    "Reclaimed leases and missing deliveries",
    "Notification service: breaker, held deliveries, pacing",
];

/// Every graph's period, in seconds: one sweep in each (at 5 minutes, every other point holds
/// a sweep and the graphs zigzag).
pub const PERIOD: u32 = 600;

const GREEN: &str = "#2ca02c";
const ORANGE: &str = "#ff7f0e";
const RED: &str = "#d62728";
const GREY: &str = "#7f7f7f";
const PURPLE: &str = "#9467bd";
const BLUE: &str = "#1f77b4";

/// What the body names: the region of every graph, the deployed names of the two functions
/// (for `AWS/Lambda`) and the schedule group (for `AWS/Scheduler`).
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// The region the metrics are in.
    pub region: &'a str,
    /// The deployed name of the dispatch function.
    pub dispatch: &'a str,
    /// The deployed name of the retry-sweep function.
    pub sweep: &'a str,
    /// The schedule group of the sweep's schedule.
    pub group: &'a str,
}

/// The whole body: the last 12 hours, each graph at its own period.
pub fn body(names: Names) -> Value {
    let [
        about,
        outcomes,
        backlog,
        retrying,
        failed,
        latency,
        errors,
        duration,
        invocations,
        scheduler,
        rest,
        service,
    ] = TITLES;
    let graph = |title, at, properties| metric_widget(names.region, title, at, properties);
    let lambda = |metric: &str, stat: &str, what: &str| -> Vec<Value> {
        let functions = [names.dispatch, names.sweep].into_iter();
        let label = |f: &str| format!("{f} {what}");
        functions
            .map(|f| json!(["AWS/Lambda", metric, "FunctionName", f, { "stat": stat, "label": label(f) }]))
            .collect()
    };
    let scheduler_metric = |metric: &str, label: &str, color: &str| json!(["AWS/Scheduler", metric, "ScheduleGroup", names.group, { "label": label, "color": color }]);
    let by_function = |metric: &str| -> Vec<Value> {
        let functions = FUNCTIONS.into_iter();
        functions
            .map(|f| json!([NAMESPACE, metric, "Function", f, { "label": f }]))
            .collect()
    };
    let widgets = vec![
        json!({
            "type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
            "properties": { "markdown": format!(
                "## {about}\nBooking webhooks: the `dispatch` and `retry-sweep` functions. \
                 Metrics: METRICS.md in the repository; what each alarm means and what to do: \
                 docs/operations.md, \"Alarms\". Managed by `infra dashboard apply`: edits made \
                 here are overwritten."
            ) },
        }),
        graph(
            outcomes,
            (0, 2, 12, 6),
            json!({
                "stat": "Sum", "stacked": true,
                "metrics": [
                    ours("DeliveriesSucceeded", "succeeded", GREEN),
                    ours("DeliveriesRetrying", "retrying", ORANGE),
                    ours("DeliveriesFailed", "failed", RED),
                    ours("DeliveriesSkipped", "skipped", GREY),
                    ours("DeliveriesSuperseded", "superseded", PURPLE),
                ],
                "yAxis": { "left": { "min": 0, "label": "deliveries", "showUnits": false } },
            }),
        ),
        graph(
            backlog,
            (12, 2, 12, 6),
            json!({
                "stat": "Maximum",
                "metrics": [
                    ours("DueBacklog", "due deliveries", BLUE),
                    json!([NAMESPACE, "OldestDueAge", { "label": "oldest due (s)", "color": ORANGE, "yAxis": "right" }]),
                ],
                "annotations": { "horizontal": [{
                    "label": "backlog-age alarm", "value": BACKLOG_AGE_LIMIT_S, "color": RED, "yAxis": "right",
                }] },
                "yAxis": {
                    "left": { "min": 0, "label": "deliveries", "showUnits": false },
                    "right": { "min": 0, "label": "seconds", "showUnits": false },
                },
            }),
        ),
        graph(
            retrying,
            (0, 8, 12, 6),
            json!({
                "stat": "Sum",
                "metrics": [search("DeliveriesRetrying")],
                "yAxis": { "left": { "min": 0, "label": "deliveries", "showUnits": false } },
            }),
        ),
        graph(
            failed,
            (12, 8, 12, 6),
            json!({
                "stat": "Sum",
                "metrics": [search("DeliveriesFailed")],
                "yAxis": { "left": { "min": 0, "label": "deliveries", "showUnits": false } },
            }),
        ),
        graph(
            latency,
            (0, 14, 8, 6),
            json!({
                "stat": "p50",
                "metrics": [
                    json!([NAMESPACE, "AttemptLatency", { "stat": "p50", "label": "p50", "color": BLUE }]),
                    json!([NAMESPACE, "AttemptLatency", { "stat": "p99", "label": "p99", "color": RED }]),
                ],
                "yAxis": { "left": { "min": 0, "label": "ms", "showUnits": false } },
            }),
        ),
        graph(
            errors,
            (8, 14, 8, 6),
            json!({
                "stat": "Sum", "metrics": by_function("InvocationErrors"),
                "yAxis": { "left": { "min": 0, "label": "invocations", "showUnits": false } },
            }),
        ),
        graph(
            duration,
            (16, 14, 8, 6),
            json!({
                "stat": "Maximum",
                "metrics": ([lambda("Duration", "Average", "average"), lambda("Duration", "Maximum", "max")]).concat(),
                "yAxis": { "left": { "min": 0, "label": "ms", "showUnits": false } },
            }),
        ),
        graph(
            invocations,
            (0, 20, 8, 6),
            json!({
                "stat": "Sum",
                "metrics": ([lambda("Invocations", "Sum", "invocations"), lambda("Errors", "Sum", "errors")]).concat(),
                "yAxis": { "left": { "min": 0, "label": "invocations", "showUnits": false } },
            }),
        ),
        graph(
            scheduler,
            (8, 20, 8, 6),
            json!({
                "stat": "Sum",
                "metrics": [
                    scheduler_metric("InvocationAttemptCount", "attempts", BLUE),
                    scheduler_metric("TargetErrorCount", "target errors", RED),
                    scheduler_metric("InvocationDroppedCount", "dropped", PURPLE),
                ],
                "yAxis": { "left": { "min": 0, "label": "invocations", "showUnits": false } },
            }),
        ),
        graph(
            rest,
            (16, 20, 8, 6),
            json!({
                "stat": "Sum",
                "metrics": [
                    ours("Reclaimed", "reclaimed leases", ORANGE),
                    json!([NAMESPACE, "MissingDeliveries", { "stat": "Maximum", "label": "missing deliveries", "color": RED }]),
                ],
                "yAxis": { "left": { "min": 0, "showUnits": false } },
            }),
        ),
        graph(
            service,
            (0, 26, 24, 6),
            json!({
                "stat": "Maximum",
                "metrics": [
                    json!([NAMESPACE, "HeldDeliveries", { "label": "held deliveries", "color": ORANGE }]),
                    json!([NAMESPACE, "ThrottledSends", { "stat": "Sum", "label": "paced requests", "color": BLUE }]),
                    json!([NAMESPACE, "HoldsExpired", { "stat": "Sum", "label": "failed after WEBHOOK_HOLD_MAX", "color": RED }]),
                    json!([NAMESPACE, "EndpointPaused", { "label": "paused (1)", "color": GREY }]),
                    json!([NAMESPACE, "BreakerOpen", { "label": "breaker open (1)", "color": PURPLE }]),
                    json!([NAMESPACE, "BreakerOpenFor", { "label": "open for (s)", "color": RED, "yAxis": "right" }]),
                ],
                "annotations": { "horizontal": [{
                    "label": "breaker-open alarm", "value": BREAKER_OPEN_LIMIT_S, "color": RED, "yAxis": "right",
                }] },
                "yAxis": {
                    "left": { "min": 0, "label": "deliveries", "showUnits": false },
                    "right": { "min": 0, "label": "seconds", "showUnits": false },
                },
            }),
        ),
    ];
    json!({ "start": "-PT12H", "periodOverride": "inherit", "widgets": widgets })
}

/// A metric widget: a time series titled `title` at `(x, y, width, height)` on the grid.
fn metric_widget(region: &str, title: &str, at: (u8, u8, u8, u8), properties: Value) -> Value {
    let mut properties = properties;
    properties["title"] = json!(title);
    properties["region"] = json!(region);
    properties["view"] = json!("timeSeries");
    properties["period"] = json!(PERIOD);
    let (x, y, width, height) = at;
    json!({ "type": "metric", "x": x, "y": y, "width": width, "height": height, "properties": properties })
}

/// One of the functions' metrics, both functions together (the dimensionless set).
fn ours(metric: &str, label: &str, color: &str) -> Value {
    json!([NAMESPACE, metric, { "label": label, "color": color }])
}

/// Every series of `metric` per webhook type and function, whichever types exist: a search, so
/// a new type shows up without a change here.
fn search(metric: &str) -> Value {
    let expression = format!(
        "SEARCH('{{{NAMESPACE},Function,WebhookType}} MetricName=\"{metric}\"', 'Sum', {PERIOD})"
    );
    let label = "${PROP('Dim.WebhookType')} (${PROP('Dim.Function')})";
    json!([{ "expression": expression, "id": "e1", "label": label, "period": PERIOD }])
}
