//! Line-based text protocols recognised by their greeting or a one-line
//! answer: FTP, SMTP, POP3, IMAP, VNC, Telnet, rsync, memcached.
//!
//! FTP and SMTP both greet with `220 `; the text usually tells which. When
//! it does not, an `EHLO` settles it: SMTP answers `250`, FTP an error.

use vantage_shared::{Access, ServiceFacts};

use super::{Verdict, first_line, version_prefix};
use crate::cpe;

pub fn parse(probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let line = first_line(bytes);
    if line.starts_with("220") {
        return greeting_220(bytes, &line);
    }
    if let Some(rest) = line.strip_prefix("+OK") {
        return Verdict::Match(pop3(rest));
    }
    if let Some(rest) = line.strip_prefix("* OK") {
        return Verdict::Match(imap(rest));
    }
    if let Some(v) = line.strip_prefix("RFB ") {
        return vnc(v);
    }
    if let Some(v) = line.strip_prefix("VERSION ") {
        // memcached's answer to `version`.
        let version = version_prefix(v).unwrap_or_default();
        let mut facts = ServiceFacts::named("memcached").product("Memcached").version(&version).access(Access::Open);
        if !version.is_empty() {
            facts.cpe = vec![cpe::application("memcached", "memcached", &version)];
        }
        return Verdict::Match(facts);
    }
    if probe == Some("memcached")
        && (line == "ERROR" || line.starts_with("SERVER_ERROR") || line.starts_with("CLIENT_ERROR"))
    {
        return Verdict::Match(ServiceFacts::named("memcached").product("Memcached"));
    }
    if let Some(v) = line.strip_prefix("@RSYNCD: ") {
        return Verdict::Match(ServiceFacts::named("rsync").info(format!("protocol version {}", v.trim())));
    }
    if telnet(bytes) {
        return Verdict::Match(ServiceFacts::named("telnet"));
    }
    Verdict::No
}

/// Telnet servers open with option negotiation: IAC followed by WILL, WONT, DO or DONT.
fn telnet(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == 0xff && (0xfb..=0xfe).contains(&bytes[1])
}

fn vnc(v: &str) -> Verdict {
    // "RFB 003.008": protocol 3.8.
    let Some((major, minor)) = v.trim().split_once('.') else { return Verdict::No };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else { return Verdict::No };
    Verdict::Match(ServiceFacts::named("vnc").info(format!("protocol {major}.{minor}")))
}

fn greeting_220(bytes: &[u8], line: &str) -> Verdict {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_string();
    let lower = text.to_ascii_lowercase();
    if let Some(f) = ftp_product(line) {
        return Verdict::Match(f);
    }
    if let Some(f) = smtp_product(line) {
        return Verdict::Match(f);
    }
    if lower.contains("smtp") || lower.contains("mail") {
        return Verdict::Match(ServiceFacts::named("smtp"));
    }
    if lower.contains("ftp") {
        return Verdict::Match(ServiceFacts::named("ftp"));
    }
    // A bare 220: ask in SMTP; an FTP server refuses the command.
    Verdict::FollowUp { facts: ServiceFacts::named("ftp"), send: b"EHLO vantage.invalid\r\n".to_vec(), refine }
}

