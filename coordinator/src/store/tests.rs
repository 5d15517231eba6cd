use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vantage_shared::{PortState, ProbeOptions, Proto};

use super::*;

fn obs(addr: &str, port: u16, region: &str) -> Observation {
    Observation {
        addr: addr.parse().unwrap(),
        proto: Proto::Tcp,
        port,
        state: PortState::Open,
        rtt: Duration::from_micros(120),
        seen_at: UNIX_EPOCH + Duration::from_secs(1_790_000_000),
        banner: b"SSH-2.0-x".to_vec(),
        region: region.into(),
        agent: "a".into(),
        service: Some(vantage_shared::ServiceFacts::named("ssh")),
    }
}

fn scan(id: u64) -> ScanRecord {
    ScanRecord {
        id,
        label: String::new(),
        targets: "127.0.0.1".into(),
        ports: "1-10".into(),
        scope: "127.0.0.0/8".into(),
        options: ProbeOptions::default(),
        created_at: SystemTime::now(),
        finished_at: None,
        shards_total: 1,
        review_period: None,
        verification: false,
        probes_total: 10,
    }
}

#[tokio::test]
async fn observations_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .put_observations(
                1,
                &[obs("198.18.0.9", 443, "r1"), obs("127.0.0.1", 22, "r2"), obs("127.0.0.1", 22, "r1")],
            )
            .unwrap();
        store.put_observations(2, &[obs("127.0.0.1", 1, "r1")]).unwrap();
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let got: Vec<_> =
        store.observations(1).map(|o| o.unwrap()).map(|o| (o.addr.to_string(), o.port, o.region)).collect();
    assert_eq!(
        got,
        [
            ("127.0.0.1".into(), 22, "r1".into()),
            ("127.0.0.1".into(), 22, "r2".into()),
            ("198.18.0.9".into(), 443, "r1".into())
        ]
    );
    assert_eq!(store.observations(1).next().unwrap().unwrap(), obs("127.0.0.1", 22, "r1"));
}

#[tokio::test]
async fn scans_and_shards_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = store.next_scan_id().unwrap();
    let record = scan(id);
    store.put_scan(&record).unwrap();
    let shard = ShardRecord {
        scan_id: id,
        shard_id: 0,
        targets: "127.0.0.1".into(),
        ports: "1-10".into(),
        probes: 10,
        epoch: 3,
        state: ShardState::Leased { agent: "local/a".into() },
    };
    store.put_shards(std::slice::from_ref(&shard)).unwrap();
    assert_eq!(store.scan(id).unwrap(), Some(record));
    assert_eq!(store.shards(id).unwrap(), vec![shard]);
    assert_eq!(store.latest_scan_id().unwrap(), Some(id));
    assert_eq!(store.next_scan_id().unwrap(), id + 1);
}

#[tokio::test]
async fn scan_ids_count_up_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_scan_id().unwrap(), 1);
        assert_eq!(store.next_scan_id().unwrap(), 2);
        store.flush().await.unwrap();
    }
    assert_eq!(Store::open(dir.path()).unwrap().next_scan_id().unwrap(), 3);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let second = Store::open(dir.path());
    assert!(matches!(second, Err(StoreError::Locked(_))), "{:?}", second.err());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree(TREE_META).unwrap().insert(KEY_SCHEMA, &(SCHEMA_VERSION + 1).to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1));
}
