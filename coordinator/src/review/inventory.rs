//! The asset inventory: what the organisation believes runs where, as its
//! CMDB or spreadsheet exports it. A scan checks that belief from outside:
//! a host the inventory does not know is an unknown asset, and a product
//! seen at another version than the inventory records means either the
//! inventory or the host is out of date. Both are review findings.
//!
//! The file is CSV with a header; `host`, `software` and `version` are
//! required in any order and any case, further columns are kept as they are.
//! Blank lines are skipped; CSV has no comments, so `#` is data:
//!
//! ```csv
//! host,software,version,owner
//! 198.18.0.10,OpenSSH,9.2p1,ops
//! 198.18.0.11,MariaDB,10.11.6,dba
//! 198.18.0.12,nginx,,web
//! ```
//!
//! A host is one address (IPv4 or IPv6); a host may have several lines, one
//! per piece of software. An empty version means unknown: nothing is
//! compared. Errors name the line and column (`inventory.csv:3: column 1
//! (host): ...`).
//!
//! The inventory's software and the scan's product are the same when the
//! words of one contain the words of the other, ignoring case (`OpenSSH` and
//! `openssh`, `nginx` and `nginx/Debian`, `Apache` and `Apache httpd`, but
//! not `httpd` and `lighttpd`), after a few common aliases (`postgres`,
//! `mssql`, `iis`, `httpd`, `named`). Versions compare with
//! [`Version`], so `10.11.6` and `10.11.6-MariaDB-0+deb12u1` agree.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use vantage_shared::{ServiceFacts, Version};

/// An inventory that cannot be used, and where: the file (when the caller
/// named it), the line, and the column (1-based, with its header name).
#[derive(Debug, thiserror::Error)]
pub struct InventoryError {
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<(usize, String)>,
    pub problem: InventoryProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryProblem {
    /// Not CSV as expected (a row with another number of fields, bad UTF-8, ...).
    #[error("{0}")]
    Csv(String),
    #[error("the first line must be a header naming the columns host, software and version; `{0}` is missing")]
    MissingColumn(&'static str),
    #[error("column `{0}` appears twice in the header")]
    DuplicateColumn(String),
    #[error("`{0}` is not an IP address")]
    Host(String),
    #[error("`{0}` is a network or range; name one address per line")]
    NotSingle(String),
    #[error("is empty")]
    Empty,
    #[error("`{0}` is not a version (leave the column empty when unknown)")]
    Version(String),
}

impl InventoryError {
    /// Names the file in the message (`inventory.csv:3: ...`).
    pub fn in_file(mut self, name: impl Into<String>) -> Self {
        self.file = Some(name.into());
        self
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::write_place(f, self.file.as_deref(), self.line)?;
        if let Some((number, name)) = &self.column {
            write!(f, "column {number} ({name}): ")?;
        }
        write!(f, "{}", self.problem)
    }
}

/// Line numbers from byte offsets: csv's own count leaves out blank lines.
struct Lines<'t>(&'t str);

impl Lines<'_> {
    /// The line of the first non-blank byte at or after `byte`.
    fn at(&self, byte: u64) -> u64 {
        let bytes = self.0.as_bytes();
        let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        bytes[..start].iter().filter(|b| **b == b'\n').count() as u64 + 1
    }

    fn csv_error(&self, e: csv::Error) -> InventoryError {
        InventoryError {
            file: None,
            line: e.position().map(|p| self.at(p.byte())),
            column: None,
            problem: InventoryProblem::Csv(e.to_string()),
        }
    }
}

/// One line of the inventory.
#[derive(Debug, Clone)]
pub struct Record {
    pub line: u64,
    pub host: IpAddr,
    pub software: String,
    /// `None` when the column is empty.
    pub version: Option<Version>,
    /// The other columns (owner, location, ...), by header name as written, in file order.
    pub extra: Vec<(String, String)>,
}

/// The parsed inventory, looked up by host.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    records: Vec<Record>,
    by_host: BTreeMap<IpAddr, Vec<usize>>,
}

/// The scan saw software of the inventory at another version.
#[derive(Debug, Clone)]
pub struct Discrepancy<'i> {
    /// What the inventory says.
    pub record: &'i Record,
    /// The product and version the scan saw, as reported.
    pub product: String,
    pub seen: String,
}

impl fmt::Display for Discrepancy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.record;
        let recorded = r.version.as_ref().map(Version::as_str).unwrap_or("?");
        write!(
            f,
            "inventory line {} says {} {recorded}; the scan saw {} {}",
            r.line, r.software, self.product, self.seen
        )
    }
}

/// Where the required columns are.
struct Columns {
    host: usize,
    software: usize,
    version: usize,
    names: Vec<String>,
}

