//! NVD CVE JSON 2.0 feeds (`nvdcve-2.0-*.json`), compacted as they are read.
//!
//! The feeds are 10-100 MB each, mostly text Vantage never shows. Each
//! `vulnerabilities[]` item is deserialised into the few fields this module
//! declares and compacted into a [`CveRecord`] straight away, so only one
//! full item is in memory at a time: the id, one CVSS score, the first
//! English description cut to [`DESCRIPTION_CHARS`], and the vulnerable
//! match criteria.
//!
//! Configurations are read conservatively. Only `cpeMatch` entries with
//! `vulnerable: true` become criteria. In an AND configuration ("X running
//! on Y") the `vulnerable: false` entries are the platform; Vantage cannot
//! see a service's platform, so the criterion stands on its own and carries
//! the platform CPEs in [`MatchCriterion::platforms`] for the review to
//! show: such a hit may not apply on the host's platform. Entries in a
//! negated node or configuration are skipped, since "not X" names nothing
//! to match.

use std::io::{BufReader, Read};
use std::path::Path;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::cpe::{Component, Cpe};
use super::{FeedFormat, VulnImportError, refuse_compressed};

/// How much of a description a record keeps, in characters.
pub const DESCRIPTION_CHARS: usize = 300;

/// How many platform CPEs a criterion keeps (AND configurations can list
/// every release of an operating system).
const PLATFORMS_KEPT: usize = 4;

/// One CVE, compacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CveRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
    /// The first English description, whitespace collapsed, at most
    /// [`DESCRIPTION_CHARS`] characters (cut ones end in `…`).
    pub description: String,
    pub criteria: Vec<MatchCriterion>,
}

/// The score a record keeps: the NVD's own (`Primary`) metric of the newest
/// CVSS version in the order 3.1, 3.0, 4.0, 2.0 (4.0 after 3.x because NVD
/// analyses in 3.1 and a 4.0 score usually comes from the reporting CNA).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    pub version: CvssVersion,
    pub score: f32,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CvssVersion {
    #[serde(rename = "2.0")]
    V2,
    #[serde(rename = "3.0")]
    V30,
    #[serde(rename = "3.1")]
    V31,
    #[serde(rename = "4.0")]
    V40,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn parse(text: &str) -> Option<Severity> {
        Some(match text.to_ascii_uppercase().as_str() {
            "NONE" => Severity::None,
            "LOW" => Severity::Low,
            "MEDIUM" => Severity::Medium,
            "HIGH" => Severity::High,
            "CRITICAL" => Severity::Critical,
            _ => return None,
        })
    }

    /// The rating a score has in its CVSS version, for metrics that omit it.
    pub fn of_score(version: CvssVersion, score: f32) -> Severity {
        match (version, score) {
            (CvssVersion::V2, s) if s >= 7.0 => Severity::High,
            (CvssVersion::V2, s) if s >= 4.0 => Severity::Medium,
            (CvssVersion::V2, _) => Severity::Low,
            (_, s) if s >= 9.0 => Severity::Critical,
            (_, s) if s >= 7.0 => Severity::High,
            (_, s) if s >= 4.0 => Severity::Medium,
            (_, s) if s > 0.0 => Severity::Low,
            _ => Severity::None,
        }
    }
}

/// One vulnerable `cpeMatch` entry: the product it names and the versions
/// it covers. The version is the criteria CPE's own version field: a value
/// (exactly that version), or ANY, when the four bounds (any of them may be
/// absent) say which versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCriterion {
    pub part: Component,
    pub vendor: Component,
    pub product: Component,
    pub version: Component,
    #[serde(default = "any", skip_serializing_if = "is_any")]
    pub update: Component,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_including: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_excluding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_including: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_excluding: Option<String>,
    /// The platform CPEs of an AND configuration (at most a few): the CVE
    /// applies when the product runs on one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

fn any() -> Component {
    Component::Any
}

fn is_any(c: &Component) -> bool {
    *c == Component::Any
}

