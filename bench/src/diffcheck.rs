//! `--checks diff`: the diff of two baselines of 1,000,000 open ports each,
//! 10 % changed (issue #6: under 5 s and under 300 MB).
//!
//! The two baselines ([`synth`](crate::synth)) are written into a fresh data
//! directory as stored, committed baselines (periods 2026-10 and 2026-11,
//! no scans), then three processes are measured on it, each a child of its
//! own so that its peak RSS is its own:
//!
//! * `read`: this binary reading both baselines from the store (sled scan
//!   and decode), nothing else;
//! * `engine`: this binary running the diff ([`diff`]) on the store;
//! * `cli`: the operator's command, `vantage --data-dir DIR diff 2026-10
//!   2026-11 --format json`: an embedded coordinator streams the diff over
//!   gRPC to the CLI, which prints JSON (read here from a pipe).
//!
//! The changes each path finds are counted per kind and hashed, key by key,
//! and must be what the generator made.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use vantage_coordinator::review::diff::diff;
use vantage_coordinator::store::{BaselineRecord, Store};
use vantage_shared::{BaselineEntry, Period};

use crate::checks::Figure;
use crate::measure::{Measured, load_average, load_figure, measure};
use crate::synth::{self, Synth};

/// The target of issue #6.
const TARGET_WALL: Duration = Duration::from_secs(5);
const TARGET_RSS_BYTES: u64 = 300_000_000;

pub struct DiffConfig {
    pub entries: u64,
    pub seed: u64,
    pub runs: u32,
    pub limit: Duration,
    /// Keep the store here (generated if the directory does not exist,
    /// used as it is if it does) instead of in a temporary directory.
    pub store: Option<PathBuf>,
}

/// What a child of this binary does on the store (`--diff-child`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Write both baselines into a new store.
    Generate,
    /// Read both baselines, decoding every entry.
    Read,
    /// Diff the two baselines.
    Engine,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Generate => "generate",
            Stage::Read => "read",
            Stage::Engine => "engine",
        }
    }
}

/// The changes one path found: how many of each kind, and a digest of
/// (kind, address, protocol, port) over all of them, independent of order.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub counts: BTreeMap<String, u64>,
    pub digest: u64,
}

impl Tally {
    pub fn add(&mut self, kind: &str, addr: &str, proto: &str, port: u16) {
        *self.counts.entry(kind.to_string()).or_default() += 1;
        self.digest = self.digest.wrapping_add(fnv1a(format!("{kind} {addr} {proto} {port}").as_bytes()));
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    fn summary(&self) -> String {
        let kinds: Vec<String> = self.counts.iter().map(|(k, n)| format!("{} {k}", thousands(*n))).collect();
        format!("{} ({})", thousands(self.total()), kinds.join(", "))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// `1234567` as `1,234,567`: the report's grouping.
pub use vantage_coordinator::report::html::thousands;

/// What a child prints on stdout, as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildReport {
    pub entries_read: u64,
    pub tally: Tally,
    /// How long opening the store took, and the peak RSS right after.
    pub open_s: f64,
    pub open_peak_rss_mib: f64,
}

/// The high-water mark of this process's resident memory, in MiB
/// (`VmHWM`: of its own address space, unlike `ru_maxrss`, which also
/// holds what the process it was spawned from had at the time).
fn own_peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().strip_suffix("kB"));
    kib.and_then(|k| k.trim().parse::<f64>().ok()).map_or(f64::NAN, |k| k / 1024.0)
}

/// The store a check runs on, as written.
#[derive(Debug, Serialize, Deserialize)]
pub struct Generated {
    pub before: u64,
    pub after: u64,
    pub took_s: f64,
    pub disk_bytes: u64,
}

/// Writes both baselines of `synth` into a new store in `dir`, committed as
/// revision 1 of their periods.
pub fn generate(dir: &Path, synth: &Synth) -> anyhow::Result<Generated> {
    let start = Instant::now();
    std::fs::create_dir_all(dir)?;
    let store = Store::open(dir).context("opening the store")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let commit = |period: Period, scans: [u64; 2], entries: &mut dyn Iterator<Item = BaselineEntry>| {
        let n = store.put_baseline_entries(period, 1, entries.map(Ok))?;
        let record = BaselineRecord {
            period,
            revision: 1,
            scans: scans.to_vec(),
            regions: synth::REGIONS.iter().map(|r| r.to_string()).collect(),
            entries: n,
            built_at: SystemTime::now(),
        };
        runtime.block_on(store.commit_baseline(&record))?;
        anyhow::Ok(n)
    };
    let before = commit(synth::before_period(), synth::BEFORE_SCANS, &mut synth.before())?;
    let after = commit(synth::after_period(), synth::AFTER_SCANS, &mut synth.after())?;
    drop(store);
    Ok(Generated { before, after, took_s: start.elapsed().as_secs_f64(), disk_bytes: disk_usage(dir)? })
}

/// Bytes allocated on disk under `dir`.
fn disk_usage(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { disk_usage(&entry.path())? } else { meta.blocks() * 512 };
    }
    Ok(total)
}