impl Inventory {
    pub fn parse(text: &str) -> Result<Inventory, InventoryError> {
        let lines = Lines(text);
        let mut csv = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let columns = columns(csv.headers().map_err(|e| lines.csv_error(e))?, lines.at(0))?;
        let mut inventory = Inventory::default();
        for row in csv.records() {
            let row = row.map_err(|e| lines.csv_error(e))?;
            let record = record(&columns, &row, lines.at(row.position().map_or(0, |p| p.byte())))?;
            inventory.by_host.entry(record.host).or_default().push(inventory.records.len());
            inventory.records.push(record);
        }
        Ok(inventory)
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Whether the inventory has a line for `addr`.
    pub fn knows(&self, addr: IpAddr) -> bool {
        self.by_host.contains_key(&addr)
    }

    /// The hosts among `seen` the inventory does not know, sorted, once each:
    /// the review's unknown assets.
    pub fn unknown(&self, seen: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = seen.into_iter().filter(|a| !self.knows(*a)).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The inventory's lines for `addr`, in file order.
    pub fn for_host(&self, addr: IpAddr) -> impl Iterator<Item = &Record> + '_ {
        self.by_host.get(&addr).into_iter().flatten().map(|&i| &self.records[i])
    }

    /// Where what answers on a port of `addr` contradicts the inventory: the
    /// inventory names the product for that host, and no line of it has the
    /// version seen. Nothing is compared when the scan saw no product or no
    /// version, or the inventory has no version for it.
    pub fn discrepancies(&self, addr: IpAddr, service: &ServiceFacts) -> Vec<Discrepancy<'_>> {
        let Some((product, seen)) = seen_product(service) else {
            return Vec::new();
        };
        let Some(seen_version) = Version::parse(&seen) else {
            return Vec::new();
        };
        let same: Vec<&Record> =
            self.for_host(addr).filter(|r| r.version.is_some() && same_software(&r.software, &product)).collect();
        if same.iter().any(|r| r.version.as_ref() == Some(&seen_version)) {
            return Vec::new();
        }
        same.into_iter().map(|record| Discrepancy { record, product: product.clone(), seen: seen.clone() }).collect()
    }
}

fn columns(header: &csv::StringRecord, line: u64) -> Result<Columns, InventoryError> {
    let names: Vec<String> = header.iter().map(String::from).collect();
    let at_header = |problem| InventoryError { file: None, line: Some(line), column: None, problem };
    for (i, name) in names.iter().enumerate() {
        if names[..i].iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(at_header(InventoryProblem::DuplicateColumn(name.clone())));
        }
    }
    let find = |name: &'static str| {
        let found = names.iter().position(|n| n.eq_ignore_ascii_case(name));
        found.ok_or_else(|| at_header(InventoryProblem::MissingColumn(name)))
    };
    Ok(Columns { host: find("host")?, software: find("software")?, version: find("version")?, names: names.clone() })
}

fn record(columns: &Columns, row: &csv::StringRecord, line: u64) -> Result<Record, InventoryError> {
    let bad = |column: usize, problem| InventoryError {
        file: None,
        line: Some(line),
        column: Some((column + 1, columns.names[column].clone())),
        problem,
    };
    let field = |column: usize| row.get(column).unwrap_or("");
    let host_text = field(columns.host);
    let host = host_text.parse::<IpAddr>().map_err(|_| {
        let problem = if host_text.contains(['/', '-']) {
            InventoryProblem::NotSingle(host_text.to_string())
        } else {
            InventoryProblem::Host(host_text.to_string())
        };
        bad(columns.host, problem)
    })?;
    let software = field(columns.software);
    if software.is_empty() {
        return Err(bad(columns.software, InventoryProblem::Empty));
    }
    let version = match field(columns.version) {
        "" => None,
        text => Some(Version::parse(text).ok_or_else(|| bad(columns.version, InventoryProblem::Version(text.into())))?),
    };
    let required = [columns.host, columns.software, columns.version];
    let extra = (0..row.len())
        .filter(|i| !required.contains(i))
        .map(|i| (columns.names[i].clone(), field(i).to_string()))
        .collect();
    Ok(Record { line, host, software: software.to_string(), version, extra })
}

/// The product and version the scan saw. nmap reports MariaDB as `MySQL`
/// with a version of `5.5.5-10.11.6-MariaDB-...` (the prefix is for old
/// replication clients); that is MariaDB 10.11.6.
fn seen_product(f: &ServiceFacts) -> Option<(String, String)> {
    let product = f.product.clone()?;
    let version = f.version.clone()?;
    if version.contains("-MariaDB") {
        let version = version.strip_prefix("5.5.5-").unwrap_or(&version).to_string();
        return Some(("MariaDB".into(), version));
    }
    Some((product, version))
}

/// Names that share no word with the name the scan reports, and that name.
const ALIASES: [(&str, &str); 9] = [
    ("postgres", "postgresql"),
    ("mssql", "microsoft sql server"),
    ("sql server", "microsoft sql server"),
    ("iis", "microsoft iis httpd"),
    ("internet information services", "microsoft iis httpd"),
    ("httpd", "apache httpd"),
    ("apache http server", "apache httpd"),
    ("named", "isc bind"),
    ("bind9", "isc bind"),
];

/// A name as lowercase words, aliases resolved (`nginx/Debian` → `nginx debian`).
fn words(name: &str) -> Vec<String> {
    let lower = name.to_lowercase();
    let plain: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let joined = plain.join(" ");
    let resolved = ALIASES.iter().find(|(alias, _)| *alias == joined).map_or(joined.as_str(), |(_, name)| name);
    resolved.split(' ').filter(|w| !w.is_empty()).map(String::from).collect()
}

/// Whether the words of one name appear, in order and together, in the other.
fn same_software(a: &str, b: &str) -> bool {
    let (a, b) = (words(a), words(b));
    let within = |short: &[String], long: &[String]| !short.is_empty() && long.windows(short.len()).any(|w| w == short);
    within(&a, &b) || within(&b, &a)
}

#[cfg(test)]
mod tests;
