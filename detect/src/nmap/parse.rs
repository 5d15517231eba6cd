//! The line syntax of nmap-service-probes, one line at a time.
//!
//! Each non-blank, non-comment line is one directive. This module turns a
//! line into a [`Directive`] or a [`LineErrorKind`]; [`super::db`] puts the
//! directives together (which Probe a `match` belongs to, fallbacks, ...).
//!
//! Delimited values (`q|...|`, `m/.../`, `p/.../`) end at the next occurrence
//! of their delimiter, with no escaping of it, exactly as nmap reads them.

use vantage_shared::Proto;

use super::ports::{ExcludeList, PortList, parse_exclude, parse_port_list};
use super::template::Template;

/// A line of the file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    pub kind: LineErrorKind,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineErrorKind {
    #[error("unknown directive `{0}`")]
    UnknownDirective(String),
    #[error("`{0}` appears before any Probe line")]
    OutsideProbe(&'static str),
    #[error("`{0}` given twice for the same probe")]
    Repeated(&'static str),
    #[error("Exclude must come before the first Probe, and only once")]
    MisplacedExclude,
    #[error("Probe line: {0}")]
    Probe(String),
    #[error("probe {proto} {name} is already defined on line {first}")]
    DuplicateProbe { proto: Proto, name: String, first: usize },
    #[error("{directive} line: {problem}")]
    Syntax { directive: &'static str, problem: String },
    #[error("version field {field}: {problem}")]
    Template { field: String, problem: String },
    #[error("pattern does not compile: {0}")]
    Pattern(String),
    #[error("unknown fallback probe `{0}`")]
    UnknownFallback(String),
    #[error("a template uses group ${group} but the pattern has {groups} capture groups")]
    NoSuchGroup { group: usize, groups: usize },
}

/// A parsed `Probe` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeSpec {
    pub proto: Proto,
    pub name: String,
    pub payload: Vec<u8>,
    pub no_payload: bool,
}

/// The version-info templates of a match line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VersionTemplates {
    pub product: Option<Template>,
    pub version: Option<Template>,
    pub info: Option<Template>,
    pub hostname: Option<Template>,
    pub ostype: Option<Template>,
    pub devicetype: Option<Template>,
    /// CPE templates with their part (`a`, `h` or `o`); the text is what
    /// follows `cpe:/`.
    pub cpe: Vec<(u8, Template)>,
}

impl VersionTemplates {
    pub(crate) fn max_group(&self) -> usize {
        [&self.product, &self.version, &self.info, &self.hostname, &self.ostype, &self.devicetype]
            .into_iter()
            .flatten()
            .chain(self.cpe.iter().map(|(_, t)| t))
            .map(Template::max_group)
            .max()
            .unwrap_or(0)
    }
}

/// A parsed `match` or `softmatch` line (pattern not yet compiled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatchSpec {
    pub soft: bool,
    pub service: String,
    pub pattern: Vec<u8>,
    pub caseless: bool,
    pub dotall: bool,
    pub templates: VersionTemplates,
}

/// One directive line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Directive {
    Exclude(ExcludeList),
    Probe(ProbeSpec),
    Match(MatchSpec),
    Ports(PortList),
    SslPorts(PortList),
    TotalWaitMs(u32),
    TcpWrappedMs(u32),
    Rarity(u8),
    Fallback(Vec<String>),
}

/// Undoes the C-style escapes of probe strings and `$SUBST` arguments:
/// `\\ \0 \a \b \f \n \r \t \v \xHH`. Any other escape is an error.
pub(crate) fn unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    unescape_with(s, b"")
}

