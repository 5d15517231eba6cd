//! A cheap test run before PCRE2: the literal start of an anchored pattern.
//!
//! Nearly all of nmap's patterns start with `^` and a few literal bytes
//! (`^SSH-`, `^220 `, `^HTTP/1\.[01] `), and a response is tried against
//! thousands of them. Checking those bytes first, from a small array kept
//! apart from the compiled patterns, rejects most lines without touching
//! PCRE2's data, which is what the time goes to (cache misses, not matching).
//!
//! The prefix is a necessary condition only, so it must never reject a
//! response the pattern would match. It is derived conservatively: the
//! pattern must start with `^` and have no `|` outside parentheses; the
//! prefix stops at the first thing that is not a plain literal byte (a
//! class, a group, `.`, an escape other than `\r \n \t \xHH \0` and escaped
//! punctuation, ...), and a literal followed by `?`, `*` or `{` is left out.
//! Under the `i` option bytes compare ASCII-case-insensitively and the
//! prefix stops at bytes above 0x7F. Patterns that set `(?x)` get no prefix.

/// The most bytes kept; more would rarely reject anything more.
const MAX_PREFIX: usize = 14;

/// The literal bytes a matching response must start with (possibly none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Prefix {
    bytes: [u8; MAX_PREFIX],
    len: u8,
    caseless: bool,
}

impl Prefix {
    /// The prefix of a pattern as written in the file.
    pub(crate) fn of(pattern: &[u8], caseless: bool) -> Prefix {
        Prefix::derive(pattern, caseless).0
    }

    /// The prefix, and the length of the pattern text it was read from
    /// (`^` included; 0 when there is no prefix).
    pub(crate) fn derive(pattern: &[u8], caseless: bool) -> (Prefix, usize) {
        let mut p = Prefix { caseless, ..Prefix::default() };
        if pattern.first() != Some(&b'^') || !safe_structure(pattern) {
            return (p, 0);
        }
        let mut i = 1;
        while usize::from(p.len) < MAX_PREFIX {
            let Some((byte, next)) = literal_at(pattern, i) else { break };
            if caseless && byte >= 0x80 {
                break;
            }
            match pattern.get(next) {
                Some(b'?' | b'*' | b'{') => break,
                Some(b'+') => {
                    p.push(byte);
                    i = next;
                    break;
                }
                _ => p.push(byte),
            }
            i = next;
        }
        (p, if p.len == 0 { 0 } else { i })
    }

    fn push(&mut self, b: u8) {
        self.bytes[usize::from(self.len)] = b;
        self.len += 1;
    }

