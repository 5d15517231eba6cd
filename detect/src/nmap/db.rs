//! The loaded probe database: probes, their match lines, selection and matching.

use std::fmt;
use std::path::Path;

use pcre2::bytes::{Captures, Regex};
use vantage_shared::Proto;

use super::parse::{Directive, LineError, LineErrorKind, MatchSpec, VersionTemplates, parse_line};
use super::pattern;
use super::ports::{ExcludeList, PortList};
use super::prefilter::Prefix;
use super::template::{Mode, Template};

/// nmap's default `--version-intensity`.
pub const DEFAULT_INTENSITY: u8 = 7;
/// The rarity of a probe without a `rarity` line (nmap's default).
pub const DEFAULT_RARITY: u8 = 5;
/// How long to wait for a probe's answer when it has no `totalwaitms` (nmap's default).
pub const DEFAULT_TOTALWAITMS: u32 = 5000;
/// nmap's default for `tcpwrappedms`: a connection closed without data
/// sooner than this after the NULL probe started is "tcpwrapped".
pub const DEFAULT_TCPWRAPPEDMS: u32 = 2000;
/// Responses are matched on at most this many leading bytes. nmap stops
/// reading at 4 KiB plus one read; this leaves room and bounds the work.
pub const MAX_RESPONSE_LEN: usize = 32 * 1024;

/// One `match` or `softmatch` line, compiled.
pub struct MatchRule {
    line: usize,
    service: String,
    soft: bool,
    regex: Regex,
    templates: VersionTemplates,
}

impl MatchRule {
    /// The line number in the file.
    pub fn line(&self) -> usize {
        self.line
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Whether this is a `softmatch` line.
    pub fn is_soft(&self) -> bool {
        self.soft
    }

    /// The pattern as given to PCRE2 (with the limits prefix; bytes above
    /// 0x7F written `\x{HH}`).
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }
}

impl fmt::Debug for MatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchRule")
            .field("line", &self.line)
            .field("service", &self.service)
            .field("soft", &self.soft)
            .field("pattern", &self.regex.as_str())
            .finish_non_exhaustive()
    }
}

/// A `Probe` and what follows it up to the next `Probe`.
#[derive(Debug)]
pub struct Probe {
    index: usize,
    line: usize,
    name: String,
    proto: Proto,
    payload: Vec<u8>,
    no_payload: bool,
    rarity: Option<u8>,
    ports: PortList,
    sslports: PortList,
    totalwaitms: Option<u32>,
    tcpwrappedms: Option<u32>,
    fallback_names: Vec<String>,
    fallback_line: usize,
    /// Indexes of the resolved fallbacks, in the order written.
    fallbacks: Vec<usize>,
    rules: Vec<MatchRule>,
    /// The literal start of each rule's pattern, in step with `rules` and
    /// kept apart from them so that rejecting a line stays in cache.
    prefixes: Vec<Prefix>,
}

impl Probe {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The bytes to send (escapes undone). Empty for the NULL probe, which
    /// sends nothing and listens.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether the Probe line carries the `no-payload` option.
    pub fn no_payload(&self) -> bool {
        self.no_payload
    }

    /// The `rarity` (1-9), [`DEFAULT_RARITY`] when the probe has none.
    pub fn rarity(&self) -> u8 {
        self.rarity.unwrap_or(DEFAULT_RARITY)
    }

    /// The `ports` list (probable ports in plain text).
    pub fn ports(&self) -> &PortList {
        &self.ports
    }

    /// The `sslports` list (probable ports inside TLS/SSL).
    pub fn sslports(&self) -> &PortList {
        &self.sslports
    }

    /// The `totalwaitms` line's value, if any.
    pub fn totalwaitms(&self) -> Option<u32> {
        self.totalwaitms
    }

