//! LDAP: an anonymous search of the root DSE. Any LDAP server answers it
//! (with entries, or with an error result); the entry's `vendorName` and
//! `vendorVersion`, where the server publishes them, name the product.
//! Messages are BER, read with `asn1-rs`.

use asn1_rs::{Any, Class, FromBer};
use vantage_shared::{Access, ServiceFacts};

use super::Verdict;

/// SearchRequest: base "", scope base, filter (objectClass=*), attributes `*` and `+`.
pub const PROBE: &[u8] = &[
    0x30, 0x2b, 0x02, 0x01, 0x01, 0x63, 0x26, 0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02,
    0x01, 0x00, 0x01, 0x01, 0x00, 0x87, 0x0b, b'o', b'b', b'j', b'e', b'c', b't', b'c', b'l', b'a', b's', b's', 0x30,
    0x06, 0x04, 0x01, b'*', 0x04, 0x01, b'+',
];

/// The elements of a constructed value, at most `max`.
pub(crate) fn children<'a>(mut data: &'a [u8], max: usize) -> Vec<Any<'a>> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < max {
        match Any::from_ber(data) {
            Ok((rest, any)) => {
                out.push(any);
                data = rest;
            }
            Err(_) => break,
        }
    }
    out
}

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let Ok((_, message)) = Any::from_ber(bytes) else { return Verdict::No };
    if message.tag().0 != 16 {
        return Verdict::No;
    }
    let parts = children(message.data, 3);
    let [id, op, ..] = parts.as_slice() else { return Verdict::No };
    if id.tag().0 != 2 || op.class() != Class::Application {
        return Verdict::No;
    }
    let mut facts = ServiceFacts::named("ldap");
    match op.tag().0 {
        // SearchResultEntry: objectName, attributes.
        4 => {
            facts = facts.access(Access::Open);
            let fields = children(op.data, 2);
            let mut vendor = (None, None);
            if let Some(attrs) = fields.get(1) {
                for attr in children(attrs.data, 64) {
                    let kv = children(attr.data, 2);
                    let (Some(name), Some(values)) = (kv.first(), kv.get(1)) else { continue };
                    let values: Vec<String> = children(values.data, 16)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.data).chars().take(128).collect())
                        .collect();
                    match String::from_utf8_lossy(name.data).to_ascii_lowercase().as_str() {
                        "vendorname" => vendor.0 = values.into_iter().next(),
                        "vendorversion" => vendor.1 = values.into_iter().next(),
                        "objectclass" if values.iter().any(|v| v == "OpenLDAProotDSE") => {
                            vendor.0 = vendor.0.or(Some("OpenLDAP".to_string()))
                        }
                        _ => {}
                    }
                }
            }
            if let Some(v) = vendor.0 {
                facts = facts.product(v);
            }
            if let Some(v) = vendor.1 {
                facts = facts.version(v);
            }
        }
        // SearchResultDone without an entry, BindResponse, ExtendedResponse.
        5 | 1 | 24 => facts = facts.access(Access::AuthRequired),
        _ => return Verdict::No,
    }
    Verdict::Match(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_is_well_formed() {
        let (rest, msg) = Any::from_ber(PROBE).unwrap();
        assert!(rest.is_empty());
        assert_eq!(children(msg.data, 4).len(), 2);
    }

    #[test]
    fn root_dse_entry() {
        // messageID 1, SearchResultEntry "" { objectClass: OpenLDAProotDSE }
        let entry = [
            0x30, 0x25, 0x02, 0x01, 0x01, 0x64, 0x20, 0x04, 0x00, 0x30, 0x1c, 0x30, 0x1a, 0x04, 0x0b, b'o', b'b', b'j',
            b'e', b'c', b't', b'C', b'l', b'a', b's', b's', 0x31, 0x0b, 0x04, 0x09, b'O', b'p', b'e', b'n', b'L', b'D',
            b'A', b'P', b'x',
        ];
        // (value shortened to "OpenLDAPx": not the root DSE class, so no product)
        let Verdict::Match(f) = parse(None, &entry) else { panic!() };
        assert_eq!((f.service.as_str(), f.product, f.access), ("ldap", None, Access::Open));
        // objectClass: top, OpenLDAProotDSE
        let mut attr = vec![0x04, 0x0b];
        attr.extend_from_slice(b"objectClass");
        let mut set = vec![0x04, 0x03];
        set.extend_from_slice(b"top");
        set.extend_from_slice(&[0x04, 0x0f]);
        set.extend_from_slice(b"OpenLDAProotDSE");
        attr.push(0x31);
        attr.push(set.len() as u8);
        attr.extend(set);
        let mut attrs = vec![0x30, attr.len() as u8];
        attrs.extend(attr);
        let mut list = vec![0x30, attrs.len() as u8];
        list.extend(attrs);
        let mut op = vec![0x64, (list.len() + 2) as u8, 0x04, 0x00];
        op.extend(list);
        let mut msg = vec![0x30, (op.len() + 3) as u8, 0x02, 0x01, 0x01];
        msg.extend(op);
        let Verdict::Match(f) = parse(None, &msg) else { panic!() };
        assert_eq!(f.product.as_deref(), Some("OpenLDAP"));
        assert!(parse(None, b"\x30\x03\x02\x01\x01").is_no());
    }
}
