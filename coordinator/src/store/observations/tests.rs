use std::time::Duration;

use prost::Message;
use vantage_proto::v1;
use vantage_shared::shard;
use vantage_shared::{LeaseKey, Observation, PortSpec, TargetSet};

use super::super::tests::{obs, shard as shard_record};
use super::super::{ShardState, ShardStats, Store, keys};

fn done(region: &str) -> ShardState {
    ShardState::Done { agent: format!("{region}/a"), region: region.into(), stats: ShardStats::default() }
}

/// Writes one batch the way the agent link does.
async fn commit(store: &Store, scan_id: u64, shard_id: u64, epoch: u64, seq: u64, batch: &[Observation]) {
    let lease = LeaseKey { scan_id, shard_id, epoch };
    store.commit_observations(Store::encode_observations(lease, seq, batch)).await.unwrap();
}

fn read(store: &Store, scan_id: u64) -> Vec<Observation> {
    store.observations(scan_id).map(|o| o.unwrap()).collect()
}

fn with_rtt(mut o: Observation, micros: u64) -> Observation {
    o.rtt = Duration::from_micros(micros);
    o
}

#[tokio::test]
async fn a_finished_shard_is_the_epoch_that_finished_and_an_unfinished_one_the_newest_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .put_shards(&[
            shard_record(1, 0, "198.18.0.1-198.18.0.2", "1-1000", 2, done("eu")),
            shard_record(1, 1, "198.18.0.3", "1-1000", 3, ShardState::Pending),
        ])
        .unwrap();
    // Shard 0: a lost lease saw :80 open; the re-run that finished did not.
    commit(&store, 1, 0, 1, 0, &[obs("198.18.0.1", 22, "eu"), obs("198.18.0.1", 80, "eu")]).await;
    commit(&store, 1, 0, 2, 0, &[with_rtt(obs("198.18.0.1", 22, "eu"), 7)]).await;
    commit(&store, 1, 0, 2, 1, &[obs("198.18.0.2", 443, "eu")]).await;
    // Shard 1, still running: every epoch, the newest batch winning a key.
    commit(&store, 1, 1, 2, 0, &[with_rtt(obs("198.18.0.3", 1, "eu"), 1), obs("198.18.0.3", 9, "eu")]).await;
    commit(&store, 1, 1, 3, 0, &[with_rtt(obs("198.18.0.3", 1, "eu"), 2)]).await;
    // Another scan's blocks are not this one's.
    store.put_shards(&[shard_record(2, 0, "198.18.0.1", "1-1000", 1, done("eu"))]).unwrap();
    commit(&store, 2, 0, 1, 0, &[obs("198.18.0.1", 25, "eu")]).await;

    assert_eq!(
        read(&store, 1),
        vec![
            with_rtt(obs("198.18.0.1", 22, "eu"), 7),
            obs("198.18.0.2", 443, "eu"),
            with_rtt(obs("198.18.0.3", 1, "eu"), 2),
            obs("198.18.0.3", 9, "eu"),
        ]
    );
    assert_eq!(read(&store, 2), vec![obs("198.18.0.1", 25, "eu")]);
}

/// Shards cut as the planner cuts them (whole hosts, and the port chunks of
/// one host), copied for three regions, each reporting its observations
/// shuffled in batches of odd sizes: the read is the sorted set, each key once.
#[tokio::test]
async fn shards_merge_into_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let regions = ["ap", "eu", "us"];
    let mut expected = Vec::new();
    let mut id = 0;
    for (targets, ports, per_shard) in [("198.18.0.0/28,::1", "20-29", 30), ("198.18.1.1", "1-100", 35)] {
        let targets = TargetSet::parse(targets).unwrap();
        let ports = PortSpec::parse(ports).unwrap();
        for s in shard::plan(&targets, &ports, per_shard) {
            for region in regions {
                let record = shard_record(
                    1,
                    id,
                    &TargetSet::from_ranges(s.targets.clone()).to_string(),
                    &s.ports.to_string(),
                    1,
                    done(region),
                );
                store.put_shards(&[record]).unwrap();
                let mut all: Vec<Observation> = s
                    .targets
                    .iter()
                    .flat_map(|r| r.iter().collect::<Vec<_>>())
                    .flat_map(|a| s.ports.iter().map(move |p| (a, p)))
                    .map(|(a, p)| obs(&a.to_string(), p, region))
                    .collect();
                expected.extend(all.iter().cloned());
                // A fixed shuffle: reversed, then every other one first.
                all.reverse();
                let (even, odd): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
                let all: Vec<Observation> = even.into_iter().chain(odd).map(|(_, o)| o).collect();
                for (seq, batch) in all.chunks(7).enumerate() {
                    commit(&store, 1, id, 1, seq as u64, batch).await;
                }
                id += 1;
            }
        }
    }
    assert!(id > 12, "the plan has shards sharing a host: {id} shards");
    expected.sort_by_key(|o| (o.addr, o.proto, o.port, o.region.clone()));
    let got = read(&store, 1);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "not the sorted set");
}

/// Schema 3 kept one key per observation; a scan that ran across the
/// upgrade has both, and a block wins the key they share.
#[tokio::test]
async fn schema_3_observations_are_read_in_place_with_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for o in [obs("198.18.0.1", 22, "eu"), obs("198.18.0.5", 80, "eu"), obs("198.18.0.9", 443, "eu")] {
        let key = keys::observation_key(1, o.addr, o.proto, o.port, &o.region);
        store.observations_v3.insert(key, v1::Observation::from(&o).encode_to_vec()).unwrap();
    }
    let other = keys::observation_key(2, "198.18.0.1".parse().unwrap(), vantage_shared::Proto::Tcp, 1, "eu");
    store.observations_v3.insert(other, v1::Observation::from(&obs("198.18.0.1", 1, "eu")).encode_to_vec()).unwrap();
    store.put_shards(&[shard_record(1, 0, "198.18.0.0/24", "1-1000", 4, done("eu"))]).unwrap();
    commit(&store, 1, 0, 4, 0, &[with_rtt(obs("198.18.0.5", 80, "eu"), 9), obs("198.18.0.7", 8, "eu")]).await;

    let got: Vec<_> = read(&store, 1).into_iter().map(|o| (o.addr.to_string(), o.port, o.rtt.as_micros())).collect();
    assert_eq!(
        got,
        [
            ("198.18.0.1".to_string(), 22, 120),
            ("198.18.0.5".to_string(), 80, 9),
            ("198.18.0.7".to_string(), 8, 120),
            ("198.18.0.9".to_string(), 443, 120),
        ]
    );
}

#[tokio::test]
async fn a_damaged_block_is_an_error_and_the_rest_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .put_shards(&[
            shard_record(1, 0, "198.18.0.1", "1-10", 1, done("eu")),
            shard_record(1, 1, "198.18.0.2", "1-10", 1, done("eu")),
        ])
        .unwrap();
    store.observation_blocks.insert(keys::observation_block_key(1, 0, 1, 0), &b"\x10\0\0\0garbage"[..]).unwrap();
    commit(&store, 1, 1, 1, 0, &[obs("198.18.0.2", 3, "eu")]).await;

    let got: Vec<_> = store.observations(1).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let err = got[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("observation"), "{err}");
    assert_eq!(got[1].as_ref().unwrap(), &obs("198.18.0.2", 3, "eu"));
}
