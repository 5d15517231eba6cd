//! Offline vulnerability data (#6): the sample NVD feed and KEV catalog in
//! `tests/data/vulns/` (invented CVE-2099-* ids; see its README) imported
//! and matched against CPEs as the detector writes them.

use std::path::{Path, PathBuf};

use vantage_coordinator::review::vulns::{
    CvssVersion, Evidence, FeedFormat, ImportReport, Severity, VulnDb, VulnHit, VulnImportError,
};
use vantage_detect::cpe::application;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vulns").join(name)
}

fn sample() -> (VulnDb, ImportReport) {
    VulnDb::import(&[data("nvdcve-2.0-sample.json")], &[data("kev-sample.json")]).unwrap_or_else(|e| panic!("{e}"))
}

/// The hits for a detected product, as (CVE id, evidence).
fn hits(db: &VulnDb, vendor: &str, product: &str, version: &str) -> Vec<(String, Evidence)> {
    let found = db.matches(&application(vendor, product, version)).unwrap();
    found.into_iter().map(|h| (h.cve, h.evidence)).collect()
}

fn shown(ids: &[&str]) -> Vec<(String, Evidence)> {
    ids.iter().map(|id| (id.to_string(), Evidence::Shown)).collect()
}

fn only_hit(db: &VulnDb, cpe: &str) -> VulnHit {
    let mut found = db.matches(cpe).unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn import_reports_what_it_kept() {
    let (db, report) = sample();
    assert_eq!(report.files.len(), 2);
    assert_eq!(report.files[0].name, "nvdcve-2.0-sample.json");
    assert_eq!((report.files[0].format, report.files[0].entries), (FeedFormat::Nvd, 10));
    assert_eq!(report.files[0].published.as_deref(), Some("2099-01-15T03:00:00.000"));
    assert_eq!((report.files[1].format, report.files[1].entries), (FeedFormat::Kev, 4));
    assert_eq!(report.cves, 9);
    assert_eq!(report.cves_without_criteria, 1, "CVE-2099-0010 awaits analysis");
    assert_eq!(report.rejected, 1, "CVE-2099-0009");
    assert_eq!(report.criteria, 11);
    assert_eq!(report.unreadable_criteria, 0);
    assert_eq!(report.kev_entries, 4);
    assert_eq!(report.kev_not_in_nvd, ["CVE-2099-0999"], "0010 is in NVD, only without criteria");
    assert!(db.cve("CVE-2099-0009").is_none());
    assert!(db.kev("CVE-2099-0010").is_some());
}

#[test]
fn openssh_ranges_hold_at_their_boundaries() {
    let (db, _) = sample();
    let ssh = |v| hits(&db, "openbsd", "openssh", v);
    assert_eq!(ssh("9.2p1"), shown(&["CVE-2099-0001", "CVE-2099-0002"]), "by score, highest first");
    assert_eq!(ssh("9.3p2"), shown(&["CVE-2099-0002"]), "versionEndExcluding 9.3p2 leaves 9.3p2 out");
    assert_eq!(ssh("9.7p1"), shown(&["CVE-2099-0002"]), "versionEndIncluding 9.7p1 holds 9.7p1");
    assert_eq!(ssh("9.8p1"), shown(&[]));
    assert_eq!(ssh("8.5p1"), shown(&["CVE-2099-0001", "CVE-2099-0002"]), "versionStartIncluding 8.5p1");
    assert_eq!(ssh("8.4p1"), shown(&["CVE-2099-0001"]));
}

#[test]
fn a_pinned_update_matches_the_detected_patch_level() {
    let (db, _) = sample();
    let ssh = hits(&db, "openbsd", "openssh", "9.1p1");
    assert_eq!(ssh, shown(&["CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0011"]));
    let hit = db.matches(&application("openbsd", "openssh", "9.1p1")).unwrap().remove(2);
    assert_eq!(hit.matched, "= 9.1 (update p1)");
}

#[test]
fn exact_versions_match_only_themselves() {
    let (db, _) = sample();
    assert_eq!(hits(&db, "f5", "nginx", "1.22.1"), shown(&["CVE-2099-0003"]));
    assert_eq!(hits(&db, "f5", "nginx", "1.23.0"), shown(&["CVE-2099-0003"]));
    assert_eq!(hits(&db, "f5", "nginx", "1.22.0"), shown(&[]));
    // NVD files nginx under both nginx and f5: either name finds the other's CVEs.
    assert_eq!(hits(&db, "nginx", "nginx", "1.22.1"), shown(&["CVE-2099-0003"]));
    assert_eq!(hits(&db, "acme", "nginx", "1.22.1"), shown(&[]), "another vendor is another product");
    let hit = only_hit(&db, &application("f5", "nginx", "1.22.1"));
    assert_eq!(hit.matched, "= 1.22.1");
    let cvss = hit.cvss.unwrap();
    assert_eq!((cvss.version, cvss.score, cvss.severity), (CvssVersion::V30, 7.5, Severity::High));
}

#[test]
fn start_excluding_and_second_ranges() {
    let (db, _) = sample();
    let maria = |v| hits(&db, "mariadb", "mariadb", v);
    assert_eq!(maria("10.6.0"), shown(&[]), "versionStartExcluding 10.6.0");
    assert_eq!(maria("10.6.1"), shown(&["CVE-2099-0005"]));
    assert_eq!(maria("10.6.17"), shown(&[]));
    assert_eq!(maria("10.11.7"), shown(&[]));
    let hit = only_hit(&db, &application("mariadb", "mariadb", "10.11.6-MariaDB-0+deb12u1"));
    assert_eq!((hit.cve.as_str(), hit.evidence), ("CVE-2099-0005", Evidence::Shown));
    assert_eq!(hit.matched, ">= 10.11.0, < 10.11.7");
}

#[test]
fn and_configurations_keep_their_platform() {
    let (db, _) = sample();
    let hit = only_hit(&db, &application("redis", "redis", "7.0.11"));
    assert_eq!(hit.cve, "CVE-2099-0004", "and not the rejected CVE-2099-0009");
    assert_eq!(hit.platforms, ["cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*"]);
    assert_eq!(hits(&db, "redis", "redis", "7.0.15"), shown(&[]));
}

#[test]
fn a_platform_entry_is_not_a_match() {
    let (db, _) = sample();
    // CVE-2099-0007 names Exim only as the (`vulnerable: false`) platform of libspf2.
    assert_eq!(hits(&db, "exim", "exim", "4.96"), shown(&["CVE-2099-0008"]));
    let hit = only_hit(&db, &application("libspf2_project", "libspf2", "1.2.10"));
    assert_eq!(hit.cve, "CVE-2099-0007");
    assert_eq!(hit.platforms, ["cpe:2.3:a:exim:exim:*:*:*:*:*:*:*:*"]);
}

#[test]
fn version_two_metrics_are_kept() {
    let (db, _) = sample();
    let hit = only_hit(&db, &application("beasts", "vsftpd", "2.3.4"));
    let cvss = hit.cvss.unwrap();
    assert_eq!((cvss.version, cvss.score, cvss.severity), (CvssVersion::V2, 10.0, Severity::High));
    assert_eq!(hits(&db, "beasts", "vsftpd", "3.0.3"), shown(&[]));
}

#[test]
fn known_exploited_cves_carry_their_kev_entry() {
    let (db, _) = sample();
    let ssh = db.matches(&application("openbsd", "openssh", "9.2p1")).unwrap();
    assert!(ssh[0].known_exploited());
    assert_eq!(ssh[0].kev_date_added(), Some("2099-01-12"));
    assert!(ssh[0].kev.as_ref().unwrap().ransomware);
    assert!(!ssh[1].known_exploited(), "CVE-2099-0002 is not in the catalog");
    let exim = only_hit(&db, &application("exim", "exim", "4.97"));
    assert!(exim.known_exploited());
    assert!(!exim.kev.unwrap().ransomware);
}

#[test]
fn descriptions_are_english_and_short() {
    let (db, _) = sample();
    let d = &db.cve("CVE-2099-0008").unwrap().description;
    assert!(d.starts_with("TEST DATA. In Exim before 4.97.1"), "{d}");
    assert_eq!(d.chars().count(), 300);
    assert!(d.ends_with('…'));
    let cvss = db.cve("CVE-2099-0008").unwrap().cvss.unwrap();
    assert_eq!((cvss.version, cvss.score), (CvssVersion::V31, 5.3), "NVD's primary 3.1, not the CNA's");
}

#[test]
fn a_detection_without_version_is_not_a_match() {
    let (db, _) = sample();
    let found = db.matches("cpe:2.3:a:exim:exim:*:*:*:*:*:*:*:*").unwrap();
    let ids: Vec<_> = found.iter().map(|h| (h.cve.as_str(), h.evidence)).collect();
    assert_eq!(ids, [("CVE-2099-0008", Evidence::VersionUnknown)]);
    assert_eq!(found[0].matched, "< 4.97.1");
    assert!(!found[0].evidence.is_shown());
    assert!(db.matches("cpe:2.3:a:openbsd:openssh").is_err(), "not a CPE 2.3 name");
}

#[test]
fn the_database_round_trips_through_serde() {
    let (db, _) = sample();
    let stored = serde_json::to_vec(&db).unwrap();
    let loaded: VulnDb = serde_json::from_slice(&stored).unwrap();
    assert_eq!(loaded.data(), db.data());
    let cpe = application("openbsd", "openssh", "9.2p1");
    assert_eq!(loaded.matches(&cpe).unwrap(), db.matches(&cpe).unwrap());
    assert!(!loaded.matches(&cpe).unwrap().is_empty());
}

#[test]
fn later_files_replace_earlier_records() {
    let nvd = data("nvdcve-2.0-sample.json");
    let (db, report) = VulnDb::import(&[&nvd, &nvd], &[] as &[PathBuf]).unwrap();
    assert_eq!(report.replaced, 10, "every non-rejected CVE was read twice");
    assert_eq!(report.cves, 9);
    assert_eq!(db.data().cves.len(), 9);
    assert!(report.kev_not_in_nvd.is_empty());
}

fn import_error(nvd: &[&Path], kev: &[&Path]) -> VulnImportError {
    VulnDb::import(nvd, kev).map(|_| ()).unwrap_err()
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nvdcve-2.0-2099.json");
    let text = std::fs::read_to_string(data("nvdcve-2.0-sample.json")).unwrap();
    // Drop the comma after the first item's `id` (line 12 of the sample):
    // the parser finds the next key on line 13 instead.
    let broken = text.replacen("\"CVE-2099-0001\",", "\"CVE-2099-0001\"", 1);
    std::fs::write(&path, broken).unwrap();
    let err = import_error(&[&path], &[]);
    let VulnImportError::Malformed { path: named, line, expected, .. } = &err else { panic!("{err}") };
    assert_eq!((named, *line, *expected), (&path, 13, FeedFormat::Nvd));
    let message = err.to_string();
    assert!(message.contains("nvdcve-2.0-2099.json") && message.contains("line 13"), "{message}");
}

#[test]
fn a_truncated_download_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kev.json");
    let text = std::fs::read_to_string(data("kev-sample.json")).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = import_error(&[], &[&path]);
    assert!(matches!(&err, VulnImportError::Malformed { expected: FeedFormat::Kev, .. }), "{err}");
}