    /// How long to wait for the answer: `totalwaitms` or [`DEFAULT_TOTALWAITMS`].
    pub fn total_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.totalwaitms.unwrap_or(DEFAULT_TOTALWAITMS).into())
    }

    /// The `tcpwrappedms` line's value, if any (nmap puts it on the NULL
    /// probe; [`DEFAULT_TCPWRAPPEDMS`] otherwise).
    pub fn tcpwrappedms(&self) -> Option<u32> {
        self.tcpwrappedms
    }

    /// The probe names of the `fallback` line, as written.
    pub fn fallback_names(&self) -> &[String] {
        &self.fallback_names
    }

    /// The match and softmatch lines, in file order.
    pub fn rules(&self) -> &[MatchRule] {
        &self.rules
    }

    /// Whether this is the TCP probe named `NULL`.
    pub fn is_null(&self) -> bool {
        self.proto == Proto::Tcp && self.name == "NULL"
    }

    /// The line number of the Probe line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether one of this probe's own lines can name `service` (nmap sends
    /// only such probes after a soft match of `service`).
    pub fn can_detect(&self, service: &str) -> bool {
        self.rules.iter().any(|r| r.service == service)
    }
}

/// What a match line said about a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmapMatch {
    /// The service in nmap's vocabulary: `ssh`, `http`, `ssl/http`, ...
    pub service: String,
    /// A `softmatch`: the service is known, the version is not.
    pub soft: bool,
    pub product: Option<String>,
    pub version: Option<String>,
    pub info: Option<String>,
    pub hostname: Option<String>,
    pub ostype: Option<String>,
    pub devicetype: Option<String>,
    /// CPE 2.2 URIs as nmap writes them (`cpe:/a:openbsd:openssh:9.2p1`):
    /// at most one each for application, hardware and OS, in that order.
    /// See [`super::cpe22_to_23`].
    pub cpe: Vec<String>,
    /// The line of the file that matched.
    pub line: usize,
    /// The probe owning that line (the one sent, a fallback, or NULL).
    pub probe: String,
}

/// What loading a file found: counts, and every line that could not be used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Lines read, blank and comment lines included.
    pub lines: usize,
    /// Probes loaded (the NULL probe included).
    pub probes: usize,
    /// Syntactically valid `match` lines.
    pub match_lines: usize,
    /// Syntactically valid `softmatch` lines.
    pub softmatch_lines: usize,
    /// Patterns PCRE2 compiled; with `patterns_failed`, one per match and softmatch line.
    pub patterns_compiled: usize,
    /// Patterns PCRE2 rejected, with line and reason. Their lines are left out.
    pub patterns_failed: Vec<LineError>,
    /// Other lines that could not be used (syntax, misplaced directives,
    /// unknown fallbacks), with line and reason.
    pub errors: Vec<LineError>,
    /// Lines left out because the Probe they belong to was rejected.
    pub skipped_lines: usize,
    /// Lines loaded with something suspicious, such as a template naming a
    /// capture group the pattern does not have (it renders empty).
    pub warnings: Vec<LineError>,
}

impl LoadReport {
    /// No pattern failed and no line was rejected or skipped.
    pub fn is_clean(&self) -> bool {
        self.patterns_failed.is_empty() && self.errors.is_empty() && self.skipped_lines == 0
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines: {} probes, {} match + {} softmatch lines, {} patterns compiled, {} failed, {} other errors, {} lines skipped, {} warnings",
            self.lines,
            self.probes,
            self.match_lines,
            self.softmatch_lines,
            self.patterns_compiled,
            self.patterns_failed.len(),
            self.errors.len(),
            self.skipped_lines,
            self.warnings.len()
        )
    }
}

/// A loaded nmap-service-probes file.
#[derive(Debug, Default)]
pub struct ProbeDb {
    /// In file order, the NULL probe included.
    probes: Vec<Probe>,
    null: Option<usize>,
    exclude: ExcludeList,
}

enum Current {
    None,
    Probe(usize),
    Rejected,
}

fn directive_name(d: &Directive) -> &'static str {
    match d {
        Directive::Exclude(_) => "Exclude",
        Directive::Probe(_) => "Probe",
        Directive::Match(m) if m.soft => "softmatch",
        Directive::Match(_) => "match",
        Directive::Ports(_) => "ports",
        Directive::SslPorts(_) => "sslports",
        Directive::TotalWaitMs(_) => "totalwaitms",
        Directive::TcpWrappedMs(_) => "tcpwrappedms",
        Directive::Rarity(_) => "rarity",
        Directive::Fallback(_) => "fallback",
    }
}

