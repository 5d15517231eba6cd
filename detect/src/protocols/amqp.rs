//! AMQP 0-9-1 (RabbitMQ and friends): after the protocol header the server
//! sends `Connection.Start`, whose server-properties table names the product
//! and version. A server that speaks another AMQP version answers with its
//! own protocol header instead.

use vantage_shared::ServiceFacts;

use super::{Verdict, version_prefix};
use crate::cpe;

pub const PROBE: &[u8] = b"AMQP\x00\x00\x09\x01";

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    if let [b'A', b'M', b'Q', b'P', _, major, minor, rev, ..] = bytes {
        return Verdict::Match(ServiceFacts::named("amqp").info(format!("protocol {major}-{minor}-{rev}")));
    }
    // Method frame on channel 0: type 1, channel 0, size, class 10 method 10.
    let [1, 0, 0, s0, s1, s2, s3, 0, 10, 0, 10, major, minor, rest @ ..] = bytes else { return Verdict::No };
    let size = u32::from_be_bytes([*s0, *s1, *s2, *s3]) as usize;
    if size > 1 << 20 {
        return Verdict::No;
    }
    let props = table(rest);
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut facts = ServiceFacts::named("amqp").info(format!("AMQP {major}-{minor}"));
    if let Some(product) = get("product") {
        facts = facts.product(product);
    }
    if let Some(v) = get("version").and_then(|v| version_prefix(&v)) {
        if facts.product.as_deref() == Some("RabbitMQ") {
            facts.cpe = vec![cpe::application("vmware", "rabbitmq", &v)];
        }
        facts = facts.version(v);
    }
    Verdict::Match(facts)
}

/// The long-string entries of a field table (other types end the walk: we
/// only need `product` and `version`, which come first in practice).
fn table(bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(len) = bytes.get(..4).map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()) as usize) else {
        return out;
    };
    let mut t = &bytes[4..bytes.len().min(4 + len)];
    while let [name_len, rest @ ..] = t {
        let n = usize::from(*name_len);
        let (Some(name), Some(&kind)) = (rest.get(..n), rest.get(n)) else { break };
        if kind != b'S' {
            break;
        }
        let Some(vlen) = rest.get(n + 1..n + 5).map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()) as usize)
        else {
            break;
        };
        let Some(value) = rest.get(n + 5..(n + 5).saturating_add(vlen)) else { break };
        out.push((
            String::from_utf8_lossy(name).into(),
            String::from_utf8_lossy(&value[..value.len().min(128)]).into(),
        ));
        t = &rest[n + 5 + vlen..];
        if out.len() >= 32 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_start() {
        let mut props = Vec::new();
        for (k, v) in [("product", "RabbitMQ"), ("version", "3.10.8")] {
            props.push(k.len() as u8);
            props.extend_from_slice(k.as_bytes());
            props.push(b'S');
            props.extend_from_slice(&(v.len() as u32).to_be_bytes());
            props.extend_from_slice(v.as_bytes());
        }
        let mut frame = vec![1, 0, 0, 0, 0, 0, 0, 0, 10, 0, 10, 0, 9];
        frame.extend_from_slice(&(props.len() as u32).to_be_bytes());
        frame.extend(props);
        let Verdict::Match(f) = parse(None, &frame) else { panic!() };
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("RabbitMQ"), Some("3.10.8")));
        assert!(matches!(parse(None, b"AMQP\x00\x01\x00\x00"), Verdict::Match(_)));
        assert!(parse(None, &[1, 0, 0]).is_no());
    }
}
