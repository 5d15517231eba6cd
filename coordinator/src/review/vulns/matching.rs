//! One NVD match criterion against one detected CPE, and how far the match
//! is shown.
//!
//! Part, vendor and product must be the same (ignoring case; ANY in the
//! criterion matches anything, ANY in the detection shows nothing). Then:
//!
//! * A detection without a usable version (ANY, NA, `unknown`) is
//!   [`Evidence::VersionUnknown`] for every criterion of its product.
//! * A criterion naming a version matches that version alone, compared as
//!   [`Version`]s; with a version of ANY, its range bounds apply through a
//!   [`VersionRange`]. Bounds that are not orderable versions (`2.0-beta.3`)
//!   give [`Evidence::BoundsUnreadable`] rather than a guess.
//! * The update field. NVD writes OpenSSH 9.1p1 as version `9.1`, update
//!   `p1`; the detector writes version `9.1p1`, update ANY. So a criterion
//!   pinning an update matches a detection whose version is the criterion's
//!   version and update read as one (`9.1` + `p1` = `9.1p1`), or one with
//!   the same update field. A detection with the criterion's version but
//!   no update at all is [`Evidence::UpdateUnknown`]. A criterion with ANY
//!   update matches the release a patch level patches (`9.1p1` is 9.1 with
//!   update `p1`). An update of NA (`-`) means "no update": it excludes
//!   detections that name one.

use serde::{Deserialize, Serialize};
use vantage_shared::version::{Version, VersionRange};

use super::cpe::{Component, Cpe};
use super::nvd::MatchCriterion;

/// How far a hit is shown, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The detection names no usable version: the product has this CVE in
    /// some versions, and the review cannot tell which one runs.
    VersionUnknown,
    /// The criterion's bounds are not versions Vantage can order.
    BoundsUnreadable,
    /// The version matches, but the criterion pins an update (`p1`) that
    /// the detection does not name.
    UpdateUnknown,
    /// The detected version lies in the criterion's versions.
    Shown,
}

impl Evidence {
    /// Whether the hit may be reported as a vulnerability.
    pub fn is_shown(self) -> bool {
        self == Evidence::Shown
    }
}

/// A detected CPE, prepared once for matching against many criteria.
#[derive(Debug)]
pub struct Detection<'a> {
    cpe: &'a Cpe,
    /// The version field (`None` when it is unusable).
    bare: Option<Version>,
    /// `bare` with the update field read into it when it reads as one
    /// version (`9.1` + `p1`), else `bare`.
    full: Option<Version>,
}

impl<'a> Detection<'a> {
    pub fn new(cpe: &'a Cpe) -> Detection<'a> {
        let text = cpe.version.value();
        let bare = text.and_then(Version::parse);
        let folded = match (text, cpe.update.value()) {
            (Some(v), Some(u)) => whole_version(&format!("{v}{u}")),
            _ => None,
        };
        Detection { cpe, full: folded.or_else(|| bare.clone()), bare }
    }
}

/// `text` as a version only when all of it is one (`9.1p1`, not `1.0-beta`,
/// whose suffix [`Version::parse`] would cut).
fn whole_version(text: &str) -> Option<Version> {
    Version::parse(text).filter(|v| v.as_str().eq_ignore_ascii_case(text.trim()))
}

/// A criterion with its versions compiled, as the index keeps it.
#[derive(Debug, Clone)]
pub struct Matcher {
    part: Component,
    vendor: Component,
    product: Component,
    update: Component,
    versions: Versions,
}

#[derive(Debug, Clone)]
enum Versions {
    /// The criterion names a version: `range` is `= version` when it is
    /// an orderable version, `folded` is `= version+update` when that is.
    Exact { text: String, range: Option<VersionRange>, folded: Option<VersionRange> },
    /// The criterion's version is ANY: its bounds (`None` when unreadable).
    Bounds(Option<VersionRange>),
    /// The criterion's version is NA: no detected version is it.
    Na,
}

impl Matcher {
    pub fn new(criterion: &MatchCriterion) -> Matcher {
        let exact = |v: &str| whole_version(v).and_then(|_| format!("= {v}").parse().ok());
        let versions = match &criterion.version {
            Component::Value(v) => Versions::Exact {
                text: v.clone(),
                range: exact(v),
                folded: criterion.update.value().and_then(|u| exact(&format!("{v}{u}"))),
            },
            Component::Any => Versions::Bounds(bounds_text(criterion).parse().ok()),
            Component::Na => Versions::Na,
        };
        Matcher {
            part: criterion.part.clone(),
            vendor: criterion.vendor.clone(),
            product: criterion.product.clone(),
            update: criterion.update.clone(),
            versions,
        }
    }

