//! CPE 2.3 formatted strings read back into their components.
//!
//! Both sides of a vulnerability match are written in this form: the
//! detector's `ServiceFacts.cpe` (`vantage_detect::cpe`) and NVD's match
//! criteria. Matching needs the components unescaped (`\:` is a colon inside
//! a value, a bare `*` is ANY and a bare `-` is NA), so this module parses a
//! formatted string into a [`Cpe`] and formats one back, such that parsing
//! what it formats gives the same components.
//!
//! Wildcards inside a value (`1.2.*`, `?x`) are rejected rather than
//! half-supported: NVD's criteria do not use them for the fields Vantage
//! matches on, and a criterion that did would be counted as unreadable at
//! import instead of matching wrongly.

use std::fmt;
use std::str::FromStr;

/// The number of components after `cpe:2.3:`.
const COMPONENTS: usize = 11;

/// One component of a CPE name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Component {
    /// `*`: any value.
    Any,
    /// `-`: not applicable (the product has no version, say).
    Na,
    /// A logical value, unescaped (`a:b` for `a\:b`): non-empty, printable
    /// ASCII without spaces, or it will not parse back.
    Value(String),
}

impl Component {
    /// The value, unless the component is ANY or NA.
    pub fn value(&self) -> Option<&str> {
        match self {
            Component::Value(v) => Some(v),
            Component::Any | Component::Na => None,
        }
    }

    /// A name component of a match criterion (`self`) against a detected
    /// one: ANY in the criterion matches anything, otherwise both must be
    /// the same, ignoring ASCII case.
    pub fn admits(&self, detected: &Component) -> bool {
        match (self, detected) {
            (Component::Any, _) => true,
            (Component::Na, Component::Na) => true,
            (Component::Value(a), Component::Value(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    /// The formatted form in lower case, a key that is equal for components
    /// that [`Component::admits`] treats as equal values.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// One component in formatted-string form (`9.2p1`, `*`, `-`, `a\:b`).
    fn parse_at(text: &str, position: usize) -> Result<Component, Reason> {
        match text {
            "" => return Err(Reason::Empty { position }),
            "*" => return Ok(Component::Any),
            "-" => return Ok(Component::Na),
            _ => {}
        }
        let mut value = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if !c.is_ascii_graphic() {
                return Err(Reason::Character { position, found: c });
            }
            match c {
                '\\' => match chars.next() {
                    Some(quoted) if quoted.is_ascii_graphic() => value.push(quoted),
                    Some(other) => return Err(Reason::Character { position, found: other }),
                    None => return Err(Reason::TrailingBackslash { position }),
                },
                '*' | '?' => return Err(Reason::Wildcard { position }),
                c => value.push(c),
            }
        }
        Ok(Component::Value(value))
    }
}

impl fmt::Display for Component {
    /// Letters, digits, `_`, `.` and `-` stand bare, as NVD writes them;
    /// everything else is backslash-quoted, and so is a value that is a
    /// lone `-` (which would otherwise read as NA).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Any => f.write_str("*"),
            Component::Na => f.write_str("-"),
            Component::Value(v) if v == "-" => f.write_str("\\-"),
            Component::Value(v) => {
                let mut out = String::with_capacity(v.len() + 4);
                for c in v.chars() {
                    if !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
                        out.push('\\');
                    }
                    out.push(c);
                }
                f.write_str(&out)
            }
        }
    }
}

impl serde::Serialize for Component {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Component {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Component::parse_at(&text, 0).map_err(|reason| serde::de::Error::custom(format!("`{text}`: {reason}")))
    }
}

/// A parsed CPE 2.3 name: `cpe:2.3:part:vendor:product:version:update:edition:language:sw_edition:target_sw:target_hw:other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cpe {
    /// `a` (application), `o` (operating system), `h` (hardware), or ANY.
    pub part: Component,
    pub vendor: Component,
    pub product: Component,
    pub version: Component,
    pub update: Component,
    pub edition: Component,
    pub language: Component,
    pub sw_edition: Component,
    pub target_sw: Component,
    pub target_hw: Component,
    pub other: Component,
}

