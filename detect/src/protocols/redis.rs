//! Redis: `INFO` in RESP. An open server answers with its version (and so
//! shows that anyone may read and write it); a protected one says `NOAUTH`
//! or `DENIED`.

use vantage_shared::{Access, ServiceFacts};

use super::{Verdict, version_prefix};
use crate::cpe;

pub const PROBE: &[u8] = b"*1\r\n$4\r\nINFO\r\n";

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let redis = || ServiceFacts::named("redis").product("Redis key-value store");
    if bytes.starts_with(b"-NOAUTH") || bytes.starts_with(b"-WRONGPASS") {
        return Verdict::Match(redis().access(Access::AuthRequired));
    }
    if bytes.starts_with(b"-DENIED Redis") {
        return Verdict::Match(redis().access(Access::AuthRequired).info("protected mode"));
    }
    if !bytes.starts_with(b"$") {
        return Verdict::No;
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]);
    let field =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.strip_prefix(':')).map(str::trim);
    let Some(version) = field("redis_version").and_then(version_prefix) else {
        // Valkey and KeyDB answer INFO the same way under other names.
        return match field("valkey_version").and_then(version_prefix) {
            Some(v) => Verdict::Match(ServiceFacts::named("redis").product("Valkey").version(v).access(Access::Open)),
            None => Verdict::No,
        };
    };
    let mut facts = redis().version(&version).access(Access::Open);
    let mode = field("redis_mode").unwrap_or("");
    let os = field("os").unwrap_or("");
    facts = facts.info([mode, os].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("; "));
    facts.cpe = vec![cpe::application("redis", "redis", &version)];
    Verdict::Match(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_protected() {
        let Verdict::Match(f) = parse(
            None,
            b"$3000\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n",
        ) else {
            panic!()
        };
        assert_eq!((f.version.as_deref(), f.access), (Some("7.0.15"), Access::Open));
        assert_eq!(f.info.as_deref(), Some("standalone; Linux 6.1.0 x86_64"));
        let Verdict::Match(f) = parse(None, b"-NOAUTH Authentication required.\r\n") else { panic!() };
        assert_eq!(f.access, Access::AuthRequired);
        assert!(parse(None, b"$5\r\nhello\r\n").is_no());
        assert!(parse(None, b"-ERR unknown command\r\n").is_no());
    }
}
