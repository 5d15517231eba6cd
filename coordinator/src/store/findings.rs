//! The review's state: findings by identity, the documents reviews judge
//! against (each kind's history kept), and the vulnerability data.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode_json, encode_json, keys};
use crate::review::findings::{Finding, FindingKey, Kind};
use crate::review::vulns::VulnData;

const KEY_LAST_FINDING: &[u8] = b"last_finding_id";
const KEY_VULN_DATA: &[u8] = b"data";

/// A stored review document: the register, the inventory or the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// `register`, `inventory` or `policy`.
    pub kind: String,
    /// The file it came from.
    pub name: String,
    pub text: String,
    pub stored_at: SystemTime,
}

pub(super) fn finding_key(k: &FindingKey) -> Vec<u8> {
    let mut key = Vec::with_capacity(21);
    keys::push_port_key(&mut key, k.addr, k.proto, k.port);
    key.push(Kind::ALL.iter().position(|x| *x == k.kind).expect("every kind is in ALL") as u8);
    key
}

impl Store {
    /// A fresh finding id: `F-1`, `F-2`, ... never reused.
    pub fn next_finding_id(&self) -> Result<String, StoreError> {
        Ok(format!("F-{}", self.next_counter(KEY_LAST_FINDING)?))
    }

    /// Writes findings (by identity; a later write of one replaces it).
    pub fn put_findings(&self, findings: &[Finding]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for f in findings {
            batch.insert(finding_key(&f.key), encode_json(f));
        }
        self.findings.apply_batch(batch)?;
        Ok(())
    }

    /// Every finding, in identity order.
    pub fn findings(&self) -> Result<Vec<Finding>, StoreError> {
        self.findings.iter().map(|kv| decode_json(&kv?.1, "finding")).collect()
    }

    pub fn finding(&self, id: &str) -> Result<Option<Finding>, StoreError> {
        Ok(self.findings()?.into_iter().find(|f| f.id.eq_ignore_ascii_case(id)))
    }

    /// Stores a document as the newest of its kind.
    pub fn put_document(&self, doc: &Document) -> Result<(), StoreError> {
        let nanos = doc.stored_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        let mut key = doc.kind.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&nanos.to_be_bytes());
        self.documents.insert(key, encode_json(doc))?;
        Ok(())
    }

    /// The newest document of a kind.
    pub fn document(&self, kind: &str) -> Result<Option<Document>, StoreError> {
        let mut prefix = kind.as_bytes().to_vec();
        prefix.push(0);
        self.documents.scan_prefix(prefix).next_back().map(|kv| decode_json(&kv?.1, "document")).transpose()
    }

    /// Replaces the vulnerability data (LZ4-compressed JSON: NVD's data is large and repetitive).
    pub fn put_vulns(&self, data: &VulnData) -> Result<(), StoreError> {
        self.vulns.insert(KEY_VULN_DATA, lz4_flex::compress_prepend_size(&encode_json(data)))?;
        Ok(())
    }

    pub fn vulns(&self) -> Result<Option<VulnData>, StoreError> {
        let Some(v) = self.vulns.get(KEY_VULN_DATA)? else { return Ok(None) };
        let raw = lz4_flex::decompress_size_prepended(&v)
            .map_err(|e| StoreError::Decode { what: "vulnerability data", detail: e.to_string() })?;
        decode_json(&raw, "vulnerability data").map(Some)
    }
}
