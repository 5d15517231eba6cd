//! nmap's `nmap-service-probes` format: parsed, compiled with PCRE2, matched.
//!
//! When the user points Vantage at an nmap-service-probes file
//! (`--service-probes PATH`; Debian's nmap installs
//! `/usr/share/nmap/nmap-service-probes`), its probes and match lines are
//! used next to Vantage's own. Vantage never ships the file.
//!
//! * [`ProbeDb::load`] / [`ProbeDb::parse`] read the whole format (`Exclude`,
//!   `Probe`, `match`, `softmatch`, `ports`, `sslports`, `totalwaitms`,
//!   `tcpwrappedms`, `rarity`, `fallback`). A line that cannot be used is
//!   left out and listed, with its number and the reason, in the
//!   [`LoadReport`]; the rest loads.
//! * Patterns are compiled with PCRE2 (the engine nmap uses) with UTF off,
//!   so every pattern of nmap's own file compiles and matches raw bytes;
//!   see [`pattern`] for how bytes and runaway matches are handled.
//! * The caller runs the conversation: [`ProbeDb::probes_for`] says what to
//!   send, in nmap's order; [`ProbeDb::match_response`] says what answered,
//!   as an [`NmapMatch`] with the version templates (`$1`, `$P(n)`,
//!   `$SUBST(n,"a","b")`, `$I(n,">")`) filled in, bounded and printable.
//! * Matching follows nmap: the probe's lines in file order, then those of
//!   its `fallback` probes, then (TCP only) the NULL probe's. A hard match
//!   ends the search; a soft match names the service and the search goes on
//!   for a hard match of that service only (details at
//!   [`ProbeDb::match_response_with`]).
//! * [`cpe22_to_23`] turns nmap's CPE 2.2 URIs into CPE 2.3 formatted strings.
//!
//! Nothing here does I/O besides [`ProbeDb::load`] reading the file.

mod cpe;
mod db;
mod parse;
pub mod pattern;
mod ports;
mod prefilter;
mod template;

pub use cpe::{cpe22_to_23, cpe23_to_22};
pub use db::{
    DEFAULT_INTENSITY, DEFAULT_RARITY, DEFAULT_TCPWRAPPEDMS, DEFAULT_TOTALWAITMS, LoadReport, MAX_RESPONSE_LEN,
    MatchRule, NmapMatch, Probe, ProbeDb,
};
pub use parse::{LineError, LineErrorKind};
pub use ports::{ExcludeList, PortList};
pub use template::MAX_FIELD_LEN;