    /// How far `detection` is shown to fall under the criterion; `None`
    /// when it does not.
    pub fn check(&self, detection: &Detection<'_>) -> Option<Evidence> {
        let cpe = detection.cpe;
        if !(self.part.admits(&cpe.part) && self.vendor.admits(&cpe.vendor) && self.product.admits(&cpe.product)) {
            return None;
        }
        let (Some(bare), Some(full)) = (&detection.bare, &detection.full) else {
            return Some(Evidence::VersionUnknown);
        };
        match &self.versions {
            Versions::Na => None,
            Versions::Bounds(None) => Some(Evidence::BoundsUnreadable),
            Versions::Bounds(Some(range)) if range.contains(full) => self.update_evidence(&cpe.update),
            Versions::Bounds(Some(_)) => None,
            Versions::Exact { text, range, folded } => {
                // The detector's `9.1p1` against NVD's `9.1` update `p1`.
                if let (Some(folded), Component::Any | Component::Na) = (folded, &cpe.update)
                    && folded.contains(bare)
                {
                    return Some(Evidence::Shown);
                }
                let equal = match range {
                    Some(r) => r.contains(bare) || (self.update == Component::Any && r.contains(&bare.release())),
                    // Not an orderable version: only the same text is the same version.
                    None => cpe.version.value().is_some_and(|v| v.eq_ignore_ascii_case(text)),
                };
                if equal { self.update_evidence(&cpe.update) } else { None }
            }
        }
    }

    /// The criterion's update against the detection's, once the version
    /// matched.
    fn update_evidence(&self, detected: &Component) -> Option<Evidence> {
        match (&self.update, detected) {
            (Component::Any, _) => Some(Evidence::Shown),
            (Component::Value(c), Component::Value(d)) => c.eq_ignore_ascii_case(d).then_some(Evidence::Shown),
            (Component::Value(_), Component::Any) => Some(Evidence::UpdateUnknown),
            (Component::Value(_), Component::Na) | (Component::Na, Component::Value(_)) => None,
            (Component::Na, Component::Any | Component::Na) => Some(Evidence::Shown),
        }
    }
}

/// The criterion's bounds as a [`VersionRange`] text (`>= 8.0, < 8.0.36`;
/// `*` when it has none).
fn bounds_text(c: &MatchCriterion) -> String {
    let bounds =
        [(">=", &c.start_including), (">", &c.start_excluding), ("<=", &c.end_including), ("<", &c.end_excluding)];
    let terms: Vec<String> =
        bounds.iter().filter_map(|(op, v)| v.as_deref().map(|v| format!("{op} {}", v.trim()))).collect();
    if terms.is_empty() { "*".to_string() } else { terms.join(", ") }
}

impl MatchCriterion {
    /// The versions the criterion covers, for people: `>= 8.0, < 8.0.36`,
    /// `= 9.1 (update p1)`, `all versions`.
    pub fn describe(&self) -> String {
        let versions = match &self.version {
            Component::Value(v) => format!("= {v}"),
            Component::Na => "no version (NA)".to_string(),
            Component::Any => match bounds_text(self) {
                any if any == "*" => "all versions".to_string(),
                bounds => bounds,
            },
        };
        match &self.update {
            Component::Any => versions,
            Component::Na => format!("{versions} (no update)"),
            Component::Value(u) => format!("{versions} (update {u})"),
        }
    }
}

#[cfg(test)]
mod tests;
