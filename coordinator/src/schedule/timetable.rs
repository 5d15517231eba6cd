//! When things are due: review slots from a cron pattern, the reminder
//! before each, re-check slots from a cron pattern or an interval, judged
//! against the persisted [`ScheduleState`] at a time the caller gives (so
//! tests move the clock, and nothing here sleeps or reads the clock).
//!
//! Missed slots collapse: a review is due when at least one slot passed
//! since the last one handled, and handling it covers every slot up to now,
//! so a coordinator that was down for three slots runs one review, not three.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// The monthly review by default: 06:00 UTC on the first Monday of each month.
pub const DEFAULT_REVIEW: &str = "0 6 * * MON#1";
/// The re-check of open critical findings by default: daily, 05:00 UTC.
pub const DEFAULT_RECHECK: &str = "0 5 * * *";
/// Slots counted at most when saying how many were missed.
const MAX_COUNTED: usize = 1000;

/// A cron pattern or interval that was not understood.
#[derive(Debug, thiserror::Error)]
#[error("`{input}`: {detail} (a cron pattern like \"0 6 * * MON#1\" with optional seconds first, {what})")]
pub struct SlotsError {
    pub input: String,
    pub detail: String,
    pub what: &'static str,
}

/// Points in time something is due at.
#[derive(Debug, Clone)]
pub enum Slots {
    Cron(Box<Cron>),
    Every(Duration),
    Off,
}

impl Slots {
    /// A cron pattern (UTC; 5 fields, or 6 with seconds first) or `off`.
    pub fn cron(input: &str) -> Result<Slots, SlotsError> {
        let text = input.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Slots::Off);
        }
        let cron = Cron::from_str(text).map_err(|e| SlotsError {
            input: input.to_string(),
            detail: e.to_string(),
            what: "or `off`",
        })?;
        Ok(Slots::Cron(Box::new(cron)))
    }

    /// A cron pattern, an interval (`24h`, `30m`) or `off`.
    pub fn cron_or_every(input: &str) -> Result<Slots, SlotsError> {
        if let Ok(d) = humantime::parse_duration(input.trim()) {
            if d.is_zero() {
                return Err(SlotsError { input: input.into(), detail: "a zero interval".into(), what: "an interval" });
            }
            return Ok(Slots::Every(d));
        }
        Slots::cron(input).map_err(|e| SlotsError { what: "an interval like 24h, or `off`", ..e })
    }

    /// The first slot strictly after `t`; `None` when off (or never again).
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        match self {
            Slots::Off => None,
            Slots::Every(d) => Some(t + *d),
            Slots::Cron(c) => {
                let at: DateTime<Utc> = t.into();
                c.find_next_occurrence(&at, false).ok().map(SystemTime::from)
            }
        }
    }

    /// Slots in `(since, now]`, counted up to [`MAX_COUNTED`].
    pub fn count_between(&self, since: SystemTime, now: SystemTime) -> usize {
        let mut n = 0;
        let mut t = since;
        while n < MAX_COUNTED {
            match self.next_after(t) {
                Some(next) if next <= now => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }

    pub fn is_off(&self) -> bool {
        matches!(self, Slots::Off)
    }
}

/// What the schedule remembers across restarts (the store keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Review slots up to this time are handled: run, or passed before the
    /// schedule first started.
    pub review_since: SystemTime,
    /// The same for re-checks.
    pub recheck_since: SystemTime,
    /// The review slot whose reminder went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_for: Option<SystemTime>,
    /// The last scheduled review: when it started, and the slots it covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_review: Option<RunRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recheck: Option<RunRecord>,
}

impl ScheduleState {
    /// A schedule starting now: slots before now are not owed.
    pub fn starting(now: SystemTime) -> ScheduleState {
        ScheduleState {
            review_since: now,
            recheck_since: now,
            reminded_for: None,
            last_review: None,
            last_recheck: None,
        }
    }
}

impl ScheduleState {
    /// A review that started at `started` for `owed` ended (well or not):
    /// every slot up to its start is handled.
    pub fn review_ran(&mut self, started: SystemTime, owed: Owed) {
        self.review_since = started;
        self.last_review = Some(RunRecord { started, slots: owed.slots, first_slot: owed.first_slot });
    }

    /// The same for a re-check.
    pub fn recheck_ran(&mut self, started: SystemTime, owed: Owed) {
        self.recheck_since = started;
        self.last_recheck = Some(RunRecord { started, slots: owed.slots, first_slot: owed.first_slot });
    }
}

/// One run of scheduled work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub started: SystemTime,
    /// Slots it stood for (more than one: it caught up after a gap).
    pub slots: usize,
    /// The earliest slot it stood for.
    pub first_slot: SystemTime,
}

/// A review (or re-check) to run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owed {
    /// The earliest slot not yet handled.
    pub first_slot: SystemTime,
    /// Slots passed since the last one handled (1: on time).
    pub slots: usize,
}

/// What is due at one moment, and when to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub review: Option<Owed>,
    /// The upcoming review slot to remind people of.
    pub remind: Option<SystemTime>,
    pub recheck: Option<Owed>,
    /// The next moment something may become due.
    pub wake: Option<SystemTime>,
}

/// The review's and re-check's slots and the reminder's lead.
#[derive(Debug, Clone)]
pub struct Timetable {
    pub review: Slots,
    pub remind_before: Duration,
    pub recheck: Slots,
}

impl Timetable {
    pub fn due(&self, state: &ScheduleState, now: SystemTime) -> Due {
        let owed = |slots: &Slots, since: SystemTime| {
            slots
                .next_after(since)
                .filter(|s| *s <= now)
                .map(|first_slot| Owed { first_slot, slots: slots.count_between(since, now).max(1) })
        };
        let review = owed(&self.review, state.review_since);
        let recheck = owed(&self.recheck, state.recheck_since);
        let upcoming = self.review.next_after(state.review_since.max(now));
        let remind_at = upcoming.filter(|_| !self.remind_before.is_zero()).map(|s| {
            let at = s.checked_sub(self.remind_before).unwrap_or(SystemTime::UNIX_EPOCH);
            (s, at)
        });
        let remind = remind_at.and_then(|(slot, at)| (at <= now && state.reminded_for != Some(slot)).then_some(slot));
        let pending_reminder = remind_at.filter(|(slot, at)| *at > now && state.reminded_for != Some(*slot));
        let wake =
            [upcoming, self.recheck.next_after(state.recheck_since.max(now)), pending_reminder.map(|(_, at)| at)]
                .into_iter()
                .flatten()
                .min();
        Due { review, remind, recheck, wake }
    }
}

#[cfg(test)]
mod tests;
