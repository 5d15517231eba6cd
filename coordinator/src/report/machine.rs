//! The report for other tools: JSON (the [`Report`] model itself, with
//! stable field names) and CSV (one row per open finding, its key columns).
//! A CSV cell from the store that a spreadsheet would read as a formula
//! (`=`, `+`, `-`, `@` first) is written with a leading `'` (OWASP's advice
//! on CSV injection).

use super::Report;

pub fn json(r: &Report) -> serde_json::Result<String> {
    let mut s = serde_json::to_string_pretty(r)?;
    s.push('\n');
    Ok(s)
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 18] = [
    "id",
    "severity",
    "status",
    "kind",
    "target",
    "owner",
    "deadline",
    "overdue",
    "regions",
    "first_period",
    "repeats",
    "service",
    "version",
    "cves",
    "escalated",
    "tickets",
    "acknowledged",
    "sentence",
];

pub fn csv(r: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for f in &r.findings {
        let d = &f.detail;
        let version = [&d.product, &d.version].into_iter().flatten().cloned().collect::<Vec<_>>().join(" ");
        w.write_record([
            f.id.as_str(),
            f.severity.as_str(),
            f.status,
            &f.kind,
            &f.target,
            &cell(f.owner.as_deref().unwrap_or("")),
            &f.deadline,
            if f.overdue { "yes" } else { "no" },
            &cell(&f.regions.join(" ")),
            &f.first_period.to_string(),
            &f.repeats.to_string(),
            &cell(d.service.as_deref().unwrap_or("")),
            &cell(&version),
            &d.cves.join(" "),
            f.follow_up.escalated.as_deref().unwrap_or(""),
            &cell(&f.follow_up.tickets.join(" ")),
            &cell(f.follow_up.acknowledged.as_deref().unwrap_or("")),
            &cell(&f.sentence),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8"))
}

/// A cell a spreadsheet will not evaluate.
fn cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}").into() } else { s.into() }
}