/// [`unescape`], also accepting `\c` for `c` in `literal` (as `c`).
pub(crate) fn unescape_with(s: &[u8], literal: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let Some(&e) = s.get(i + 1) else {
            return Err("a backslash ends the string".into());
        };
        i += 2;
        out.push(match e {
            b'\\' => b'\\',
            b'0' => 0,
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'x' => {
                let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
                match (hex(s.get(i)), hex(s.get(i + 1))) {
                    (Some(h), Some(l)) => {
                        i += 2;
                        (h * 16 + l) as u8
                    }
                    _ => return Err("`\\x` must be followed by two hex digits".into()),
                }
            }
            other if literal.contains(&other) => other,
            other => return Err(format!("unknown escape `\\{}`", char::from(other).escape_default())),
        });
    }
    Ok(out)
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r' || b == b'\n' || b == 0x0b || b == 0x0c
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Splits off the first whitespace-separated token.
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim(s);
    let end = s.iter().position(|&b| is_space(b)).unwrap_or(s.len());
    (&s[..end], trim(&s[end..]))
}

fn text<'a>(s: &'a [u8], directive: &'static str) -> Result<&'a str, LineErrorKind> {
    std::str::from_utf8(s).map_err(|_| LineErrorKind::Syntax { directive, problem: "not valid text".into() })
}

/// One `mode<d>value<d>flags` field, like nmap's `next_template`: the mode
/// is a run of letters and `:`, the delimiter is any character after it.
struct Field<'a> {
    mode: &'a [u8],
    value: &'a [u8],
    flags: &'a [u8],
}

fn next_field<'a>(s: &'a [u8], pos: &mut usize) -> Option<Result<Field<'a>, String>> {
    let mut i = *pos;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    if i >= s.len() {
        *pos = i;
        return None;
    }
    let mode_start = i;
    while i < s.len() && (s[i].is_ascii_alphabetic() || s[i] == b':') {
        i += 1;
    }
    let mode = &s[mode_start..i];
    let shown = String::from_utf8_lossy(mode).into_owned();
    if mode.is_empty() {
        return Some(Err(format!("expected a field such as p/.../, found `{}`", char::from(s[i]).escape_default())));
    }
    let Some(&delim) = s.get(i).filter(|&&b| !is_space(b)) else {
        return Some(Err(format!("`{shown}` has no delimited value")));
    };
    let value_start = i + 1;
    let Some(len) = s[value_start..].iter().position(|&b| b == delim) else {
        return Some(Err(format!("`{shown}{}` has no closing `{}`", char::from(delim), char::from(delim))));
    };
    let value = &s[value_start..value_start + len];
    i = value_start + len + 1;
    let flags_start = i;
    while i < s.len() && s[i].is_ascii_alphabetic() {
        i += 1;
    }
    let flags = &s[flags_start..i];
    if i < s.len() && !is_space(s[i]) {
        return Some(Err(format!("`{shown}` field: expected a space after it")));
    }
    *pos = i;
    Some(Ok(Field { mode, value, flags }))
}

fn parse_probe(rest: &[u8]) -> Result<ProbeSpec, LineErrorKind> {
    let err = |m: &str| LineErrorKind::Probe(m.to_string());
    let (proto, rest) = token(rest);
    let proto = match proto {
        b"TCP" => Proto::Tcp,
        b"UDP" => Proto::Udp,
        _ => return Err(err("the protocol must be TCP or UDP")),
    };
    let (name, rest) = token(rest);
    if name.is_empty() {
        return Err(err("no probe name"));
    }
    if !name[0].is_ascii_alphanumeric() {
        return Err(err("the probe name must start with a letter or digit"));
    }
    let name = std::str::from_utf8(name).map_err(|_| err("the probe name is not valid text"))?.to_string();
    let Some((&b'q', after_q)) = rest.split_first() else {
        return Err(err("the probe string must start with q, as in q|...|"));
    };
    let Some((&delim, body)) = after_q.split_first() else {
        return Err(err("no probe string after q"));
    };
    let Some(end) = body.iter().position(|&b| b == delim) else {
        return Err(err("the probe string has no closing delimiter"));
    };
    let payload = unescape(&body[..end]).map_err(|e| LineErrorKind::Probe(format!("probe string: {e}")))?;
    let mut no_payload = false;
    let mut options = trim(&body[end + 1..]);
    while !options.is_empty() {
        let (opt, rest) = token(options);
        match opt {
            b"no-payload" => no_payload = true,
            other => return Err(LineErrorKind::Probe(format!("unknown option `{}`", String::from_utf8_lossy(other)))),
        }
        options = rest;
    }
    Ok(ProbeSpec { proto, name, payload, no_payload })
}

