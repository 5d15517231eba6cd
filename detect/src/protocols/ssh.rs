//! SSH: the identification string every server sends first (RFC 4253 4.2),
//! `SSH-protoversion-softwareversion SP comments`.

use vantage_shared::ServiceFacts;

use super::{Verdict, first_line, split_version};
use crate::cpe;

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    if !bytes.starts_with(b"SSH-") {
        return Verdict::No;
    }
    let line = first_line(bytes);
    let mut parts = line.splitn(3, '-');
    let (_, proto, rest) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (software, comments) = rest.split_once(' ').unwrap_or((rest, ""));
    let (name, version) = split_version(software, &['_', '-']);
    let mut facts = ServiceFacts::named("ssh");
    let (product, vendor) = match name.as_str() {
        "OpenSSH" => ("OpenSSH", Some(("openbsd", "openssh"))),
        "dropbear" => ("Dropbear sshd", Some(("matt_johnston", "dropbear_ssh_server"))),
        "libssh" => ("libssh", Some(("libssh", "libssh"))),
        "Cisco" => ("Cisco SSH", None),
        "RomSShell" => ("Allegro RomSShell", None),
        "" => ("", None),
        other => (other, None),
    };
    facts = facts.product(product);
    if let Some(v) = &version {
        facts = facts.version(v.clone());
    }
    let mut info = Vec::new();
    // Distribution patch levels ("Debian-2+deb12u3", "Ubuntu-3ubuntu0.4").
    if let Some((distro, level)) = comments.split_once('-')
        && matches!(distro, "Debian" | "Ubuntu" | "Raspbian" | "FreeBSD")
    {
        info.push(format!("{distro} {level}"));
    } else if !comments.is_empty() {
        info.push(comments.to_string());
    }
    if !proto.is_empty() {
        info.push(format!("protocol {proto}"));
    }
    facts = facts.info(info.join("; "));
    if let (Some((vendor, product)), Some(v)) = (vendor, &facts.version) {
        facts.cpe = vec![cpe::application(vendor, product, v)];
    }
    Verdict::Match(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::matched;

    fn facts(bytes: &[u8]) -> ServiceFacts {
        matched(parse(None, bytes))
    }

    #[test]
    fn openssh_on_debian() {
        let f = facts(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        assert_eq!(f.product.as_deref(), Some("OpenSSH"));
        assert_eq!(f.version.as_deref(), Some("9.2p1"));
        assert_eq!(f.info.as_deref(), Some("Debian 2+deb12u3; protocol 2.0"));
        assert_eq!(f.cpe, vec!["cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*"]);
    }

    #[test]
    fn dropbear_and_bare() {
        let f = facts(b"SSH-2.0-dropbear_2022.83\r\n");
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("Dropbear sshd"), Some("2022.83")));
        let f = facts(b"SSH-1.99-\r\n");
        assert_eq!(f.product, None);
        assert_eq!(f.service, "ssh");
        assert!(parse(None, b"HTTP/1.1 200 OK\r\n").is_no());
    }
}
