//! Version-info templates: the `p/.../`, `v/.../`, ... and `cpe:/.../` fields
//! of a match line, with their substitutions.
//!
//! * `$1`..`$9`: the capture group, non-printable bytes written as `\xHH`.
//! * `$P(n)`: the capture group with non-printable bytes dropped (for text
//!   such as `W\0O\0R\0K\0` in UTF-16).
//! * `$SUBST(n,"from","to")`: the capture group with every `from` replaced by `to`.
//! * `$I(n,">")` / `$I(n,"<")`: the capture group (at most 8 bytes) read as an
//!   unsigned big- or little-endian integer, in decimal.
//!
//! Templates are parsed when the file loads, so a malformed `$` is an error of
//! its line. Rendering never fails and never panics: a group that did not take
//! part in the match, or does not exist, gives the empty string; an `$I` over
//! more than 8 bytes gives nothing. Each rendered value is at most
//! [`MAX_FIELD_LEN`] bytes, is valid UTF-8 without control characters, and,
//! like nmap, loses trailing whitespace and commas.

use super::parse::unescape_with;

/// The longest value a rendered field may have, in bytes.
pub const MAX_FIELD_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
    Printable(usize),
    Subst { group: usize, from: Vec<u8>, to: Vec<u8> },
    Int { group: usize, big_endian: bool },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// How substituted text is written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Version fields: printable ASCII kept, other bytes as `\xHH`.
    Text,
    /// CPE URIs, as nmap does: lower-case, space to `_`, URI-reserved and
    /// non-printable bytes percent-encoded.
    Cpe,
}

/// An argument of `$NAME(...)`.
#[derive(Debug)]
enum Arg {
    Int(i64),
    Str(Vec<u8>),
}

fn parse_args(s: &[u8], mut i: usize) -> Result<(Vec<Arg>, usize), String> {
    // `i` is just after '('. Returns the arguments and the index after ')'.
    let mut args = Vec::new();
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        match s.get(i) {
            None => return Err("unterminated `$...(` substitution".into()),
            Some(b')') if args.is_empty() => return Ok((args, i + 1)),
            Some(b'"') => {
                let start = i + 1;
                let mut j = start;
                loop {
                    match s.get(j) {
                        None => return Err("unterminated string in substitution".into()),
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let raw = &s[start..j.min(s.len())];
                // `\"` is a quote inside the string.
                args.push(Arg::Str(unescape_with(raw, b"\"")?));
                i = j + 1;
            }
            Some(c) if c.is_ascii_digit() => {
                let start = i;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                let text = std::str::from_utf8(&s[start..i]).unwrap_or("");
                let n = text.parse::<i64>().map_err(|_| format!("number `{text}` too large"))?;
                args.push(Arg::Int(n));
            }
            Some(&c) => {
                return Err(format!("unexpected `{}` in substitution arguments", char::from(c).escape_default()));
            }
        }
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b')') => return Ok((args, i + 1)),
            _ => return Err("expected `,` or `)` in substitution".into()),
        }
    }
}

fn group_arg(arg: Option<&Arg>, what: &str) -> Result<usize, String> {
    match arg {
        Some(Arg::Int(n)) if (1..=9).contains(n) => Ok(*n as usize),
        Some(Arg::Int(n)) => Err(format!("{what}: group {n} out of range (1-9)")),
        _ => Err(format!("{what}: first argument must be a group number")),
    }
}