fn parse_match(rest: &[u8], soft: bool) -> Result<MatchSpec, LineErrorKind> {
    let directive = if soft { "softmatch" } else { "match" };
    let syntax = |problem: String| LineErrorKind::Syntax { directive, problem };
    let (service, rest) = token(rest);
    if service.is_empty() {
        return Err(syntax("no service name".into()));
    }
    let service = text(service, directive)?.to_string();
    let mut pos = 0;
    let pattern = match next_field(rest, &mut pos) {
        None => return Err(syntax("no pattern".into())),
        Some(Err(e)) => return Err(syntax(e)),
        Some(Ok(f)) if f.mode != b"m" => return Err(syntax("the pattern must be written m/.../".into())),
        Some(Ok(f)) => f,
    };
    let (mut caseless, mut dotall) = (false, false);
    for &f in pattern.flags {
        match f {
            b'i' => caseless = true,
            b's' => dotall = true,
            other => return Err(syntax(format!("unknown pattern option `{}` (only i and s)", char::from(other)))),
        }
    }
    let mut templates = VersionTemplates::default();
    while let Some(field) = next_field(rest, &mut pos) {
        let field = field.map_err(syntax)?;
        let name = String::from_utf8_lossy(field.mode).into_owned();
        let template_err = |problem: String| LineErrorKind::Template { field: name.clone(), problem };
        let template = Template::parse(field.value).map_err(template_err)?;
        if field.mode == b"cpe:" {
            if !field.flags.iter().all(|&f| f == b'a') {
                return Err(template_err("the only cpe option is a".into()));
            }
            let part = field.value.first().copied().unwrap_or(0);
            if !matches!(part, b'a' | b'h' | b'o') || field.value.get(1) != Some(&b':') {
                return Err(template_err("a CPE must start with a:, h: or o:".into()));
            }
            templates.cpe.push((part, template));
            continue;
        }
        if !field.flags.is_empty() {
            return Err(template_err(format!("unexpected option `{}`", String::from_utf8_lossy(field.flags))));
        }
        // A repeated field replaces the earlier one, as in nmap.
        let slot = match field.mode {
            b"p" => &mut templates.product,
            b"v" => &mut templates.version,
            b"i" => &mut templates.info,
            b"h" => &mut templates.hostname,
            b"o" => &mut templates.ostype,
            b"d" => &mut templates.devicetype,
            _ => return Err(template_err("unknown field (p, v, i, h, o, d or cpe:)".into())),
        };
        *slot = Some(template);
    }
    Ok(MatchSpec { soft, service, pattern: pattern.value.to_vec(), caseless, dotall, templates })
}

fn parse_number(rest: &[u8], directive: &'static str, min: u32, max: u32) -> Result<u32, LineErrorKind> {
    let s = text(trim(rest), directive)?;
    let problem = || format!("`{s}` is not a number from {min} to {max}");
    let n = s.parse::<u32>().map_err(|_| LineErrorKind::Syntax { directive, problem: problem() })?;
    if !(min..=max).contains(&n) {
        return Err(LineErrorKind::Syntax { directive, problem: problem() });
    }
    Ok(n)
}

fn parse_ports(rest: &[u8], directive: &'static str) -> Result<PortList, LineErrorKind> {
    parse_port_list(text(rest, directive)?).map_err(|problem| LineErrorKind::Syntax { directive, problem })
}

