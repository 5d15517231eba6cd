//! The vulnerability database: CVE records and KEV entries, indexed by
//! (vendor, product), built from any number of feed files.
//!
//! [`VulnData`] is the serialisable part (what the store keeps); a
//! [`VulnDb`] is that plus the lookup index, rebuilt on load, so the index
//! never has to be stored or kept in step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cpe::{Component, Cpe, CpeError};
use super::kev::{self, KevCatalog, KevEntry};
use super::matching::{Detection, Evidence, Matcher};
use super::nvd::{self, CveRecord, Cvss, NvdFeed};
use super::{FeedFormat, VulnImportError};

/// How many unreadable criteria an import report quotes.
const EXAMPLES_KEPT: usize = 5;

/// How many of a non-shown hit's criteria its `matched` text lists.
const RANGES_LISTED: usize = 3;

/// Everything the database holds, in a form to store: CVEs by id, KEV
/// entries by CVE id, and the files they came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VulnData {
    pub sources: Vec<SourceFile>,
    /// Only CVEs with at least one match criterion, ordered by id.
    pub cves: Vec<CveRecord>,
    /// Ordered by CVE id.
    pub kev: Vec<KevEntry>,
}

/// One file read into the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The file name, without its directory.
    pub name: String,
    pub format: FeedFormat,
    /// The NVD feed's `timestamp`, or the KEV catalog's `dateReleased`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// CVEs (NVD) or entries (KEV) in the file.
    pub entries: usize,
}

/// What an import read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub files: Vec<SourceFile>,
    /// Distinct CVEs kept: those with at least one match criterion.
    pub cves: usize,
    /// CVEs without vulnerable criteria (NVD has not analysed them yet), not kept.
    pub cves_without_criteria: usize,
    /// CVEs NVD rejected, not kept.
    pub rejected: usize,
    /// CVEs read from more than one NVD file; the one read last is kept.
    pub replaced: usize,
    /// Match criteria kept.
    pub criteria: usize,
    /// Criteria that are not CPE 2.3 names Vantage matches, with a few examples.
    pub unreadable_criteria: usize,
    pub unreadable_examples: Vec<String>,
    /// Distinct KEV entries.
    pub kev_entries: usize,
    /// KEV CVE ids the NVD files did not have at all, ordered.
    pub kev_not_in_nvd: Vec<String>,
}

/// A CVE whose criteria a detected CPE falls under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnHit {
    pub cve: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
    /// The strongest evidence among the CVE's criteria.
    pub evidence: Evidence,
    /// The versions of the criterion that matched (`>= 8.0, < 8.0.36`); for
    /// a hit that is not shown, up to three of the criteria's, `; `-joined.
    pub matched: String,
    /// Set when the matching criterion came from an AND configuration: the
    /// CVE applies only on these platforms, which Vantage cannot see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// The KEV entry, when the CVE is known to be exploited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<KevEntry>,
    pub description: String,
}

impl VulnHit {
    pub fn known_exploited(&self) -> bool {
        self.kev.is_some()
    }

    /// When CISA added the CVE to the KEV catalog (`YYYY-MM-DD`).
    pub fn kev_date_added(&self) -> Option<&str> {
        self.kev.as_ref().map(|k| k.date_added.as_str())
    }
}

/// The database with its lookup index. Serialises as its [`VulnData`].
#[derive(Debug, Clone, Default)]
pub struct VulnDb {
    data: VulnData,
    /// (vendor key, product key) → the criteria naming that product.
    by_product: HashMap<(String, String), Vec<Indexed>>,
    by_cve: HashMap<String, u32>,
    kev_by_cve: HashMap<String, u32>,
}

/// A criterion in the index: where it is in [`VulnData`], compiled.
#[derive(Debug, Clone)]
struct Indexed {
    cve: u32,
    criterion: u32,
    matcher: Matcher,
}

impl VulnDb {
    pub fn from_data(data: VulnData) -> VulnDb {
        let mut by_product: HashMap<_, Vec<_>> = HashMap::new();
        let mut by_cve = HashMap::with_capacity(data.cves.len());
        for (i, cve) in data.cves.iter().enumerate() {
            by_cve.insert(cve.id.clone(), i as u32);
            for (j, c) in cve.criteria.iter().enumerate() {
                let key = (c.vendor.key(), c.product.key());
                let entry = Indexed { cve: i as u32, criterion: j as u32, matcher: Matcher::new(c) };
                by_product.entry(key).or_default().push(entry);
            }
        }
        let kev_by_cve = data.kev.iter().enumerate().map(|(i, k)| (k.cve_id.clone(), i as u32)).collect();
        VulnDb { data, by_product, by_cve, kev_by_cve }
    }

