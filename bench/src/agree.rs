//! Whether Vantage and `nmap -sV` agree on one port, and who matches the
//! installed package.
//!
//! Products are compared by case-insensitive containment, because the two
//! name the same software in different words (`Exim` and `Exim smtpd`,
//! `Redis` and `Redis key-value store`). Versions are compared by tokens,
//! because nmap puts in its version what Vantage may keep in its `info`
//! (`9.2p1 Debian 2+deb12u5` against `9.2p1` with info `Debian 2+deb12u5`).
//! Neither comparison says who is right: [`matches_upstream`] does, against
//! the version of the Debian package behind the port.

use serde::Serialize;

use crate::parse::ServiceFinding;

/// How Vantage's product compares with nmap's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProductVerdict {
    /// One contains the other (case-insensitive), or neither names one.
    Agrees,
    /// Both name a product, and neither contains the other.
    Differs,
    /// Only Vantage names a product.
    VantageOnly,
    /// Only nmap names a product.
    NmapOnly,
}

impl ProductVerdict {
    pub fn name(self) -> &'static str {
        match self {
            ProductVerdict::Agrees => "agrees",
            ProductVerdict::Differs => "differs",
            ProductVerdict::VantageOnly => "vantage only",
            ProductVerdict::NmapOnly => "nmap only",
        }
    }
}

/// How specific Vantage's version is, next to nmap's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionVerdict {
    /// Equal, each one's tokens within the other's version and info, or neither has one.
    Same,
    /// Vantage has a version and nmap none, or every token of nmap's version
    /// is in Vantage's version and info.
    MoreSpecific,
    /// The other way round.
    LessSpecific,
    /// Both have one and neither holds the other's tokens.
    Differs,
}

impl VersionVerdict {
    pub fn name(self) -> &'static str {
        match self {
            VersionVerdict::Same => "same",
            VersionVerdict::MoreSpecific => "more specific",
            VersionVerdict::LessSpecific => "less specific",
            VersionVerdict::Differs => "differs",
        }
    }
}

pub fn product(vantage: Option<&str>, nmap: Option<&str>) -> ProductVerdict {
    match (vantage.map(str::to_lowercase), nmap.map(str::to_lowercase)) {
        (None, None) => ProductVerdict::Agrees,
        (Some(_), None) => ProductVerdict::VantageOnly,
        (None, Some(_)) => ProductVerdict::NmapOnly,
        (Some(v), Some(n)) if v.contains(&n) || n.contains(&v) => ProductVerdict::Agrees,
        (Some(_), Some(_)) => ProductVerdict::Differs,
    }
}

/// The words of a version, without bare punctuation (`2.2.X - 2.3.X` is
/// `2.2.x`, `2.3.x`), lowercased.
fn tokens(version: &str) -> Vec<String> {
    version
        .split_whitespace()
        .map(|t| t.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')')).to_lowercase())
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .collect()
}

/// Whether every token of `version` occurs in `finding`'s version or info.
fn within(version: &str, finding: &ServiceFinding) -> bool {
    let hay = format!("{} {}", finding.version.as_deref().unwrap_or(""), finding.info.as_deref().unwrap_or(""))
        .to_lowercase();
    let tokens = tokens(version);
    !tokens.is_empty() && tokens.iter().all(|t| hay.contains(t.as_str()))
}

pub fn version(vantage: &ServiceFinding, nmap: &ServiceFinding) -> VersionVerdict {
    match (vantage.version.as_deref(), nmap.version.as_deref()) {
        (None, None) => VersionVerdict::Same,
        (Some(_), None) => VersionVerdict::MoreSpecific,
        (None, Some(_)) => VersionVerdict::LessSpecific,
        (Some(v), Some(n)) => match (within(n, vantage), within(v, nmap)) {
            _ if v.eq_ignore_ascii_case(n) => VersionVerdict::Same,
            (true, true) => VersionVerdict::Same,
            (true, false) => VersionVerdict::MoreSpecific,
            (false, true) => VersionVerdict::LessSpecific,
            (false, false) => VersionVerdict::Differs,
        },
    }
}

/// Whether a reported version is the package's upstream version: equal to
/// it, or starting with it and then a space, `-`, `+` or `~`
/// (`9.2p1 Debian 2+deb12u5` for `9.2p1`; not `5.5.5-10.11.6-MariaDB` for
/// `10.11.6`, whose leading version is not MariaDB's).
pub fn matches_upstream(version: Option<&str>, upstream: &str) -> bool {
    let (Some(version), false) = (version.map(str::trim), upstream.is_empty()) else { return false };
    let (version, upstream) = (version.to_lowercase(), upstream.to_lowercase());
    version.strip_prefix(&upstream).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '-', '+', '~']))
}

/// Which side's version is the package's ([`matches_upstream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upstream {
    Both,
    Vantage,
    Nmap,
    /// At least one side has a version, and neither is the package's.
    Neither,
    /// Neither side has a version.
    NoVersion,
}

impl Upstream {
    pub fn of(vantage: &ServiceFinding, nmap: &ServiceFinding, upstream: &str) -> Upstream {
        if vantage.version.is_none() && nmap.version.is_none() {
            return Upstream::NoVersion;
        }
        match (
            matches_upstream(vantage.version.as_deref(), upstream),
            matches_upstream(nmap.version.as_deref(), upstream),
        ) {
            (true, true) => Upstream::Both,
            (true, false) => Upstream::Vantage,
            (false, true) => Upstream::Nmap,
            (false, false) => Upstream::Neither,
        }
    }

