//! The justification register: the exposures an organisation means to have,
//! each with a reason, an owner and a date by which someone looks at it again.
//! A review judges every open port against it: documented and as described,
//! documented but different (another service, a product or version outside
//! what was agreed, TLS gone), or undocumented. An entry past its review-by
//! date still documents its port, but is itself a finding: a justification
//! nobody renews is how a temporary exposure becomes a permanent one.
//!
//! ```toml
//! [[service]]
//! host = "198.18.1.0/24"          # address, CIDR or range (target syntax)
//! port = 443                      # a number, or a port spec string: "80,443", "8000-8010"
//! proto = "tcp"                   # optional: tcp (default) or udp
//! service = "http"                # optional: the expected service, in nmap's words (no `ssl/`: see tls)
//! product = "nginx"               # optional: a case-insensitive substring of the detected product
//! versions = ">=1.22, <1.23"      # optional: the allowed versions (`>=8.0, <9.0`, `=1.22.1`, `*`)
//! tls = true                      # optional: whether TLS is expected (true) or must be absent (false)
//! justification = "Public website"
//! owner = "web-team"
//! contact = "web@example.invalid" # optional
//! review_by = "2027-03-31"        # YYYY-MM-DD; overdue from the next day (UTC)
//! ```
//!
//! Every error names the line, the entry and the field
//! (`register.toml:14: service 3: versions: ...`); `register/parse.rs` reads
//! the TOML. The editing functions the CLI calls ([`add_entry`],
//! [`remove_entries`], [`set_review_by`]) are in `register/edit.rs`; they keep
//! the operator's comments and layout.

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use vantage_shared::ports::PortSpecError;
use vantage_shared::target::TargetError;
use vantage_shared::version::RangeError;
use vantage_shared::{Method, PortSpec, Proto, ServiceFacts, TargetSet, Version, VersionRange};

mod edit;
mod parse;

pub use edit::{NewEntry, Selector, add_entry, remove_entries, set_review_by};

/// The fields an entry may have, in the order the editor writes them.
const FIELDS: [&str; 11] = [
    "host",
    "port",
    "proto",
    "service",
    "product",
    "versions",
    "tls",
    "justification",
    "owner",
    "contact",
    "review_by",
];

/// A register that cannot be used, and where: the file (when the caller
/// named it), the line, the entry (1-based) and the field, as far as known.
#[derive(Debug, thiserror::Error)]
pub struct RegisterError {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub entry: Option<usize>,
    pub field: Option<String>,
    pub problem: Problem,
}

/// What is wrong, by kind, so that callers and tests need not read messages.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Not TOML at all.
    #[error("{0}")]
    Syntax(String),
    /// A value of the wrong TOML type (a number where text was expected, ...).
    #[error("{0}")]
    Type(String),
    #[error("unknown field (known: {})", FIELDS.join(", "))]
    UnknownField,
    #[error("unknown key: a register holds only [[service]] entries")]
    UnknownKey,
    #[error("missing: every entry needs host, port, justification, owner and review_by")]
    Missing,
    #[error("is empty")]
    Empty,
    #[error(transparent)]
    Host(Box<TargetError>),
    #[error("names no address")]
    NoAddress,
    #[error(transparent)]
    Port(PortSpecError),
    #[error("`{0}` is neither tcp nor udp")]
    Proto(String),
    #[error("write `{0}` without `ssl/` and set `tls = true`")]
    SslPrefix(String),
    #[error(transparent)]
    Versions(RangeError),
    #[error("`{0}` is not a date (YYYY-MM-DD)")]
    Date(String),
    /// `[[service]]` written as an inline array, which the editor cannot extend.
    #[error("write entries as [[service]] tables, not as an inline array")]
    InlineArray,
}

impl RegisterError {
    /// Names the file in the message (`register.toml:14: ...`).
    pub fn in_file(mut self, name: impl Into<String>) -> Self {
        self.file = Some(name.into());
        self
    }