fn refine(facts: ServiceFacts, answer: &[u8]) -> ServiceFacts {
    if answer.starts_with(b"250") { ServiceFacts::named("smtp") } else { facts }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

fn ftp_product(line: &str) -> Option<ServiceFacts> {
    let named = |product: &str, version: Option<String>, cpe: Option<(&str, &str)>| {
        let mut f = ServiceFacts::named("ftp").product(product);
        if let Some(v) = version {
            if let Some((vendor, p)) = cpe {
                f.cpe = vec![cpe::application(vendor, p, &v)];
            }
            f = f.version(v);
        }
        f
    };
    if let Some(rest) = after(line, "vsFTPd ") {
        return Some(named("vsftpd", version_prefix(rest), Some(("beasts", "vsftpd"))));
    }
    if let Some(rest) = after(line, "ProFTPD ") {
        return Some(named("ProFTPD", version_prefix(rest), Some(("proftpd", "proftpd"))));
    }
    if line.contains("Pure-FTPd") {
        return Some(named("Pure-FTPd", None, None));
    }
    if line.contains("Microsoft FTP Service") {
        return Some(named("Microsoft ftpd", None, None));
    }
    if let Some(rest) = after(line, "FileZilla Server ") {
        return Some(named("FileZilla ftpd", version_prefix(rest), Some(("filezilla-project", "filezilla_server"))));
    }
    None
}

fn smtp_product(line: &str) -> Option<ServiceFacts> {
    let mut f = ServiceFacts::named("smtp");
    if let Some(rest) = after(line, " Exim ") {
        let v = version_prefix(rest);
        f = f.product("Exim smtpd");
        if let Some(v) = v {
            f.cpe = vec![cpe::application("exim", "exim", &v)];
            f = f.version(v);
        }
        return Some(f);
    }
    if line.contains("Postfix") {
        return Some(f.product("Postfix smtpd"));
    }
    if let Some(rest) = after(line, "Sendmail ") {
        let v = version_prefix(rest).map(|v| v.split('/').next().unwrap_or("").to_string());
        return Some(f.product("Sendmail").version(v.unwrap_or_default()));
    }
    if line.contains("Microsoft ESMTP MAIL Service") {
        return Some(f.product("Microsoft ESMTP"));
    }
    if line.contains("OpenSMTPD") {
        return Some(f.product("OpenSMTPD"));
    }
    None
}

fn pop3(rest: &str) -> ServiceFacts {
    let f = ServiceFacts::named("pop3");
    if rest.contains("Dovecot") { f.product("Dovecot pop3d") } else { f }
}

fn imap(rest: &str) -> ServiceFacts {
    let f = ServiceFacts::named("imap");
    if rest.contains("Dovecot") {
        f.product("Dovecot imapd")
    } else if rest.contains("Courier-IMAP") {
        f.product("Courier Imapd")
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::matched;

    fn facts(probe: Option<&str>, bytes: &[u8]) -> ServiceFacts {
        matched(parse(probe, bytes))
    }

    #[test]
    fn ftp_and_smtp_greetings() {
        let f = facts(None, b"220 (vsFTPd 3.0.3)\r\n");
        assert_eq!(
            (f.service.as_str(), f.product.as_deref(), f.version.as_deref()),
            ("ftp", Some("vsftpd"), Some("3.0.3"))
        );
        let f = facts(None, b"220 lab.invalid ESMTP Exim 4.96 Sun, 29 Nov 2026 10:00:00 +0000\r\n");
        assert_eq!(
            (f.service.as_str(), f.product.as_deref(), f.version.as_deref()),
            ("smtp", Some("Exim smtpd"), Some("4.96"))
        );
        assert_eq!(f.cpe, vec!["cpe:2.3:a:exim:exim:4.96:*:*:*:*:*:*:*"]);
        let f = facts(None, b"220 mx.invalid ESMTP Postfix (Debian/GNU)\r\n");
        assert_eq!(f.product.as_deref(), Some("Postfix smtpd"));
    }

    #[test]
    fn a_bare_220_asks_in_smtp() {
        let Verdict::FollowUp { facts, refine, .. } = parse(None, b"220 welcome\r\n") else { panic!() };
        assert_eq!(refine(facts.clone(), b"250-hello\r\n").service, "smtp");
        assert_eq!(refine(facts, b"500 unknown command\r\n").service, "ftp");
    }

    #[test]
    fn others() {
        assert_eq!(facts(None, b"RFB 003.008\n").info.as_deref(), Some("protocol 3.8"));
        assert_eq!(facts(None, b"+OK Dovecot ready.\r\n").product.as_deref(), Some("Dovecot pop3d"));
        assert_eq!(facts(None, b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n").service, "imap");
        let f = facts(Some("memcached"), b"VERSION 1.6.18\r\n");
        assert_eq!((f.version.as_deref(), f.access), (Some("1.6.18"), Access::Open));
        assert_eq!(facts(None, &[0xff, 0xfd, 0x18]).service, "telnet");
        assert_eq!(
            facts(None, b"@RSYNCD: 31.0 sha512 sha256\n").info.as_deref(),
            Some("protocol version 31.0 sha512 sha256")
        );
        assert!(parse(None, b"ERROR\r\n").is_no());
        assert!(parse(None, b"RFB garbage\n").is_no());
    }
}