    /// Reads NVD feed files and KEV catalog files into a database; later
    /// files replace earlier records of the same CVE.
    pub fn import(
        nvd_files: &[impl AsRef<Path>],
        kev_files: &[impl AsRef<Path>],
    ) -> Result<(VulnDb, ImportReport), VulnImportError> {
        let mut builder = VulnDbBuilder::default();
        for path in nvd_files {
            builder.add_nvd_file(path.as_ref())?;
        }
        for path in kev_files {
            builder.add_kev_file(path.as_ref())?;
        }
        Ok(builder.build())
    }

    pub fn data(&self) -> &VulnData {
        &self.data
    }

    pub fn into_data(self) -> VulnData {
        self.data
    }

    pub fn cve(&self, id: &str) -> Option<&CveRecord> {
        self.by_cve.get(id).map(|&i| &self.data.cves[i as usize])
    }

    pub fn kev(&self, cve_id: &str) -> Option<&KevEntry> {
        self.kev_by_cve.get(cve_id).map(|&i| &self.data.kev[i as usize])
    }

    /// The CVEs a detected CPE 2.3 string falls under; see [`VulnDb::matches_cpe`].
    pub fn matches(&self, cpe: &str) -> Result<Vec<VulnHit>, CpeError> {
        Ok(self.matches_cpe(&cpe.parse()?))
    }

    /// One hit per CVE whose criteria name the detected product: shown
    /// hits first, then by score (highest first) and id. Only hits with
    /// [`Evidence::Shown`] may be reported as vulnerabilities.
    pub fn matches_cpe(&self, cpe: &Cpe) -> Vec<VulnHit> {
        let (vendor, product) = (cpe.vendor.key(), cpe.product.key());
        // The detection as it is, and as the other vendors its product was filed under.
        let mut names = vec![cpe.clone()];
        names.extend(
            vendor_aliases(&vendor, &product).map(|v| Cpe { vendor: Component::Value(v.into()), ..cpe.clone() }),
        );
        let mut best: BTreeMap<u32, (Evidence, Vec<u32>)> = BTreeMap::new();
        for name in &names {
            let detection = Detection::new(name);
            let (vendor, product) = (name.vendor.key(), name.product.key());
            let any = || "*".to_string();
            let mut keys = vec![(vendor.clone(), product.clone()), (any(), product), (vendor, any()), (any(), any())];
            keys.sort();
            keys.dedup();
            for entries in keys.iter().filter_map(|k| self.by_product.get(k)) {
                for Indexed { cve, criterion, matcher } in entries {
                    let Some(evidence) = matcher.check(&detection) else { continue };
                    let slot = best.entry(*cve).or_insert((evidence, Vec::new()));
                    if evidence > slot.0 {
                        *slot = (evidence, Vec::new());
                    }
                    if evidence == slot.0 && !slot.1.contains(criterion) {
                        slot.1.push(*criterion);
                    }
                }
            }
        }
        let mut hits: Vec<VulnHit> = best.into_iter().map(|(cve, (e, criteria))| self.hit(cve, e, &criteria)).collect();
        hits.sort_by(|a, b| {
            let score = |h: &VulnHit| h.cvss.map_or(-1.0, |c| c.score);
            (b.evidence.cmp(&a.evidence)).then(score(b).total_cmp(&score(a))).then_with(|| a.cve.cmp(&b.cve))
        });
        hits
    }

    fn hit(&self, cve: u32, evidence: Evidence, criteria: &[u32]) -> VulnHit {
        let record = &self.data.cves[cve as usize];
        let mut criteria: Vec<_> = criteria.iter().map(|&j| &record.criteria[j as usize]).collect();
        // A criterion that holds on any platform is the stronger claim.
        criteria.sort_by_key(|c| !c.platforms.is_empty());
        let listed = if evidence.is_shown() { 1 } else { RANGES_LISTED };
        let mut ranges: Vec<String> = Vec::new();
        for text in criteria.iter().map(|c| c.describe()) {
            if !ranges.contains(&text) {
                ranges.push(text);
            }
        }
        let more = ranges.len() > listed;
        ranges.truncate(listed);
        let mut matched = ranges.join("; ");
        if more {
            matched.push_str("; …");
        }
        VulnHit {
            cve: record.id.clone(),
            cvss: record.cvss,
            evidence,
            matched,
            platforms: criteria[0].platforms.clone(),
            kev: self.kev(&record.id).cloned(),
            description: record.description.clone(),
        }
    }
}

