//! The candidate findings of one baseline: every open port judged against
//! what the organisation knows about itself (the register, the inventory)
//! and about software (the vulnerability data), under the policy.
//!
//! One port can give several findings (an undocumented database that also
//! runs a known-exploited version is two problems with two fixes); each
//! gets its own sentence, written for the person who decides.

use std::time::SystemTime;

use vantage_shared::{BaselineEntry, Category, Method, PortState, ServiceFacts};

use super::super::inventory::Inventory;
use super::super::policy::Policy;
use super::super::register::{Entry, Judgement, Register};
use super::super::vulns::{VulnDb, VulnHit};
use super::{Detail, FindingKey, Kind, Severity, hours_text};

/// What a review judges ports against. Each part is optional: without a
/// register every port is undocumented; without vulnerability data no
/// version is called vulnerable (and the review says it had none).
#[derive(Clone, Copy)]
pub struct Knowledge<'a> {
    pub register: Option<&'a Register>,
    pub inventory: Option<&'a Inventory>,
    pub vulns: Option<&'a VulnDb>,
    pub policy: &'a Policy,
}

/// A finding as one review sees it, before its history is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub key: FindingKey,
    pub severity: Severity,
    pub owner: Option<String>,
    pub contact: Option<String>,
    pub sentence: String,
    pub detail: Detail,
}

/// The candidates of a baseline's entries, in key order. `regions_scanned`
/// is how many regions the baseline was scanned from; `now` decides which
/// register entries are overdue.
pub fn evaluate(
    entries: impl IntoIterator<Item = BaselineEntry>,
    regions_scanned: usize,
    k: Knowledge<'_>,
    now: SystemTime,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for e in entries {
        let port = Port { e: &e, regions_scanned, k, now };
        match e.state {
            PortState::Open => port.judge(&mut out),
            // Port 0: the whole host; its real services, where detection found
            // them, are entries of their own.
            PortState::AnswersAll => port.answers_all(&mut out),
            _ => {}
        }
    }
    out.sort_by_key(|c| c.key);
    out
}

/// One open port under judgement.
struct Port<'a> {
    e: &'a BaselineEntry,
    regions_scanned: usize,
    k: Knowledge<'a>,
    now: SystemTime,
}