impl Template {
    /// Parses a template's text (between the delimiters).
    pub(crate) fn parse(s: &[u8]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if s[i] != b'$' {
                lit.push(s[i]);
                i += 1;
                continue;
            }
            let piece;
            match s.get(i + 1) {
                Some(&d) if d.is_ascii_digit() => {
                    if d == b'0' {
                        return Err("`$0` is not a capture group (use $1-$9)".into());
                    }
                    piece = Piece::Group(usize::from(d - b'0'));
                    i += 2;
                }
                Some(_) => {
                    let name_start = i + 1;
                    let mut j = name_start;
                    while j < s.len() && s[j].is_ascii_alphabetic() {
                        j += 1;
                    }
                    let name = &s[name_start..j];
                    if s.get(j) != Some(&b'(') || name.is_empty() {
                        return Err("`$` must be followed by a digit or by P(, SUBST( or I(".into());
                    }
                    let (args, end) = parse_args(s, j + 1)?;
                    piece = match name {
                        b"P" => {
                            if args.len() != 1 {
                                return Err("$P takes one argument".into());
                            }
                            Piece::Printable(group_arg(args.first(), "$P")?)
                        }
                        b"SUBST" => match args.as_slice() {
                            [g, Arg::Str(from), Arg::Str(to)] => {
                                if from.is_empty() {
                                    return Err("$SUBST: the string to replace is empty".into());
                                }
                                Piece::Subst {
                                    group: group_arg(Some(g), "$SUBST")?,
                                    from: from.clone(),
                                    to: to.clone(),
                                }
                            }
                            _ => return Err("$SUBST takes a group and two strings".into()),
                        },
                        b"I" => match args.as_slice() {
                            [g, Arg::Str(e)] if e.as_slice() == b">" || e.as_slice() == b"<" => {
                                Piece::Int { group: group_arg(Some(g), "$I")?, big_endian: e[0] == b'>' }
                            }
                            _ => return Err("$I takes a group and \">\" or \"<\"".into()),
                        },
                        other => {
                            return Err(format!("unknown substitution `${}`", String::from_utf8_lossy(other)));
                        }
                    };
                    i = end;
                }
                None => return Err("`$` at the end of the template".into()),
            }
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(piece);
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Template { pieces })
    }

    /// The highest capture group the template refers to (0 if none).
    pub(crate) fn max_group(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(_) => 0,
                Piece::Group(g) | Piece::Printable(g) | Piece::Subst { group: g, .. } | Piece::Int { group: g, .. } => {
                    *g
                }
            })
            .max()
            .unwrap_or(0)
    }

    /// The literal text, when the template has no substitution.
    #[cfg(test)]
    pub(crate) fn literal(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(l) => out.extend_from_slice(l),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Renders the template. `group(n)` gives capture group `n`, or `None`
    /// when it did not take part in the match or does not exist.
    pub(crate) fn render<'s>(&self, group: impl Fn(usize) -> Option<&'s [u8]>, mode: Mode) -> String {
        let mut out = Out { buf: Vec::with_capacity(32), mode };
        for piece in &self.pieces {
            if out.full() {
                break;
            }
            match piece {
                Piece::Literal(l) => out.literal(l),
                Piece::Group(g) => {
                    for &b in group(*g).unwrap_or_default() {
                        out.subst_byte(b);
                    }
                }
                Piece::Printable(g) => {
                    for &b in group(*g).unwrap_or_default() {
                        if is_print(b) {
                            out.subst_byte(b);
                        }
                    }
                }
                Piece::Subst { group: g, from, to } => {
                    let v = group(*g).unwrap_or_default();
                    let mut i = 0;
                    while i < v.len() && !out.full() {
                        if v[i..].starts_with(from) {
                            for &b in to {
                                out.subst_byte(b);
                            }
                            i += from.len();
                        } else {
                            out.subst_byte(v[i]);
                            i += 1;
                        }
                    }
                }
                Piece::Int { group: g, big_endian } => {
                    let v = group(*g).unwrap_or_default();
                    if !v.is_empty() && v.len() <= 8 {
                        let n = if *big_endian {
                            v.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b))
                        } else {
                            v.iter().rev().fold(0u64, |n, &b| (n << 8) | u64::from(b))
                        };
                        for b in n.to_string().bytes() {
                            out.subst_byte(b);
                        }
                    }
                }
            }
        }
        out.finish()
    }
}