impl Serialize for VulnDb {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

impl<'de> Deserialize<'de> for VulnDb {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        VulnData::deserialize(d).map(VulnDb::from_data)
    }
}

/// Collects feed files into a [`VulnDb`].
#[derive(Debug, Default)]
pub struct VulnDbBuilder {
    cves: BTreeMap<String, CveRecord>,
    /// Ids of CVEs read without criteria, for the KEV cross-check.
    without_criteria: HashSet<String>,
    kev: BTreeMap<String, KevEntry>,
    report: ImportReport,
}

impl VulnDbBuilder {
    pub fn add_nvd_file(&mut self, path: &Path) -> Result<&mut Self, VulnImportError> {
        let feed = nvd::read_feed(path)?;
        Ok(self.add_nvd_feed(path, feed))
    }

    /// Reads a feed from `reader`; `path` names it in errors and the report.
    pub fn add_nvd_reader(&mut self, path: &Path, reader: impl Read) -> Result<&mut Self, VulnImportError> {
        let feed = nvd::parse_feed(path, reader)?;
        Ok(self.add_nvd_feed(path, feed))
    }

    pub fn add_kev_file(&mut self, path: &Path) -> Result<&mut Self, VulnImportError> {
        let catalog = kev::read_catalog(path)?;
        Ok(self.add_kev_catalog(path, catalog))
    }

    /// Reads a KEV catalog from `reader`; `path` names it in errors and the report.
    pub fn add_kev_reader(&mut self, path: &Path, reader: impl Read) -> Result<&mut Self, VulnImportError> {
        let catalog = kev::parse_catalog(path, reader)?;
        Ok(self.add_kev_catalog(path, catalog))
    }

    fn add_nvd_feed(&mut self, path: &Path, feed: NvdFeed) -> &mut Self {
        let r = &mut self.report;
        r.files.push(source(path, FeedFormat::Nvd, feed.timestamp, feed.cves.len()));
        r.rejected += feed.rejected;
        r.unreadable_criteria += feed.unreadable_criteria.len();
        let room = EXAMPLES_KEPT.saturating_sub(r.unreadable_examples.len());
        r.unreadable_examples.extend(feed.unreadable_criteria.into_iter().take(room));
        for cve in feed.cves {
            let seen = self.without_criteria.remove(&cve.id) | self.cves.remove(&cve.id).is_some();
            r.replaced += usize::from(seen);
            if cve.criteria.is_empty() {
                self.without_criteria.insert(cve.id);
            } else {
                self.cves.insert(cve.id.clone(), cve);
            }
        }
        self
    }

    fn add_kev_catalog(&mut self, path: &Path, catalog: KevCatalog) -> &mut Self {
        let entries = catalog.entries.len();
        self.report.files.push(source(path, FeedFormat::Kev, catalog.date_released, entries));
        for entry in catalog.entries {
            self.kev.insert(entry.cve_id.clone(), entry);
        }
        self
    }

    pub fn build(self) -> (VulnDb, ImportReport) {
        let mut report = self.report;
        report.cves = self.cves.len();
        report.cves_without_criteria = self.without_criteria.len();
        report.criteria = self.cves.values().map(|c| c.criteria.len()).sum();
        report.kev_entries = self.kev.len();
        let known = |id: &String| self.cves.contains_key(id) || self.without_criteria.contains(id);
        report.kev_not_in_nvd = self.kev.keys().filter(|id| !known(id)).cloned().collect();
        let data = VulnData {
            sources: report.files.clone(),
            cves: self.cves.into_values().collect(),
            kev: self.kev.into_values().collect(),
        };
        (VulnDb::from_data(data), report)
    }
}

fn source(path: &Path, format: FeedFormat, published: Option<String>, entries: usize) -> SourceFile {
    let name = path.file_name().unwrap_or(path.as_os_str()).to_string_lossy().into_owned();
    SourceFile { name, format, published, entries }
}

/// Products that NVD files under more than one vendor over the years (a
/// vendor bought, renamed, or a project moved to a foundation): older CVEs
/// name the old vendor, newer ones the new, and a detector writes one of
/// them. Each row is the product and every vendor it has been filed under.
const VENDOR_ALIASES: &[(&str, &[&str])] = &[
    ("nginx", &["nginx", "f5"]),
    ("mysql", &["oracle", "mysql"]),
    ("rabbitmq", &["vmware", "pivotal_software", "broadcom"]),
    ("mosquitto", &["eclipse", "mosquitto"]),
    ("elasticsearch", &["elastic", "elasticsearch"]),
    ("jenkins", &["jenkins", "cloudbees"]),
];

