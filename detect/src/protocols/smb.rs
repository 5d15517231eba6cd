//! SMB: an SMB2 NEGOTIATE over NetBIOS session framing. The answer shows
//! the dialect the server picked; an SMB1 answer is itself worth a finding.

use vantage_shared::ServiceFacts;

use super::Verdict;

const DIALECTS: [u16; 4] = [0x0202, 0x0210, 0x0300, 0x0302];

pub fn probe() -> Vec<u8> {
    let mut smb = Vec::new();
    smb.extend_from_slice(b"\xfeSMB");
    smb.extend_from_slice(&64u16.to_le_bytes()); // header size
    smb.extend_from_slice(&[0; 2]); // credit charge
    smb.extend_from_slice(&[0; 4]); // status
    smb.extend_from_slice(&0u16.to_le_bytes()); // NEGOTIATE
    smb.extend_from_slice(&1u16.to_le_bytes()); // credits
    smb.extend_from_slice(&[0; 4 + 4 + 8 + 4 + 4 + 8 + 16]); // flags, next, message id, pid, tree, session, signature
    smb.extend_from_slice(&36u16.to_le_bytes());
    smb.extend_from_slice(&(DIALECTS.len() as u16).to_le_bytes());
    smb.extend_from_slice(&1u16.to_le_bytes()); // signing enabled
    smb.extend_from_slice(&[0; 2 + 4]); // reserved, capabilities
    smb.extend_from_slice(b"VantageScanGuid!"); // client GUID
    smb.extend_from_slice(&[0; 8]); // client start time
    for d in DIALECTS {
        smb.extend_from_slice(&d.to_le_bytes());
    }
    let mut msg = vec![0, 0, 0, 0];
    msg[1..].copy_from_slice(&(smb.len() as u32).to_be_bytes()[1..]);
    msg.extend(smb);
    msg
}

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let [0, _, _, _, rest @ ..] = bytes else { return Verdict::No };
    let facts = ServiceFacts::named("microsoft-ds");
    if rest.starts_with(b"\xffSMB") {
        return Verdict::Match(facts.info("SMBv1"));
    }
    if !rest.starts_with(b"\xfeSMB") {
        return Verdict::No;
    }
    let dialect = rest.get(64 + 4..64 + 6).map(|d| u16::from_le_bytes([d[0], d[1]]));
    let info = match dialect {
        Some(0x0202) => "SMB 2.0.2".to_string(),
        Some(0x0210) => "SMB 2.1".to_string(),
        Some(0x0300) => "SMB 3.0".to_string(),
        Some(0x0302) => "SMB 3.0.2".to_string(),
        Some(0x0311) => "SMB 3.1.1".to_string(),
        Some(other) => format!("SMB dialect {other:#06x}"),
        None => String::new(),
    };
    Verdict::Match(facts.info(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate() {
        let p = probe();
        assert_eq!(p.len(), 4 + 64 + 36 + 8);
        assert_eq!(usize::from(p[3]), p.len() - 4);
        let mut answer = vec![0, 0, 0, 0x50];
        answer.extend_from_slice(b"\xfeSMB");
        answer.resize(4 + 64 + 4, 0);
        answer.extend_from_slice(&0x0302u16.to_le_bytes());
        let Verdict::Match(f) = parse(None, &answer) else { panic!() };
        assert_eq!(f.info.as_deref(), Some("SMB 3.0.2"));
        assert!(parse(None, b"\0\0\0\x04abcd").is_no());
    }
}
