//! The schedule's memory ([`ScheduleState`]): the review and re-check slots
//! already handled, the reminder already sent, the last runs. One JSON value
//! under a key of the `meta` tree: no new tree, so no migration; a store
//! without it is a schedule that has not started yet.

use super::{Store, StoreError, decode_json, encode_json};
use crate::schedule::ScheduleState;

const KEY_SCHEDULE: &[u8] = b"schedule_state";

impl Store {
    pub fn schedule_state(&self) -> Result<Option<ScheduleState>, StoreError> {
        self.meta.get(KEY_SCHEDULE)?.map(|v| decode_json(&v, "schedule state")).transpose()
    }

    /// Writes and flushes: a run recorded as done must stay done after a crash.
    pub async fn put_schedule_state(&self, state: &ScheduleState) -> Result<(), StoreError> {
        self.meta.insert(KEY_SCHEDULE, encode_json(state))?;
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::schedule::{RunRecord, ScheduleState};
    use crate::store::Store;

    #[tokio::test]
    async fn the_schedule_state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let state = ScheduleState {
            reminded_for: Some(t + Duration::from_secs(3600)),
            last_review: Some(RunRecord { started: t, slots: 3, first_slot: t - Duration::from_secs(60) }),
            ..ScheduleState::starting(t)
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.schedule_state().unwrap(), None, "a fresh store has no schedule yet");
            store.put_schedule_state(&state).await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schedule_state().unwrap(), Some(state));
    }
}
