//! The diff of two baselines: a merge-join of two iterators in key order,
//! in constant memory, whatever the size of the baselines.
//!
//! For a key in both, facts are compared only where both sides have them
//! (a scan without detection changes no service, a name guessed from the
//! port number is no evidence, an imported report has no certificate).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::iter::Peekable;
use std::net::IpAddr;

use serde::Serialize;
use vantage_shared::{BaselineEntry, Method, PortState, Proto, ServiceFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    New,
    Closed,
    ServiceChanged,
    VersionChanged,
    TlsChanged,
    ReachabilityChanged,
    /// An open port became part of an answers-all host, or the reverse.
    StateChanged,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 7] = [
        ChangeKind::New,
        ChangeKind::Closed,
        ChangeKind::ServiceChanged,
        ChangeKind::VersionChanged,
        ChangeKind::TlsChanged,
        ChangeKind::ReachabilityChanged,
        ChangeKind::StateChanged,
    ];
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::New => "new",
            ChangeKind::Closed => "closed",
            ChangeKind::ServiceChanged => "service-changed",
            ChangeKind::VersionChanged => "version-changed",
            ChangeKind::TlsChanged => "tls-changed",
            ChangeKind::ReachabilityChanged => "reachability-changed",
            ChangeKind::StateChanged => "state-changed",
        })
    }
}

/// One difference at one (address, protocol, port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub addr: IpAddr,
    pub proto: Proto,
    pub port: u16,
    /// What it was and what it is, in words (empty where it did not exist).
    pub before: String,
    pub after: String,
    /// The regions the port is open from on the later side (empty when it
    /// is closed there): what each region's re-probe must see again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_in: Vec<String>,
}

/// The changes from `before` to `after`, both in key order. Errors of either
/// side end the diff.
pub fn diff<E, A, B>(before: A, after: B) -> Diff<A, B>
where
    A: Iterator<Item = Result<BaselineEntry, E>>,
    B: Iterator<Item = Result<BaselineEntry, E>>,
{
    Diff { before: before.peekable(), after: after.peekable(), pending: Vec::new(), failed: false, regions: None }
}

impl<A: Iterator, B: Iterator> Diff<A, B> {
    /// Compares reachability over these regions only: those both sides
    /// scanned from. (An imported report's source, or a region added this
    /// month, is no change of reachability.)
    pub fn regions(mut self, common: BTreeSet<String>) -> Self {
        self.regions = Some(common);
        self
    }
}

pub struct Diff<A: Iterator, B: Iterator> {
    before: Peekable<A>,
    after: Peekable<B>,
    /// Changes of the current key not yet handed out (in reverse).
    pending: Vec<Change>,
    failed: bool,
    regions: Option<BTreeSet<String>>,
}

impl<E, A, B> Iterator for Diff<A, B>
where
    A: Iterator<Item = Result<BaselineEntry, E>>,
    B: Iterator<Item = Result<BaselineEntry, E>>,
{
    type Item = Result<Change, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(c) = self.pending.pop() {
                return Some(Ok(c));
            }
            if self.failed {
                return None;
            }
            if matches!(self.before.peek(), Some(Err(_))) || matches!(self.after.peek(), Some(Err(_))) {
                self.failed = true;
                let err = match self.before.peek() {
                    Some(Err(_)) => self.before.next(),
                    _ => self.after.next(),
                };
                return err.map(|e| e.map(|_| unreachable!("an error was peeked")));
            }
            let order = match (self.before.peek(), self.after.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok(b)), Some(Ok(a))) => b.key().cmp(&a.key()),
                _ => unreachable!("errors are handled above"),
            };
            match order {
                Ordering::Less => {
                    let Some(Ok(b)) = self.before.next() else { unreachable!() };
                    return Some(Ok(change(ChangeKind::New, &b, describe(&b), String::new()).flip()));
                }
                Ordering::Greater => {
                    let Some(Ok(a)) = self.after.next() else { unreachable!() };
                    return Some(Ok(change(ChangeKind::New, &a, String::new(), describe(&a))));
                }
                Ordering::Equal => {
                    let (Some(Ok(b)), Some(Ok(a))) = (self.before.next(), self.after.next()) else { unreachable!() };
                    self.pending = compare(&b, &a, self.regions.as_ref());
                    self.pending.reverse();
                }
            }
        }
    }
}

fn change(kind: ChangeKind, e: &BaselineEntry, before: String, after: String) -> Change {
    Change { kind, addr: e.addr, proto: e.proto, port: e.port, before, after, open_in: e.open_in.clone() }
}

impl Change {
    /// A "new" seen from the other side is a "closed".
    fn flip(mut self) -> Change {
        self.kind = ChangeKind::Closed;
        self.open_in.clear();
        self
    }
}

/// The differences between two entries of the same key; reachability over
/// `regions` only, when given.
pub fn compare(before: &BaselineEntry, after: &BaselineEntry, regions: Option<&BTreeSet<String>>) -> Vec<Change> {
    let mut out = Vec::new();
    if before.state != after.state {
        out.push(change(ChangeKind::StateChanged, after, state_word(before.state), state_word(after.state)));
    }
    // A name guessed from the port number says nothing about a change.
    let known = |f: &Option<ServiceFacts>| f.clone().filter(|f| f.method != Method::PortGuess);
    if let (Some(b), Some(a)) = (known(&before.service), known(&after.service)) {
        let (b, a) = (&b, &a);
        if b.display_service() != a.display_service() {
            out.push(change(ChangeKind::ServiceChanged, after, describe_facts(b), describe_facts(a)));
        } else if b.product != a.product || b.version != a.version {
            out.push(change(ChangeKind::VersionChanged, after, describe_facts(b), describe_facts(a)));
        }
        // Certificates are compared where both sides recorded one (an imported
        // nmap report has none).
        let fingerprint = |f: &ServiceFacts| f.tls.as_ref().map(|t| t.sha256.clone()).filter(|s| !s.is_empty());
        if let (Some(fb), Some(fa)) = (fingerprint(b), fingerprint(a))
            && fb != fa
        {
            out.push(change(ChangeKind::TlsChanged, after, tls_words(b), tls_words(a)));
        }
    }
    let seen = |e: &BaselineEntry| -> Vec<String> {
        e.open_in.iter().filter(|r| regions.is_none_or(|set| set.contains(*r))).cloned().collect()
    };
    let (b, a) = (seen(before), seen(after));
    if b != a {
        out.push(change(ChangeKind::ReachabilityChanged, after, b.join(","), a.join(",")));
    }
    out
}

fn state_word(s: PortState) -> String {
    match s {
        PortState::AnswersAll => "answers on all ports".into(),
        other => other.to_string(),
    }
}

/// An entry in a few words: `ssh OpenSSH 9.2p1`, or its state alone.
pub fn describe(e: &BaselineEntry) -> String {
    match (&e.service, e.state) {
        (_, PortState::AnswersAll) => state_word(e.state),
        (Some(f), _) => describe_facts(f),
        (None, s) => s.to_string(),
    }
}

/// Facts in a few words, as a change's `before` and `after` show them.
pub fn describe_facts(f: &ServiceFacts) -> String {
    let summary = f.summary();
    if summary.is_empty() { f.display_service() } else { format!("{} {}", f.display_service(), summary) }
}

/// A certificate in a few words, as a TLS change shows it.
pub fn tls_words(f: &ServiceFacts) -> String {
    match &f.tls {
        Some(t) => format!("{} (sha256 {}…)", t.subject, t.sha256.get(..12).unwrap_or("")),
        None => "no TLS".into(),
    }
}

#[cfg(test)]
mod tests;
