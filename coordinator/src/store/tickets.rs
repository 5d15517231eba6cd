//! Tickets, the notification outbox and escalations.
//!
//! * `tickets`: (finding id, integration) → where the finding's ticket is
//!   and what it last said, so that nothing is filed twice, across restarts.
//! * `notify_outbox`: deliveries still to make, in the order they were
//!   enqueued (keys from sled's id generator: increasing, big-endian). An
//!   item leaves only once delivered; failures stay, with their next try.
//! * `escalations`: finding id → when each channel was told.
//!
//! Findings and the deliveries they cause are written in one transaction
//! ([`Store::put_findings_notify`]): a crash cannot keep one and lose the other.

use sled::Transactional;

use super::{Store, StoreError, decode_json, encode_json, findings::finding_key};
use crate::notify::{Escalation, OutboxItem, TicketRecord};
use crate::review::findings::Finding;

fn ticket_key(finding_id: &str, integration: &str) -> Vec<u8> {
    let mut key = finding_id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(integration.as_bytes());
    key
}

impl Store {
    /// Writes findings and enqueues the deliveries their changes cause, at once.
    pub fn put_findings_notify(&self, findings: &[Finding], items: &[OutboxItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return self.put_findings(findings);
        }
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = findings.iter().map(|f| (finding_key(&f.key), encode_json(f))).collect();
        let queued: Vec<Vec<u8>> = items.iter().map(encode_json).collect();
        (&self.findings, &self.outbox)
            .transaction(|(findings, outbox)| {
                for (k, v) in &encoded {
                    findings.insert(k.as_slice(), v.as_slice())?;
                }
                for v in &queued {
                    let seq = outbox.generate_id()?;
                    outbox.insert(&seq.to_be_bytes(), v.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Io(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Commit("outbox transaction aborted".into())
                }
            })
    }

    /// The outbox, oldest first, with each item's sequence number.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxItem)>, StoreError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let seq = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes).unwrap_or_default();
                Ok((seq, decode_json(&v, "outbox item")?))
            })
            .collect()
    }

    /// Records a failed attempt (the item stays).
    pub fn put_outbox_item(&self, seq: u64, item: &OutboxItem) -> Result<(), StoreError> {
        self.outbox.insert(seq.to_be_bytes(), encode_json(item))?;
        Ok(())
    }

    /// A delivered item leaves.
    pub fn remove_outbox_item(&self, seq: u64) -> Result<(), StoreError> {
        self.outbox.remove(seq.to_be_bytes())?;
        Ok(())
    }

    pub fn ticket(&self, finding_id: &str, integration: &str) -> Result<Option<TicketRecord>, StoreError> {
        self.tickets.get(ticket_key(finding_id, integration))?.map(|v| decode_json(&v, "ticket")).transpose()
    }

    pub fn put_ticket(&self, t: &TicketRecord) -> Result<(), StoreError> {
        self.tickets.insert(ticket_key(&t.finding_id, &t.integration), encode_json(t))?;
        Ok(())
    }

    /// A finding's tickets, by integration.
    pub fn tickets_of(&self, finding_id: &str) -> Result<Vec<TicketRecord>, StoreError> {
        let mut prefix = finding_id.as_bytes().to_vec();
        prefix.push(0);
        self.tickets.scan_prefix(prefix).map(|kv| decode_json(&kv?.1, "ticket")).collect()
    }

    pub fn escalation(&self, finding_id: &str) -> Result<Option<Escalation>, StoreError> {
        self.escalations.get(finding_id.as_bytes())?.map(|v| decode_json(&v, "escalation")).transpose()
    }

    pub fn put_escalation(&self, e: &Escalation) -> Result<(), StoreError> {
        self.escalations.insert(e.finding_id.as_bytes(), encode_json(e))?;
        Ok(())
    }
}
