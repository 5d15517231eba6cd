//! Offline vulnerability data: which known CVEs a detected service version
//! falls under, and which of those are known to be exploited (issue #6).
//!
//! A review runs where the internet may not be, so the data comes from
//! files an operator downloads: NVD's CVE JSON 2.0 feeds and CISA's Known
//! Exploited Vulnerabilities catalog. They are read once into a compact
//! database that serialises as a whole, and a detection's CPE is looked up
//! in it by (vendor, product). This module is pure: no store, no network.
//!
//! A review must not claim a vulnerability it cannot show, so a hit carries
//! its evidence: only a detected version in the CVE's vulnerable range is a
//! match; a detection without a version, or without the update a criterion
//! pins, is reported as such.
//!
//! * [`cpe`]: CPE 2.3 formatted strings, parsed and formatted.

pub mod cpe;

pub use cpe::{Component, Cpe, CpeError};