/// Why a string is not a CPE 2.3 formatted string; positions count the
/// components after `cpe:2.3:` from 0 (the part).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("it does not start with `cpe:2.3:`")]
    Prefix,
    #[error("it has {found} components after `cpe:2.3:`, expected 11")]
    Count { found: usize },
    #[error("component {position} is empty (write `*` for any)")]
    Empty { position: usize },
    #[error("component {position} ends in a lone backslash")]
    TrailingBackslash { position: usize },
    #[error("component {position} has an unquoted wildcard inside a value, which Vantage does not match on")]
    Wildcard { position: usize },
    #[error("component {position} has {found:?}, outside printable ASCII")]
    Character { position: usize, found: char },
    #[error("the part is `{found}`, expected `a`, `o`, `h` or `*`")]
    Part { found: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a CPE 2.3 formatted string: {reason}")]
pub struct CpeError {
    pub input: String,
    pub reason: Reason,
}

impl FromStr for Cpe {
    type Err = CpeError;

    fn from_str(input: &str) -> Result<Cpe, CpeError> {
        let fail = |reason| CpeError { input: input.to_string(), reason };
        let body = input.get(..8).filter(|p| p.eq_ignore_ascii_case("cpe:2.3:")).map(|_| &input[8..]);
        let body = body.ok_or_else(|| fail(Reason::Prefix))?;
        let raw = split_unescaped(body);
        if raw.len() != COMPONENTS {
            return Err(fail(Reason::Count { found: raw.len() }));
        }
        let mut parsed = Vec::with_capacity(COMPONENTS);
        for (position, text) in raw.into_iter().enumerate() {
            parsed.push(Component::parse_at(text, position).map_err(fail)?);
        }
        let [part, vendor, product, version, update, edition, language, sw_edition, target_sw, target_hw, other] =
            <[Component; COMPONENTS]>::try_from(parsed).expect("counted above");
        let part = match part {
            Component::Any => Component::Any,
            Component::Value(p) if matches!(p.to_ascii_lowercase().as_str(), "a" | "o" | "h") => {
                Component::Value(p.to_ascii_lowercase())
            }
            other => return Err(fail(Reason::Part { found: other.to_string() })),
        };
        Ok(Cpe { part, vendor, product, version, update, edition, language, sw_edition, target_sw, target_hw, other })
    }
}

/// Splits at every `:` that is not backslash-quoted.
fn split_unescaped(body: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(COMPONENTS);
    let mut start = 0;
    let mut quoted = false;
    for (i, b) in body.bytes().enumerate() {
        match b {
            _ if quoted => quoted = false,
            b'\\' => quoted = true,
            b':' => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    out
}

impl fmt::Display for Cpe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpe:2.3:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}",
            self.part,
            self.vendor,
            self.product,
            self.version,
            self.update,
            self.edition,
            self.language,
            self.sw_edition,
            self.target_sw,
            self.target_hw,
            self.other
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cpe(s: &str) -> Cpe {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn value(s: &str) -> Component {
        Component::Value(s.to_string())
    }

    fn reason(s: &str) -> Reason {
        s.parse::<Cpe>().expect_err(s).reason
    }

    #[test]
    fn reads_what_the_detector_writes() {
        let written = vantage_detect::cpe::application("OpenBSD", "OpenSSH", "9.2p1");
        let c = cpe(&written);
        assert_eq!(c.part, value("a"));
        assert_eq!(c.vendor, value("openbsd"));
        assert_eq!(c.product, value("openssh"));
        assert_eq!(c.version, value("9.2p1"));
        assert_eq!(c.update, Component::Any);
        assert_eq!(c.other, Component::Any);
        assert_eq!(c.to_string(), written);
    }

    #[test]
    fn unescapes_quoted_characters() {
        let c = cpe(r"cpe:2.3:a:acme\:labs:web\.server:2.4.62_\(debian\):-:*:*:*:*:*:*");
        assert_eq!(c.vendor, value("acme:labs"));
        assert_eq!(c.product, value("web.server"));
        assert_eq!(c.version, value("2.4.62_(debian)"));
        assert_eq!(c.update, Component::Na);
        // `.` needs no quote when written back; `:` and `(` do.
        assert_eq!(c.to_string(), r"cpe:2.3:a:acme\:labs:web.server:2.4.62_\(debian\):-:*:*:*:*:*:*");
    }

    #[test]
    fn quoted_wildcards_and_dashes_are_values() {
        let c = cpe(r"cpe:2.3:a:\*:\-:\?:*:*:*:*:*:*:*");
        assert_eq!(c.vendor, value("*"));
        assert_eq!(c.product, value("-"));
        assert_eq!(c.version, value("?"));
        assert!(!Component::Any.key().eq(&c.vendor.key()), "a literal `*` is not ANY");
    }

    #[test]
    fn part_is_normalised_and_checked() {
        assert_eq!(cpe("CPE:2.3:O:debian:debian_linux:12:*:*:*:*:*:*:*").part, value("o"));
        assert_eq!(cpe("cpe:2.3:*:x:y:*:*:*:*:*:*:*:*").part, Component::Any);
        assert_eq!(reason("cpe:2.3:x:a:b:*:*:*:*:*:*:*:*"), Reason::Part { found: "x".into() });
    }

    #[test]
    fn malformed_strings_say_why() {
        assert_eq!(reason("cpe:/a:openbsd:openssh:9.2p1"), Reason::Prefix);
        assert_eq!(reason("cpe:2.3:a:openbsd:openssh:9.2p1"), Reason::Count { found: 4 });
        assert_eq!(reason("cpe:2.3:a::openssh:*:*:*:*:*:*:*:*"), Reason::Empty { position: 1 });
        assert_eq!(reason("cpe:2.3:a:x:y:1.2.*:*:*:*:*:*:*:*"), Reason::Wildcard { position: 3 });
        assert_eq!(reason("cpe:2.3:a:x:y:*:*:*:*:*:*:*:z\\"), Reason::TrailingBackslash { position: 10 });
        assert_eq!(reason("cpe:2.3:a:x:y:1 2:*:*:*:*:*:*:*"), Reason::Character { position: 3, found: ' ' });
        let e = "cpe:2.3:a".parse::<Cpe>().unwrap_err();
        assert_eq!(e.input, "cpe:2.3:a");
        assert!(e.to_string().contains("expected 11"), "{e}");
    }

    #[test]
    fn admits_is_case_insensitive_and_any_is_one_way() {
        assert!(value("OpenBSD").admits(&value("openbsd")));
        assert!(Component::Any.admits(&value("openbsd")));
        assert!(!value("openbsd").admits(&Component::Any), "a detection naming no vendor shows none");
        assert!(!value("openbsd").admits(&value("openbsd_foundation")));
        assert!(Component::Na.admits(&Component::Na));
        assert!(!Component::Na.admits(&value("-")));
    }

    fn component() -> impl Strategy<Value = Component> {
        prop_oneof![
            1 => Just(Component::Any),
            1 => Just(Component::Na),
            6 => "[!-~]{1,16}".prop_map(Component::Value),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn formatted_names_parse_back(parts in proptest::collection::vec(component(), 10), part in 0usize..4) {
            let part = [Component::Any, value("a"), value("o"), value("h")][part].clone();
            let [vendor, product, version, update, edition, language, sw_edition, target_sw, target_hw, other] =
                <[Component; 10]>::try_from(parts).unwrap();
            let name = Cpe { part, vendor, product, version, update, edition, language, sw_edition, target_sw, target_hw, other };
            let text = name.to_string();
            prop_assert_eq!(text.parse::<Cpe>(), Ok(name), "{}", text);
        }
    }
}