/// One feed file, compacted.
#[derive(Debug, Clone, Default)]
pub struct NvdFeed {
    /// The feed's `timestamp`, when it has one.
    pub timestamp: Option<String>,
    /// Every CVE that is not rejected, in file order, including those
    /// without criteria (not yet analysed).
    pub cves: Vec<CveRecord>,
    /// CVEs whose `vulnStatus` is `Rejected`.
    pub rejected: usize,
    /// Criteria strings that are not CPE 2.3 names this module can match.
    pub unreadable_criteria: Vec<String>,
}

/// Reads one feed file.
pub fn read_feed(path: &Path) -> Result<NvdFeed, VulnImportError> {
    let file = std::fs::File::open(path).map_err(|source| VulnImportError::Read { path: path.into(), source })?;
    parse_feed(path, file)
}

/// Reads a feed from `reader`; `path` names it in errors.
pub fn parse_feed(path: &Path, reader: impl Read) -> Result<NvdFeed, VulnImportError> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    refuse_compressed(&mut reader, path, FeedFormat::Nvd)?;
    let file: RawFeed = serde_json::from_reader(reader)
        .map_err(|e| VulnImportError::malformed(path.to_path_buf(), FeedFormat::Nvd, e))?;
    let wrong = |found: &str| VulnImportError::WrongFormat {
        path: path.to_path_buf(),
        expected: FeedFormat::Nvd,
        found: found.to_string(),
    };
    if file.cve_items.is_some() {
        return Err(wrong("an NVD 1.1 feed (`CVE_Items`); use the 2.0 feeds"));
    }
    if file.format.as_deref().is_some_and(|f| f != "NVD_CVE") {
        return Err(wrong(&format!("a document of format `{}`", file.format.unwrap_or_default())));
    }
    let Some(items) = file.vulnerabilities else {
        return Err(wrong(if file.catalog_version.is_some() {
            "a CISA KEV catalog"
        } else {
            "a JSON document without `vulnerabilities`"
        }));
    };
    let mut feed = NvdFeed { timestamp: file.timestamp, ..NvdFeed::default() };
    for item in items {
        match item {
            Item::Cve(c) if c.rejected => feed.rejected += 1,
            Item::Cve(c) => {
                feed.unreadable_criteria.extend(c.unreadable);
                feed.cves.push(c.record);
            }
            Item::Kev => return Err(wrong("a CISA KEV catalog")),
        }
    }
    Ok(feed)
}

// What is read of the feed. Fields of other formats are declared only to
// recognise them; serde skips everything else.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFeed {
    format: Option<String>,
    timestamp: Option<String>,
    vulnerabilities: Option<Vec<Item>>,
    #[serde(rename = "CVE_Items")]
    cve_items: Option<IgnoredAny>,
    catalog_version: Option<IgnoredAny>,
}

/// A `vulnerabilities[]` item, compacted as soon as it is read.
#[derive(Deserialize)]
#[serde(try_from = "RawItem")]
enum Item {
    Cve(Box<Compacted>),
    /// A KEV entry (`cveID`): the file is the wrong format.
    Kev,
}

struct Compacted {
    record: CveRecord,
    rejected: bool,
    unreadable: Vec<String>,
}

#[derive(Deserialize)]
struct RawItem {
    cve: Option<RawCve>,
    #[serde(rename = "cveID")]
    kev_id: Option<IgnoredAny>,
}

impl TryFrom<RawItem> for Item {
    type Error = &'static str;

