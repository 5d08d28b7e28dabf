//! CloudWatch Embedded Metric Format (EMF): log lines that CloudWatch Logs turns into metrics,
//! so dashboards and alarms need no log parsing.
//!
//! A [`Record`] is one JSON object: the metric values and dimension values as top-level
//! members, and under `_aws` the instruction to extract them (`Timestamp` in epoch
//! milliseconds, `CloudWatchMetrics[]` with `Namespace`, `Dimensions` — a list of dimension
//! sets, each a list of top-level member names; an empty set means "no dimensions" — and
//! `Metrics[]` with `Name` and `Unit`). The limits of the specification are enforced here: at
//! most 100 metrics per record, at most 100 values per metric (longer series are split across
//! records, each value sent once), at most 30 keys per dimension set, and every dimension key
//! a string member of the record.
//!
//! Specification: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde_json::{Map, Value, json};

/// Metrics per record and values per metric allowed by the specification.
pub const MAX_METRICS: usize = 100;
/// Values of one metric in one record.
pub const MAX_VALUES: usize = 100;
/// Keys in one dimension set.
pub const MAX_DIMENSION_KEYS: usize = 30;

/// CloudWatch units used here (the specification allows all `MetricDatum` units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of events.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A duration in seconds.
    Seconds,
}

impl Unit {
    /// The unit's name in EMF.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// A metric record under construction: namespace, dimensions, and metrics in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    namespace: String,
    dimension_sets: Vec<Vec<String>>,
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, Vec<f64>)>,
    context: Vec<(String, Value)>,
}

impl Record {
    /// A record in `namespace` with the given dimension sets (each a list of dimension keys;
    /// `&[]` for a metric without dimensions). Every key must be given a value with
    /// [`Record::dimension`].
    pub fn new(namespace: &str, dimension_sets: &[&[&str]]) -> Record {
        Record {
            namespace: namespace.to_owned(),
            dimension_sets: dimension_sets
                .iter()
                .map(|set| set.iter().map(|k| (*k).to_owned()).collect())
                .collect(),
            dimensions: Vec::new(),
            metrics: Vec::new(),
            context: Vec::new(),
        }
    }

    /// Sets a dimension's value.
    pub fn dimension(mut self, key: &str, value: &str) -> Record {
        self.dimensions.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a metric with one value.
    pub fn metric(mut self, name: &str, unit: Unit, value: f64) -> Record {
        self.metrics.push((name.to_owned(), unit, vec![value]));
        self
    }

    /// Adds a metric with one value per observation (e.g. one latency per attempt). An empty
    /// series is left out: EMF has no way to say "no observations".
    pub fn values(mut self, name: &str, unit: Unit, values: Vec<f64>) -> Record {
        if !values.is_empty() {
            self.metrics.push((name.to_owned(), unit, values));
        }
        self
    }

    /// Adds a member that is not a metric (ignored by CloudWatch, kept in the log line).
    pub fn context(mut self, key: &str, value: Value) -> Record {
        self.context.push((key.to_owned(), value));
        self
    }

    /// Renders the record as JSON lines (no newline), timestamped `timestamp_ms`. Usually one
    /// line; a metric with more than [`MAX_VALUES`] values continues on further lines that
    /// carry only the rest of its values, so no value is counted twice.
    ///
    /// Fails (with the reason) when the record breaks the specification: a dimension key
    /// without a value, too many keys or metrics, a name colliding with another member, or a
    /// value that is not a finite number.
    pub fn to_lines(&self, timestamp_ms: i64) -> Result<Vec<String>, String> {
        self.check()?;
        let mut chunks: Vec<Vec<(&str, Unit, &[f64])>> = Vec::new();
        for (name, unit, values) in &self.metrics {
            for (i, chunk) in values.chunks(MAX_VALUES).enumerate() {
                if chunks.len() <= i {
                    chunks.push(Vec::new());
                }
                chunks[i].push((name, *unit, chunk));
            }
        }
        chunks
            .iter()
            .map(|metrics| self.line(metrics, timestamp_ms))
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        if self.metrics.len() > MAX_METRICS {
            return Err(format!(
                "{} metrics in one record; at most {MAX_METRICS}",
                self.metrics.len()
            ));
        }
        for set in &self.dimension_sets {
            if set.len() > MAX_DIMENSION_KEYS {
                return Err(format!(
                    "dimension set {set:?} has more than {MAX_DIMENSION_KEYS} keys"
                ));
            }
            for key in set {
                if !self.dimensions.iter().any(|(k, _)| k == key) {
                    return Err(format!("dimension {key:?} has no value"));
                }
            }
        }
        let mut names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        names.extend(self.metrics.iter().map(|(k, _, _)| k.as_str()));
        names.extend(self.context.iter().map(|(k, _)| k.as_str()));
        names.push("_aws");
        let mut sorted = names.clone();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("member {:?} is defined twice", pair[0]));
        }
        if let Some((name, _, _)) = self
            .metrics
            .iter()
            .find(|(_, _, values)| values.iter().any(|v| !v.is_finite()))
        {
            return Err(format!(
                "metric {name:?} has a value that is not a finite number"
            ));
        }
        Ok(())
    }

    fn line(&self, metrics: &[(&str, Unit, &[f64])], timestamp_ms: i64) -> Result<String, String> {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": self.dimension_sets,
                    "Metrics": metrics
                        .iter()
                        .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.as_str() }))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        for (key, value) in &self.dimensions {
            root.insert(key.clone(), Value::String(value.clone()));
        }
        for (key, value) in &self.context {
            root.insert(key.clone(), value.clone());
        }
        for (name, _, values) in metrics {
            root.insert((*name).to_owned(), number_or_array(values));
        }
        serde_json::to_string(&Value::Object(root)).map_err(|e| e.to_string())
    }
}