/// C `isprint` in the C locale.
fn is_print(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// The output buffer: collects a little more than [`MAX_FIELD_LEN`] and
/// stops, so hostile captures cost bounded work.
struct Out {
    buf: Vec<u8>,
    mode: Mode,
}

impl Out {
    fn full(&self) -> bool {
        self.buf.len() > MAX_FIELD_LEN
    }

    /// Template text from the file: kept as written (it may be UTF-8, like
    /// `Océ`), except control characters, which are escaped. In a CPE a
    /// space becomes `_` (nmap's convention, as for substitutions; the file
    /// has `cpe:/a:busybox:busybox:1.14.0 or later/`) and other bytes
    /// outside printable ASCII are percent-encoded, so the URI stays one
    /// printable token.
    fn literal(&mut self, l: &[u8]) {
        for &b in l {
            if self.full() {
                return;
            }
            match self.mode {
                Mode::Cpe if b == b' ' => self.buf.push(b'_'),
                Mode::Cpe if !(0x21..0x7f).contains(&b) => self.hex(b, b'%'),
                Mode::Text if b < 0x20 || b == 0x7f => self.hex(b, b'\\'),
                _ => self.buf.push(b),
            }
        }
    }

    /// A byte of the response.
    fn subst_byte(&mut self, b: u8) {
        if self.full() {
            return;
        }
        match self.mode {
            Mode::Text => {
                if is_print(b) {
                    self.buf.push(b);
                } else {
                    self.hex(b, b'\\');
                }
            }
            Mode::Cpe => {
                if b == b' ' {
                    self.buf.push(b'_');
                } else if !is_print(b) || b":/?#[]@!$&'()*+,;=%<>\"".contains(&b) {
                    self.hex(b, b'%');
                } else {
                    self.buf.push(b.to_ascii_lowercase());
                }
            }
        }
    }

    fn hex(&mut self, b: u8, lead: u8) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        if lead == b'\\' {
            self.buf.extend_from_slice(&[b'\\', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            self.buf.extend_from_slice(&[lead, HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }

    fn finish(self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if s.len() > MAX_FIELD_LEN {
            let mut cut = MAX_FIELD_LEN;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
        }
        let keep = s.trim_end_matches(|c: char| c.is_whitespace() || c == ',').len();
        s.truncate(keep);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, groups: &[&[u8]]) -> String {
        render_mode(t, groups, Mode::Text)
    }

    fn render_mode(t: &str, groups: &[&[u8]], mode: Mode) -> String {
        let t = Template::parse(t.as_bytes()).unwrap();
        t.render(|n| groups.get(n.wrapping_sub(1)).copied(), mode)
    }

    #[test]
    fn plain_groups() {
        assert_eq!(render("OpenSSH $1", &[b"9.2p1"]), "OpenSSH 9.2p1");
        assert_eq!(render("$2.$1", &[b"a", b"b"]), "b.a");
        assert_eq!(render("x$10", &[b"a"]), "xa0", "one digit only, like nmap");
        assert_eq!(render("[$3]", &[b"a"]), "[]", "missing group is empty");
        assert_eq!(render("$1", &[b"a\r\n\x00\xffb"]), "a\\x0D\\x0A\\x00\\xFFb");
    }

    #[test]
    fn printable_only() {
        assert_eq!(render("$P(1)", &[b"W\0O\0R\0K\0"]), "WORK");
        assert_eq!(render("<$P( 1 )>", &[b"\x01a\x7fb\xc3\xa9"]), "<ab>");
    }

    #[test]
    fn subst() {
        assert_eq!(render(r#"$SUBST(1,"_",".")"#, &[b"1_2_3"]), "1.2.3");
        assert_eq!(render(r#"v$SUBST(1, "ab", "")x"#, &[b"aabab"]), "vax");
        assert_eq!(render(r#"$SUBST(1,"\x00","\\")"#, &[b"a\0b"]), "a\\b");
        assert_eq!(render(r#"$SUBST(1,"\"","'")"#, &[b"a\"b"]), "a'b");
    }

    #[test]
    fn integers() {
        assert_eq!(render(r#"$I(1,">")"#, &[b"\x01\x02"]), "258");
        assert_eq!(render(r#"$I(1,"<")"#, &[b"\x01\x02"]), "513");
        assert_eq!(render(r#"$I(1,">")"#, &[b"\xff\xff\xff\xff\xff\xff\xff\xff"]), u64::MAX.to_string());
        assert_eq!(render(r#"n=$I(1,">")"#, &[b"123456789"]), "n=", "more than 8 bytes gives nothing");
    }

    #[test]
    fn trailing_space_and_commas_trimmed() {
        assert_eq!(render("$1, $2", &[b"a", b" "]), "a");
        assert_eq!(render("x ,, ", &[]), "x");
    }

    #[test]
    fn bounded() {
        let big = vec![0u8; 100_000];
        let s = render("$1$1$1", &[&big]);
        assert!(s.len() <= MAX_FIELD_LEN);
        let s = render(r#"$SUBST(1,"a","bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")"#, &[&[b'a'; 50_000]]);
        assert_eq!(s.len(), MAX_FIELD_LEN);
        let s = render(&"é".repeat(300), &[]);
        assert!(s.len() <= MAX_FIELD_LEN && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn cpe_mode() {
        assert_eq!(render_mode("a:openbsd:openssh:$1", &[b"9.2P1 x/y"], Mode::Cpe), "a:openbsd:openssh:9.2p1_x%2Fy");
        assert_eq!(render_mode("a:x:y:$1", &[b"1:2\x01"], Mode::Cpe), "a:x:y:1%3A2%01");
        // Literal text is left alone, but for what cannot stand in a URI.
        assert_eq!(render_mode("a:Vendor:P:$1", &[b"A"], Mode::Cpe), "a:Vendor:P:a");
        assert_eq!(render_mode("a:V e:\x01é", &[], Mode::Cpe), "a:V_e:%01%C3%A9");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "$",
            "x$",
            "$0",
            "$Q(1)",
            "$P(1",
            "$P()",
            "$P(0)",
            "$P(10)",
            "$P(1,2)",
            "$P(\"a\")",
            r#"$SUBST(1,"a")"#,
            r#"$SUBST(1,"","b")"#,
            r#"$SUBST(1,"a","b"#,
            r#"$I(1,"=")"#,
            "$I(1)",
            "$P",
            "$ 1",
            r#"$SUBST(1,"\q","b")"#,
        ] {
            assert!(Template::parse(bad.as_bytes()).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(Template::parse(b"abc").unwrap().literal().unwrap(), b"abc");
        assert_eq!(Template::parse(br#"$SUBST(3,"a","b") $P(2) $I(7,"<") $1"#).unwrap().max_group(), 7);
    }
}
