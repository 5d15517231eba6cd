//! MySQL and MariaDB: the server's first packet is its handshake (protocol
//! 10, version string) or an error (host not allowed, too many connections).

use vantage_shared::{Access, ServiceFacts};

use super::{Verdict, version_prefix};
use crate::cpe;

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    // Packet header: 3-byte little-endian length, sequence id 0.
    let [l0, l1, l2, 0, body @ ..] = bytes else { return Verdict::No };
    let len = usize::from(*l0) | usize::from(*l1) << 8 | usize::from(*l2) << 16;
    if !(2..=1 << 16).contains(&len) {
        return Verdict::No;
    }
    let body = &body[..body.len().min(len)];
    match body {
        [0x0a, rest @ ..] => handshake(rest),
        [0xff, lo, hi, msg @ ..] => {
            let code = u16::from_le_bytes([*lo, *hi]);
            // 1040 too many connections, 1129 host blocked, 1130 host not allowed.
            if !(1000..2100).contains(&code) {
                return Verdict::No;
            }
            let text = String::from_utf8_lossy(&msg[..msg.len().min(200)]).to_string();
            let product = if text.contains("MariaDB") { "MariaDB" } else { "MySQL" };
            let info = match code {
                1130 => "host not allowed".to_string(),
                1129 => "host blocked".to_string(),
                1040 => "too many connections".to_string(),
                _ => format!("error {code}"),
            };
            Verdict::Match(ServiceFacts::named("mysql").product(product).info(info).access(Access::AuthRequired))
        }
        _ => Verdict::No,
    }
}

fn handshake(rest: &[u8]) -> Verdict {
    let Some(end) = rest.iter().take(80).position(|&b| b == 0) else { return Verdict::No };
    let Ok(raw) = std::str::from_utf8(&rest[..end]) else { return Verdict::No };
    if !raw.starts_with(|c: char| c.is_ascii_digit()) {
        return Verdict::No;
    }
    // MariaDB prefixes "5.5.5-" for old replication clients: "5.5.5-10.11.6-MariaDB-0+deb12u1".
    let full = raw.strip_prefix("5.5.5-").unwrap_or(raw);
    let mut facts = ServiceFacts::named("mysql").access(Access::AuthRequired);
    if let Some(i) = full.find("-MariaDB") {
        let version = version_prefix(&full[..i]).unwrap_or_default();
        let tail = full[i + "-MariaDB".len()..].trim_start_matches('-');
        facts = facts.product("MariaDB").version(&version).info(tail);
        facts.cpe = vec![cpe::application("mariadb", "mariadb", &version)];
    } else {
        let version = full.split('-').next().unwrap_or("").to_string();
        let tail = full.get(version.len()..).unwrap_or("").trim_start_matches('-');
        facts = facts.product("MySQL").version(&version).info(tail);
        facts.cpe = vec![cpe::application("oracle", "mysql", &version)];
    }
    Verdict::Match(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting(version: &str) -> Vec<u8> {
        let mut body = vec![0x0a];
        body.extend_from_slice(version.as_bytes());
        body.push(0);
        body.extend_from_slice(&[1, 0, 0, 0, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 0]);
        let mut p = vec![body.len() as u8, 0, 0, 0];
        p.extend(body);
        p
    }

    #[test]
    fn mariadb_on_debian() {
        let Verdict::Match(f) = parse(None, &greeting("5.5.5-10.11.6-MariaDB-0+deb12u1")) else { panic!() };
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("MariaDB"), Some("10.11.6")));
        assert_eq!(f.info.as_deref(), Some("0+deb12u1"));
        assert_eq!(f.cpe, vec!["cpe:2.3:a:mariadb:mariadb:10.11.6:*:*:*:*:*:*:*"]);
    }

    #[test]
    fn mysql_and_errors() {
        let Verdict::Match(f) = parse(None, &greeting("8.0.36-0ubuntu0.22.04.1")) else { panic!() };
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("MySQL"), Some("8.0.36")));
        let mut err = vec![0x40, 0, 0, 0, 0xff, 0x6a, 0x04];
        err.extend_from_slice(b"Host '198.18.0.1' is not allowed to connect to this MariaDB server");
        let Verdict::Match(f) = parse(None, &err) else { panic!() };
        assert_eq!((f.product.as_deref(), f.info.as_deref()), (Some("MariaDB"), Some("host not allowed")));
        assert!(parse(None, b"SSH-2.0-x").is_no());
    }
}