/// Parses one line (without its end-of-line). Blank lines and comments give `None`.
pub(crate) fn parse_line(line: &[u8]) -> Result<Option<Directive>, LineErrorKind> {
    let line = trim(line);
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let (keyword, rest) = token(line);
    let directive = match keyword {
        b"Exclude" => {
            let s = text(rest, "Exclude")?;
            Directive::Exclude(
                parse_exclude(s).map_err(|problem| LineErrorKind::Syntax { directive: "Exclude", problem })?,
            )
        }
        b"Probe" => Directive::Probe(parse_probe(rest)?),
        b"match" => Directive::Match(parse_match(rest, false)?),
        b"softmatch" => Directive::Match(parse_match(rest, true)?),
        b"ports" => Directive::Ports(parse_ports(rest, "ports")?),
        b"sslports" => Directive::SslPorts(parse_ports(rest, "sslports")?),
        b"totalwaitms" => Directive::TotalWaitMs(parse_number(rest, "totalwaitms", 100, 300_000)?),
        b"tcpwrappedms" => Directive::TcpWrappedMs(parse_number(rest, "tcpwrappedms", 100, 300_000)?),
        b"rarity" => Directive::Rarity(parse_number(rest, "rarity", 1, 9)? as u8),
        b"fallback" => {
            let s = text(rest, "fallback")?;
            let names: Vec<String> =
                s.split(|c: char| c == ',' || c.is_whitespace()).filter(|n| !n.is_empty()).map(String::from).collect();
            if names.is_empty() {
                return Err(LineErrorKind::Syntax { directive: "fallback", problem: "no probe names".into() });
            }
            if names.len() > MAX_FALLBACKS {
                return Err(LineErrorKind::Syntax {
                    directive: "fallback",
                    problem: format!("at most {MAX_FALLBACKS} fallbacks are allowed"),
                });
            }
            Directive::Fallback(names)
        }
        other => {
            let shown: String = String::from_utf8_lossy(other).chars().take(40).collect();
            return Err(LineErrorKind::UnknownDirective(shown));
        }
    };
    Ok(Some(directive))
}