    /// Whether `subject` may match: it starts with the prefix.
    #[inline]
    pub(crate) fn admits(&self, subject: &[u8]) -> bool {
        let want = &self.bytes[..usize::from(self.len)];
        match subject.get(..want.len()) {
            None => false,
            Some(head) if self.caseless => head.eq_ignore_ascii_case(want),
            Some(head) => head == want,
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The literal byte at `i` and the index after it, if `i` starts a plain literal.
fn literal_at(p: &[u8], i: usize) -> Option<(u8, usize)> {
    let b = *p.get(i)?;
    match b {
        b'\\' => {
            let e = *p.get(i + 1)?;
            match e {
                b'r' => Some((b'\r', i + 2)),
                b'n' => Some((b'\n', i + 2)),
                b't' => Some((b'\t', i + 2)),
                // `\0` is octal: only a lone `\0` is a NUL.
                b'0' => match p.get(i + 2) {
                    Some(b'0'..=b'7') => None,
                    _ => Some((0, i + 2)),
                },
                b'x' => {
                    let hex = |j: usize| p.get(j).and_then(|&c| char::from(c).to_digit(16));
                    let hi = hex(i + 2)?;
                    match hex(i + 3) {
                        Some(lo) => Some(((hi * 16 + lo) as u8, i + 4)),
                        None => Some((hi as u8, i + 3)),
                    }
                }
                // Escaped punctuation (and escaped high bytes) stand for themselves.
                e if !e.is_ascii_alphanumeric() && e != b'Q' => Some((e, i + 2)),
                _ => None,
            }
        }
        b'^' | b'$' | b'.' | b'|' | b'?' | b'*' | b'+' | b'(' | b')' | b'[' | b']' | b'{' | b'}' => None,
        _ => Some((b, i + 1)),
    }
}

/// True when the pattern has no `|` outside parentheses and no `(?x`, so
/// that its leading literals bind the whole pattern. Anything it cannot
/// follow (an unclosed class or quote, unbalanced parentheses) counts as unsafe.
fn safe_structure(p: &[u8]) -> bool {
    // Extended mode (`(?x)`, `(?ix)`, `(?x:...)`, ...) makes `#` start
    // comments; verbs such as `(*ACCEPT)` change what matching means.
    let sets_extended = p.windows(2).enumerate().any(|(i, w)| {
        w == b"(?"
            && p[i + 2..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic() || **c == b'-' || **c == b'^')
                .any(|&c| c == b'x')
    });
    if sets_extended || p.windows(2).any(|w| w == b"(*") {
        return false;
    }
    let mut depth: i32 = 0;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' => {
                if p.get(i + 1) == Some(&b'Q') {
                    // Quoted until \E (or the end).
                    match p[i + 2..].windows(2).position(|w| w == b"\\E") {
                        Some(end) => i = i + 2 + end + 2,
                        None => return depth == 0,
                    }
                } else {
                    i += 2;
                }
            }
            b'[' => match class_end(p, i) {
                Some(end) => i = end + 1,
                None => return false,
            },
            b'(' => {
                if p[i + 1..].starts_with(b"?#") {
                    // A comment runs to the next `)`.
                    match p[i..].iter().position(|&c| c == b')') {
                        Some(end) => i += end + 1,
                        None => return false,
                    }
                } else {
                    depth += 1;
                    i += 1;
                }
            }
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
                i += 1;
            }
            b'|' if depth == 0 => return false,
            _ => i += 1,
        }
    }
    depth == 0
}