/// A single value as a number (what CloudWatch's own examples use), several as an array.
fn number_or_array(values: &[f64]) -> Value {
    let number = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            json!(v as i64)
        } else {
            json!(v)
        }
    };
    match values {
        [one] => number(*one),
        many => Value::Array(many.iter().map(|v| number(*v)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap_or(Value::Null)
    }

    #[test]
    fn a_record_has_the_documented_shape() -> Result<(), String> {
        let lines = Record::new("Shop", &[&[], &["Function"]])
            .dimension("Function", "dispatch")
            .metric("Orders", Unit::Count, 3.0)
            .values("Latency", Unit::Milliseconds, vec![12.0, 7.5])
            .context("level", json!("INFO"))
            .to_lines(1_574_109_732_004)?;
        assert_eq!(lines.len(), 1);
        assert_eq!(
            parse(&lines[0]),
            json!({
                "_aws": {
                    "Timestamp": 1_574_109_732_004_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Shop",
                        "Dimensions": [[], ["Function"]],
                        "Metrics": [
                            {"Name": "Orders", "Unit": "Count"},
                            {"Name": "Latency", "Unit": "Milliseconds"},
                        ],
                    }],
                },
                "Function": "dispatch",
                "Orders": 3,
                "Latency": [12, 7.5],
                "level": "INFO",
            })
        );
        assert!(!lines[0].contains('\n'), "one line per record");
        Ok(())
    }

    #[test]
    fn long_series_are_split_without_repeating_values() -> Result<(), String> {
        let latencies: Vec<f64> = (0..250).map(f64::from).collect();
        let lines = Record::new("Shop", &[&[]])
            .metric("Orders", Unit::Count, 1.0)
            .values("Latency", Unit::Milliseconds, latencies.clone())
            .to_lines(0)?;
        assert_eq!(lines.len(), 3);
        let docs: Vec<Value> = lines.iter().map(|l| parse(l)).collect();
        // The single-valued metric is on the first line only, so its sum stays 1.
        assert_eq!(docs[0]["Orders"], json!(1));
        assert!(docs[1].get("Orders").is_none() && docs[2].get("Orders").is_none());
        let names: Vec<Value> = docs
            .iter()
            .map(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"].clone())
            .collect();
        assert_eq!(
            names[1],
            json!([{"Name": "Latency", "Unit": "Milliseconds"}])
        );
        let mut all = Vec::new();
        for doc in &docs {
            let values = doc["Latency"].as_array().cloned().unwrap_or_default();
            assert!(values.len() <= MAX_VALUES);
            all.extend(values.iter().filter_map(Value::as_f64));
        }
        assert_eq!(all, latencies);
        Ok(())
    }

    #[test]
    fn an_empty_series_is_left_out() -> Result<(), String> {
        let lines = Record::new("Shop", &[&[]])
            .metric("Orders", Unit::Count, 0.0)
            .values("Latency", Unit::Milliseconds, Vec::new())
            .to_lines(0)?;
        let doc = parse(&lines[0]);
        assert!(doc.get("Latency").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Orders", "Unit": "Count"}])
        );
        Ok(())
    }

    #[test]
    fn records_that_break_the_specification_are_refused() {
        let err = |r: Record| r.to_lines(0).err().unwrap_or_default();
        assert!(err(Record::new("N", &[&["Function"]])).contains("\"Function\" has no value"));
        assert!(
            err(Record::new("N", &[&[]])
                .dimension("A", "x")
                .metric("A", Unit::Count, 1.0))
            .contains("\"A\" is defined twice")
        );
        assert!(err(Record::new("N", &[&[]]).metric("_aws", Unit::Count, 1.0)).contains("_aws"));
        assert!(
            err(Record::new("N", &[&[]]).metric("M", Unit::Count, f64::NAN))
                .contains("not a finite number")
        );
        let many = (0..=MAX_METRICS).fold(Record::new("N", &[&[]]), |r, i| {
            r.metric(&format!("M{i}"), Unit::Count, 1.0)
        });
        assert!(err(many).contains("at most 100"));
    }
}