    fn try_from(raw: RawItem) -> Result<Item, &'static str> {
        match (raw.cve, raw.kev_id) {
            (Some(cve), _) => Ok(Item::Cve(Box::new(compact(cve)))),
            (None, Some(_)) => Ok(Item::Kev),
            (None, None) => Err("missing field `cve`"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCve {
    id: String,
    vuln_status: Option<String>,
    #[serde(default)]
    descriptions: Vec<RawDescription>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    configurations: Vec<RawConfiguration>,
}

#[derive(Deserialize)]
struct RawDescription {
    lang: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawMetrics {
    cvss_metric_v31: Vec<RawMetric>,
    cvss_metric_v30: Vec<RawMetric>,
    cvss_metric_v40: Vec<RawMetric>,
    cvss_metric_v2: Vec<RawMetric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetric {
    #[serde(rename = "type")]
    kind: Option<String>,
    cvss_data: RawCvssData,
    /// Version 2 keeps the rating beside `cvssData`, not in it.
    base_severity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCvssData {
    base_score: f32,
    base_severity: Option<String>,
}

#[derive(Deserialize)]
struct RawConfiguration {
    operator: Option<String>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNode {
    operator: Option<String>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    cpe_match: Vec<RawMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMatch {
    vulnerable: bool,
    criteria: String,
    version_start_including: Option<String>,
    version_start_excluding: Option<String>,
    version_end_including: Option<String>,
    version_end_excluding: Option<String>,
}

fn compact(raw: RawCve) -> Compacted {
    let rejected = raw.vuln_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("Rejected"));
    let description = raw
        .descriptions
        .iter()
        .find(|d| d.lang.eq_ignore_ascii_case("en") || d.lang.starts_with("en-"))
        .or(raw.descriptions.first())
        .map(|d| shorten(&d.value, DESCRIPTION_CHARS))
        .unwrap_or_default();
    let mut unreadable = Vec::new();
    let mut criteria = Vec::new();
    for config in raw.configurations.iter().filter(|c| !c.negate) {
        criteria_of(config, &mut criteria, &mut unreadable);
    }
    let record = CveRecord { id: raw.id, cvss: pick_cvss(&raw.metrics), description, criteria };
    Compacted { record, rejected, unreadable }
}

/// The vulnerable entries of one configuration, each with the platform
/// entries of the configuration when it is an AND of several.
fn criteria_of(config: &RawConfiguration, out: &mut Vec<MatchCriterion>, unreadable: &mut Vec<String>) {
    let nodes: Vec<&RawNode> = config.nodes.iter().filter(|n| !n.negate).collect();
    let is_and = |op: &Option<String>| op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("AND"));
    let platform_config = is_and(&config.operator) || nodes.iter().any(|n| is_and(&n.operator));
    let platforms: Vec<String> = if platform_config {
        let entries = nodes.iter().flat_map(|n| &n.cpe_match);
        entries.filter(|m| !m.vulnerable).map(|m| m.criteria.clone()).take(PLATFORMS_KEPT).collect()
    } else {
        Vec::new()
    };
    for m in nodes.iter().flat_map(|n| &n.cpe_match).filter(|m| m.vulnerable) {
        let Ok(cpe) = m.criteria.parse::<Cpe>() else {
            unreadable.push(m.criteria.clone());
            continue;
        };
        out.push(MatchCriterion {
            part: cpe.part,
            vendor: cpe.vendor,
            product: cpe.product,
            version: cpe.version,
            update: cpe.update,
            start_including: m.version_start_including.clone(),
            start_excluding: m.version_start_excluding.clone(),
            end_including: m.version_end_including.clone(),
            end_excluding: m.version_end_excluding.clone(),
            platforms: platforms.clone(),
        });
    }
}

fn pick_cvss(metrics: &RawMetrics) -> Option<Cvss> {
    let by_version = [
        (CvssVersion::V31, &metrics.cvss_metric_v31),
        (CvssVersion::V30, &metrics.cvss_metric_v30),
        (CvssVersion::V40, &metrics.cvss_metric_v40),
        (CvssVersion::V2, &metrics.cvss_metric_v2),
    ];
    let (version, list) = by_version.into_iter().find(|(_, list)| !list.is_empty())?;
    let metric = list.iter().find(|m| m.kind.as_deref() == Some("Primary")).unwrap_or(&list[0]);
    let score = metric.cvss_data.base_score;
    let stated = metric.cvss_data.base_severity.as_deref().or(metric.base_severity.as_deref());
    let severity = stated.and_then(Severity::parse).unwrap_or_else(|| Severity::of_score(version, score));
    Some(Cvss { version, score, severity })
}

/// `text` with runs of whitespace as one space, cut on a character
/// boundary to `max` characters (the last one `…` when cut).
fn shorten(text: &str, max: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        assert_eq!(shorten("a  b\n c", 10), "a b c");
        let long = "é".repeat(400);
        let cut = shorten(&long, DESCRIPTION_CHARS);
        assert_eq!(cut.chars().count(), DESCRIPTION_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

    #[test]
    fn severity_follows_the_cvss_version_when_missing() {
        assert_eq!(Severity::of_score(CvssVersion::V2, 9.3), Severity::High, "v2 has no critical");
        assert_eq!(Severity::of_score(CvssVersion::V31, 9.0), Severity::Critical);
        assert_eq!(Severity::of_score(CvssVersion::V31, 6.9), Severity::Medium);
        assert_eq!(Severity::of_score(CvssVersion::V31, 0.0), Severity::None);
        assert_eq!(Severity::of_score(CvssVersion::V2, 3.9), Severity::Low);
    }

    fn feed(json: &str) -> Result<NvdFeed, VulnImportError> {
        parse_feed(Path::new("inline.json"), json.as_bytes())
    }

    #[test]
    fn primary_metric_of_the_preferred_version_wins() {
        let f = feed(
            r#"{"format":"NVD_CVE","vulnerabilities":[{"cve":{"id":"CVE-2099-9000","metrics":{
              "cvssMetricV2":[{"type":"Primary","cvssData":{"baseScore":5.0},"baseSeverity":"MEDIUM"}],
              "cvssMetricV31":[{"type":"Secondary","cvssData":{"baseScore":9.8,"baseSeverity":"CRITICAL"}},
                               {"type":"Primary","cvssData":{"baseScore":7.5,"baseSeverity":"HIGH"}}]}}}]}"#,
        )
        .unwrap();
        let cvss = f.cves[0].cvss.unwrap();
        assert_eq!((cvss.version, cvss.score, cvss.severity), (CvssVersion::V31, 7.5, Severity::High));
    }

    #[test]
    fn negated_nodes_give_no_criteria() {
        let f = feed(
            r#"{"vulnerabilities":[{"cve":{"id":"CVE-2099-9001","configurations":[{"nodes":[
              {"operator":"OR","negate":true,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:redis:redis:7.0.1:*:*:*:*:*:*:*"}]},
              {"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:redis:redis:7.0.2:*:*:*:*:*:*:*"}]}]}]}}]}"#,
        )
        .unwrap();
        let versions: Vec<_> = f.cves[0].criteria.iter().map(|c| c.version.to_string()).collect();
        assert_eq!(versions, ["7.0.2"]);
    }

    #[test]
    fn unreadable_criteria_are_counted_not_matched() {
        let f = feed(
            r#"{"vulnerabilities":[{"cve":{"id":"CVE-2099-9002","configurations":[{"nodes":[
              {"operator":"OR","cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:redis:redis:7.*:*:*:*:*:*:*:*"}]}]}]}}]}"#,
        )
        .unwrap();
        assert!(f.cves[0].criteria.is_empty());
        assert_eq!(f.unreadable_criteria, ["cpe:2.3:a:redis:redis:7.*:*:*:*:*:*:*:*"]);
    }

    #[test]
    fn items_without_cve_are_malformed_with_a_position() {
        // The position is where the item ends.
        let err = feed("{\"vulnerabilities\":[\n{\"id\":\"CVE-2099-9003\"}]}").unwrap_err();
        let VulnImportError::Malformed { line, detail, .. } = &err else { panic!("{err}") };
        assert_eq!(*line, 2);
        assert!(detail.contains("missing field `cve`"), "{detail}");
    }

    #[test]
    fn version_1_1_feeds_are_named() {
        let err = feed(r#"{"CVE_data_format":"MITRE","CVE_Items":[]}"#).unwrap_err();
        let VulnImportError::WrongFormat { found, .. } = &err else { panic!("{err}") };
        assert!(found.contains("1.1"), "{found}");
    }
}