/// The changes the generator made, tallied like the paths' findings.
pub fn expected(synth: &Synth) -> Tally {
    let mut tally = Tally::default();
    for (kind, (addr, proto, port)) in synth.changes() {
        tally.add(&kind.to_string(), &addr.to_string(), &proto.to_string(), port);
    }
    tally
}

/// A child's work (`vantage-bench --diff-child STAGE --diff-data DIR`),
/// reported on stdout as JSON.
pub fn child_main(stage: Stage, dir: &Path, synth: &Synth) -> anyhow::Result<()> {
    let report = match stage {
        Stage::Generate => serde_json::to_string(&generate(dir, synth)?)?,
        Stage::Read | Stage::Engine => serde_json::to_string(&child(stage, dir)?)?,
    };
    println!("{report}");
    Ok(())
}

/// `stage` on the current baselines of 2026-10 and 2026-11 in `dir`.
pub fn child(stage: Stage, dir: &Path) -> anyhow::Result<ChildReport> {
    let start = Instant::now();
    let store = Store::open(dir).context("opening the store")?;
    let (open_s, open_peak_rss_mib) = (start.elapsed().as_secs_f64(), own_peak_rss_mib());
    let current = |period: Period| {
        store.current_baseline(period)?.with_context(|| format!("no baseline of {period} in {}", dir.display()))
    };
    let (from, to) = (current(synth::before_period())?, current(synth::after_period())?);
    let read = Cell::new(0u64);
    let count = |_: &_| read.set(read.get() + 1);
    let before = store.baseline_entries(from.period, from.revision).inspect(count);
    let after = store.baseline_entries(to.period, to.revision).inspect(count);
    let mut tally = Tally::default();
    match stage {
        Stage::Generate => anyhow::bail!("a store to generate is no store to read"),
        Stage::Read => {
            for entry in before.chain(after) {
                entry?;
            }
        }
        Stage::Engine => {
            for change in diff(before, after) {
                let c = change?;
                tally.add(&c.kind.to_string(), &c.addr.to_string(), &c.proto.to_string(), c.port);
            }
        }
    }
    Ok(ChildReport { entries_read: read.get(), tally, open_s, open_peak_rss_mib })
}

/// The part of `vantage diff --format json` that is checked.
#[derive(Deserialize)]
struct CliDoc {
    changes: Vec<CliChange>,
}

#[derive(Deserialize)]
struct CliChange {
    kind: String,
    addr: String,
    proto: String,
    port: u16,
}

/// One measured run of one path.
struct Run {
    measured: Measured,
    /// The changes found, when the path diffs.
    found: Option<Tally>,
    /// What a child of this binary said about itself.
    report: Option<ChildReport>,
}

/// Runs `stage` in a child of this binary and reads its report.
fn spawn_child<T: serde::de::DeserializeOwned>(
    stage: Stage,
    dir: &Path,
    config: &DiffConfig,
) -> anyhow::Result<(Measured, T)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--diff-child", stage.name(), "--diff-data"]).arg(dir);
    cmd.arg("--diff-entries").arg(config.entries.to_string()).arg("--seed").arg(config.seed.to_string());
    let measured = measure(cmd, config.limit)?;
    anyhow::ensure!(
        measured.success(),
        "the {} child failed: {}",
        stage.name(),
        String::from_utf8_lossy(&measured.stderr).trim()
    );
    let report = serde_json::from_slice(&measured.stdout).context("the child printed no report")?;
    Ok((measured, report))
}

fn run_child(stage: Stage, dir: &Path, config: &DiffConfig) -> anyhow::Result<Run> {
    let (measured, report): (_, ChildReport) = spawn_child(stage, dir, config)?;
    let found = (stage == Stage::Engine).then(|| report.tally.clone());
    Ok(Run { measured, found, report: Some(report) })
}

fn run_cli(vantage: &Path, dir: &Path, limit: Duration) -> anyhow::Result<Run> {
    let mut cmd = Command::new(vantage);
    cmd.arg("--data-dir").arg(dir).args(["diff", "2026-10", "2026-11", "--no-confirm", "--format", "json"]);
    let measured = measure(cmd, limit)?;
    anyhow::ensure!(
        measured.success(),
        "vantage diff failed ({}): {}",
        if measured.timed_out { "killed after the limit".to_string() } else { format!("exit {:?}", measured.code) },
        String::from_utf8_lossy(&measured.stderr).trim()
    );
    let doc: CliDoc = serde_json::from_slice(&measured.stdout).context("vantage diff printed no JSON document")?;
    let mut found = Tally::default();
    for c in &doc.changes {
        found.add(&c.kind, &c.addr, &c.proto, c.port);
    }
    Ok(Run { measured, found: Some(found), report: None })
}