/// The index of the `]` closing the class opened at `start`.
fn class_end(p: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&b'^') {
        i += 1;
    }
    // A `]` first in the class is a literal.
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    while i < p.len() {
        match p[i] {
            b'\\' => i += 2,
            b'[' if p.get(i + 1) == Some(&b':') => {
                // POSIX class such as [:alpha:].
                let end = p[i + 2..].windows(2).position(|w| w == b":]")?;
                i = i + 2 + end + 2;
            }
            b']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &[u8]) -> Vec<u8> {
        Prefix::of(p, false).bytes().to_vec()
    }

    #[test]
    fn literal_starts() {
        assert_eq!(prefix(br"^SSH-([\d.]+)-OpenSSH_"), b"SSH-");
        assert_eq!(prefix(br"^220 .*ftp"), b"220 ");
        assert_eq!(prefix(br"^HTTP/1\.[01] 200"), b"HTTP/1.");
        assert_eq!(prefix(br"^\x16\x03\0\0S\x01"), b"\x16\x03\0\0S\x01");
        assert_eq!(prefix(br"^\0\x4g"), b"\0\x04g");
        assert_eq!(prefix(br"^\r\n\t\|\/\-x"), b"\r\n\t|/-x");
        assert_eq!(prefix(b"^\xc3\xa9t\xc3\xa9"), b"\xc3\xa9t\xc3\xa9");
        assert_eq!(prefix(br"^abcdefghijklmnopqrstuvwxyz"), b"abcdefghijklmn");
    }

    #[test]
    fn stops_where_it_must() {
        assert_eq!(prefix(br"^abc?"), b"ab", "optional last byte");
        assert_eq!(prefix(br"^abc*"), b"ab");
        assert_eq!(prefix(br"^abc{0,2}"), b"ab");
        assert_eq!(prefix(br"^abc+d"), b"abc", "at least one c, then stop");
        assert_eq!(prefix(br"^ab\x41?"), b"ab");
        assert_eq!(prefix(br"^ab\r?\n"), b"ab");
        assert_eq!(prefix(br"^ab(c)"), b"ab");
        assert_eq!(prefix(br"^ab.c"), b"ab");
        assert_eq!(prefix(br"^ab\dc"), b"ab");
        assert_eq!(prefix(br"^ab\012"), b"ab", "octal escape");
        assert_eq!(prefix(br"^ab\Qcd\E"), b"ab");
        assert_eq!(prefix(br"^ab\x{41}"), b"ab");
        assert_eq!(prefix(br"^ab\1"), b"ab");
        assert_eq!(prefix(br"^ab\v"), b"ab", "\\v is a class in PCRE");
        assert_eq!(prefix(br"^ab$"), b"ab");
        assert_eq!(prefix(br"^ab[c]"), b"ab");
    }

    #[test]
    fn no_prefix_when_unsafe() {
        assert_eq!(prefix(br"abc"), b"", "not anchored");
        assert_eq!(prefix(br"^abc|^def"), b"", "top-level alternation");
        assert_eq!(prefix(br"^abc|def"), b"");
        assert_eq!(prefix(br"^abc(?:x|y)"), b"abc", "alternation inside a group is fine");
        assert_eq!(prefix(br"^abc[|]"), b"abc", "a bar in a class is a literal");
        assert_eq!(prefix(br"^abc[]|]"), b"abc");
        assert_eq!(prefix(br"^abc[^]|]"), b"abc");
        assert_eq!(prefix(br"^abc[[:alpha:]|]"), b"abc");
        assert_eq!(prefix(br"^abc\|"), b"abc|");
        assert_eq!(prefix(br"^abc\Q|\E"), b"abc");
        assert_eq!(prefix(br"^abc(?#|)x"), b"abc");
        assert_eq!(prefix(br"^abc(?x) |d"), b"", "extended mode");
        assert_eq!(prefix(br"^abc(?i-sx:y)"), b"");
        assert_eq!(prefix(br"^abc(?is)y"), b"abc");
        assert_eq!(prefix(br"^abc(*ACCEPT)"), b"");
        assert_eq!(prefix(br"^abc[x"), b"", "unclosed class");
        assert_eq!(prefix(br"^abc)|x"), b"", "unbalanced");
        assert_eq!(prefix(br"^abc(|x"), b"", "unbalanced");
    }

    #[test]
    fn admits() {
        let p = Prefix::of(br"^SSH-", false);
        assert!(p.admits(b"SSH-2.0") && !p.admits(b"ssh-2.0") && !p.admits(b"SSH") && !p.admits(b""));
        let p = Prefix::of(br"^SSH-", true);
        assert!(p.admits(b"ssh-2.0") && p.admits(b"SsH-"));
        assert_eq!(Prefix::of(b"^\xc3\xa9", true).bytes(), b"", "no high bytes when caseless");
        assert!(Prefix::of(b"x", false).admits(b""), "the empty prefix admits everything");
    }
}

/// Checks every prefix derived from nmap's own file against PCRE2's reading
/// of the same pattern text. (The file's presence in CI is asserted by the
/// integration tests; here its absence just skips.)
#[cfg(test)]
mod nmap_file {
    use super::Prefix;
    use crate::nmap::parse::{Directive, parse_line};
    use crate::nmap::pattern::compile;

    #[test]
    fn prefixes_are_what_pcre2_reads() {
        let Ok(text) = std::fs::read("/usr/share/nmap/nmap-service-probes") else { return };
        let (mut lines, mut with_prefix) = (0, 0);
        for line in text.split(|&b| b == b'\n') {
            let Ok(Some(Directive::Match(m))) = parse_line(line) else { continue };
            lines += 1;
            let (prefix, end) = Prefix::derive(&m.pattern, m.caseless);
            if end == 0 {
                continue;
            }
            with_prefix += 1;
            let head = compile(&m.pattern[..end], m.caseless, m.dotall).unwrap();
            let found = head.find(prefix.bytes()).unwrap();
            let shown = String::from_utf8_lossy(&m.pattern);
            let found = found.unwrap_or_else(|| panic!("{shown}: head does not match its prefix"));
            assert_eq!((found.start(), found.end()), (0, prefix.bytes().len()), "{shown}");
        }
        assert!(lines > 10_000);
        assert!(with_prefix * 10 > lines * 9, "{with_prefix} of {lines} lines have a prefix");
    }
}