    /// For a sentence: who states the package's upstream version.
    pub fn describe(self) -> &'static str {
        match self {
            Upstream::Both => "both state the package's version",
            Upstream::Vantage => "only Vantage states the package's version",
            Upstream::Nmap => "only nmap states the package's version",
            Upstream::Neither => "neither states the package's version",
            Upstream::NoVersion => "neither gives a version",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Upstream::Both => "both",
            Upstream::Vantage => "vantage",
            Upstream::Nmap => "nmap",
            Upstream::Neither => "neither",
            Upstream::NoVersion => "-",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(version: Option<&str>, info: Option<&str>) -> ServiceFinding {
        ServiceFinding { version: version.map(String::from), info: info.map(String::from), ..Default::default() }
    }

    #[test]
    fn products_agree_by_containment_either_way() {
        assert_eq!(product(Some("Exim"), Some("Exim smtpd")), ProductVerdict::Agrees);
        assert_eq!(product(Some("Redis key-value store"), Some("redis")), ProductVerdict::Agrees);
        assert_eq!(product(Some("Net-SNMP"), Some("net-snmp")), ProductVerdict::Agrees);
        assert_eq!(product(None, None), ProductVerdict::Agrees);
        assert_eq!(product(Some("MariaDB"), Some("MySQL")), ProductVerdict::Differs);
        assert_eq!(product(Some("dnsmasq"), Some("NLnet Labs NSD")), ProductVerdict::Differs);
        assert_eq!(product(Some("vsftpd"), None), ProductVerdict::VantageOnly);
        assert_eq!(product(None, Some("Linux telnetd")), ProductVerdict::NmapOnly);
    }

    #[test]
    fn versions_by_tokens() {
        let same = version(&f(Some("1.22.1"), None), &f(Some("1.22.1"), None));
        assert_eq!(same, VersionVerdict::Same);
        // nmap's words spread over Vantage's version and info, and back: the same facts.
        let ssh = version(&f(Some("9.2p1"), Some("Debian 2+deb12u5")), &f(Some("9.2p1 Debian 2+deb12u5"), None));
        assert_eq!(ssh, VersionVerdict::Same);
        // Equal versions are the same, whatever the infos say.
        let infos = version(&f(Some("9.2p1"), Some("Debian 2+deb12u5")), &f(Some("9.2p1"), Some("protocol 2.0")));
        assert_eq!(infos, VersionVerdict::Same);
        let more = version(&f(Some("9.2p1 Debian 2+deb12u5"), None), &f(Some("9.2p1"), Some("protocol 2.0")));
        assert_eq!(more, VersionVerdict::MoreSpecific);
        assert_eq!(version(&f(Some("2.0.11"), None), &f(None, None)), VersionVerdict::MoreSpecific);
        assert_eq!(
            version(&f(None, Some("protocol 31")), &f(Some("2.2.X - 2.3.X"), None)),
            VersionVerdict::LessSpecific
        );
        assert_eq!(version(&f(Some("3.0"), None), &f(Some("3.0.5"), None)), VersionVerdict::LessSpecific);
        assert_eq!(version(&f(Some("2.5.13"), None), &f(Some("2.2.X - 2.3.X"), None)), VersionVerdict::Differs);
        let maria = version(&f(Some("10.11.6"), None), &f(Some("5.5.5-10.11.6-MariaDB-0+deb12u1"), None));
        assert_eq!(maria, VersionVerdict::LessSpecific, "nmap's one token holds 10.11.6");
        assert_eq!(version(&f(None, None), &f(None, Some("protocol 2.0"))), VersionVerdict::Same);
    }

    #[test]
    fn bare_punctuation_is_no_token() {
        assert_eq!(tokens("2.2.X - 2.3.X"), ["2.2.x", "2.3.x"]);
        assert_eq!(tokens("(Debian)"), ["debian"]);
        assert!(!within("-", &f(Some("1-2"), None)), "a version of punctuation holds nothing");
    }

    #[test]
    fn upstream_is_a_prefix_up_to_a_separator() {
        assert!(matches_upstream(Some("9.2p1 Debian 2+deb12u5"), "9.2p1"));
        assert!(matches_upstream(Some("4.96"), "4.96"));
        assert!(matches_upstream(Some("1.22.1"), "1.22.1"));
        assert!(!matches_upstream(Some("5.5.5-10.11.6-MariaDB-0+deb12u1"), "10.11.6"));
        assert!(!matches_upstream(Some("2.0.11"), "2.0.1"));
        assert!(!matches_upstream(None, "2.0.11"));
        assert!(!matches_upstream(Some("anything"), ""));
    }

    #[test]
    fn who_matches_the_package() {
        let (right, wrong, none) = (f(Some("2.5.13"), None), f(Some("2.2.X - 2.3.X"), None), f(None, None));
        assert_eq!(Upstream::of(&right, &wrong, "2.5.13"), Upstream::Vantage);
        assert_eq!(Upstream::of(&wrong, &right, "2.5.13"), Upstream::Nmap);
        assert_eq!(Upstream::of(&right, &right, "2.5.13"), Upstream::Both);
        assert_eq!(Upstream::of(&none, &wrong, "2.5.13"), Upstream::Neither);
        assert_eq!(Upstream::of(&none, &none, "2.5.13"), Upstream::NoVersion);
    }
}