    fn new(problem: Problem) -> Self {
        RegisterError { file: None, line: None, entry: None, field: None, problem }
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::write_place(f, self.file.as_deref(), self.line)?;
        if let Some(entry) = self.entry {
            write!(f, "service {entry}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

/// One documented exposure, checked.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based position in the file, and the line its table starts on.
    pub number: usize,
    pub line: usize,
    pub host: TargetSet,
    /// The host as written (`198.18.1.0/24`), for reports.
    pub host_text: String,
    pub ports: PortSpec,
    pub proto: Proto,
    pub service: Option<String>,
    pub product: Option<String>,
    pub versions: Option<VersionRange>,
    pub tls: Option<bool>,
    pub justification: String,
    pub owner: String,
    pub contact: Option<String>,
    /// The review-by day as written, and the instant the entry becomes overdue.
    pub review_by: String,
    pub review_ends: SystemTime,
}

impl Entry {
    /// Whether the review-by day has passed at `today`.
    pub fn expired(&self, today: SystemTime) -> bool {
        today >= self.review_ends
    }

    pub fn covers(&self, addr: IpAddr, proto: Proto, port: u16) -> bool {
        self.proto == proto && self.ports.contains(port) && self.host.contains(addr)
    }

    /// Whether the entry says anything about what answers.
    fn expects_facts(&self) -> bool {
        self.service.is_some() || self.product.is_some() || self.versions.is_some() || self.tls.is_some()
    }

    /// Smaller is more specific: fewer addresses, then fewer ports, then earlier in the file.
    fn specificity(&self) -> (u128, u32, usize) {
        (self.host.len(), self.ports.len(), self.number)
    }
}

/// The parsed register.
#[derive(Debug, Clone, Default)]
pub struct Register {
    entries: Vec<Entry>,
}

/// How a register sees one open port.
#[derive(Debug, Clone)]
pub enum Judgement<'r> {
    /// Documented, and what answers is what the entry describes.
    Documented { entry: &'r Entry, expired: bool },
    /// Documented, but what answers differs from the entry.
    Different { entry: &'r Entry, reasons: Vec<Difference>, expired: bool },
    /// No entry covers the port.
    Undocumented,
}

impl<'r> Judgement<'r> {
    /// The entry that decided, if any.
    pub fn entry(&self) -> Option<&'r Entry> {
        match self {
            Judgement::Documented { entry, .. } | Judgement::Different { entry, .. } => Some(entry),
            Judgement::Undocumented => None,
        }
    }
}

/// One way what answers differs from its entry.
#[derive(Debug, Clone)]
pub enum Difference {
    /// Another service than the entry names.
    Service { expected: String, seen: String },
    /// The product does not contain the expected name, or none was identified.
    Product { expected: String, seen: Option<String> },
    /// The version lies outside the allowed range.
    Version { allowed: VersionRange, seen: String },
    /// A range is required but the version is unknown or not a version.
    VersionUnverifiable { allowed: VersionRange, seen: Option<String> },
    /// TLS expected, plain text seen.
    TlsMissing,
    /// Plain text expected, TLS seen.
    TlsUnexpected,
    /// Nothing identified what answers (no facts, or a name guessed from the
    /// port number), while the entry expects a service.
    Unidentified,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Service { expected, seen } => write!(f, "service is {seen}, documented as {expected}"),
            Difference::Product { expected, seen: Some(seen) } => {
                write!(f, "product is {seen}, documented as {expected}")
            }
            Difference::Product { expected, seen: None } => {
                write!(f, "product not identified, documented as {expected}")
            }
            Difference::Version { allowed, seen } => write!(f, "version {seen} is outside {allowed}"),
            Difference::VersionUnverifiable { allowed, seen: Some(seen) } => {
                write!(f, "version `{seen}` is unverifiable against {allowed}")
            }
            Difference::VersionUnverifiable { allowed, seen: None } => {
                write!(f, "version unknown: unverifiable against {allowed}")
            }
            Difference::TlsMissing => f.write_str("TLS expected, none seen"),
            Difference::TlsUnexpected => f.write_str("TLS seen, documented as plain"),
            Difference::Unidentified => f.write_str("service not identified: unverifiable"),
        }
    }
}

impl Register {
    /// Parses a register; every problem names its line, entry and field.
    /// Name the file with [`RegisterError::in_file`].
    pub fn parse(text: &str) -> Result<Register, RegisterError> {
        Ok(Register { entries: parse::entries(text)? })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry that documents a port. When several cover it, the most
    /// specific wins: the one naming fewer addresses (a single host before
    /// its network), then the one naming fewer ports (`443` before
    /// `1-1024`), then the one earlier in the file.
    pub fn entry_for(&self, addr: IpAddr, proto: Proto, port: u16) -> Option<&Entry> {
        self.entries.iter().filter(|e| e.covers(addr, proto, port)).min_by_key(|e| e.specificity())
    }

    /// Judges an open port and what answers on it (`None` when nothing was
    /// identified) against the register. Overdue entries still document
    /// their port; the judgement says they are overdue.
    pub fn judge(
        &self,
        addr: IpAddr,
        proto: Proto,
        port: u16,
        service: Option<&ServiceFacts>,
        today: SystemTime,
    ) -> Judgement<'_> {
        let Some(entry) = self.entry_for(addr, proto, port) else {
            return Judgement::Undocumented;
        };
        let expired = entry.expired(today);
        let reasons = differences(entry, service);
        if reasons.is_empty() {
            Judgement::Documented { entry, expired }
        } else {
            Judgement::Different { entry, reasons, expired }
        }
    }

