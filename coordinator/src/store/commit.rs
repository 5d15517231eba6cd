//! Group commit of observations: the batches of many agents share a flush.
//!
//! [`GroupCommit::commit`] writes a batch's observations on a thread of
//! tokio's blocking pool (so the batches of several agents are written in
//! parallel), then asks the committer for a flush and waits for it. The
//! committer's thread takes every request waiting, flushes once, and only
//! then answers them all: an answered batch is on disk (DESIGN invariant
//! 1), and fifty agents cost one fsync a round instead of fifty. The queue
//! holds [`QUEUE`] requests; when it is full, `commit` waits, so ingest
//! stops reading that agent's stream and HTTP/2 flow control stops the
//! agent (invariant 7).
//!
//! Each batch is one sled value ([`super::observations`]); groups share only
//! the flush. (One sled batch for a whole group, when every observation was
//! a key of its own, held one epoch guard across 16,384 keys and took the
//! coordinator to 4-5 GiB: bench/README.md, "Ingest".)
//!
//! The committer starts with the first commit and ends when the last clone
//! of the store is dropped (it holds sled's handle, not the store's).

use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Flush requests waiting for the committer at most.
pub(super) const QUEUE: usize = 64;

/// A batch written and waiting for its flush.
struct Pending {
    done: oneshot::Sender<Result<(), String>>,
}

/// Runs before each group is flushed (tests stall or slow the committer).
#[cfg(test)]
pub(super) type Hook = std::sync::Arc<dyn Fn() + Send + Sync>;
#[cfg(test)]
type HookSlot = std::sync::Arc<std::sync::Mutex<Option<Hook>>>;

/// The committer's queue, shared by every clone of the store.
#[derive(Clone)]
pub(super) struct GroupCommit {
    tx: mpsc::Sender<Pending>,
}

impl GroupCommit {
    pub(super) fn start(db: sled::Db, #[cfg(test)] hook: HookSlot) -> Result<GroupCommit, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let committer = Committer {
            db,
            rx,
            #[cfg(test)]
            hook,
        };
        std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || committer.run())
            .map_err(|e| StoreError::Io(e.into()))?;
        Ok(GroupCommit { tx })
    }

    /// Writes `value` under `key` into `tree`, then waits for a flush shared
    /// with whatever else is waiting; returns once it is on disk.
    pub(super) async fn commit(&self, tree: &sled::Tree, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
        let tree = tree.clone();
        tokio::task::spawn_blocking(move || tree.insert(key, value))
            .await
            .map_err(|e| StoreError::Commit(e.to_string()))??;
        let stopped = || StoreError::Commit("the committer stopped".into());
        let (done, answer) = oneshot::channel();
        self.tx.send(Pending { done }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(StoreError::Commit)
    }

    /// Flush requests waiting in the queue now.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

struct Committer {
    db: sled::Db,
    rx: mpsc::Receiver<Pending>,
    #[cfg(test)]
    hook: HookSlot,
}

impl Committer {
    fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut group = vec![first];
            while let Ok(next) = self.rx.try_recv() {
                group.push(next);
            }
            #[cfg(test)]
            {
                let hook = self.hook.lock().unwrap().clone();
                if let Some(hook) = hook {
                    hook();
                }
            }
            // Every batch of the group was written before it asked: one
            // flush makes them all durable.
            let result = self.db.flush().map(drop).map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::error!(batches = group.len(), error = %e, "cannot flush a group of batches");
            }
            for pending in group {
                // The batch's ingest may have gone with its agent: nobody to tell.
                let _ = pending.done.send(result.clone());
            }
        }
    }
}
