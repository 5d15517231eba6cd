//! The options of `vantage serve` that set its schedule (see
//! [`crate::schedule`]): checked into a [`ScheduleConfig`] before anything starts.

use std::time::Duration;

use clap::Args;
use vantage_shared::{Period, Scope};

use super::UsageError;
use crate::schedule::timetable::{DEFAULT_RECHECK, DEFAULT_REVIEW};
use crate::schedule::{ScheduleConfig, Slots, Timetable};

pub const ENV_SCHEDULE: &str = "VANTAGE_SCHEDULE";
pub const ENV_REMIND_BEFORE: &str = "VANTAGE_REMIND_BEFORE";
pub const ENV_RECHECK: &str = "VANTAGE_RECHECK";
pub const ENV_REVIEW_TARGETS: &str = "VANTAGE_REVIEW_TARGETS";
pub const ENV_REVIEW_PORTS: &str = "VANTAGE_REVIEW_PORTS";
pub const ENV_REVIEW_REGIONS: &str = "VANTAGE_REVIEW_REGIONS";

#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// When the monthly review runs: a cron pattern in UTC (minute hour
    /// day-of-month month day-of-week, optionally seconds first; `MON#1` is
    /// the month's first Monday), or `off`. A review missed while the
    /// coordinator was down runs once when it is back.
    #[arg(long, env = ENV_SCHEDULE, value_name = "CRON", default_value = DEFAULT_REVIEW, value_parser = parse_review)]
    pub schedule: Slots,

    /// How long before each scheduled review to remind the escalation
    /// channels (and the log), with the open and overdue findings (0s: no reminder).
    #[arg(long, env = ENV_REMIND_BEFORE, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "14days")]
    pub remind_before: Duration,

    /// When to re-probe the open critical findings from every region (a
    /// finding gone from all of them is remediated): a cron pattern, an
    /// interval (`12h`), or `off`.
    #[arg(long, env = ENV_RECHECK, value_name = "CRON|DURATION", default_value = DEFAULT_RECHECK, value_parser = parse_recheck)]
    pub recheck: Slots,

    /// What a scheduled review scans [default: the scope file's ranges; with no
    /// scope file, scheduled reviews are off].
    #[arg(long, env = ENV_REVIEW_TARGETS, value_name = "TARGETS")]
    pub review_targets: Option<String>,

    /// The ports a scheduled review scans.
    #[arg(long, env = ENV_REVIEW_PORTS, value_name = "PORTS", default_value = "top-100")]
    pub review_ports: String,

    /// Regions a scheduled review scans from (comma-separated) [default:
    /// every region with an agent connected when it starts].
    #[arg(long, env = ENV_REVIEW_REGIONS, value_delimiter = ',', value_name = "REGION,...")]
    pub review_regions: Vec<String>,
}

fn parse_review(text: &str) -> Result<Slots, String> {
    Slots::cron(text).map_err(|e| e.to_string())
}

fn parse_recheck(text: &str) -> Result<Slots, String> {
    Slots::cron_or_every(text).map_err(|e| e.to_string())
}

impl ScheduleArgs {
    /// The schedule, its scan checked as `vantage review --targets` checks
    /// one; `None` when reviews and re-checks are both off.
    ///
    /// Without `--review-targets` a review scans the scope file's ranges;
    /// with no scope file either (the built-in loopback scope, for laptops
    /// and tests) there is nothing meant to be reviewed on a timetable, so
    /// scheduled reviews are off and only the re-checks run.
    pub fn config(&self, scope: &Scope, scope_file: bool) -> Result<Option<ScheduleConfig>, UsageError> {
        let mut review = self.schedule.clone();
        if self.review_targets.is_none() && !scope_file && !review.is_off() {
            tracing::warn!("no --scope file and no --review-targets: scheduled reviews are off (re-checks still run)");
            review = Slots::Off;
        }
        if review.is_off() && self.recheck.is_off() {
            return Ok(None);
        }
        let targets = self.review_targets.clone().unwrap_or_else(|| scope.effective().to_string());
        let scan = super::scan::start::default_request(
            &targets,
            Some(&self.review_ports),
            Period::of(std::time::SystemTime::now()),
        )
        .map_err(|e| UsageError(format!("--review-targets/--review-ports: {e}")))?;
        let timetable = Timetable { review, remind_before: self.remind_before, recheck: self.recheck.clone() };
        Ok(Some(ScheduleConfig { timetable, scan, regions: self.review_regions.clone() }))
    }
}
