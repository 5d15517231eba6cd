//! The review's calendar, kept by `vantage serve`: the monthly review on a
//! schedule, a reminder before it, and a daily re-check of open critical
//! findings. A month is never skipped because someone forgot; a fix to a
//! critical exposure is confirmed within a day, not at the next review.
//!
//! Decisions, and why:
//! * **What a scheduled review scans**: the serve options `--review-targets`
//!   (default: the scope file's ranges, i.e. everything Vantage may scan;
//!   with no scope file, the built-in loopback scope, scheduled reviews are
//!   off and only re-checks run) and
//!   `--review-ports` (default: the review's `top-100`), with every other
//!   scan option at `vantage review --targets`' defaults, from every region
//!   that has an agent connected when it starts (`--review-regions` to fix
//!   them). Explicit configuration rather than replaying "the last `vantage
//!   review`": what runs unattended every month is then written in the
//!   coordinator's configuration file, reviewed like the rest of it, and the
//!   same after a restore. The review judges against the documents stored
//!   with the coordinator (register, inventory, policy, integrations), the
//!   ones `vantage review --register ...` stored last.
//! * **How the server runs it**: through [`crate::workflow`], the same code
//!   as `vantage review`, on an in-process Control client
//!   ([`crate::workflow::in_process`]): the same requests and checks as an
//!   operator's, with no second path into the store.
//! * **Missed runs** (coordinator down at the time, or stopped in the middle
//!   of a run): the store keeps the last slot handled ([`ScheduleState`]); a
//!   run is marked handled only when it ends, so one that was interrupted is
//!   owed again. When the coordinator comes back, every slot passed since
//!   counts as one run ([`timetable`]), started at once: one catch-up, not
//!   one per missed slot. A brand-new schedule owes nothing from before it
//!   started.
//! * **Re-check**: the open (and acknowledged) critical findings' ports are
//!   re-probed from every live region ([`crate::workflow::verify`], as
//!   `vantage verify` does); a finding is remediated only when every region
//!   that looked saw it closed. Without a connected agent it is skipped, and
//!   the next slot tries again.
//! * **Reminder**: `--remind-before` ahead of each review slot, once per
//!   slot, to the escalation channels and the log ([`crate::notify::reminder`]);
//!   sent late (but before the review) when the coordinator was down at its time.
//!
//! All times are UTC. Work runs one piece at a time, in one task: a review
//! that takes hours delays a re-check, never overlaps it.

pub mod timetable;

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use vantage_proto::v1;
use vantage_shared::Period;

use crate::cli::output::rfc3339;
use crate::notify::reminder::{self, Reminder};
use crate::review::findings::Severity;
use crate::store::{Store, StoreError};
use crate::workflow::review::{ReviewDone, ReviewRun};
use crate::workflow::verify::{VerifyRequest, tally, verify};
use crate::workflow::{self, Control, WorkflowError, scan};
pub use timetable::{Owed, RunRecord, ScheduleState, Slots, Timetable};

/// The longest sleep between looks at the clock (a changed clock is noticed).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The shortest, so that a slot on the boundary is not busy-polled.
const MIN_SLEEP: Duration = Duration::from_millis(50);
/// After a store error, wait this long before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The schedule of `vantage serve`.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub timetable: Timetable,
    /// The scan a scheduled review starts with; its period and regions are
    /// set when it runs.
    pub scan: v1::StartScanRequest,
    /// Regions to scan from; empty: every region with a connected agent.
    pub regions: Vec<String>,
}

/// The schedule's task: runs what is due, sleeps until the next thing is.
pub struct ScheduleService {
    cfg: ScheduleConfig,
    store: Store,
    control: Control,
}

impl ScheduleService {
    pub fn new(cfg: ScheduleConfig, store: Store, control: Control) -> ScheduleService {
        ScheduleService { cfg, store, control }
    }

    /// Runs until `shutdown`. Work in progress is dropped at shutdown, and
    /// owed again at the next start.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let t = &self.cfg.timetable;
        tracing::info!(
            review = %describe(&t.review), remind_before = %humantime::format_duration(t.remind_before),
            recheck = %describe(&t.recheck), "schedule started"
        );
        loop {
            let wait = match self.step(&shutdown).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "schedule step failed; trying again later");
                    RETRY_AFTER
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Does what is due now; how long to sleep before looking again.
    async fn step(&mut self, shutdown: &CancellationToken) -> Result<Duration, StoreError> {
        let now = SystemTime::now();
        let mut state = match self.store.schedule_state()? {
            Some(s) => s,
            None => {
                let s = ScheduleState::starting(now);
                self.store.put_schedule_state(&s).await?;
                s
            }
        };
        let due = self.cfg.timetable.due(&state, now);
        if let Some(slot) = due.remind {
            self.remind(slot, now).await?;
            state.reminded_for = Some(slot);
            self.store.put_schedule_state(&state).await?;
        }
        if let Some(owed) = due.review {
            log_owed("review", owed, now);
            let Some(result) = until(shutdown, self.review(now)).await else { return Ok(Duration::ZERO) };
            match result {
                Ok(done) => log_review(&done),
                Err(e) => tracing::error!(error = %e, "scheduled review failed; the next slot runs again"),
            }
            state.review_ran(now, owed);
            self.store.put_schedule_state(&state).await?;
            return Ok(MIN_SLEEP);
        }
        if let Some(owed) = due.recheck {
            log_owed("re-check", owed, now);
            let Some(result) = until(shutdown, self.recheck()).await else { return Ok(Duration::ZERO) };
            if let Err(e) = result {
                tracing::error!(error = %e, "re-check of critical findings failed");
            }
            state.recheck_ran(now, owed);
            self.store.put_schedule_state(&state).await?;
            return Ok(MIN_SLEEP);
        }
        let wait = due.wake.and_then(|w| w.duration_since(now).ok()).unwrap_or(MAX_SLEEP);
        Ok(wait.clamp(MIN_SLEEP, MAX_SLEEP))
    }

