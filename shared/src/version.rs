//! Service version strings, ordered, and version ranges.
//!
//! Services report versions the way their authors like: `9.2p1`, `1.22.1`,
//! `10.11.6-MariaDB-0+deb12u1`, `7.0.15`. Strict semver rejects half of them
//! and orders the rest wrongly (a `-MariaDB` suffix would make 10.11.6 a
//! pre-release of itself), so the review compares them with the tolerant
//! [`versions`] crate after cutting the vendor and packaging suffixes off.
//! The justification register ("allowed version range") and the
//! vulnerability data (NVD's `versionStartIncluding`/`versionEndExcluding`)
//! both compare through this module, so they agree on what "older" means.
//!
//! One convention is handled before the crate sees it: OpenSSH-style
//! portable patch levels. `9.3p1` is the first release *of* 9.3, but the
//! crate reads `<n>p<m>` like `<n>rc<m>` and puts it before 9.3, which would
//! make every `versionEndExcluding 9.3` in NVD's data claim 9.3p1. So a
//! trailing `p<digits>` is split off and ordered after the release it patches.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use versions::Versioning;

/// A comparable service version, remembering what the service said.
#[derive(Debug, Clone)]
pub struct Version {
    raw: String,
    /// The release without a portable patch level (`9.3` for `9.3p1`).
    parsed: Versioning,
    /// The portable patch level (`9.3p1` → 1); none sorts first.
    patch: Option<u32>,
}

impl Version {
    /// The comparable part of a reported version: the leading run of digits,
    /// letters and dots (`8.9p1 Debian-3` → `8.9p1`; `10.11.6-MariaDB-0+deb12u1`
    /// → `10.11.6`). `None` when there is no leading digit (`unknown`, empty).
    pub fn parse(reported: &str) -> Option<Version> {
        let reported = reported.trim();
        let reported = reported.strip_prefix(['v', 'V']).unwrap_or(reported);
        if !reported.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let end = reported.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(reported.len());
        let core = reported[..end].trim_end_matches('.');
        let (release, patch) = split_patch(core);
        let parsed = Versioning::new(release)?;
        Some(Version { raw: core.to_string(), parsed, patch })
    }

    /// The comparable text (`10.11.6`).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The release a portable patch level patches (`9.1p1` → `9.1`); other
    /// versions are their own release. NVD writes `9.1p1` as version `9.1`
    /// with update `p1`, so matching its criteria needs both halves.
    pub fn release(&self) -> Version {
        match self.patch {
            Some(_) => {
                let end = self.raw.rfind(['p', 'P']).expect("a patch level follows a `p`");
                Version { raw: self.raw[..end].to_string(), parsed: self.parsed.clone(), patch: None }
            }
            None => self.clone(),
        }
    }
}

/// `9.3p1` → (`9.3`, 1): a `p<digits>` after a digit ends a portable patch
/// level. `1.0pre1` and `2.0p` are left alone.
fn split_patch(core: &str) -> (&str, Option<u32>) {
    let split = core.rsplit_once(['p', 'P']).filter(|(release, level)| {
        release.ends_with(|c: char| c.is_ascii_digit())
            && !level.is_empty()
            && level.bytes().all(|b| b.is_ascii_digit())
    });
    match split.and_then(|(release, level)| Some((release, level.parse().ok()?))) {
        Some((release, level)) => (release, Some(level)),
        None => (core, None),
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parsed.cmp(&other.parsed).then(self.patch.cmp(&other.patch))
    }
}

/// A range of versions: comma-separated bounds that must all hold
/// (`>=8.0, <9.0`; `=1.22.1`; `*` for any). A bare version means exactly it.
/// Caret and tilde ranges are left out on purpose: what "compatible" means
/// differs between products, and a register should say its bounds plainly.
#[derive(Debug, Clone)]
pub struct VersionRange {
    text: String,
    bounds: Vec<Bound>,
}

