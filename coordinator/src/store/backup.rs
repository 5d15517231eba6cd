//! Backups of a live store, and restoring one into an empty data directory.
//!
//! sled cannot copy its files while it writes them, and a coordinator that
//! serves is always writing (observations, leases). So a backup is a logical
//! copy: every tree's keys and values, read through the running store, in
//! one LZ4 frame with a content checksum (a truncated or damaged file is
//! refused as a whole, never half restored).
//!
//! # Consistency while serving
//! Trees are copied one after another, not at one instant. The order makes
//! that safe: a tree that refers to another is copied *before* the tree it
//! refers to (shard records before observations, baseline records before
//! their blocks, the notification outbox before the findings it names), and
//! the coordinator writes the referred data first (a shard is marked done
//! only once its observations are flushed). So everything a copied record points to was already on
//! disk and is in the copy; the copy may hold a few observations of a shard
//! still running, which that shard's re-run after a restore writes again
//! under the same keys.
//!
//! # Format
//! After the magic line, one JSON header line ([`Header`]), then per tree a
//! record `T <name>` followed by its entries `E <key> <value>` (lengths as
//! u32 big-endian), and one end record `Z <entries>` with the total count.
//! The whole stream after the magic line is one LZ4 frame.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{SCHEMA_VERSION, Store, StoreError, TREE_META};

const MAGIC: &[u8] = b"VANTAGE-BACKUP 1\n";
/// Trees in copy order: referring trees before the trees they refer to.
/// Trees not listed (added later) come after, by name.
const ORDER: &[&str] = &[
    TREE_META,
    super::TREE_AGENTS,
    super::TREE_TOKENS,
    super::TREE_SCANS,
    super::TREE_SHARDS,
    super::TREE_BASELINES,
    super::TREE_OUTBOX,
    super::TREE_TICKETS,
    super::TREE_ESCALATIONS,
    super::TREE_FINDINGS,
    super::TREE_DOCUMENTS,
    super::TREE_VULNS,
    super::TREE_OBSERVATIONS_V3,
    super::TREE_OBSERVATION_BLOCKS,
    super::TREE_BASELINE_BLOCKS,
];
/// The largest key or value a backup may hold (vulnerability data is the
/// largest value: tens of MiB compressed).
const MAX_ITEM: u32 = 1 << 30;

/// The backup's first line after the magic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The store's schema version at the time of the backup.
    pub schema: u32,
    /// The Vantage version that wrote it.
    pub written_by: String,
    pub created_at: SystemTime,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    /// Entries per tree, in the backup's order.
    pub trees: Vec<(String, u64)>,
}

impl Summary {
    pub fn entries(&self) -> u64 {
        self.trees.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a Vantage backup (it does not start with {:?})", String::from_utf8_lossy(MAGIC).trim_end())]
    NotABackup,
    #[error("the backup is damaged or incomplete: {0}")]
    Damaged(String),
    #[error(
        "the backup was written by a newer Vantage ({written_by}, store schema {found}; this build reads up to {supported}); restore it with that version or newer"
    )]
    Newer { written_by: String, found: u32, supported: u32 },
    #[error(
        "{0} already holds a store; restore into an empty or new directory (stop the coordinator and move that one aside first)"
    )]
    NotEmpty(std::path::PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Store {
    /// Writes a backup of every tree to `out`, while the store stays in use.
    /// Blocking: call it on a blocking thread.
    pub fn backup(&self, out: impl Write) -> Result<Summary, BackupError> {
        let header = Header {
            schema: SCHEMA_VERSION,
            written_by: env!("CARGO_PKG_VERSION").to_string(),
            created_at: SystemTime::now(),
        };
        let mut out = out;
        out.write_all(MAGIC)?;
        let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
        let mut w = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
        serde_json::to_writer(&mut w, &header).map_err(io::Error::other)?;
        w.write_all(b"\n")?;
        let mut trees = Vec::new();
        for name in self.tree_order() {
            let tree = self.db.open_tree(&name).map_err(StoreError::from)?;
            w.write_all(b"T")?;
            item(&mut w, name.as_bytes())?;
            let mut n = 0u64;
            for kv in tree.iter() {
                let (k, v) = kv.map_err(StoreError::from)?;
                w.write_all(b"E")?;
                item(&mut w, &k)?;
                item(&mut w, &v)?;
                n += 1;
            }
            trees.push((name, n));
        }
        let total: u64 = trees.iter().map(|(_, n)| n).sum();
        w.write_all(b"Z")?;
        w.write_all(&total.to_be_bytes())?;
        w.finish().map_err(|e| io::Error::other(e.to_string()))?.flush()?;
        Ok(Summary { header, trees })
    }

    /// Every tree of the store, in backup order (sled's default tree is unused).
    fn tree_order(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter(|n| n.as_ref() != b"__sled__default")
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), n.clone()));
        names
    }

    /// Restores the backup in `file` into `dir`, which must hold no store
    /// yet, and opens it (running any migration a backup of an older schema
    /// needs). The file is checked whole first: a damaged one writes nothing.
    pub fn restore(dir: &Path, file: &Path) -> Result<(Store, Summary), BackupError> {
        if dir.join("db").exists() || dir.join("conf").exists() {
            return Err(BackupError::NotEmpty(dir.into()));
        }
        verify(std::fs::File::open(file)?)?;
        std::fs::create_dir_all(dir)?;
        let db = super::open_sled(dir)?;
        let mut current: Option<sled::Tree> = None;
        let summary = read(std::fs::File::open(file)?, |tree, k, v| {
            if current.as_ref().is_none_or(|t| t.name() != tree.as_bytes()) {
                current = Some(db.open_tree(tree)?);
            }
            current.as_ref().expect("set above").insert(k, v)?;
            Ok(())
        })?;
        db.flush().map_err(StoreError::from)?;
        drop((current, db));
        Ok((Store::open(dir)?, summary))
    }
}

