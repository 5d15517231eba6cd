//! Compiling match patterns with PCRE2, the engine nmap itself uses.
//!
//! Patterns are compiled with UTF mode off, so they match arbitrary bytes and
//! `.`/`[^...]` consume one byte, as in nmap. Options `i` and `s` map to
//! `PCRE2_CASELESS` (ASCII case folding, UTF being off) and `PCRE2_DOTALL`.
//! The JIT is used where available.
//!
//! The `pcre2` crate takes patterns as `&str`, while nmap-service-probes is
//! bytes: every byte above 0x7F is written as `\x{HH}`, which in non-UTF
//! mode stands for that byte, in and out of character classes (inside
//! `\Q...\E` the quote is closed around it).
//!
//! The `pcre2` crate has no way to set a match limit on the match context,
//! so each pattern starts with PCRE2's in-pattern limits
//! `(*LIMIT_MATCH=..)(*LIMIT_DEPTH=..)` (the values nmap uses, see
//! [`MATCH_LIMIT`]): a pathological pattern/response pair then ends with an
//! error, taken as "no match", instead of running away. Callers also bound
//! the response length ([`super::MAX_RESPONSE_LEN`]).

use pcre2::bytes::{Regex, RegexBuilder};

/// PCRE2 match limit per pattern (nmap's value).
pub const MATCH_LIMIT: u32 = 100_000;
/// PCRE2 depth limit per pattern (nmap's value for the recursion limit).
pub const DEPTH_LIMIT: u32 = 10_000;

/// The pattern as PCRE2 source text: bytes above 0x7F become `\x{HH}`.
#[cfg(test)]
pub(crate) fn to_pcre_source(pattern: &[u8]) -> String {
    translate(pattern).0
}

/// The PCRE2 source text, and for each of its bytes the offset in `pattern`
/// it came from (the limits prefix maps to 0).
fn translate(pattern: &[u8]) -> (String, Vec<usize>) {
    let mut out = format!("(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={DEPTH_LIMIT})");
    let mut origin = vec![0; out.len()];
    let mut push = |out: &mut String, text: &str, from: usize| {
        out.push_str(text);
        origin.resize(out.len(), from);
    };
    let hex = |b: u8| format!("\\x{{{b:02x}}}");
    let ascii = |b: u8| char::from(b).to_string();
    let mut in_quote = false;
    let mut i = 0;
    while i < pattern.len() {
        let b = pattern[i];
        if in_quote {
            if b == b'\\' && pattern.get(i + 1) == Some(&b'E') {
                push(&mut out, "\\E", i);
                in_quote = false;
                i += 2;
            } else {
                let text = if b >= 0x80 { format!("\\E{}\\Q", hex(b)) } else { ascii(b) };
                push(&mut out, &text, i);
                i += 1;
            }
            continue;
        }
        if b == b'\\' {
            let text = match pattern.get(i + 1) {
                // An escaped high byte is that byte, literally.
                Some(&n) if n >= 0x80 => hex(n),
                Some(&n) => {
                    in_quote = n == b'Q';
                    format!("\\{}", char::from(n))
                }
                None => "\\".to_string(),
            };
            push(&mut out, &text, i);
            i += 2;
            continue;
        }
        let text = if b >= 0x80 { hex(b) } else { ascii(b) };
        push(&mut out, &text, i);
        i += 1;
    }
    (out, origin)
}

/// Compiles one pattern. The error is PCRE2's message, its offset counted
/// in the pattern as written in the file.
pub(crate) fn compile(pattern: &[u8], caseless: bool, dotall: bool) -> Result<Regex, String> {
    let (source, origin) = translate(pattern);
    RegexBuilder::new().utf(false).caseless(caseless).dotall(dotall).jit_if_available(true).build(&source).map_err(
        |e| {
            let msg = e.to_string();
            match e.offset() {
                Some(at) => {
                    let orig = origin.get(at).copied().unwrap_or(pattern.len());
                    msg.replace(&format!("at offset {at}"), &format!("at offset {orig}"))
                }
                None => msg,
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> &str {
        s.strip_prefix(&format!("(*LIMIT_MATCH={MATCH_LIMIT})(*LIMIT_DEPTH={DEPTH_LIMIT})")).unwrap()
    }

    #[test]
    fn high_bytes_become_hex() {
        assert_eq!(strip(&to_pcre_source(b"a\xc3\xa9[\xff]")), r"a\x{c3}\x{a9}[\x{ff}]");
        assert_eq!(strip(&to_pcre_source(b"\\\xe9\\d")), r"\x{e9}\d");
        assert_eq!(strip(&to_pcre_source(b"\\Qa\xe9.\\E.")), r"\Qa\E\x{e9}\Q.\E.");
        assert_eq!(strip(&to_pcre_source(b"x\\")), "x\\");
    }

    #[test]
    fn bytes_semantics() {
        let re = compile(b"^Oc\xc3\xa9 (.)$", false, false).unwrap();
        let caps = re.captures(b"Oc\xc3\xa9 \xff").unwrap().unwrap();
        assert_eq!(caps.get(1).unwrap().as_bytes(), b"\xff", "dot takes one byte");
        assert!(compile(b"^\\xff\\x00", false, false).unwrap().is_match(b"\xff\x00").unwrap());
        assert!(compile(b"^[\x80-\xff]+$", false, false).unwrap().is_match(b"\x80\xfe").unwrap());
        // Invalid UTF-8 in the subject is fine.
        assert!(compile(b"b", false, false).unwrap().is_match(b"\xc3\x28b").unwrap());
    }

    #[test]
    fn options() {
        assert!(compile(b"^ssh", true, false).unwrap().is_match(b"SSH").unwrap());
        assert!(!compile(b"^ssh", false, false).unwrap().is_match(b"SSH").unwrap());
        assert!(compile(b"^a.b", false, true).unwrap().is_match(b"a\nb").unwrap());
        assert!(!compile(b"^a.b", false, false).unwrap().is_match(b"a\nb").unwrap());
        // No multi-line: ^ is the start of the response only.
        assert!(!compile(b"^b", false, false).unwrap().is_match(b"a\nb").unwrap());
    }

    #[test]
    fn runaway_patterns_are_cut_off() {
        let re = compile(b"^(a+)+$", false, false).unwrap();
        let mut subject = vec![b'a'; 64];
        subject.push(b'b');
        // Either the limit error or "no match"; never a hang.
        assert!(!re.is_match(&subject).unwrap_or(false));
    }

    #[test]
    fn errors_are_reported_at_the_written_offset() {
        assert!(compile(b"(", false, false).is_err());
        let raw = compile(b"\xe9\xe9a{2,1}", false, false).unwrap_err();
        let ascii = compile(b"xxa{2,1}", false, false).unwrap_err();
        assert_eq!(raw, ascii);
        assert!(raw.contains("at offset "), "{raw}");
    }
}
