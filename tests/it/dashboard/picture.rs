//! The dashboard drawn as SVG from its body, the way CloudWatch lays it out: each widget at its
//! place on the 24-column grid, each series resolved from the sample's datapoints with the
//! series' statistic per 5-minute period (a search becomes one series per match, labelled
//! from its dynamic label), stacked where the widget says, annotations as dashed lines. No
//! fonts or network: plain SVG text, so the picture is the same on every machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::sample::{PERIODS, Point};
use super::{Series, series};

const COLUMN: f64 = 40.0; // pixels per grid column
const ROW: f64 = 34.0; // pixels per grid row
const MARGIN: f64 = 8.0;
const HEADER: f64 = 28.0;
const CHAR: f64 = 6.1; // width of a character at 11px, roughly
const PALETTE: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// One line of a graph: its label, colour, axis and a value per period (`None`: no data).
struct Line {
    label: String,
    color: String,
    right: bool,
    values: Vec<Option<f64>>,
}

/// `stat` of `values`: Sum, Maximum, Minimum, Average, SampleCount or a percentile `pNN`.
fn statistic(stat: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(match stat {
        "Sum" => values.iter().sum(),
        "Maximum" => sorted[sorted.len() - 1],
        "Minimum" => sorted[0],
        "Average" => values.iter().sum::<f64>() / values.len() as f64,
        "SampleCount" => values.len() as f64,
        p => {
            let rank: f64 = p.trim_start_matches('p').parse().expect("a percentile");
            let index = ((rank / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        }
    })
}

/// The values of `points` in each of the graph's periods (`per` sample periods each), under
/// `stat`.
fn per_period(points: &[&Point], stat: &str, per: usize) -> Vec<Option<f64>> {
    let mut periods = vec![Vec::new(); PERIODS / per];
    for p in points {
        periods[p.period / per].extend(&p.values);
    }
    periods.iter().map(|v| statistic(stat, v)).collect()
}

/// Sample periods (5 minutes) in one of the graph's periods.
fn sample_periods(properties: &Value) -> usize {
    let seconds = properties["period"].as_u64().unwrap_or(300) as usize;
    (seconds / 300).max(1)
}

/// The lines a widget's series draw, in order; `stat` is the widget's default statistic.
fn lines(properties: &Value, points: &[Point]) -> Vec<Line> {
    let default_stat = properties["stat"].as_str().unwrap_or("Average");
    let per = sample_periods(properties);
    let entries = properties["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut lines = Vec::new();
    for entry in &entries {
        let color = |o: &Value, n: usize| {
            let fallback = PALETTE[n % PALETTE.len()];
            o["color"].as_str().unwrap_or(fallback).to_owned()
        };
        match series(entry) {
            Series::Metric {
                namespace,
                name,
                dimensions,
                options,
            } => {
                let stat = options["stat"].as_str().unwrap_or(default_stat);
                let matching: Vec<&Point> = (points.iter())
                    .filter(|p| p.metric.namespace == namespace && p.metric.name == name)
                    .filter(|p| p.metric.dimensions == dimensions)
                    .collect();
                lines.push(Line {
                    label: options["label"].as_str().unwrap_or(&name).to_owned(),
                    color: color(&options, lines.len()),
                    right: options["yAxis"] == "right",
                    values: per_period(&matching, stat, per),
                });
            }
            Series::Search {
                namespace,
                keys,
                name,
                options,
            } => {
                let expression = options["expression"].as_str().unwrap_or_default();
                let stat = expression
                    .split("', '")
                    .nth(1)
                    .and_then(|s| s.split('\'').next());
                let mut groups: BTreeMap<_, Vec<&Point>> = BTreeMap::new();
                for p in points
                    .iter()
                    .filter(|p| p.metric.namespace == namespace && p.metric.name == name)
                {
                    if p.metric.dimensions.keys().eq(keys.iter()) {
                        groups
                            .entry(p.metric.dimensions.clone())
                            .or_default()
                            .push(p);
                    }
                }
                for (dimensions, matching) in groups {
                    let mut label = options["label"].as_str().unwrap_or(&name).to_owned();
                    for (key, value) in &dimensions {
                        label = label.replace(&format!("${{PROP('Dim.{key}')}}"), value);
                    }
                    let color = PALETTE[lines.len() % PALETTE.len()].to_owned();
                    let values = per_period(&matching, stat.unwrap_or(default_stat), per);
                    lines.push(Line {
                        label,
                        color,
                        right: false,
                        values,
                    });
                }
            }
        }
    }
    lines
}

/// A round number at or above `max`, for the top of an axis.
fn axis_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(max.log10().floor());
    let top = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * step)
        .find(|t| *t >= max);
    top.unwrap_or(10.0 * step)
}

fn number(v: f64) -> String {
    match v {
        v if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        v if v >= 1000.0 => format!("{:.1}k", v / 1000.0),
        v if v.fract() == 0.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Draws `body` with the sample's `points`: an SVG document.
pub(crate) fn draw(body: &Value, points: &[Point]) -> String {
    let widgets = body["widgets"].as_array().cloned().unwrap_or_default();
    let bottom = widgets
        .iter()
        .map(|w| w["y"].as_f64().unwrap_or(0.0) + w["height"].as_f64().unwrap_or(0.0));
    let (width, height) = (
        24.0 * COLUMN + 2.0 * MARGIN,
        HEADER + bottom.fold(0.0, f64::max) * ROW + MARGIN,
    );
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#f2f3f3"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{MARGIN}" y="19" font-size="13" font-weight="bold">booking-webhooks</text><text x="{}" y="19" fill="#555">CloudWatch dashboard, drawn from its body with a 12-hour sample run (tests/it/dashboard)</text>"##,
        MARGIN + 150.0
    );
    for widget in &widgets {
        let at = |k: &str| widget[k].as_f64().unwrap_or(0.0);
        let (x, y) = (
            MARGIN + at("x") * COLUMN + 2.0,
            HEADER + at("y") * ROW + 2.0,
        );
        let (w, h) = (at("width") * COLUMN - 4.0, at("height") * ROW - 4.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#fff" stroke="#d5dbdb"/>"##
        );
        let properties = &widget["properties"];
        if widget["type"] == "text" {
            text_widget(&mut svg, properties, (x, y, w));
        } else {
            graph(
                &mut svg,
                properties,
                &lines(properties, points),
                (x, y, w, h),
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn text_widget(svg: &mut String, properties: &Value, (x, y, w): (f64, f64, f64)) {
    let markdown = properties["markdown"].as_str().unwrap_or_default();
    let mut line_y = y + 18.0;
    for paragraph in markdown.lines() {
        let (bold, text) = match paragraph.strip_prefix("## ") {
            Some(title) => (true, title),
            None => (false, paragraph),
        };
        let mut line = String::new();
        let per_line = ((w - 20.0) / CHAR) as usize;
        for word in text.split(' ') {
            if !line.is_empty() && line.len() + word.len() + 1 > per_line {
                let _ = writeln!(
                    svg,
                    r##"<text x="{}" y="{line_y}">{}</text>"##,
                    x + 10.0,
                    escape(&line)
                );
                (line, line_y) = (String::new(), line_y + 15.0);
            }
            line = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
        }
        let weight = if bold {
            r#" font-weight="bold" font-size="12""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{line_y}"{weight}>{}</text>"##,
            x + 10.0,
            escape(&line)
        );
        line_y += 16.0;
    }
}

fn graph(svg: &mut String, properties: &Value, lines: &[Line], (x, y, w, h): (f64, f64, f64, f64)) {
    let title = properties["title"].as_str().unwrap_or_default();
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" font-size="12" font-weight="bold">{}</text>"##,
        x + 8.0,
        y + 16.0,
        escape(title)
    );
    let stacked = properties["stacked"] == true;
    let periods = PERIODS / sample_periods(properties);
    let has_right = lines.iter().any(|l| l.right);
    // Legend rows under the plot.
    let mut legend = Vec::new();
    let (mut lx, mut row) = (0.0, 0.0);
    for line in lines {
        let item = 22.0 + line.label.len() as f64 * CHAR + 10.0;
        if lx > 0.0 && lx + item > w - 16.0 {
            (lx, row) = (0.0, row + 1.0);
        }
        legend.push((lx, row, line));
        lx += item;
    }
    let plot = (
        x + 40.0,
        y + 26.0,
        w - 40.0 - if has_right { 40.0 } else { 12.0 },
    );
    let plot_h = h - 26.0 - 18.0 - (row + 1.0) * 14.0 - 4.0;
    let (px, py, pw) = plot;
    // Axis tops: stacked sums on the left; annotations count towards their axis.
    let mut tops = [0.0f64, 0.0];
    for period in 0..periods {
        let mut sums = [0.0, 0.0];
        for line in lines {
            let v = line.values[period].unwrap_or(0.0);
            let axis = usize::from(line.right);
            sums[axis] = if stacked {
                sums[axis] + v
            } else {
                f64::max(sums[axis], v)
            };
        }
        tops = [tops[0].max(sums[0]), tops[1].max(sums[1])];
    }
    let annotations = properties["annotations"]["horizontal"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for a in &annotations {
        let axis = usize::from(a["yAxis"] == "right");
        tops[axis] = tops[axis].max(a["value"].as_f64().unwrap_or(0.0) * 1.1);
    }
    let tops = tops.map(axis_top);
    let to_x = |period: usize| px + pw * period as f64 / (periods - 1) as f64;
    let to_y = |v: f64, right: bool| py + plot_h - plot_h * v / tops[usize::from(right)];
    // Grid and axes.
    for fraction in [0.0, 0.5, 1.0] {
        let gy = py + plot_h - plot_h * fraction;
        let _ = writeln!(
            svg,
            r##"<line x1="{px}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#e9ebed"/>"##,
            px + pw
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#687078">{}</text>"##,
            px - 4.0,
            gy + 4.0,
            number(tops[0] * fraction)
        );
        if has_right {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#687078">{}</text>"##,
                px + pw + 4.0,
                gy + 4.0,
                number(tops[1] * fraction)
            );
        }
    }
    for hour in (0..=12).step_by(3) {
        let hx = to_x((hour * periods / 12).min(periods - 1));
        let _ = writeln!(
            svg,
            r##"<text x="{hx:.1}" y="{:.1}" text-anchor="middle" fill="#687078">{hour:02}:00</text>"##,
            py + plot_h + 13.0
        );
    }
    // Series: stacked areas, or lines broken where there is no data.
    let mut base = vec![0.0; periods];
    for line in lines {
        if stacked {
            let top: Vec<f64> = (0..periods)
                .map(|p| base[p] + line.values[p].unwrap_or(0.0))
                .collect();
            let mut shape: Vec<String> = (0..periods)
                .map(|p| format!("{:.1},{:.1}", to_x(p), to_y(top[p], false)))
                .collect();
            shape.extend(
                (0..periods)
                    .rev()
                    .map(|p| format!("{:.1},{:.1}", to_x(p), to_y(base[p], false))),
            );
            let _ = writeln!(
                svg,
                r##"<polygon points="{}" fill="{}" fill-opacity="0.55" stroke="{}" stroke-width="0.8"/>"##,
                shape.join(" "),
                line.color,
                line.color
            );
            base = top;
            continue;
        }
        let mut run: Vec<String> = Vec::new();
        for p in 0..=periods {
            match line.values.get(p).copied().flatten() {
                Some(v) => run.push(format!("{:.1},{:.1}", to_x(p), to_y(v, line.right))),
                None if !run.is_empty() => {
                    let _ = writeln!(
                        svg,
                        r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"##,
                        run.join(" "),
                        line.color
                    );
                    run.clear();
                }
                None => {}
            }
        }
    }
    for a in &annotations {
        let right = a["yAxis"] == "right";
        let ay = to_y(a["value"].as_f64().unwrap_or(0.0), right);
        let color = a["color"].as_str().unwrap_or("#d62728");
        let label = escape(a["label"].as_str().unwrap_or_default());
        let _ = writeln!(
            svg,
            r##"<line x1="{px}" y1="{ay:.1}" x2="{:.1}" y2="{ay:.1}" stroke="{color}" stroke-dasharray="5,3"/>"##,
            px + pw
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{color}">{label}</text>"##,
            px + pw - 2.0,
            ay - 3.0
        );
    }
    let legend_y = py + plot_h + 30.0;
    for (lx, row, line) in legend {
        let (ix, iy) = (x + 10.0 + lx, legend_y + row * 14.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{ix:.1}" y="{:.1}" width="14" height="4" fill="{}"/>"##,
            iy - 4.0,
            line.color
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{iy:.1}">{}</text>"##,
            ix + 18.0,
            escape(&line.label)
        );
    }
}