/// Checks a backup end to end without restoring it.
pub fn verify(input: impl Read) -> Result<Summary, BackupError> {
    read(input, |_, _, _| Ok(()))
}

fn item(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).ok().filter(|l| *l <= MAX_ITEM).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("an entry of {} bytes is too large", bytes.len()))
    })?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

/// Reads a whole backup, handing each entry to `each`; fails on anything
/// short of a complete, checksummed stream of this format.
fn read(
    input: impl Read,
    mut each: impl FnMut(&str, &[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<Summary, BackupError> {
    let mut input = BufReader::new(input);
    let mut magic = vec![0; MAGIC.len()];
    if input.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let mut r = BufReader::new(lz4_flex::frame::FrameDecoder::new(input));
    let damaged = |e: io::Error| BackupError::Damaged(e.to_string());
    let mut line = String::new();
    r.read_line(&mut line).map_err(damaged)?;
    let header: Header = serde_json::from_str(&line).map_err(|e| BackupError::Damaged(format!("bad header: {e}")))?;
    if header.schema > SCHEMA_VERSION {
        return Err(BackupError::Newer {
            written_by: header.written_by,
            found: header.schema,
            supported: SCHEMA_VERSION,
        });
    }
    let mut trees: Vec<(String, u64)> = Vec::new();
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).map_err(|_| BackupError::Damaged("it ends early".into()))?;
        match tag[0] {
            b'T' => {
                let name = String::from_utf8(read_item(&mut r)?)
                    .map_err(|_| BackupError::Damaged("a tree name is not UTF-8".into()))?;
                trees.push((name, 0));
            }
            b'E' => {
                let (k, v) = (read_item(&mut r)?, read_item(&mut r)?);
                let Some((tree, n)) = trees.last_mut() else {
                    return Err(BackupError::Damaged("an entry before any tree".into()));
                };
                each(tree, &k, &v)?;
                *n += 1;
            }
            b'Z' => {
                let mut total = [0u8; 8];
                r.read_exact(&mut total).map_err(damaged)?;
                let counted: u64 = trees.iter().map(|(_, n)| n).sum();
                if u64::from_be_bytes(total) != counted {
                    return Err(BackupError::Damaged(format!(
                        "it says {} entries and holds {counted}",
                        u64::from_be_bytes(total)
                    )));
                }
                // Reading to the frame's end checks its content checksum.
                let mut rest = Vec::new();
                r.read_to_end(&mut rest).map_err(damaged)?;
                if !rest.is_empty() {
                    return Err(BackupError::Damaged(format!("{} bytes after its end", rest.len())));
                }
                return Ok(Summary { header, trees });
            }
            other => return Err(BackupError::Damaged(format!("unknown record {other:#04x}"))),
        }
    }
}

fn read_item(r: &mut impl Read) -> Result<Vec<u8>, BackupError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(|_| BackupError::Damaged("it ends early".into()))?;
    let len = u32::from_be_bytes(len);
    if len > MAX_ITEM {
        return Err(BackupError::Damaged(format!("an entry of {len} bytes")));
    }
    let mut buf = Vec::new();
    r.take(u64::from(len)).read_to_end(&mut buf)?;
    if buf.len() != len as usize {
        return Err(BackupError::Damaged("it ends early".into()));
    }
    Ok(buf)
}