#[test]
fn a_kev_catalog_given_as_an_nvd_feed_is_named() {
    let kev = data("kev-sample.json");
    let err = import_error(&[&kev], &[]);
    let VulnImportError::WrongFormat { path, expected, found } = &err else { panic!("{err}") };
    assert_eq!((path, *expected), (&kev, FeedFormat::Nvd));
    assert!(found.contains("KEV"), "{found}");
    assert!(err.to_string().contains("kev-sample.json"), "{err}");
}

#[test]
fn an_nvd_feed_given_as_a_kev_catalog_is_named() {
    let nvd = data("nvdcve-2.0-sample.json");
    let err = import_error(&[], &[&nvd]);
    let VulnImportError::WrongFormat { expected, found, .. } = &err else { panic!("{err}") };
    assert_eq!(*expected, FeedFormat::Kev);
    assert!(found.contains("NVD"), "{found}");
}

#[test]
fn compressed_feeds_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nvdcve-2.0-2099.json.gz");
    std::fs::write(&path, [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0]).unwrap();
    let err = import_error(&[&path], &[]);
    let VulnImportError::WrongFormat { found, .. } = &err else { panic!("{err}") };
    assert!(found.contains("gzip"), "{found}");
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let missing = data("nvdcve-2.0-missing.json");
    let err = import_error(&[&missing], &[]);
    let VulnImportError::Read { path, source } = &err else { panic!("{err}") };
    assert_eq!(path, &missing);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
}
