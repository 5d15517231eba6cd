//! CPE 2.2 URIs (what nmap writes) to CPE 2.3 formatted strings, and back
//! for nmap XML output ([`cpe23_to_22`]).
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

/// Converts a CPE 2.3 formatted string to the CPE 2.2 URI nmap writes:
/// `cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*` to
/// `cpe:/a:openbsd:openssh:9.2p1`. The inverse of [`cpe22_to_23`] (NISTIR
/// 7695, binding to a URI): ANY is empty and trailing empties are dropped,
/// escaped characters are percent-encoded, the wildcards `?` and `*` inside
/// a component become `%01` and `%02`, and the four extended attributes are
/// packed into the edition with `~` when any is set. `None` when it is not
/// a formatted string of eleven components.
pub fn cpe23_to_22(fs: &str) -> Option<String> {
    let body = fs.get(..8).filter(|p| p.eq_ignore_ascii_case("cpe:2.3:")).map(|_| &fs[8..])?;
    let mut comps: Vec<String> = Vec::with_capacity(11);
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let e = chars.next()?;
                if !e.is_ascii_graphic() {
                    return None;
                }
                cur.push_str(&format!("%{:02x}", e as u8));
            }
            ':' => comps.push(std::mem::take(&mut cur)),
            c if c.is_ascii_graphic() => cur.push(c.to_ascii_lowercase()),
            _ => return None,
        }
    }
    comps.push(cur);
    let [part, vendor, product, version, update, edition, language, sw, tsw, thw, other] =
        <[String; 11]>::try_from(comps).ok()?;
    let uri = |c: &str| -> String {
        match c {
            "*" => String::new(),
            c => c.replace('?', "%01").replace('*', "%02"),
        }
    };
    let extended = [&sw, &tsw, &thw, &other];
    let edition = if extended.iter().all(|c| c.as_str() == "*") {
        uri(&edition)
    } else {
        let mut packed = format!("~{}", uri(&edition));
        for c in extended {
            packed.push('~');
            packed.push_str(&uri(c));
        }
        packed
    };
    let mut out: Vec<String> = [&part, &vendor, &product, &version, &update].iter().map(|c| uri(c)).collect();
    out.push(edition);
    out.push(uri(&language));
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    Some(format!("cpe:/{}", out.join(":")))
}

#[cfg(test)]
mod tests {
    use super::{cpe22_to_23, cpe23_to_22};

    #[test]
    fn formatted_strings_bind_back_to_uris() {
        let c = |s| cpe23_to_22(s).unwrap();
        assert_eq!(c("cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*"), "cpe:/a:openbsd:openssh:9.2p1");
        assert_eq!(c("cpe:2.3:o:ibm:z\\/os:*:*:*:*:*:*:*:*"), "cpe:/o:ibm:z%2fos");
        assert_eq!(c("cpe:2.3:a:x:y:1.0:-:*:*:*:*:*:*"), "cpe:/a:x:y:1.0:-");
        assert_eq!(c("cpe:2.3:a:x:y:1:u:*:*:*:linux:*:*"), "cpe:/a:x:y:1:u:~~~linux~~");
        assert_eq!(c("cpe:2.3:a:x:y:1.*:*:*:*:*:*:*:*"), "cpe:/a:x:y:1.%02");
        assert_eq!(c("CPE:2.3:A:Cisco:IOS:*:*:*:*:*:*:*:*"), "cpe:/a:cisco:ios");
        for bad in
            ["", "cpe:/a:x:y", "cpe:2.3:a:x:y", "cpe:2.3:a:x:y:1:*:*:*:*:*:*:*:*", "cpe:2.3:a:x:y é:*:*:*:*:*:*:*:*"]
        {
            assert_eq!(cpe23_to_22(bad), None, "{bad:?}");
        }
        // Both ways: every URI of the test above comes back as it went.
        for uri in [
            "cpe:/a:openbsd:openssh:9.2p1",
            "cpe:/o:ibm:z%2fos",
            "cpe:/a:x:y:1.0%2b:sp1::en-us",
            "cpe:/a:x:y:1:u:~ed~sw~tsw~thw~oth:fr",
            "cpe:/a:x:y:1.%02",
            "cpe:/a:x:y:v%211",
        ] {
            assert_eq!(cpe23_to_22(&cpe22_to_23(uri).unwrap()).as_deref(), Some(uri));
        }
    }

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