/// One bound: the side of `limit` a version must be on (`Less`, `Equal`,
/// `Greater`), and whether `limit` itself is allowed. `*` has no bounds.
#[derive(Debug, Clone)]
struct Bound {
    side: Ordering,
    or_equal: bool,
    limit: Version,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{term}` is not a version bound (write e.g. `>=8.0, <9.0`, `=1.22.1` or `*`)")]
pub struct RangeError {
    pub term: String,
}

impl VersionRange {
    /// Whether `version` lies in the range.
    pub fn contains(&self, version: &Version) -> bool {
        self.bounds.iter().all(|b| {
            let c = version.cmp(&b.limit);
            c == b.side || (b.or_equal && c == Ordering::Equal)
        })
    }

    /// The range as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for VersionRange {
    type Err = RangeError;

    fn from_str(text: &str) -> Result<VersionRange, RangeError> {
        let bad = |term: &str| RangeError { term: term.to_string() };
        let mut bounds = Vec::new();
        if text.trim() == "*" {
            return Ok(VersionRange { text: "*".into(), bounds });
        }
        for term in text.split(',').map(str::trim) {
            if term.is_empty() {
                return Err(bad(text));
            }
            let (side, or_equal, rest) = if let Some(r) = term.strip_prefix(">=") {
                (Ordering::Greater, true, r)
            } else if let Some(r) = term.strip_prefix("<=") {
                (Ordering::Less, true, r)
            } else if let Some(r) = term.strip_prefix('>') {
                (Ordering::Greater, false, r)
            } else if let Some(r) = term.strip_prefix('<') {
                (Ordering::Less, false, r)
            } else if let Some(r) = term.strip_prefix('=') {
                (Ordering::Equal, true, r)
            } else if term.starts_with(|c: char| c.is_ascii_digit()) {
                (Ordering::Equal, true, term)
            } else {
                return Err(bad(term));
            };
            let limit = Version::parse(rest).ok_or_else(|| bad(term))?;
            if !rest.trim().eq_ignore_ascii_case(limit.as_str()) {
                // `<9.0-beta` would silently mean `<9.0`: say so instead.
                return Err(bad(term));
            }
            bounds.push(Bound { side, or_equal, limit });
        }
        Ok(VersionRange { text: text.trim().to_string(), bounds })
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for VersionRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for VersionRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    fn within(range: &str, version: &str) -> bool {
        range.parse::<VersionRange>().unwrap().contains(&v(version))
    }

    #[test]
    fn vendor_and_packaging_suffixes_are_cut() {
        assert_eq!(v("10.11.6-MariaDB-0+deb12u1").as_str(), "10.11.6");
        assert_eq!(v("9.2p1 Debian-2+deb12u3").as_str(), "9.2p1");
        assert_eq!(v("v1.22.1").as_str(), "1.22.1");
        assert_eq!(v("7.0.15.").as_str(), "7.0.15");
        assert!(Version::parse("unknown").is_none());
        assert!(Version::parse("").is_none());
    }

    #[test]
    fn order_is_numeric_not_textual() {
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("10.11.6-MariaDB") > v("10.5.23"));
        assert!(v("10.11.6-MariaDB") == v("10.11.6"));
        assert!(v("8.9p1") < v("9.2p1"));
        assert!(v("9.2p1") < v("9.3"));
        assert!(v("2.4") < v("2.4.1"));
    }

    #[test]
    fn portable_patch_levels_follow_their_release() {
        assert!(v("9.3p1") > v("9.3"));
        assert!(v("9.3p1") < v("9.3p2"));
        assert!(v("9.3p2") < v("9.3p10"));
        assert!(v("9.3p2") < v("9.4"));
        assert!(v("9.1p1") != v("9.1"));
        assert_eq!(v("9.3p1 Debian-2").as_str(), "9.3p1");
        assert!(!within("<9.6", "9.6p1"), "9.6p1 is the 9.6 release, not before it");
        assert!(within(">=8.5p1, <9.8p1", "9.2p1"));
        assert!(!within(">=8.5p1, <9.8p1", "9.8p1"));
        assert!(v("1.0pre1") < v("1.0"), "only `p<digits>` is a patch level");
    }

    #[test]
    fn release_drops_the_patch_level() {
        assert_eq!(v("9.1p1").release().as_str(), "9.1");
        assert!(v("9.1p1").release() == v("9.1"));
        assert_eq!(v("1.22.1").release().as_str(), "1.22.1");
        assert_eq!(v("1.0pre1").release().as_str(), "1.0pre1");
    }

    #[test]
    fn ranges_hold_all_their_bounds() {
        assert!(within(">=8.0, <9.0", "8.0.35"));
        assert!(!within(">=8.0, <9.0", "9.0"));
        assert!(!within(">=8.0, <9.0", "5.7.44"));
        assert!(within("<=1.22.1", "1.22.1"));
        assert!(!within("<1.22.1", "1.22.1"));
        assert!(within("=1.22.1", "1.22.1"));
        assert!(within("1.22.1", "1.22.1"));
        assert!(!within("1.22.1", "1.22.0"));
        assert!(within(">9.0p1", "9.2p1"));
        assert!(within("*", "0.1"));
    }

    #[test]
    fn bad_ranges_name_the_term() {
        let e = ">=8.0, <".parse::<VersionRange>().unwrap_err();
        assert_eq!(e.term, "<");
        assert!(">=8.0,,<9".parse::<VersionRange>().is_err());
        assert!("banana".parse::<VersionRange>().is_err());
        assert!("*, <1".parse::<VersionRange>().is_err(), "`*` stands alone");
        assert!("^2.4".parse::<VersionRange>().is_err());
        assert!("<9.0-beta".parse::<VersionRange>().is_err());
    }
}
