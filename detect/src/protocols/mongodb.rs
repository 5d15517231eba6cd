//! MongoDB: `buildinfo` in an OP_MSG (MongoDB 3.6 and later), which any
//! client may run before authenticating; the answer names the version.

use vantage_shared::ServiceFacts;

use super::{Verdict, version_prefix};
use crate::cpe;

const OP_MSG: i32 = 2013;
const OP_REPLY: i32 = 1;

/// `{buildinfo: 1, $db: "admin"}` as an OP_MSG.
pub fn probe() -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(b"buildinfo\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = (doc.len() + 4) as i32;
    let mut body = 0u32.to_le_bytes().to_vec(); // flag bits
    body.push(0); // section kind 0: one document
    body.extend_from_slice(&doc_len.to_le_bytes());
    body.extend(doc);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&0x5641_4e54i32.to_le_bytes()); // request id "VANT"
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&OP_MSG.to_le_bytes());
    msg.extend(body);
    msg
}

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let Some(header) = bytes.get(..16) else { return Verdict::No };
    let word = |i: usize| i32::from_le_bytes(header[i..i + 4].try_into().unwrap_or_default());
    let (len, opcode) = (word(0), word(12));
    if !(16..=48 * 1024 * 1024).contains(&len) || !(opcode == OP_MSG || opcode == OP_REPLY) {
        return Verdict::No;
    }
    let mut facts = ServiceFacts::named("mongodb").product("MongoDB");
    if let Some(v) = bson_string(&bytes[16..], "version").and_then(|v| version_prefix(&v)) {
        facts.cpe = vec![cpe::application("mongodb", "mongodb", &v)];
        facts = facts.version(v);
    } else if !contains(bytes, b"errmsg") && !contains(bytes, b"ok\0") {
        return Verdict::No;
    }
    Verdict::Match(facts)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A top-level string element's value, found by its key (type 0x02).
fn bson_string(bytes: &[u8], key: &str) -> Option<String> {
    let mut needle = vec![0x02];
    needle.extend_from_slice(key.as_bytes());
    needle.push(0);
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice())? + needle.len();
    let len = i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    let len = usize::try_from(len).ok().filter(|&l| (1..=128).contains(&l))?;
    let value = bytes.get(at + 4..at + 4 + len - 1)?;
    String::from_utf8(value.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildinfo_answer() {
        let mut reply = vec![0; 16];
        reply[12..16].copy_from_slice(&OP_MSG.to_le_bytes());
        reply.extend_from_slice(&[0, 0, 0, 0, 0, 40, 0, 0, 0, 0x02]);
        reply.extend_from_slice(b"version\0");
        reply.extend_from_slice(&6i32.to_le_bytes());
        reply.extend_from_slice(b"7.0.2\0");
        let len = reply.len() as i32;
        reply[..4].copy_from_slice(&len.to_le_bytes());
        let Verdict::Match(f) = parse(None, &reply) else { panic!() };
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("MongoDB"), Some("7.0.2")));
        assert_eq!(probe().len(), 16 + 4 + 1 + 35);
        assert!(parse(None, &[0u8; 40]).is_no());
    }
}
