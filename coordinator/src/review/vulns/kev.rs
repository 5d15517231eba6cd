//! The CISA Known Exploited Vulnerabilities catalog
//! (`known_exploited_vulnerabilities.json`).
//!
//! A CVE in the catalog is being exploited in the wild, which moves it to
//! the top of a review whatever its score. The catalog names CVE ids and
//! free-text vendor and product names, not CPEs, so it only marks CVEs the
//! NVD data already matched; it never matches a service by itself.

use std::io::{BufReader, Read};
use std::path::Path;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{FeedFormat, VulnImportError, refuse_compressed};

/// One catalog entry. Dates are the catalog's `YYYY-MM-DD` text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevEntry {
    pub cve_id: String,
    pub vendor_project: String,
    pub product: String,
    pub date_added: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// `knownRansomwareCampaignUse` is `Known` (rather than `Unknown`).
    #[serde(default)]
    pub ransomware: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub required_action: String,
}

/// One catalog file.
#[derive(Debug, Clone, Default)]
pub struct KevCatalog {
    pub catalog_version: Option<String>,
    pub date_released: Option<String>,
    pub entries: Vec<KevEntry>,
}

/// Reads one catalog file.
pub fn read_catalog(path: &Path) -> Result<KevCatalog, VulnImportError> {
    let file = std::fs::File::open(path).map_err(|source| VulnImportError::Read { path: path.into(), source })?;
    parse_catalog(path, file)
}

/// Reads a catalog from `reader`; `path` names it in errors.
pub fn parse_catalog(path: &Path, reader: impl Read) -> Result<KevCatalog, VulnImportError> {
    let mut reader = BufReader::new(reader);
    refuse_compressed(&mut reader, path, FeedFormat::Kev)?;
    let file: RawCatalog = serde_json::from_reader(reader)
        .map_err(|e| VulnImportError::malformed(path.to_path_buf(), FeedFormat::Kev, e))?;
    let wrong = |found: &str| VulnImportError::WrongFormat {
        path: path.to_path_buf(),
        expected: FeedFormat::Kev,
        found: found.to_string(),
    };
    if file.format.as_deref() == Some("NVD_CVE") || file.cve_items.is_some() {
        return Err(wrong("an NVD CVE feed"));
    }
    let Some(items) = file.vulnerabilities else {
        return Err(wrong("a JSON document without `vulnerabilities`"));
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Item::Entry(e) => entries.push(e),
            Item::NvdCve => return Err(wrong("an NVD CVE feed")),
        }
    }
    Ok(KevCatalog { catalog_version: file.catalog_version, date_released: file.date_released, entries })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCatalog {
    catalog_version: Option<String>,
    date_released: Option<String>,
    vulnerabilities: Option<Vec<Item>>,
    // Markers of NVD feeds, to name them in errors.
    format: Option<String>,
    #[serde(rename = "CVE_Items")]
    cve_items: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(try_from = "RawEntry")]
enum Item {
    Entry(KevEntry),
    /// An NVD item (`cve`): the file is the wrong format.
    NvdCve,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(rename = "cveID")]
    cve_id: Option<String>,
    #[serde(default)]
    vendor_project: String,
    #[serde(default)]
    product: String,
    date_added: Option<String>,
    due_date: Option<String>,
    known_ransomware_campaign_use: Option<String>,
    #[serde(default)]
    required_action: String,
    cve: Option<IgnoredAny>,
}

impl TryFrom<RawEntry> for Item {
    type Error = &'static str;

    fn try_from(raw: RawEntry) -> Result<Item, &'static str> {
        let Some(cve_id) = raw.cve_id else {
            return if raw.cve.is_some() { Ok(Item::NvdCve) } else { Err("missing field `cveID`") };
        };
        Ok(Item::Entry(KevEntry {
            cve_id: cve_id.trim().to_ascii_uppercase(),
            vendor_project: raw.vendor_project,
            product: raw.product,
            date_added: raw.date_added.ok_or("missing field `dateAdded`")?,
            due_date: raw.due_date,
            ransomware: raw.known_ransomware_campaign_use.is_some_and(|k| k.eq_ignore_ascii_case("Known")),
            required_action: raw.required_action,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(json: &str) -> Result<KevCatalog, VulnImportError> {
        parse_catalog(Path::new("kev.json"), json.as_bytes())
    }

    #[test]
    fn ransomware_use_is_known_or_not() {
        let c = catalog(
            r#"{"catalogVersion":"2099.01.01","vulnerabilities":[
              {"cveID":"cve-2099-0001","dateAdded":"2099-01-01","knownRansomwareCampaignUse":"Known"},
              {"cveID":"CVE-2099-0002","dateAdded":"2099-01-02","knownRansomwareCampaignUse":"Unknown"}]}"#,
        )
        .unwrap();
        assert_eq!(c.catalog_version.as_deref(), Some("2099.01.01"));
        assert_eq!(c.entries[0].cve_id, "CVE-2099-0001", "ids are normalised to upper case");
        assert!(c.entries[0].ransomware);
        assert!(!c.entries[1].ransomware);
    }

    #[test]
    fn entries_need_an_id_and_a_date() {
        let err = catalog("{\"vulnerabilities\":[\n\n{\"cveID\":\"CVE-2099-0001\"}]}").unwrap_err();
        let VulnImportError::Malformed { line, detail, expected, .. } = &err else { panic!("{err}") };
        assert_eq!((*line, *expected), (3, FeedFormat::Kev));
        assert!(detail.contains("dateAdded"), "{detail}");
    }

    #[test]
    fn an_nvd_feed_is_the_wrong_format() {
        let err = catalog(r#"{"vulnerabilities":[{"cve":{"id":"CVE-2099-0001"}}]}"#).unwrap_err();
        let VulnImportError::WrongFormat { found, expected, .. } = &err else { panic!("{err}") };
        assert_eq!(*expected, FeedFormat::Kev);
        assert!(found.contains("NVD"), "{found}");
    }
}