    /// A review of the current period: scan, re-probe closures, judge.
    async fn review(&self, now: SystemTime) -> Result<ReviewDone, WorkflowError> {
        let mut control = self.control.clone();
        let period = Period::of(now);
        let regions = if self.cfg.regions.is_empty() {
            // One region live (or none yet): any agent's, as `vantage review` does.
            Some(scan::live_regions(&mut control).await?).filter(|r| r.len() > 1).unwrap_or_default()
        } else {
            self.cfg.regions.clone()
        };
        let request = v1::StartScanRequest {
            period: period.to_string(),
            label: format!("scheduled review {period}"),
            regions,
            ..self.cfg.scan.clone()
        };
        tracing::info!(%period, targets = %request.targets, ports = %request.ports, regions = ?request.regions, "scheduled review starting");
        let run = ReviewRun { scan: Some(request), ..ReviewRun::new(period) };
        workflow::review::run(&mut control, &run, &workflow::log).await
    }

    /// Re-probes the open critical findings from every live region.
    async fn recheck(&self) -> Result<(), WorkflowError> {
        let mut control = self.control.clone();
        let now = SystemTime::now();
        let findings = workflow::verify::findings(&mut control).await?;
        let ids: Vec<String> = findings
            .into_iter()
            .filter(|f| f.severity == Severity::Critical && f.status.is_active(now) && f.key.port != 0)
            .map(|f| f.id)
            .collect();
        if ids.is_empty() {
            tracing::info!("re-check: no open critical finding");
            return Ok(());
        }
        if scan::live_regions(&mut control).await?.is_empty() {
            tracing::warn!(findings = ids.len(), "re-check skipped: no agent is connected");
            return Ok(());
        }
        let done = verify(&mut control, &VerifyRequest::new(ids, "schedule"), &workflow::log).await?;
        tracing::info!(checked = done.len(), outcome = ?tally(&done), "re-check of critical findings done");
        Ok(())
    }

    async fn remind(&self, slot: SystemTime, now: SystemTime) -> Result<(), StoreError> {
        let r = Reminder::new(slot, &self.store.findings()?, now);
        tracing::info!(
            review.at = %rfc3339(slot), findings.open = r.open, findings.critical = r.critical,
            findings.overdue = r.overdue, "reminder: a scheduled review is coming"
        );
        let sent = reminder::send(&self.store, &r, now).await?;
        for (channel, error) in &sent.failed {
            tracing::warn!(channel, error, "reminder not delivered");
        }
        if !sent.delivered.is_empty() {
            tracing::info!(channels = ?sent.delivered, "reminder delivered");
        }
        Ok(())
    }
}

/// `work`'s result, or `None` when shutdown came first.
async fn until<T>(shutdown: &CancellationToken, work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        r = work => Some(r),
    }
}

fn log_owed(what: &str, owed: Owed, now: SystemTime) {
    let late = now.duration_since(owed.first_slot).unwrap_or_default();
    if owed.slots > 1 {
        tracing::info!(
            missed = owed.slots, first_slot = %rfc3339(owed.first_slot),
            late = %humantime::format_duration(Duration::from_secs(late.as_secs())),
            "scheduled {what} catching up: one run for every slot missed"
        );
    } else {
        tracing::info!(slot = %rfc3339(owed.first_slot), "scheduled {what} due");
    }
}

fn log_review(done: &ReviewDone) {
    let s = &done.summary;
    tracing::info!(
        scan.id = done.scan.as_ref().map(|s| s.scan_id),
        new = s.new,
        still_open = s.still_open,
        remediated = s.remediated,
        reopened = s.reopened,
        "scheduled review done"
    );
}

fn describe(slots: &Slots) -> String {
    match slots {
        Slots::Off => "off".into(),
        Slots::Every(d) => format!("every {}", humantime::format_duration(*d)),
        Slots::Cron(c) => format!("{} ({})", c.pattern, c.describe()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(y: i32, mo: u32, d: u32) -> SystemTime {
        Utc.with_ymd_and_hms(y, mo, d, 12, 0, 0).unwrap().into()
    }

    /// Down from 1 November to 10 January (three first Mondays missed):
    /// one catch-up, remembered across a reopen of the store.
    #[tokio::test]
    async fn a_catch_up_runs_once_and_is_remembered_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let table = Timetable {
            review: Slots::cron(timetable::DEFAULT_REVIEW).unwrap(),
            remind_before: Duration::from_secs(14 * 24 * 3600),
            recheck: Slots::Off,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_schedule_state(&ScheduleState::starting(at(2026, 11, 1))).await.unwrap();
        }
        let now = at(2027, 1, 10);
        let store = Store::open(dir.path()).unwrap();
        let mut state = store.schedule_state().unwrap().unwrap();
        let owed = table.due(&state, now).review.expect("reviews were missed");
        assert_eq!(owed.slots, 3);
        state.review_ran(now, owed);
        store.put_schedule_state(&state).await.unwrap();
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        let state = store.schedule_state().unwrap().unwrap();
        assert_eq!(state.last_review.as_ref().map(|r| r.slots), Some(3));
        assert_eq!(table.due(&state, now + Duration::from_secs(3600)).review, None, "owed once, not once per slot");
        let february = table.due(&state, at(2027, 2, 1)).review.expect("the next slot");
        assert_eq!(february.slots, 1);
    }
}
