//! CPE 2.3 formatted strings (NIST IR 7695), the names vulnerability feeds
//! use for products: `cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*`.

/// An application's CPE with a known vendor and product.
pub fn application(vendor: &str, product: &str, version: &str) -> String {
    format(Part::Application, vendor, product, version)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Application,
    OperatingSystem,
    Hardware,
}

impl Part {
    pub fn letter(self) -> char {
        match self {
            Part::Application => 'a',
            Part::OperatingSystem => 'o',
            Part::Hardware => 'h',
        }
    }
}

/// A CPE 2.3 formatted string; empty components become `*` (ANY).
pub fn format(part: Part, vendor: &str, product: &str, version: &str) -> String {
    format!(
        "cpe:2.3:{}:{}:{}:{}:*:*:*:*:*:*:*",
        part.letter(),
        component(vendor),
        component(product),
        component(version)
    )
}

/// One component, escaped: lower case, spaces as `_`, and every character
/// other than letters, digits and `_` backslash-quoted (so `.` and `-` too,
/// except that the spec lets `.`, `-` and `_` stand unquoted inside a
/// word; we keep them bare, as NVD's dictionary does).
pub fn component(value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return "*".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' | '_' | '.' | '-' => out.push(c),
            ' ' => out.push('_'),
            c if c.is_ascii_graphic() => {
                out.push('\\');
                out.push(c);
            }
            // Non-ASCII and control characters have no place in a CPE.
            _ => {}
        }
    }
    if out.is_empty() { "*".to_string() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_components() {
        assert_eq!(application("nginx", "nginx", "1.22.1"), "cpe:2.3:a:nginx:nginx:1.22.1:*:*:*:*:*:*:*");
        assert_eq!(component("2.4.62 (Debian)"), "2.4.62_\\(debian\\)");
        assert_eq!(component("a:b*c"), "a\\:b\\*c");
        assert_eq!(component(""), "*");
        assert_eq!(component("\u{1b}"), "*");
    }
}