impl Port<'_> {
    fn judge(&self, out: &mut Vec<Candidate>) {
        let facts = self.e.service.as_ref().filter(|s| s.method != Method::PortGuess);
        let judgement = match self.k.register {
            Some(r) => r.judge(self.e.addr, self.e.proto, self.e.port, facts, self.now),
            None => Judgement::Undocumented,
        };
        let entry = judgement.entry();
        match &judgement {
            Judgement::Undocumented => {
                let sensitive = facts.is_some_and(|s| {
                    matches!(s.category, Category::Database | Category::RemoteAccess | Category::Management)
                });
                if sensitive {
                    let text = format!(
                        "{} reachable from the internet on {}{}; no business justification is documented; \
                         close it now or document why it must stay",
                        self.what(),
                        self.place(),
                        self.reach()
                    );
                    out.push(self.candidate(Kind::ExposedService, None, text, Vec::new()));
                } else {
                    let odd = match (facts, vantage_detect::plan::port_guess(self.e.port)) {
                        (Some(s), Some(usual)) if usual != s.service => ", not its usual port,",
                        (Some(_), None) => ", not a standard port,",
                        _ => "",
                    };
                    let purpose = if facts.is_none() { " (nothing identified what answers)" } else { "" };
                    let text = format!(
                        "{} on {}{odd} is open{}{purpose} with no documented justification; \
                         document it with an owner or close it",
                        self.what(),
                        self.place(),
                        self.reach()
                    );
                    out.push(self.candidate(Kind::Undocumented, None, text, Vec::new()));
                }
            }
            Judgement::Documented { entry, .. } => {
                let text = format!(
                    "{} on {} is documented (\"{}\", owner {}) and answers as documented; next review by {}",
                    self.what(),
                    self.place(),
                    entry.justification,
                    entry.owner,
                    entry.review_by
                );
                out.push(self.candidate(Kind::Documented, Some(entry), text, Vec::new()));
            }
            Judgement::Different { entry, reasons, .. } => {
                let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                let text = format!(
                    "{} on {} differs from its register entry {} ({}); {}: bring the service back in line \
                     or update the register",
                    self.what(),
                    self.place(),
                    entry.number,
                    reasons.join("; "),
                    entry.owner
                );
                out.push(self.candidate(Kind::NotAsDocumented, Some(entry), text, reasons));
            }
        }
        if let Some(entry) = entry.filter(|e| e.expired(self.now)) {
            let text = format!(
                "the justification for {} on {} (\"{}\") was due for review on {}; {}: renew it or close the port",
                self.what(),
                self.place(),
                entry.justification,
                entry.review_by,
                entry.owner
            );
            let why = vec![format!("register entry {} review-by {}", entry.number, entry.review_by)];
            out.push(self.candidate(Kind::ReviewOverdue, Some(entry), text, why));
        }
        if let Some(s) = facts {
            self.vulnerabilities(s, entry, out);
            self.inventory(s, entry, out);
        }
    }

    fn answers_all(&self, out: &mut Vec<Candidate>) {
        // Whoever documents anything on the host owns the question of what it is.
        let entry = self.k.register.and_then(|r| r.entries().iter().find(|e| e.host.contains(self.e.addr)));
        let host = match self.e.addr {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        let text = format!(
            "{host} answers on every port probed{} (a SYN proxy, tarpit or CDN edge): the scan cannot tell its \
             real services apart; find out what it is, then document it",
            self.reach()
        );
        out.push(self.candidate(Kind::AnswersAll, entry, text, Vec::new()));
    }

    fn vulnerabilities(&self, s: &ServiceFacts, entry: Option<&Entry>, out: &mut Vec<Candidate>) {
        let Some(db) = self.k.vulns else { return };
        let mut hits: Vec<VulnHit> = Vec::new();
        for cpe in &s.cpe {
            // A CPE the detector wrote but the matcher cannot read proves nothing either way.
            for hit in db.matches(cpe).unwrap_or_default() {
                if hit.evidence.is_shown() && !hits.iter().any(|h| h.cve == hit.cve) {
                    hits.push(hit);
                }
            }
        }
        let score = |h: &VulnHit| h.cvss.as_ref().map_or(0.0, |c| c.score);
        hits.sort_by(|a, b| score(b).total_cmp(&score(a)).then_with(|| a.cve.cmp(&b.cve)));
        let (exploited, known): (Vec<&VulnHit>, Vec<&VulnHit>) = hits.iter().partition(|h| h.known_exploited());
        if !exploited.is_empty() {
            let ransomware = exploited.iter().any(|h| h.kev.as_ref().is_some_and(|k| k.ransomware));
            let text = format!(
                "{} on {}{} runs a version with {} known to be exploited ({}{}); upgrade it or take it off the \
                 internet",
                self.what(),
                self.place(),
                self.reach(),
                plural(exploited.len(), "vulnerability", "vulnerabilities"),
                ids(&exploited),
                if ransomware { ", used in ransomware campaigns" } else { "" }
            );
            let why = exploited.iter().map(|h| describe(h)).collect();
            out.push(self.candidate_with_cves(Kind::KnownExploited, entry, text, why, &exploited));
        }
        if !known.is_empty() {
            let top = known[0];
            let text = format!(
                "{} on {} is affected by {} ({}{}); upgrade it",
                self.what(),
                self.place(),
                plural(known.len(), "known vulnerability", "known vulnerabilities"),
                ids(&known),
                top.cvss.as_ref().map(|c| format!(", highest CVSS {:.1}", c.score)).unwrap_or_default()
            );
            let why = known.iter().map(|h| describe(h)).collect();
            out.push(self.candidate_with_cves(Kind::VulnerableVersion, entry, text, why, &known));
        }
    }

    fn inventory(&self, s: &ServiceFacts, entry: Option<&Entry>, out: &mut Vec<Candidate>) {
        let Some(inv) = self.k.inventory else { return };
        let found = inv.discrepancies(self.e.addr, s);
        if found.is_empty() {
            return;
        }
        let why: Vec<String> = found.iter().map(ToString::to_string).collect();
        let text = format!(
            "{} on {} does not match the asset inventory ({}); correct the inventory or the host",
            self.what(),
            self.place(),
            why.join("; ")
        );
        out.push(self.candidate(Kind::InventoryMismatch, entry, text, why));
    }

    fn candidate(&self, kind: Kind, entry: Option<&Entry>, text: String, reasons: Vec<String>) -> Candidate {
        self.candidate_with_cves(kind, entry, text, reasons, &[])
    }

    fn candidate_with_cves(
        &self,
        kind: Kind,
        entry: Option<&Entry>,
        text: String,
        reasons: Vec<String>,
        cves: &[&VulnHit],
    ) -> Candidate {
        let e = self.e;
        let severity = self.k.policy.severity_of(kind);
        let due = hours_text(self.k.policy.deadline_of(severity));
        let s = e.service.as_ref();
        Candidate {
            key: FindingKey { addr: e.addr, proto: e.proto, port: e.port, kind },
            severity,
            owner: entry.map(|en| en.owner.clone()),
            contact: entry.and_then(|en| en.contact.clone()),
            sentence: format!("{} (due within {due}).", capitalised(&text)),
            detail: Detail {
                service: s.map(|s| s.service.clone()),
                product: s.and_then(|s| s.product.clone()),
                version: s.and_then(|s| s.version.clone()),
                cpe: s.map(|s| s.cpe.clone()).unwrap_or_default(),
                category: s.map(|s| s.category.to_string()),
                cves: cves.iter().map(|h| h.cve.clone()).collect(),
                regions: e.open_in.clone(),
                regions_scanned: self.regions_scanned,
                reasons,
                register_entry: entry.map(|en| en.number),
                justification: entry.map(|en| en.justification.clone()),
            },
        }
    }

    /// "MySQL 8.0.35", "an ssh service", "an unidentified service".
    fn what(&self) -> String {
        match self.e.service.as_ref().filter(|s| s.method != Method::PortGuess) {
            Some(s) => match (&s.product, &s.version) {
                (Some(p), Some(v)) => format!("{p} {v}"),
                (Some(p), None) => p.clone(),
                _ => format!("a {} service", s.service),
            },
            None => "an unidentified service".into(),
        }
    }

    fn place(&self) -> String {
        let host = match self.e.addr {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        format!("{host}:{}/{}", self.e.port, self.e.proto)
    }

    /// " from 2 of 3 regions", or nothing when the regions are unknown.
    fn reach(&self) -> String {
        match (self.e.open_in.len(), self.regions_scanned) {
            (_, 0) | (0, _) => String::new(),
            (n, m) => format!(" from {n} of {m} {}", if m == 1 { "region" } else { "regions" }),
        }
    }
}

fn ids(hits: &[&VulnHit]) -> String {
    let mut shown: Vec<&str> = hits.iter().take(3).map(|h| h.cve.as_str()).collect();
    let more = hits.len().saturating_sub(3);
    let more = (more > 0).then(|| format!("and {more} more"));
    shown.extend(more.as_deref());
    shown.join(", ")
}

fn describe(h: &VulnHit) -> String {
    let score = h.cvss.as_ref().map(|c| format!(" CVSS {:.1}", c.score)).unwrap_or_default();
    let kev = h.kev_date_added().map(|d| format!(", in KEV since {d}")).unwrap_or_default();
    format!("{}{score} (affected: {}{kev})", h.cve, h.matched)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
