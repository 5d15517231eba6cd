//! Offline vulnerability data: which known CVEs a detected service version
//! falls under, and which of those are known to be exploited (issue #6).
//!
//! A review runs where the internet may not be, so the data comes from
//! files an operator downloads: NVD's CVE JSON 2.0 feeds and CISA's Known
//! Exploited Vulnerabilities catalog. They are read once into a compact
//! [`VulnDb`] that serialises as a whole, and a detection's CPE is looked up
//! in it by (vendor, product). This module is pure: no store, no network.
//!
//! A review must not claim a vulnerability it cannot show, so a hit carries
//! its [`Evidence`]: only [`Evidence::Shown`] means the detected version lies
//! in the CVE's vulnerable range; a detection without a version, or without
//! the update a criterion pins, is reported as such rather than as a match.
//!
//! * [`cpe`]: CPE 2.3 formatted strings, parsed and formatted.
//! * [`nvd`]: NVD CVE JSON 2.0 feeds, compacted to [`CveRecord`]s.
//! * [`kev`]: the CISA KEV catalog.
//! * [`matching`]: one match criterion against one detected CPE.
//! * [`index`]: the [`VulnDb`], its builder and import report.

pub mod cpe;
pub mod index;
pub mod kev;
pub mod matching;
pub mod nvd;

use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

pub use cpe::{Component, Cpe, CpeError};
pub use index::{ImportReport, SourceFile, VulnData, VulnDb, VulnDbBuilder, VulnHit};
pub use kev::{KevCatalog, KevEntry};
pub use matching::Evidence;
pub use nvd::{CveRecord, Cvss, CvssVersion, MatchCriterion, NvdFeed, Severity};

/// The two file formats this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedFormat {
    /// An NVD CVE JSON 2.0 feed (`nvdcve-2.0-2024.json`).
    Nvd,
    /// The CISA Known Exploited Vulnerabilities catalog (`known_exploited_vulnerabilities.json`).
    Kev,
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedFormat::Nvd => "an NVD CVE JSON 2.0 feed (`vulnerabilities[].cve`)",
            FeedFormat::Kev => "a CISA KEV catalog (`vulnerabilities[].cveID`)",
        })
    }
}

/// Why a vulnerability data file could not be read. Every variant names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum VulnImportError {
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Not JSON, or JSON that does not fit the format; `detail` is
    /// serde_json's message, which names the line and column too. For an
    /// item that lacks a field, the position is where the item ends.
    #[error("{}: malformed, expected {expected}: {detail}", path.display())]
    Malformed { path: PathBuf, expected: FeedFormat, line: usize, column: usize, detail: String },
    /// Well-formed JSON of another kind, such as a KEV catalog given as an
    /// NVD feed; `found` says what it looks like.
    #[error("{}: expected {expected}, but this is {found}", path.display())]
    WrongFormat { path: PathBuf, expected: FeedFormat, found: String },
}

impl VulnImportError {
    fn malformed(path: PathBuf, expected: FeedFormat, e: serde_json::Error) -> VulnImportError {
        if e.is_io() {
            // serde_json hands the reader's error back with its kind.
            return VulnImportError::Read { path, source: io::Error::from(e) };
        }
        VulnImportError::Malformed { path, expected, line: e.line(), column: e.column(), detail: e.to_string() }
    }
}

/// Feeds are published compressed; reading a `.gz` or `.zip` as JSON would
/// fail at line 1 column 1 with a message that hides the reason.
fn refuse_compressed(reader: &mut impl BufRead, path: &Path, expected: FeedFormat) -> Result<(), VulnImportError> {
    let head = reader.fill_buf().map_err(|source| VulnImportError::Read { path: path.to_path_buf(), source })?;
    let found = match head {
        [0x1f, 0x8b, ..] => "gzip-compressed data (decompress it first)",
        [b'P', b'K', 3, 4, ..] => "a zip archive (extract the JSON file first)",
        _ => return Ok(()),
    };
    Err(VulnImportError::WrongFormat { path: path.to_path_buf(), expected, found: found.to_string() })
}
