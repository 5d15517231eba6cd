//! The results: one row per tool run, printed as a table on stdout and,
//! with `--json FILE`, written as a JSON array.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

/// One tool run against one workload. Accuracy fields are `None` when the
/// run failed; `error` then says why.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub tool: String,
    pub run: u32,
    /// Target addresses x ports.
    pub probes: u64,
    pub wall_s: f64,
    pub probes_per_s: f64,
    /// User + system CPU of the tool's process.
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub expected_open: usize,
    pub reported_open: Option<usize>,
    /// Open in the ground truth, not reported.
    pub missed: Option<usize>,
    /// Reported open, not open in the ground truth.
    pub false_open: Option<usize>,
    pub error: Option<String>,
}

const HEADER: [&str; 10] =
    ["workload", "tool", "run", "wall", "probes/s", "cpu s", "peak RSS", "missed", "false open", "error"];

fn cells(r: &Row) -> [String; 10] {
    let opt = |v: Option<usize>| v.map_or("-".to_string(), |v| v.to_string());
    [
        r.workload.clone(),
        r.tool.clone(),
        r.run.to_string(),
        format!("{:.2} s", r.wall_s),
        if r.error.is_some() { "-".to_string() } else { format!("{:.0}", r.probes_per_s) },
        format!("{:.2}", r.cpu_s),
        format!("{:.1} MiB", r.peak_rss_mib),
        opt(r.missed),
        opt(r.false_open),
        r.error.clone().unwrap_or_default(),
    ]
}

/// Writes the rows as an aligned table.
pub fn table(rows: &[Row], out: &mut impl Write) -> io::Result<()> {
    let body: Vec<Vec<String>> = rows.iter().map(|r| cells(r).to_vec()).collect();
    aligned(&HEADER, &body, out)
}

/// Writes `header` and `body` as columns padded to their widest cell, two
/// spaces apart, with no trailing blanks.
pub fn aligned(header: &[&str], body: &[Vec<String>], out: &mut impl Write) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(body) {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

pub fn write_json(rows: &(impl Serialize + ?Sized), path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(rows)?;
    std::fs::write(path, text + "\n").map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(error: Option<&str>) -> Row {
        Row {
            workload: "256x1000".into(),
            tool: "masscan".into(),
            run: 1,
            probes: 1000,
            wall_s: 2.0,
            probes_per_s: 500.0,
            cpu_s: 0.5,
            peak_rss_mib: 10.0,
            expected_open: 8,
            reported_open: error.is_none().then_some(8),
            missed: error.is_none().then_some(0),
            false_open: error.is_none().then_some(0),
            error: error.map(String::from),
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_errors() {
        let mut out = Vec::new();
        table(&[row(None), row(Some("exit 2: unknown flag"))], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].find("tool"), lines[1].find("masscan"));
        assert_eq!(lines[2].find("exit 2: unknown flag"), lines[0].find("error"), "{text}");
        assert_eq!(lines[2].find("- "), lines[0].find("probes/s"), "no rate for a failed run: {text}");
    }
}
