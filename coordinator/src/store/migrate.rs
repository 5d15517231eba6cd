//! Forward migrations, run by [`Store::open`] on a store of an older
//! schema. Each is idempotent: a crash part-way leaves the old version
//! number, and the next open runs the step again over what it already did.
//! A store of a newer schema is refused before any of this runs.

use prost::Message;
use vantage_proto::v1;

use super::{BaselineWriter, Store, StoreError, TREE_BASELINE_ENTRIES_V1, decode_entry, decode_json, encode_json};
use crate::review::findings::{EventKind, Finding};

impl Store {
    /// Brings a store of schema `found` up to [`super::SCHEMA_VERSION`].
    pub(super) fn migrate(&self, found: u32) -> Result<(), StoreError> {
        if found < 2 {
            self.migrate_to_blocks()?;
        }
        if found < 3 {
            self.migrate_event_kinds()?;
        }
        // 3 → 4 copies nothing: schema 3's observations are read in place
        // next to the new blocks (`super::observations`).
        if found < 4 && !self.observations_v3.is_empty() {
            tracing::info!("store at schema 4: new observations are stored in blocks, older ones read in place");
        }
        Ok(())
    }

    /// Schema 1 → 2: single baseline entries into blocks, revision by
    /// revision; the old tree goes once every revision is copied (a crash
    /// before that re-runs the copy, which rewrites the same blocks).
    fn migrate_to_blocks(&self) -> Result<(), StoreError> {
        if !self.db.tree_names().iter().any(|n| n.as_ref() == TREE_BASELINE_ENTRIES_V1.as_bytes()) {
            return Ok(());
        }
        let old = self.db.open_tree(TREE_BASELINE_ENTRIES_V1)?;
        let mut writer: Option<(Vec<u8>, BaselineWriter)> = None;
        let mut migrated = 0u64;
        for kv in old.iter() {
            let (k, v) = kv?;
            let prefix =
                k.get(..8).ok_or_else(|| StoreError::Decode { what: "v1 baseline key", detail: "short".into() })?;
            if writer.as_ref().is_none_or(|(p, _)| p != prefix) {
                if let Some((_, w)) = writer.take() {
                    migrated += w.finish()?;
                }
                writer = Some((prefix.to_vec(), BaselineWriter::with_prefix(self.baseline_blocks.clone(), prefix)));
            }
            let entry = decode_entry(v1::BaselineEntry::decode(v.as_ref()))?;
            writer.as_mut().expect("set above").1.push(&entry)?;
        }
        if let Some((_, w)) = writer {
            migrated += w.finish()?;
        }
        self.db.flush()?;
        self.db.drop_tree(TREE_BASELINE_ENTRIES_V1)?;
        tracing::info!(entries = migrated, "store migrated to schema 2 (baseline entries in blocks)");
        Ok(())
    }

    /// Schema 2 → 3: history events get their kind, told from the sentences
    /// schema 2's code wrote (the only place that reads those sentences).
    fn migrate_event_kinds(&self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut migrated = 0u64;
        for kv in self.findings.iter() {
            let (k, v) = kv?;
            let mut f: Finding = decode_json(&v, "finding")?;
            let mut changed = false;
            for e in &mut f.history {
                if e.kind == EventKind::Note {
                    e.kind = legacy_kind(&e.what);
                    changed |= e.kind != EventKind::Note;
                }
            }
            if changed {
                batch.insert(k, encode_json(&f));
                migrated += 1;
            }
        }
        self.findings.apply_batch(batch)?;
        self.db.flush()?;
        if migrated > 0 {
            tracing::info!(findings = migrated, "store migrated to schema 3 (history events have kinds)");
        }
        Ok(())
    }
}

/// The kind of a schema-2 event, from its sentence.
pub(super) fn legacy_kind(what: &str) -> EventKind {
    let starts = |p: &str| what.starts_with(p);
    if starts("found") {
        EventKind::Found
    } else if starts("seen again") {
        EventKind::Reopened
    } else if what.contains(": remediated after ") {
        EventKind::Remediated
    } else if starts("severity ") {
        EventKind::SeverityChanged
    } else if starts("acknowledged by ") {
        EventKind::Acknowledged
    } else if starts("risk accepted by ") {
        EventKind::RiskAccepted
    } else if starts("risk acceptance (") && what.contains(" ended on ") {
        EventKind::RiskEnded
    } else {
        EventKind::Note
    }
}