/// Sets a once-only probe attribute, or reports the repeat.
fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), LineErrorKind> {
    if slot.is_some() {
        return Err(LineErrorKind::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

impl ProbeDb {
    /// Reads and parses a file. Only reading can fail; what the file holds
    /// is accounted for in the report.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<(ProbeDb, LoadReport)> {
        let text = std::fs::read(path)?;
        Ok(ProbeDb::parse(&text))
    }

    /// Parses the text of a file. A line that cannot be used is reported
    /// and left out; everything else loads.
    pub fn parse(text: &[u8]) -> (ProbeDb, LoadReport) {
        let mut db = ProbeDb::default();
        let mut report = LoadReport::default();
        let mut current = Current::None;
        let mut exclude_seen = false;
        let mut any_probe_line = false;
        // Whether the current probe has had its `ports` / `sslports` line.
        let (mut ports_seen, mut sslports_seen) = (false, false);

        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        if text.ends_with(b"\n") {
            lines.pop();
        }
        report.lines = lines.len();
        for (i, raw) in lines.into_iter().enumerate() {
            let line = i + 1;
            let directive = match parse_line(raw) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(kind) => {
                    if matches!(kind, LineErrorKind::Probe(_)) {
                        // What follows belongs to the probe that failed.
                        any_probe_line = true;
                        current = Current::Rejected;
                    }
                    report.errors.push(LineError { line, kind });
                    continue;
                }
            };
            let name = directive_name(&directive);
            let result: Result<(), LineErrorKind> = match directive {
                Directive::Exclude(list) => {
                    if exclude_seen || any_probe_line {
                        Err(LineErrorKind::MisplacedExclude)
                    } else {
                        exclude_seen = true;
                        db.exclude = list;
                        Ok(())
                    }
                }
                Directive::Probe(spec) => {
                    any_probe_line = true;
                    (ports_seen, sslports_seen) = (false, false);
                    if let Some(first) = db.find(spec.proto, &spec.name) {
                        current = Current::Rejected;
                        Err(LineErrorKind::DuplicateProbe { proto: spec.proto, name: spec.name, first: first.line })
                    } else {
                        let index = db.probes.len();
                        db.probes.push(Probe {
                            index,
                            line,
                            name: spec.name,
                            proto: spec.proto,
                            payload: spec.payload,
                            no_payload: spec.no_payload,
                            rarity: None,
                            ports: PortList::default(),
                            sslports: PortList::default(),
                            totalwaitms: None,
                            tcpwrappedms: None,
                            fallback_names: Vec::new(),
                            fallback_line: 0,
                            fallbacks: Vec::new(),
                            rules: Vec::new(),
                            prefixes: Vec::new(),
                        });
                        current = Current::Probe(index);
                        Ok(())
                    }
                }
                other => match current {
                    Current::None => Err(LineErrorKind::OutsideProbe(name)),
                    Current::Rejected => {
                        report.skipped_lines += 1;
                        Ok(())
                    }
                    Current::Probe(idx) => {
                        let probe = &mut db.probes[idx];
                        match other {
                            Directive::Match(spec) => {
                                add_rule(probe, spec, line, &mut report);
                                Ok(())
                            }
                            Directive::Ports(list) => set_ports(&mut probe.ports, &mut ports_seen, list, "ports"),
                            Directive::SslPorts(list) => {
                                set_ports(&mut probe.sslports, &mut sslports_seen, list, "sslports")
                            }
                            Directive::TotalWaitMs(ms) => set_once(&mut probe.totalwaitms, ms, "totalwaitms"),
                            Directive::TcpWrappedMs(ms) => set_once(&mut probe.tcpwrappedms, ms, "tcpwrappedms"),
                            Directive::Rarity(r) => set_once(&mut probe.rarity, r, "rarity"),
                            Directive::Fallback(names) => {
                                if probe.fallback_line != 0 {
                                    Err(LineErrorKind::Repeated("fallback"))
                                } else {
                                    probe.fallback_names = names;
                                    probe.fallback_line = line;
                                    Ok(())
                                }
                            }
                            Directive::Exclude(_) | Directive::Probe(_) => unreachable!("handled above"),
                        }
                    }
                },
            };
            if let Err(kind) = result {
                report.errors.push(LineError { line, kind });
            }
        }
        // Fallbacks may name probes defined later, so resolve them last.
        // A name is looked up in the probe's own protocol first, then in the
        // other (the TCP DNS probes fall back to the UDP ones).
        for idx in 0..db.probes.len() {
            let (proto, names, line) = {
                let p = &db.probes[idx];
                (p.proto, p.fallback_names.clone(), p.fallback_line)
            };
            let mut resolved = Vec::new();
            for name in names {
                let other = if proto == Proto::Tcp { Proto::Udp } else { Proto::Tcp };
                match db.find(proto, &name).or_else(|| db.find(other, &name)) {
                    Some(p) if p.index == idx || resolved.contains(&p.index) => {}
                    Some(p) => resolved.push(p.index),
                    None => report.errors.push(LineError { line, kind: LineErrorKind::UnknownFallback(name) }),
                }
            }
            db.probes[idx].fallbacks = resolved;
        }
        db.null = db.probes.iter().position(Probe::is_null);
        report.probes = db.probes.len();
        report.errors.sort_by_key(|e| e.line);
        (db, report)
    }

    /// All probes in file order, the NULL probe included.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// The probe with this protocol and name.
    pub fn find(&self, proto: Proto, name: &str) -> Option<&Probe> {
        self.probes.iter().find(|p| p.proto == proto && p.name == name)
    }

    /// The TCP probe that sends nothing and listens for a banner.
    pub fn null_probe(&self) -> Option<&Probe> {
        self.null.map(|i| &self.probes[i])
    }

    /// The `Exclude` list.
    pub fn exclude(&self) -> &ExcludeList {
        &self.exclude
    }

    /// Whether the file's `Exclude` directive keeps this port out of
    /// version detection (nmap's `--allports` overrides it).
    pub fn excluded(&self, proto: Proto, port: u16) -> bool {
        self.exclude.contains(proto, port)
    }

    /// The probes to send to `port`, in nmap's order: the NULL probe (TCP
    /// only), then the probes whose `ports` or `sslports` list the port,
    /// whatever their rarity, in file order, then the others whose rarity is
    /// at most `intensity` (0-9, clamped; nmap's default is
    /// [`DEFAULT_INTENSITY`]), in file order.
    ///
    /// nmap itself looks at `ports` for plain connections and at `sslports`
    /// inside TLS; [`ProbeDb::probes_for_tunnel`] does exactly that.
    pub fn probes_for(&self, proto: Proto, port: u16, intensity: u8) -> Vec<&Probe> {
        self.select(proto, intensity, |p| p.ports.contains(port) || p.sslports.contains(port))
    }

    /// Like [`ProbeDb::probes_for`], with nmap's exact rule for the first
    /// group: `sslports` when the connection runs inside TLS, `ports` otherwise.
    pub fn probes_for_tunnel(&self, proto: Proto, port: u16, intensity: u8, tls: bool) -> Vec<&Probe> {
        self.select(proto, intensity, |p| if tls { p.sslports.contains(port) } else { p.ports.contains(port) })
    }

    fn select(&self, proto: Proto, intensity: u8, probable: impl Fn(&Probe) -> bool) -> Vec<&Probe> {
        let intensity = intensity.min(9);
        let mut out = Vec::new();
        if proto == Proto::Tcp
            && let Some(null) = self.null_probe()
        {
            out.push(null);
        }
        let candidates = || self.probes.iter().filter(|p| p.proto == proto && !p.is_null());
        out.extend(candidates().filter(|p| probable(p)));
        out.extend(candidates().filter(|p| !probable(p) && p.rarity() <= intensity));
        out
    }

    /// Matches a response to `probe`. See [`ProbeDb::match_response_with`].
    pub fn match_response(&self, probe: &Probe, response: &[u8]) -> Option<NmapMatch> {
        self.match_response_with(probe, response, None)
    }

    /// Matches a response to `probe` against the lines of the probe, then of
    /// its fallbacks, then (TCP probes only, as in nmap) of the NULL probe,
    /// each in file order.
    ///
    /// The first hard match wins. The first soft match is remembered and the
    /// search goes on, now only for hard matches of the same service; if
    /// none comes, the soft match is the answer. `prior_soft` is a service
    /// soft-matched by an earlier probe of the same conversation: with it,
    /// only hard matches of that service count, as nmap does once a soft
    /// match is known. (nmap stops at the first line that matches, soft or
    /// hard, for one response; going on for a hard match of the same
    /// service can only refine the answer.)
    ///
    /// An empty response matches nothing. Only the first
    /// [`MAX_RESPONSE_LEN`] bytes are looked at. A pattern that hits the
    /// PCRE2 match limit counts as not matching.
    pub fn match_response_with(&self, probe: &Probe, response: &[u8], prior_soft: Option<&str>) -> Option<NmapMatch> {
        let response = &response[..response.len().min(MAX_RESPONSE_LEN)];
        if response.is_empty() {
            return None;
        }
        let mut want: Option<&str> = prior_soft;
        let mut soft: Option<NmapMatch> = None;
        for p in self.chain(probe) {
            for (rule, prefix) in p.rules.iter().zip(&p.prefixes) {
                if !prefix.admits(response) {
                    continue;
                }
                if let Some(w) = want
                    && (rule.soft || rule.service != w)
                {
                    continue;
                }
                match rule.regex.is_match(response) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::debug!(line = rule.line, error = %e, "nmap pattern failed to run");
                        continue;
                    }
                }
                let Ok(Some(caps)) = rule.regex.captures(response) else { continue };
                let found = render(rule, p, &caps);
                if !rule.soft {
                    return Some(found);
                }
                want = Some(&rule.service);
                soft = Some(found);
            }
        }
        soft
    }

    /// The probes whose lines a response to `probe` is matched against.
    fn chain<'a>(&'a self, probe: &'a Probe) -> Vec<&'a Probe> {
        let own = match self.probes.get(probe.index) {
            Some(p) if std::ptr::eq(p, probe) => Some(p),
            _ => self.find(probe.proto, &probe.name),
        };
        let mut chain: Vec<&Probe> = Vec::with_capacity(4);
        match own {
            Some(p) => {
                chain.push(p);
                chain.extend(p.fallbacks.iter().map(|&i| &self.probes[i]));
            }
            // A probe from another database: its own lines only.
            None => chain.push(probe),
        }
        if probe.proto == Proto::Tcp
            && let Some(null) = self.null_probe()
            && !chain.iter().any(|p| std::ptr::eq(*p, null))
        {
            chain.push(null);
        }
        chain
    }
}