    /// The entries whose review-by day has passed at `today`, in file order.
    pub fn expired(&self, today: SystemTime) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.expired(today)).collect()
    }
}

/// How `facts` differ from what `entry` expects. Facts are compared only
/// where the entry says something; a version is not compared with the range
/// of a product that is not the one documented.
fn differences(entry: &Entry, facts: Option<&ServiceFacts>) -> Vec<Difference> {
    let Some(f) = facts else {
        return if entry.expects_facts() { vec![Difference::Unidentified] } else { Vec::new() };
    };
    let mut out = Vec::new();
    // An imported nmap report names a tunnel `ssl/http` and has no TLS facts.
    let (name, tunnelled) = match f.service.strip_prefix("ssl/") {
        Some(inner) => (inner, true),
        None => (f.service.as_str(), false),
    };
    if let Some(expected) = &entry.service {
        if f.method == Method::PortGuess {
            out.push(Difference::Unidentified);
        } else if !name.eq_ignore_ascii_case(expected) {
            out.push(Difference::Service { expected: expected.clone(), seen: name.to_string() });
        }
    }
    let product_matches = match (&entry.product, &f.product) {
        (None, _) => true,
        (Some(expected), Some(seen)) if seen.to_lowercase().contains(&expected.to_lowercase()) => true,
        (Some(expected), seen) => {
            out.push(Difference::Product { expected: expected.clone(), seen: seen.clone() });
            false
        }
    };
    if let (Some(allowed), true) = (&entry.versions, product_matches) {
        match f.version.as_deref().map(|raw| (raw, Version::parse(raw))) {
            Some((raw, Some(v))) if !allowed.contains(&v) => {
                out.push(Difference::Version { allowed: allowed.clone(), seen: raw.to_string() });
            }
            Some((_, Some(_))) => {}
            Some((raw, None)) => {
                out.push(Difference::VersionUnverifiable { allowed: allowed.clone(), seen: Some(raw.to_string()) })
            }
            None => out.push(Difference::VersionUnverifiable { allowed: allowed.clone(), seen: None }),
        }
    }
    match (entry.tls, f.tls.is_some() || tunnelled) {
        (Some(true), false) => out.push(Difference::TlsMissing),
        (Some(false), true) => out.push(Difference::TlsUnexpected),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests;
