//! The report as Markdown: the same sections as the HTML, the charts as
//! small tables (period, value). For a wiki page or a pull request.
//!
//! Strings from the store are escaped with CommonMark's own rule (every
//! ASCII punctuation character may be backslash-escaped, and then is a
//! literal), so a banner cannot open a link, an HTML tag or a table cell;
//! line breaks become spaces.

use std::fmt::Write;

use super::html::{latest_text, number, thousands};
use super::{FindingRow, Report};
use crate::review::findings::Severity;

/// Text from the store, made literal.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write_all(&mut o, r);
    o
}

fn write_all(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "# External port review {}\n", r.period)?;
    writeln!(
        o,
        "Statuses as of {}. Built from the coordinator's findings and baselines; nothing was scanned.\n",
        r.as_of
    )?;
    summary(o, r)?;
    changes(o, r)?;
    findings(o, r)?;
    tracking(o, r)?;
    metrics(o, r)
}

fn summary(o: &mut String, r: &Report) -> std::fmt::Result {
    let s = &r.summary;
    writeln!(o, "## Executive summary\n\n**{}**\n", md(&s.trend.sentence))?;
    writeln!(o, "| Severity | New | Remediated | Still open | Overdue |\n|---|---:|---:|---:|---:|")?;
    for c in &s.by_severity {
        let n = &c.counts;
        writeln!(o, "| {} | {} | {} | {} | {} |", c.severity, n.new, n.remediated, n.open, n.overdue)?;
    }
    let t = &s.total;
    writeln!(o, "| **total** | **{}** | **{}** | **{}** | **{}** |\n", t.new, t.remediated, t.open, t.overdue)
}

fn changes(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "## Baseline comparison\n")?;
    let Some(from) = r.changes.from else {
        return writeln!(o, "The first reviewed period: every open port is new.\n");
    };
    let counts: Vec<String> = r.changes.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let counts = if counts.is_empty() { "no change".to_string() } else { counts.join(", ") };
    writeln!(o, "Since {from}: {counts}.")?;
    if r.changes.exposed > 0 {
        writeln!(o, "**{} newly exposed management interfaces or databases**, listed first.", r.changes.exposed)?;
    }
    writeln!(o)?;
    if r.changes.rows.is_empty() {
        return Ok(());
    }
    writeln!(o, "| Change | Port | Before | After | Category | Re-probed |\n|---|---|---|---|---|---|")?;
    for c in &r.changes.rows {
        writeln!(
            o,
            "| {}{} | `{}` | {} | {} | {} | {} |",
            if c.exposed { "**exposed** " } else { "" },
            c.kind,
            c.target,
            md(&c.before),
            md(&c.after),
            md(c.category.as_deref().unwrap_or("")),
            if c.confirmed { "confirmed" } else { "not re-probed" }
        )?;
    }
    writeln!(o)
}

fn findings(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "## Findings by priority\n")?;
    for sev in Severity::ALL {
        let rows: Vec<&FindingRow> = r.findings.iter().filter(|f| f.severity == sev).collect();
        writeln!(o, "### {sev} ({} open)\n", rows.len())?;
        for f in rows {
            finding(o, f)?;
        }
    }
    Ok(())
}

fn finding(o: &mut String, f: &FindingRow) -> std::fmt::Result {
    let repeat = if f.repeats > 0 { format!(" **repeat ×{}**", f.repeats) } else { String::new() };
    writeln!(o, "- **{}** {}{repeat}", f.id, md(&f.sentence))?;
    let regions = if f.regions.is_empty() { "-".to_string() } else { md(&f.regions.join(", ")) };
    writeln!(
        o,
        "  - owner {}; deadline {}{}; visible from {regions} of {}",
        md(f.owner.as_deref().unwrap_or("unowned")),
        f.deadline,
        if f.overdue { " (**overdue**)" } else { "" },
        f.regions_scanned
    )?;
    if let Some(line) = &f.follow_up.summary {
        writeln!(o, "  - {}", md(line))?;
    }
    let d = &f.detail;
    let mut tech = vec![format!("`{}` {} ({})", f.target, f.kind, f.status)];
    let facts: Vec<&str> = [&d.service, &d.product, &d.version].into_iter().flatten().map(String::as_str).collect();
    if !facts.is_empty() {
        tech.push(md(&facts.join(" ")));
    }
    for (label, list) in [("CPE", &d.cpe), ("CVEs", &d.cves), ("why", &d.reasons)] {
        if !list.is_empty() {
            tech.push(format!("{label}: {}", md(&list.join(", "))));
        }
    }
    if let Some(t) = &d.tls {
        let self_signed = if t.self_signed { ", self-signed" } else { "" };
        tech.push(format!(
            "TLS: {} {}, subject {}, issuer {}, expires {}{self_signed}",
            md(&t.version),
            md(&t.cipher),
            md(&t.subject),
            md(&t.issuer),
            t.not_after
        ));
    }
    writeln!(o, "  - {}", tech.join("; "))
}

fn tracking(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "\n## Remediation tracking\n")?;
    if r.tracking.is_empty() {
        return writeln!(o, "No finding from an earlier month.\n");
    }
    writeln!(
        o,
        "| ID | Severity | Port | Status | First seen | Age (days) | Repeat |\n|---|---|---|---|---|---:|---|"
    )?;
    for t in &r.tracking {
        let status = match t.remediated_in {
            Some(p) => format!("{} in {p}", t.status),
            None => t.status.to_string(),
        };
        let repeat = if t.repeats > 0 { format!("×{}", t.repeats) } else { String::new() };
        writeln!(
            o,
            "| {} | {} | `{}` | {status} | {} | {} | {repeat} |",
            t.id, t.severity, t.target, t.first_period, t.age_days
        )?;
    }
    writeln!(o)
}

fn metrics(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "## Metrics\n")?;
    for m in &r.metrics {
        writeln!(o, "### {}\n\n{} {}\n", m.title, latest_text(m, r), m.note)?;
        let names: Vec<&str> = m.series.iter().map(|s| s.name.as_str()).collect();
        writeln!(o, "| Period | {} |\n|---|{}", names.join(" | "), "---:|".repeat(names.len()))?;
        for (i, p) in m.periods.iter().enumerate() {
            let cells: Vec<String> =
                m.series.iter().map(|s| s.values.get(i).copied().flatten().map(number).unwrap_or("-".into())).collect();
            writeln!(o, "| {p} | {} |", cells.join(" | "))?;
        }
        writeln!(o)?;
    }
    writeln!(o, "### Estimated cost avoided\n")?;
    if let Some(currency) = &r.cost.currency {
        writeln!(
            o,
            "**{} {currency}** this period, **{} {currency}** over twelve months.\n",
            thousands(r.cost.period_total),
            thousands(r.cost.twelve_months_total)
        )?;
    }
    writeln!(o, "{}", md(&r.cost.note))
}