/// Compiles a match line and adds it to its probe, counting it in the report.
fn add_rule(probe: &mut Probe, spec: MatchSpec, line: usize, report: &mut LoadReport) {
    if spec.soft {
        report.softmatch_lines += 1;
    } else {
        report.match_lines += 1;
    }
    let regex = match pattern::compile(&spec.pattern, spec.caseless, spec.dotall) {
        Ok(regex) => regex,
        Err(msg) => {
            report.patterns_failed.push(LineError { line, kind: LineErrorKind::Pattern(msg) });
            return;
        }
    };
    report.patterns_compiled += 1;
    let groups = regex.captures_len().saturating_sub(1);
    let wanted = spec.templates.max_group();
    if wanted > groups {
        report.warnings.push(LineError { line, kind: LineErrorKind::NoSuchGroup { group: wanted, groups } });
    }
    probe.prefixes.push(Prefix::of(&spec.pattern, spec.caseless));
    probe.rules.push(MatchRule { line, service: spec.service, soft: spec.soft, regex, templates: spec.templates });
}

fn set_ports(slot: &mut PortList, seen: &mut bool, list: PortList, name: &'static str) -> Result<(), LineErrorKind> {
    if *seen {
        return Err(LineErrorKind::Repeated(name));
    }
    *seen = true;
    *slot = list;
    Ok(())
}

fn render(rule: &MatchRule, probe: &Probe, caps: &Captures<'_>) -> NmapMatch {
    let group = |n: usize| caps.get(n).map(|m| m.as_bytes());
    let field = |t: &Option<Template>| t.as_ref().map(|t| t.render(group, Mode::Text)).filter(|s| !s.is_empty());
    let t = &rule.templates;
    // One CPE per part, like nmap: a later template of a part replaces an earlier one.
    let mut parts: [Option<String>; 3] = [None, None, None];
    for (part, template) in &t.cpe {
        let value = template.render(group, Mode::Cpe);
        if value.is_empty() {
            continue;
        }
        let slot = match part {
            b'a' => 0,
            b'h' => 1,
            _ => 2,
        };
        parts[slot] = Some(format!("cpe:/{value}"));
    }
    NmapMatch {
        service: rule.service.clone(),
        soft: rule.soft,
        product: field(&t.product),
        version: field(&t.version),
        info: field(&t.info),
        hostname: field(&t.hostname),
        ostype: field(&t.ostype),
        devicetype: field(&t.devicetype),
        cpe: parts.into_iter().flatten().collect(),
        line: rule.line,
        probe: probe.name.clone(),
    }
}