/// The other vendors the same product has been filed under.
fn vendor_aliases<'a>(vendor: &'a str, product: &'a str) -> impl Iterator<Item = &'static str> + 'a {
    VENDOR_ALIASES
        .iter()
        .filter(move |(p, vendors)| *p == product && vendors.contains(&vendor))
        .flat_map(|(_, vendors)| vendors.iter().copied())
        .filter(move |v| *v != vendor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::vulns::MatchCriterion;

    fn record(id: &str, criteria: &[&str]) -> CveRecord {
        let criteria = criteria
            .iter()
            .map(|c| {
                let c: Cpe = c.parse().unwrap();
                MatchCriterion {
                    part: c.part,
                    vendor: c.vendor,
                    product: c.product,
                    version: c.version,
                    update: c.update,
                    start_including: None,
                    start_excluding: None,
                    end_including: None,
                    end_excluding: None,
                    platforms: Vec::new(),
                }
            })
            .collect();
        CveRecord { id: id.into(), cvss: None, description: String::new(), criteria }
    }

    fn ids(db: &VulnDb, cpe: &str) -> Vec<(String, Evidence)> {
        db.matches(cpe).unwrap().into_iter().map(|h| (h.cve, h.evidence)).collect()
    }

    #[test]
    fn a_product_filed_under_several_vendors_is_matched_under_each() {
        let db = VulnDb::from_data(VulnData {
            cves: vec![
                record("CVE-2099-9200", &["cpe:2.3:a:nginx:nginx:1.22.1:*:*:*:*:*:*:*"]),
                record("CVE-2099-9201", &["cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"]),
                record("CVE-2099-9202", &["cpe:2.3:a:acme:nginx:1.22.1:*:*:*:*:*:*:*"]),
            ],
            ..VulnData::default()
        });
        let shown = |id: &str| (id.to_string(), Evidence::Shown);
        let both = [shown("CVE-2099-9200"), shown("CVE-2099-9201")];
        assert_eq!(ids(&db, "cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"), both, "the detector's vendor is f5");
        assert_eq!(ids(&db, "cpe:2.3:a:nginx:nginx:1.22.1:*:*:*:*:*:*:*"), both);
        assert_eq!(ids(&db, "cpe:2.3:a:acme:nginx:1.22.1:*:*:*:*:*:*:*"), [shown("CVE-2099-9202")], "no alias");
        assert_eq!(vendor_aliases("oracle", "mysql").collect::<Vec<_>>(), ["mysql"]);
    }

    #[test]
    fn criteria_with_any_vendor_are_found_for_every_vendor() {
        let db = VulnDb::from_data(VulnData {
            cves: vec![
                record("CVE-2099-9100", &["cpe:2.3:a:*:vsftpd:3.0.3:*:*:*:*:*:*:*"]),
                record("CVE-2099-9101", &["cpe:2.3:a:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*"]),
            ],
            ..VulnData::default()
        });
        let shown = |id: &str| (id.to_string(), Evidence::Shown);
        let named = "cpe:2.3:a:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*";
        assert_eq!(ids(&db, named), [shown("CVE-2099-9100"), shown("CVE-2099-9101")]);
        let unnamed = "cpe:2.3:a:*:vsftpd:3.0.3:*:*:*:*:*:*:*";
        assert_eq!(ids(&db, unnamed), [shown("CVE-2099-9100")], "no vendor shows no vendor's CVE");
        assert_eq!(ids(&db, "cpe:2.3:a:other:vsftpd:3.0.3:*:*:*:*:*:*:*"), [shown("CVE-2099-9100")]);
    }

    #[test]
    fn a_cve_is_one_hit_with_its_strongest_evidence() {
        let db = VulnDb::from_data(VulnData {
            cves: vec![record(
                "CVE-2099-9102",
                &["cpe:2.3:a:openbsd:openssh:9.1:p1:*:*:*:*:*:*", "cpe:2.3:a:openbsd:openssh:9.1:*:*:*:*:*:*:*"],
            )],
            ..VulnData::default()
        });
        // `9.1` meets the first criterion without its update, the second in full.
        let hits = db.matches("cpe:2.3:a:openbsd:openssh:9.1:*:*:*:*:*:*:*").unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].evidence, hits[0].matched.as_str()), (Evidence::Shown, "= 9.1"));
    }
}
