//! CPE 2.2 URIs (what nmap writes) to CPE 2.3 formatted strings.
//!
//! The conversion follows NISTIR 7695: unbind the URI (lower-case it,
//! decode `%xx`, unpack a `~`-packed edition, empty components mean ANY)
//! and bind the result as a formatted string: ANY is `*`, NA (a lone `-`)
//! stays `-`, letters, digits, `_`, `.` and `-` stand as themselves, any
//! other printable character is escaped with a backslash, and the
//! wildcards `%01` and `%02` become `?` and `*`.

/// Converts a CPE 2.2 URI such as `cpe:/a:openbsd:openssh:9.2p1` to the
/// CPE 2.3 formatted string `cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*`.
///
/// A trailing `/` or `/a`, as nmap-service-probes writes its `cpe:` fields,
/// is ignored. Returns `None` for anything that is not a well-formed URI:
/// another prefix, a part other than `a`, `h` or `o`, more than seven
/// components, a bad `%` escape, or a character outside printable ASCII.
pub fn cpe22_to_23(uri: &str) -> Option<String> {
    let prefix = uri.get(..5)?;
    if !prefix.eq_ignore_ascii_case("cpe:/") {
        return None;
    }
    let mut body = &uri[5..];
    // The file form: `cpe:/a:vendor:product/` or `.../a`.
    if let Some(stripped) = body.strip_suffix("/a").or_else(|| body.strip_suffix('/')) {
        body = stripped;
    }
    let comps: Vec<&str> = body.split(':').collect();
    if comps.len() > 7 {
        return None;
    }
    let get = |i: usize| comps.get(i).copied().unwrap_or("");
    let part = match get(0) {
        "" => "*".to_string(),
        p if p.len() == 1 && matches!(p.as_bytes()[0].to_ascii_lowercase(), b'a' | b'h' | b'o') => {
            p.to_ascii_lowercase()
        }
        _ => return None,
    };
    // URI components: part, vendor, product, version, update, edition, language.
    let edition = get(5);
    let (edition, sw_edition, target_sw, target_hw, other) = if let Some(packed) = edition.strip_prefix('~') {
        let parts: Vec<&str> = packed.split('~').collect();
        let [e, sw, tsw, thw, o] = parts.as_slice() else { return None };
        (*e, *sw, *tsw, *thw, *o)
    } else {
        (edition, "", "", "", "")
    };
    // The formatted string's order after the part.
    let ordered = [get(1), get(2), get(3), get(4), edition, get(6), sw_edition, target_sw, target_hw, other];
    let mut out = format!("cpe:2.3:{part}");
    for comp in ordered {
        out.push(':');
        out.push_str(&component(comp)?);
    }
    Some(out)
}

/// One component, unbound from the URI and bound as a formatted string.
fn component(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("*".into());
    }
    if s == "-" {
        return Some("-".into());
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 4);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))?;
            let decoded = u8::from_str_radix(hex, 16).ok()?;
            i += 3;
            match decoded {
                0x01 => out.push('?'),
                0x02 => out.push('*'),
                d => push_char(&mut out, d)?,
            }
        } else {
            push_char(&mut out, b)?;
            i += 1;
        }
    }
    Some(out)
}

fn push_char(out: &mut String, b: u8) -> Option<()> {
    let b = b.to_ascii_lowercase();
    if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
        out.push(char::from(b));
    } else if (0x21..=0x7e).contains(&b) {
        out.push('\\');
        out.push(char::from(b));
    } else {
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::cpe22_to_23;

    #[test]
    fn common_cases() {
        let c = |s| cpe22_to_23(s);
        assert_eq!(c("cpe:/a:openbsd:openssh:9.2p1").unwrap(), "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:openbsd:openssh:9.2p1/").unwrap(), "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:openbsd:openssh:9.2p1/a").unwrap(), "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/o:linux:linux_kernel").unwrap(), "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*");
        assert_eq!(c("CPE:/H:Cisco:IOS").unwrap(), "cpe:2.3:h:cisco:ios:*:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:igor_sysoev:nginx:1.22.1").unwrap(), "cpe:2.3:a:igor_sysoev:nginx:1.22.1:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/o:ibm:z%2fos").unwrap(), "cpe:2.3:o:ibm:z\\/os:*:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:nodejs:node.js").unwrap(), "cpe:2.3:a:nodejs:node.js:*:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:x:y:1.0:-").unwrap(), "cpe:2.3:a:x:y:1.0:-:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:x:y:1.0%2b:sp1::en-us").unwrap(), "cpe:2.3:a:x:y:1.0\\+:sp1:*:en-us:*:*:*:*");
        assert_eq!(c("cpe:/a:x:y:1.%02").unwrap(), "cpe:2.3:a:x:y:1.*:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:x:y::::").unwrap(), "cpe:2.3:a:x:y:*:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/").unwrap(), "cpe:2.3:*:*:*:*:*:*:*:*:*:*:*");
        assert_eq!(c("cpe:/a:x:y:1:u:~ed~sw~tsw~thw~oth:fr").unwrap(), "cpe:2.3:a:x:y:1:u:ed:fr:sw:tsw:thw:oth");
        assert_eq!(c("cpe:/a:x:y:1:u:~~~linux~~").unwrap(), "cpe:2.3:a:x:y:1:u:*:*:*:linux:*:*");
        assert_eq!(c("cpe:/a:x:y:v!1").unwrap(), "cpe:2.3:a:x:y:v\\!1:*:*:*:*:*:*:*");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "cpe",
            "cpe:2.3:a:x:y",
            "cpe:/q:x:y",
            "cpe:/a:x:y:1:2:3:4:5",
            "cpe:/a:x:y%zz",
            "cpe:/a:x:y%2",
            "cpe:/a:x y",
            "cpe:/a:x:\u{e9}",
            "cpe:/a:x:y:1:u:~a~b",
            "cpe:/a:x:%00",
            "cpe:/é",
        ] {
            assert_eq!(cpe22_to_23(bad), None, "{bad:?}");
        }
    }
}
