//! The report as one self-contained HTML file: inline CSS and SVG, no
//! script, no outside request (no fonts, images or style sheets from
//! elsewhere), readable on a laptop and printable (`@media print`).
//!
//! Every string from the store (sentences, banners turned into versions,
//! hostnames in certificates, owners) is hostile input: the page is written
//! by minijinja with HTML auto-escaping on, and only the SVG charts, which
//! [`super::charts`] draws from numbers and our own labels, go in unescaped.

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

use super::metrics::Metric;
use super::{FindingRow, Report, charts};
use crate::review::findings::Severity;

const TEMPLATE: &str = include_str!("templates/report.html");

/// A metric as the page shows it.
#[derive(Serialize)]
struct MetricView<'a> {
    title: &'a str,
    note: &'a str,
    latest: String,
}

#[derive(Serialize)]
struct Group<'a> {
    severity: Severity,
    rows: Vec<&'a FindingRow>,
}

pub fn render(r: &Report) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    // Explicit, whatever the template's name: everything is escaped for HTML.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("report.html", TEMPLATE)?;
    let groups: Vec<Group> = Severity::ALL
        .iter()
        .map(|s| Group { severity: *s, rows: r.findings.iter().filter(|f| f.severity == *s).collect() })
        .collect();
    let metrics: Vec<MetricView> =
        r.metrics.iter().map(|m| MetricView { title: m.title, note: &m.note, latest: latest_text(m, r) }).collect();
    // Safe strings: charts drawn from numbers and our own labels only.
    let svgs: Vec<Value> =
        r.metrics.iter().map(|m| charts::svg(m).map(Value::from_safe_string).unwrap_or(Value::from(()))).collect();
    let currency = r.cost.currency.as_deref().unwrap_or("");
    env.get_template("report.html")?.render(context! {
        r => Value::from(Serde(r)),
        groups => Value::from(Serde(&groups)),
        metrics => Value::from(Serde(&metrics)),
        svgs => svgs,
        cost_period => format!("{} {currency}", thousands(r.cost.period_total)),
        cost_year => format!("{} {currency}", thousands(r.cost.twelve_months_total)),
    })
}

/// "In 2026-11: critical 1.5 days, high 3 days" (the period's values).
pub fn latest_text(m: &Metric, r: &Report) -> String {
    let parts: Vec<String> = m
        .latest()
        .into_iter()
        .map(|(name, v)| match v {
            Some(v) if m.series.len() > 1 => format!("{name} {} {}", number(v), m.unit),
            Some(v) => format!("{} {}", number(v), m.unit),
            None if m.series.len() > 1 => format!("{name} -"),
            None => "no value".to_string(),
        })
        .collect();
    format!("In {}: {}.", r.period, parts.join(", "))
}

/// A value as text: whole numbers without decimals, others with up to two.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        thousands(v as i64 as u64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// 1250000 -> "1,250,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
