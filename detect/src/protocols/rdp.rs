//! RDP: an X.224 Connection Request with an RDP negotiation request draws
//! a Connection Confirm, and the security protocol the server picked.

use vantage_shared::ServiceFacts;

use super::Verdict;

/// TPKT + X.224 CR + RDP_NEG_REQ asking for TLS or CredSSP.
pub const PROBE: &[u8] =
    &[0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00];

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    // TPKT version 3, then X.224 with the Connection Confirm code.
    let [0x03, 0x00, _, _, _, cc, rest @ ..] = bytes else { return Verdict::No };
    if cc & 0xf0 != 0xd0 {
        return Verdict::No;
    }
    let facts = ServiceFacts::named("ms-wbt-server");
    // rest: dst-ref(2) src-ref(2) class(1), then RDP_NEG_RSP (type 2) or RDP_NEG_FAILURE (type 3).
    let info = match rest.get(5..) {
        Some([2, _, _, _, p, ..]) => match p {
            0 => "standard RDP security",
            1 => "TLS",
            2 => "CredSSP (NLA)",
            8 => "RDSTLS",
            _ => "negotiated",
        },
        Some([3, ..]) => "negotiation failure",
        _ => "",
    };
    Verdict::Match(facts.info(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_confirm() {
        let cc = [0x03, 0, 0, 0x13, 0x0e, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0x1f, 8, 0, 2, 0, 0, 0];
        let Verdict::Match(f) = parse(None, &cc) else { panic!() };
        assert_eq!(f.info.as_deref(), Some("CredSSP (NLA)"));
        assert!(parse(None, &[0x03, 0, 0, 5, 0, 0xe0]).is_no());
    }
}