/// The figures of one run of one path.
fn figure(name: String, run: anyhow::Result<Run>, expected: &Tally) -> Figure {
    let run = match run {
        Ok(run) => run,
        Err(e) => return Figure { name, value: format!("FAILED: {e:#}"), failed: true },
    };
    let m = &run.measured;
    let rss_bytes = m.max_rss_kib * 1024;
    let within = m.wall < TARGET_WALL && rss_bytes < TARGET_RSS_BYTES;
    let read = run
        .report
        .as_ref()
        .map(|r| {
            format!(
                "{} entries read, the store opened in {:.2} s (peak RSS then {:.1} MiB); ",
                thousands(r.entries_read),
                r.open_s,
                r.open_peak_rss_mib
            )
        })
        .unwrap_or_default();
    let (found, failed) = match &run.found {
        None => (String::new(), false),
        Some(found) if found == expected => (format!("{} changes, as made; ", thousands(found.total())), false),
        Some(found) => (format!("MISMATCH: found {}, made {}; ", found.summary(), expected.summary()), true),
    };
    Figure {
        name,
        value: format!(
            "{:.2} s wall, {:.2} s CPU, {:.1} MiB peak RSS; {read}{found}{} the target (< 5 s, < 300 MB)",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.max_rss_kib as f64 / 1024.0,
            if within { "within" } else { "OUTSIDE" },
        ),
        failed,
    }
}

pub fn run(config: &DiffConfig, vantage: &Path) -> anyhow::Result<Vec<Figure>> {
    let synth = Synth::new(config.entries, config.seed);
    let temp = tempfile::Builder::new().prefix("vantage-diff-bench.").tempdir()?;
    let data = config.store.clone().unwrap_or_else(|| temp.path().join("data"));
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    // Written by a child: on Linux a child's peak RSS starts from its
    // parent's RSS when it is spawned, so this process stays small.
    let store = if data.exists() {
        format!("the store in {} reused, {:.1} MiB on disk", data.display(), mib(disk_usage(&data)?))
    } else {
        let (m, generated): (_, Generated) = spawn_child(Stage::Generate, &data, config)?;
        format!(
            "{} (2026-10) and {} (2026-11) entries on {} hosts written in {:.1} s ({:.1} s with the start of the \
             process, {:.1} s CPU); store {:.1} MiB on disk",
            thousands(generated.before),
            thousands(generated.after),
            thousands(synth.hosts()),
            generated.took_s,
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            mib(generated.disk_bytes)
        )
    };
    let expected = expected(&synth);
    let mut figures = vec![
        Figure { name: "diff: two synthetic baselines".into(), value: store, failed: false },
        Figure { name: "diff: changes made".into(), value: expected.summary(), failed: false },
        Figure {
            name: "diff: peak RSS of this process".into(),
            value: format!(
                "{:.1} MiB (a child's peak RSS counts its parent's at the spawn: the floor of the figures below)",
                own_peak_rss_mib()
            ),
            failed: false,
        },
    ];
    let load_before = load_average();
    for r in 1..=config.runs {
        let name = |path: &str| format!("diff, run {r}: {path}");
        figures.push(figure(name("store read alone"), run_child(Stage::Read, &data, config), &expected));
        figures.push(figure(name("diff engine alone"), run_child(Stage::Engine, &data, config), &expected));
        figures.push(figure(name("vantage diff --format json"), run_cli(vantage, &data, config.limit), &expected));
    }
    figures.push(load_figure("diff", &load_before));
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        let cases = [(0, "0"), (999, "999"), (1000, "1,000"), (100_081, "100,081"), (1_000_000, "1,000,000")];
        for (n, text) in cases {
            assert_eq!(thousands(n), text);
        }
    }

    #[test]
    fn a_tally_tells_keys_apart_whatever_the_order() {
        let mut a = Tally::default();
        a.add("new", "198.18.0.1", "tcp", 22);
        a.add("closed", "198.18.0.2", "tcp", 80);
        let mut b = Tally::default();
        b.add("closed", "198.18.0.2", "tcp", 80);
        b.add("new", "198.18.0.1", "tcp", 22);
        assert_eq!(a, b);
        let mut c = Tally::default();
        c.add("new", "198.18.0.1", "tcp", 23);
        c.add("closed", "198.18.0.2", "tcp", 80);
        assert_eq!(a.counts, c.counts);
        assert_ne!(a, c, "same counts, another port");
    }

    /// The engine's child, in-process, on a small store: it finds exactly
    /// what the generator made (the store's key order is the diff's).
    #[test]
    fn the_engine_on_a_store_finds_the_changes_made() {
        let dir = tempfile::tempdir().unwrap();
        let synth = Synth::new(5_000, 2);
        let generated = generate(dir.path(), &synth).unwrap();
        assert_eq!(generated.before, 5_000);
        assert_eq!(generated.after, synth.after().count() as u64);
        assert!(generated.disk_bytes > 0);
        let report = child(Stage::Engine, dir.path()).unwrap();
        assert_eq!(report.entries_read, generated.before + generated.after);
        assert_eq!(report.tally, expected(&synth));
        let read = child(Stage::Read, dir.path()).unwrap();
        assert_eq!((read.entries_read, read.tally.total()), (generated.before + generated.after, 0));
    }
}
