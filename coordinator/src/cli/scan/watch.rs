//! `vantage scan watch ID`: follow a scan with a progress bar until it ends.

use std::time::{Duration, Instant};

use clap::Args;
use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use vantage_proto::v1;

use super::rates::{Rates, human_rate};
use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, ScanJson};
use crate::cli::{GlobalArgs, status_error};

/// With no progress for this long, say why the scan may be waiting.
const STALL_HINT_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The scan to follow.
    pub scan: u64,

    /// Output format of the final status.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(global: &GlobalArgs, args: WatchArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(global, Needs::Agent).await?;
    let result = follow(&mut conn, args.scan).await;
    conn.close().await;
    let status = result?;
    summary(&status);
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&ScanJson::from(&status))?);
    }
    Ok(())
}

/// Shows progress on stderr until the scan finishes; returns its last status.
pub async fn follow(conn: &mut Connection, scan_id: u64) -> anyhow::Result<v1::ScanStatus> {
    let mut stream =
        conn.control.watch_scan(v1::WatchScanRequest { scan_id }).await.map_err(status_error)?.into_inner();
    let multi = MultiProgress::new();
    let bar = multi.add(
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} probes · {msg} · eta {eta}",
            )
            .expect("template is valid"),
        ),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // One line per agent under the bar (a remote fleet only: the embedded
    // mode has one local agent, which the bar already is).
    let mut agent_lines: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let mut rates = Rates::default();
    let mut last = v1::ScanStatus::default();
    let mut last_change = Instant::now();
    let mut hinted = false;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(1), stream.message()).await;
        match next {
            Ok(Ok(Some(status))) => {
                if status.probes_done != last.probes_done {
                    last_change = Instant::now();
                }
                bar.set_length(status.probes_total);
                bar.set_position(status.probes_done);
                rates.push(Instant::now(), &status.agents);
                let regions: Vec<String> =
                    rates.per_region().iter().map(|(region, r)| format!("{region} {}", human_rate(*r))).collect();
                bar.set_message(format!(
                    "{} open · shards {}/{}{}",
                    status.open,
                    status.shards_done,
                    status.shards_total,
                    if regions.is_empty() { String::new() } else { format!(" · {}", regions.join(", ")) }
                ));
                if !conn.is_embedded() {
                    let per_agent = rates.per_agent();
                    for a in &status.agents {
                        let line = agent_lines.entry(a.agent_id.clone()).or_insert_with(|| {
                            multi.add(
                                ProgressBar::new_spinner()
                                    .with_style(ProgressStyle::with_template("  {msg}").expect("template is valid")),
                            )
                        });
                        line.set_message(format!(
                            "{} ({}): {} · {} probes · {} shards done · {} running",
                            a.agent_id,
                            a.region,
                            human_rate(per_agent.get(&a.agent_id).copied().unwrap_or(0.0)),
                            a.probes_done,
                            a.shards_done,
                            a.running
                        ));
                    }
                }
                last = status;
                if last.finished {
                    break;
                }
            }
            Ok(Ok(None)) => break,
            Ok(Err(status)) => {
                bar.abandon();
                anyhow::bail!(
                    "lost the coordinator while watching scan {scan_id} ({}); the scan resumes when it is back: `vantage scan watch {scan_id}`",
                    status.message()
                );
            }
            Err(_) if !hinted && last_change.elapsed() > STALL_HINT_AFTER && !conn.is_embedded() => {
                hinted = true;
                let agents = conn.control.list_agents(v1::ListAgentsRequest {}).await.map_err(status_error)?;
                if agents.into_inner().agents.is_empty() {
                    bar.suspend(|| {
                        eprintln!("waiting: no agent is connected to the coordinator (see `vantage fleet list`)")
                    });
                }
            }
            Err(_) => {}
        }
    }
    bar.finish_and_clear();
    for line in agent_lines.values() {
        line.finish_and_clear();
    }
    Ok(last)
}

/// One line on stderr about how a scan went.
pub fn summary(s: &v1::ScanStatus) {
    let took = match (&s.started_at, &s.finished_at) {
        (Some(a), Some(b)) => {
            let ms = (b.seconds - a.seconds) * 1000 + i64::from(b.nanos - a.nanos) / 1_000_000;
            format!(" in {}", humantime::format_duration(Duration::from_millis(ms.max(0) as u64)))
        }
        _ => String::new(),
    };
    let state = if s.finished { "finished" } else { "running" };
    eprintln!(
        "scan {} {state}{took}: {} probes, {} open, {} closed, {} filtered{}",
        s.scan_id,
        s.probes_done,
        s.open,
        s.closed,
        s.filtered,
        if s.refused > 0 { format!(", {} addresses refused by agent policy", s.refused) } else { String::new() }
    );
}