/// How many probes one `fallback` line may name (nmap's limit).
pub(crate) const MAX_FALLBACKS: usize = 18;

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(line: &str) -> Result<ProbeSpec, LineErrorKind> {
        match parse_line(line.as_bytes())? {
            Some(Directive::Probe(p)) => Ok(p),
            other => panic!("not a probe: {other:?}"),
        }
    }

    fn matchline(line: &[u8]) -> Result<MatchSpec, LineErrorKind> {
        match parse_line(line)? {
            Some(Directive::Match(m)) => Ok(m),
            other => panic!("not a match: {other:?}"),
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(br"a\0\r\n\t\\\x41\xfF\a\b\f\v").unwrap(), b"a\0\r\n\t\\A\xff\x07\x08\x0c\x0b");
        assert_eq!(unescape(br"\0001").unwrap(), &[0, b'0', b'0', b'1'], "\\0 is one NUL, not octal");
        for bad in [&br"\"[..], br"\x4", br"\xZZ", br"\q", br"abc\"] {
            assert!(unescape(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn probe_lines() {
        let p = probe(r"Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|").unwrap();
        assert_eq!(
            (p.proto, p.name.as_str(), p.payload.as_slice(), p.no_payload),
            (Proto::Tcp, "GetRequest", &b"GET / HTTP/1.0\r\n\r\n"[..], false)
        );
        let p = probe("Probe TCP NULL q||").unwrap();
        assert!(p.payload.is_empty());
        let p = probe(r"Probe UDP DNS q/\0\x06|x/ no-payload").unwrap();
        assert_eq!((p.proto, p.payload.as_slice(), p.no_payload), (Proto::Udp, &b"\0\x06|x"[..], true));
        for bad in [
            "Probe SCTP X q||",
            "Probe TCP q||",
            "Probe TCP X",
            "Probe TCP X r||",
            "Probe TCP X q|abc",
            r"Probe TCP X q|\z|",
            "Probe TCP X q|| bogus",
            "Probe TCP _X q||",
            "Probe TCP X q",
        ] {
            assert!(matches!(parse_line(bad.as_bytes()), Err(LineErrorKind::Probe(_))), "{bad}");
        }
    }

    #[test]
    fn match_lines() {
        let m = matchline(br"match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)[ -]{1,2}Debian[ -_]([^\r\n]+)\r?\n| p/OpenSSH/ v/$2 Debian $3/ i/protocol $1/ o/Linux/ cpe:/a:openbsd:openssh:$2/ cpe:/o:linux:linux_kernel/a").unwrap();
        assert!(!m.soft && m.service == "ssh" && !m.caseless && !m.dotall);
        assert!(m.pattern.starts_with(b"^SSH-"));
        assert!(m.templates.product.is_some() && m.templates.ostype.is_some() && m.templates.hostname.is_none());
        assert_eq!(m.templates.cpe.len(), 2);
        assert_eq!(m.templates.cpe[1].0, b'o');
        assert_eq!(m.templates.max_group(), 3);

        let m = matchline(b"softmatch ftp m/^220 [-.\\w ]+ftp.*\\r\\n$/is").unwrap();
        assert!(m.soft && m.caseless && m.dotall && m.service == "ftp");

        // Other delimiters for the pattern and the fields.
        let m = matchline(b"match http m=^HTTP/1\\.[01] (?:[^\\r\\n]*\\r\\n)*Server: a|b= p|A/B|  v=1=\ti/x/").unwrap();
        assert_eq!(m.pattern, b"^HTTP/1\\.[01] (?:[^\\r\\n]*\\r\\n)*Server: a|b");
        assert!(m.templates.product.is_some() && m.templates.version.is_some() && m.templates.info.is_some());
        // Like nmap, fields need a space between them (`v/1/i` reads `i` as an option of `v`).
        assert!(parse_line(b"match x m/a/ p/A/v/1/").is_err());
        assert!(parse_line(b"match x m/a/ p/A/ v/1/i/x/").is_err());
        assert!(parse_line(b"match x m/a/i/x/").is_err());

        // Raw bytes in the pattern are kept.
        let m = matchline(b"match x m|\xc3\xa9\xff| p/Oc\xc3\xa9/").unwrap();
        assert_eq!(m.pattern, b"\xc3\xa9\xff");
    }

    #[test]
    fn bad_match_lines() {
        let cases: &[&[u8]] = &[
            b"match",
            b"match ssh",
            b"match ssh x/abc/",
            b"match ssh m/abc",
            b"match ssh m/abc/x",
            b"match ssh m/abc/ p/unterminated",
            b"match ssh m/abc/ q/nope/",
            b"match ssh m/abc/ p/$9x$/",
            b"match ssh m/abc/ cpe:/z:x/",
            b"match ssh m/abc/ cpe:/a:x/b",
            b"match ssh m/abc/ p/x/y",
            b"match ssh m/abc/ p",
        ];
        for c in cases {
            assert!(parse_line(c).is_err(), "{:?} should fail", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn other_directives() {
        assert_eq!(parse_line(b"").unwrap(), None);
        assert_eq!(parse_line(b"   \t\r").unwrap(), None);
        assert_eq!(parse_line(b"# comment").unwrap(), None);
        assert_eq!(parse_line(b"  # indented comment").unwrap(), None);
        assert_eq!(parse_line(b"rarity 3\r").unwrap(), Some(Directive::Rarity(3)));
        assert_eq!(parse_line(b"totalwaitms 6000").unwrap(), Some(Directive::TotalWaitMs(6000)));
        assert_eq!(parse_line(b"tcpwrappedms 3000").unwrap(), Some(Directive::TcpWrappedMs(3000)));
        assert_eq!(
            parse_line(b"fallback GetRequest, DNSStatusRequest").unwrap(),
            Some(Directive::Fallback(vec!["GetRequest".into(), "DNSStatusRequest".into()]))
        );
        match parse_line(b"ports 1,7,9-11").unwrap() {
            Some(Directive::Ports(p)) => assert!(p.contains(10) && !p.contains(8)),
            other => panic!("{other:?}"),
        }
        match parse_line(b"Exclude T:9100-9107").unwrap() {
            Some(Directive::Exclude(e)) => assert!(e.contains(Proto::Tcp, 9101) && !e.contains(Proto::Udp, 9101)),
            other => panic!("{other:?}"),
        }
        for bad in [
            "rarity 0",
            "rarity 10",
            "rarity x",
            "totalwaitms 5",
            "ports 1,,2",
            "sslports",
            "fallback ",
            "Probes TCP X q||",
            "matchx",
            "Exclude Q:1",
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(matches!(parse_line(b"frobnicate 1"), Err(LineErrorKind::UnknownDirective(d)) if d == "frobnicate"));
    }
}
