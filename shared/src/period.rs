//! Review periods: the month a review belongs to, written `2026-11`.
//!
//! A period names a baseline; the diff of a review compares one period's
//! baseline with another's. By default a scan belongs to the month (UTC)
//! it was started in.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: u16,
    month: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period `{0}`: write a month as YYYY-MM, e.g. 2026-11")]
pub struct PeriodError(String);

impl Period {
    pub fn new(year: u16, month: u8) -> Option<Period> {
        ((1970..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Period { year, month })
    }

    /// The month (UTC) that `t` falls in.
    pub fn of(t: SystemTime) -> Period {
        let text = humantime::format_rfc3339_seconds(t).to_string();
        text.get(..7).and_then(|p| p.parse().ok()).unwrap_or(Period { year: 1970, month: 1 })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// The month before.
    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period { year: self.year.saturating_sub(1).max(1970), month: 12 }
        } else {
            Period { year: self.year, month: self.month - 1 }
        }
    }

    /// A sortable number, `202611`: what store keys use.
    pub fn number(self) -> u32 {
        u32::from(self.year) * 100 + u32::from(self.month)
    }

    pub fn from_number(n: u32) -> Option<Period> {
        Period::new(u16::try_from(n / 100).ok()?, u8::try_from(n % 100).ok()?)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PeriodError(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        Period::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?).ok_or_else(bad)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The start (00:00 UTC) of a `YYYY-MM-DD` day, as registers, ignore rules
/// and risk acceptances write their dates. `None` for anything else.
pub fn day_start(day: &str) -> Option<SystemTime> {
    let day = day.trim();
    if day.len() != 10 {
        return None;
    }
    humantime::parse_rfc3339(&format!("{day}T00:00:00Z")).ok()
}

/// The end of a `YYYY-MM-DD` day (the next day's 00:00 UTC): a date that
/// something applies "through".
pub fn day_end(day: &str) -> Option<SystemTime> {
    day_start(day).map(|t| t + Duration::from_secs(24 * 3600))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: Period = "2026-11".parse().unwrap();
        assert_eq!((p.year(), p.month(), p.to_string(), p.number()), (2026, 11, "2026-11".to_string(), 202611));
        assert_eq!(Period::from_number(202611), Some(p));
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        assert_eq!("2026-01".parse::<Period>().unwrap().previous().to_string(), "2025-12");
    }

    #[test]
    fn month_of_a_time_is_utc() {
        // 2026-11-30T23:59:59Z and one second later.
        let t = UNIX_EPOCH + Duration::from_secs(1_796_083_199);
        assert_eq!(Period::of(t).to_string(), "2026-11");
        assert_eq!(Period::of(t + Duration::from_secs(1)).to_string(), "2026-12");
    }

    #[test]
    fn days_are_whole_utc_days() {
        let start = day_start("2026-11-30").unwrap();
        assert_eq!(humantime::format_rfc3339_seconds(start).to_string(), "2026-11-30T00:00:00Z");
        assert_eq!(day_end(" 2026-11-30 ").unwrap(), day_start("2026-12-01").unwrap());
        for bad in ["2026-11-3", "2026-13-01", "30.11.2026", "2026-11-30T10:00:00Z", ""] {
            assert!(day_start(bad).is_none(), "{bad}");
        }
    }
}
