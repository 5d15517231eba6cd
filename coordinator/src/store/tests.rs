use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vantage_shared::{LeaseKey, Observation, PortState, ProbeOptions, Proto};

use super::*;

pub(super) fn obs(addr: &str, port: u16, region: &str) -> Observation {
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
        regions: Vec::new(),
    }
}

pub(super) fn shard(
    scan_id: u64,
    shard_id: u64,
    targets: &str,
    ports: &str,
    epoch: u64,
    state: ShardState,
) -> ShardRecord {
    ShardRecord {
        scan_id,
        shard_id,
        targets: targets.into(),
        ports: ports.into(),
        probes: 1,
        epoch,
        state,
        region: String::new(),
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
        state: ShardState::Leased { agent: "local/a".into(), region: "local".into() },
        region: String::new(),
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

fn entry(addr: &str, port: u16) -> BaselineEntry {
    BaselineEntry {
        addr: addr.parse().unwrap(),
        proto: Proto::Tcp,
        port,
        state: PortState::Open,
        open_in: vec!["eu".into(), "us".into()],
        service: Some(vantage_shared::ServiceFacts::named("http").product("nginx").version("1.22.1")),
        scan_id: 7,
        seen_at: UNIX_EPOCH + Duration::from_secs(1_790_000_000),
    }
}

/// 1,000 entries over 5 hosts: blocks of 512 end inside a host.
fn many() -> Vec<BaselineEntry> {
    (0..5u8).flat_map(|h| (1..=200u16).map(move |p| entry(&format!("198.18.0.{h}"), p * 3))).collect()
}

#[test]
fn baseline_blocks_read_back_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let nov: Period = "2026-11".parse().unwrap();
    let oct: Period = "2026-10".parse().unwrap();
    let entries = many();
    assert_eq!(store.put_baseline_entries(nov, 1, entries.iter().cloned().map(Ok)).unwrap(), 1000);
    // A neighbouring revision and period stay apart.
    store.put_baseline_entries(nov, 2, [Ok(entry("198.18.0.9", 1))].into_iter()).unwrap();
    store.put_baseline_entries(oct, 1, [Ok(entry("198.18.0.0", 1))].into_iter()).unwrap();
    let back: Vec<_> = store.baseline_entries(nov, 1).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, entries);
    assert_eq!(store.baseline_blocks.scan_prefix(keys::baseline_key(nov, 1)).count(), 2, "1000 entries, 512 a block");
    assert_eq!(store.baseline_entries(nov, 2).count(), 1);
    assert_eq!(store.baseline_entries(oct, 1).count(), 1);
}

#[test]
fn a_writer_refuses_entries_out_of_order_or_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let nov: Period = "2026-11".parse().unwrap();
    let mut w = store.baseline_writer(nov, 1);
    w.push(&entry("198.18.0.2", 80)).unwrap();
    let e = w.push(&entry("198.18.0.1", 443)).unwrap_err();
    assert!(matches!(e, StoreError::Unordered { .. }), "{e}");
    assert!(e.to_string().contains("198.18.0.1 443/tcp after 198.18.0.2 80/tcp"), "{e}");
    assert!(matches!(w.push(&entry("198.18.0.2", 80)), Err(StoreError::Unordered { .. })));
    w.push(&entry("198.18.0.2", 81)).unwrap();
    assert_eq!(w.finish().unwrap(), 2);
}

#[test]
fn a_schema_1_store_migrates_its_baselines_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let nov: Period = "2026-11".parse().unwrap();
    let oct: Period = "2026-10".parse().unwrap();
    let entries = many();
    {
        // What schema 1 wrote: one key per entry.
        let db = sled::open(dir.path()).unwrap();
        db.open_tree(TREE_META).unwrap().insert(KEY_SCHEMA, &1u32.to_be_bytes()).unwrap();
        let old = db.open_tree(TREE_BASELINE_ENTRIES_V1).unwrap();
        for (period, e) in entries.iter().map(|e| (nov, e)).chain([(oct, &entries[0])]) {
            let mut k = keys::baseline_key(period, 1).to_vec();
            keys::push_port_key(&mut k, e.addr, e.proto, e.port);
            old.insert(k, v1::BaselineEntry::from(e).encode_to_vec()).unwrap();
        }
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let back: Vec<_> = store.baseline_entries(nov, 1).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, entries);
    assert_eq!(store.baseline_entries(oct, 1).count(), 1);
    assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == TREE_BASELINE_ENTRIES_V1.as_bytes()));
    assert_eq!(store.meta.get(KEY_SCHEMA).unwrap().unwrap().as_ref(), &SCHEMA_VERSION.to_be_bytes());
    drop(store);
    // Reopening finds nothing left to migrate.
    assert_eq!(Store::open(dir.path()).unwrap().baseline_entries(nov, 1).count(), 1000);
}

#[test]
fn a_schema_2_store_gives_its_history_events_their_kinds() {
    use crate::review::findings::{Event, EventKind, Kind};
    let dir = tempfile::tempdir().unwrap();
    let mut f = crate::notify::testutil::finding("F-1", Kind::ExposedService);
    let at = f.first_seen;
    let sentences = [
        ("found (critical, due within 24 hours)", EventKind::Found),
        ("acknowledged by alice", EventKind::Acknowledged),
        ("port no longer open: remediated after 5 hours", EventKind::Remediated),
        ("seen again after its remediation in 2026-10: repeat 1", EventKind::Reopened),
        ("severity critical -> high", EventKind::SeverityChanged),
        ("risk accepted by ciso until 2026-12-01T00:00:00Z: migration", EventKind::RiskAccepted),
        ("risk acceptance (\"migration\") ended on 2026-12-01T00:00:00Z: open again", EventKind::RiskEnded),
        ("something else", EventKind::Note),
    ];
    {
        // What schema 2 wrote: events without a kind.
        f.history = sentences.iter().map(|(what, _)| Event::new(EventKind::Note, at, None, *what)).collect();
        let mut json: serde_json::Value = serde_json::to_value(&f).unwrap();
        for e in json["history"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("kind");
        }
        let db = sled::open(dir.path()).unwrap();
        db.open_tree(TREE_META).unwrap().insert(KEY_SCHEMA, &2u32.to_be_bytes()).unwrap();
        db.open_tree(TREE_FINDINGS)
            .unwrap()
            .insert(findings::finding_key(&f.key), serde_json::to_vec(&json).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let back = store.findings().unwrap();
    let kinds: Vec<EventKind> = back[0].history.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, sentences.iter().map(|(_, k)| *k).collect::<Vec<_>>());
    assert_eq!(store.meta.get(KEY_SCHEMA).unwrap().unwrap().as_ref(), &SCHEMA_VERSION.to_be_bytes());
}

#[test]
fn a_reader_dropped_early_stops_its_thread_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let nov: Period = "2026-11".parse().unwrap();
    store.put_baseline_entries(nov, 1, many().into_iter().map(Ok)).unwrap();
    let first: Vec<_> = store.baseline_entries(nov, 1).take(3).collect::<Result<_, _>>().unwrap();
    assert_eq!(first, many()[..3]);
    // The reader thread hung up; the store still reads whole.
    assert_eq!(store.baseline_entries(nov, 1).count(), 1000);
}

/// A stalled committer: callers beyond its queue wait instead of piling up,
/// none is answered before its group is flushed, and once the committer
/// moves every observation is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_committer_holds_callers_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_shards(&[shard(1, 0, "198.18.0.0/16", "1-4", 1, ShardState::Pending)]).unwrap();
    let (gate, stalled) = std::sync::mpsc::channel::<()>();
    let stalled = std::sync::Mutex::new(stalled);
    // Each group waits for the gate; once it is dropped, none waits.
    store.set_commit_hook(move || {
        let _ = stalled.lock().unwrap().recv();
    });
    // The first group takes at most a queue's worth: the rest fill the queue, and more wait.
    let callers = 2 * commit::QUEUE + 10;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..callers {
        let store = store.clone();
        let batch: Vec<_> = (1..=4).map(|p| obs(&format!("198.18.{}.{}", i / 200, i % 200 + 1), p, "r1")).collect();
        let lease = LeaseKey { scan_id: 1, shard_id: 0, epoch: 1 };
        tasks
            .spawn(async move { store.commit_observations(Store::encode_observations(lease, i as u64, &batch)).await });
    }
    let mut polls = 0;
    while store.commits_queued() < commit::QUEUE {
        polls += 1;
        assert!(polls < 6000, "the queue never filled: {} queued", store.commits_queued());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.commits_queued(), commit::QUEUE, "the queue holds no more than its bound");
    assert!(tasks.try_join_next().is_none(), "nobody is answered before the flush");

    drop(gate);
    while let Some(answer) = tasks.join_next().await {
        answer.unwrap().unwrap();
    }
    let stored: Vec<_> = store.observations(1).map(|o| o.unwrap()).map(|o| (o.addr, o.port)).collect();
    let distinct: std::collections::BTreeSet<_> = stored.iter().collect();
    assert_eq!((stored.len(), distinct.len()), (callers * 4, callers * 4));
}

/// A tree's name and its entries.
type TreeDump = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

/// Every tree's entries, for comparing two stores.
fn dump(store: &Store) -> Vec<TreeDump> {
    let mut names = store.db.tree_names();
    names.sort();
    names
        .into_iter()
        .filter(|n| n.as_ref() != b"__sled__default")
        .map(|n| {
            let t = store.db.open_tree(&n).unwrap();
            (n.to_vec(), t.iter().map(|kv| kv.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
        })
        .collect()
}

fn filled_store(dir: &std::path::Path) -> Store {
    let store = Store::open(dir).unwrap();
    let nov: Period = "2026-11".parse().unwrap();
    store.put_observations(1, &[obs("198.18.0.1", 22, "eu"), obs("198.18.0.2", 443, "us")]).unwrap();
    store.put_baseline_entries(nov, 1, many().into_iter().map(Ok)).unwrap();
    store
        .put_findings(&[crate::notify::testutil::finding("F-1", crate::review::findings::Kind::ExposedService)])
        .unwrap();
    let doc = Document { kind: "policy".into(), name: "policy.toml".into(), text: "x".into(), stored_at: UNIX_EPOCH };
    store.put_document(&doc).unwrap();
    store.next_scan_id().unwrap();
    store
}

#[test]
fn a_backup_restores_every_tree_as_it_was() {
    let (a, b, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = filled_store(a.path());
    let file = files.path().join("vantage.backup");
    let summary = store.backup(std::fs::File::create(&file).unwrap()).unwrap();
    assert_eq!(summary.header.schema, SCHEMA_VERSION);
    let count = |name: &str| summary.trees.iter().find(|(n, _)| n == name).map(|(_, n)| *n);
    // Two observations in one batch: one block.
    assert_eq!(count(TREE_OBSERVATION_BLOCKS), Some(1));
    assert_eq!(count(TREE_FINDINGS), Some(1));
    // Referring trees come before what they refer to.
    let pos = |name: &str| summary.trees.iter().position(|(n, _)| n == name).unwrap();
    assert!(pos(TREE_SHARDS) < pos(TREE_OBSERVATION_BLOCKS) && pos(TREE_BASELINES) < pos(TREE_BASELINE_BLOCKS));
    assert!(pos(TREE_OUTBOX) < pos(TREE_FINDINGS) && pos(TREE_TICKETS) < pos(TREE_FINDINGS));
    assert_eq!(verify_backup(std::fs::File::open(&file).unwrap()).unwrap(), summary);

    let target = b.path().join("restored");
    let (restored, back) = Store::restore(&target, &file).unwrap();
    assert_eq!(back.trees, summary.trees);
    assert_eq!(dump(&restored), dump(&store));
    let nov: Period = "2026-11".parse().unwrap();
    assert_eq!(restored.baseline_entries(nov, 1).count(), 1000);
    assert_eq!(restored.next_scan_id().unwrap(), 2, "counters come back too");
    // A second restore into the same place is refused: it holds a store now.
    drop(restored);
    assert!(matches!(Store::restore(&target, &file), Err(BackupError::NotEmpty(_))));
}

#[test]
fn a_damaged_or_foreign_backup_restores_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = filled_store(a.path());
    let mut bytes = Vec::new();
    store.backup(&mut bytes).unwrap();
    let try_restore = |name: &str, content: &[u8]| {
        let file = b.path().join(format!("{name}.backup"));
        std::fs::write(&file, content).unwrap();
        let dir = b.path().join(name);
        let err = Store::restore(&dir, &file).err().unwrap_or_else(|| panic!("{name} restored"));
        assert!(!dir.join("db").exists(), "{name}: nothing is written");
        err
    };
    let truncated = try_restore("truncated", &bytes[..bytes.len() - 20]);
    assert!(matches!(truncated, BackupError::Damaged(_)), "{truncated}");
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let flipped = try_restore("flipped", &flipped);
    assert!(matches!(flipped, BackupError::Damaged(_)), "{flipped}");
    let foreign = try_restore("foreign", b"PK\x03\x04 a zip file");
    assert!(matches!(foreign, BackupError::NotABackup), "{foreign}");
}

#[test]
fn a_backup_of_a_newer_store_is_refused() {
    let b = tempfile::tempdir().unwrap();
    let header = backup::Header { schema: SCHEMA_VERSION + 1, written_by: "9.0.0".into(), created_at: UNIX_EPOCH };
    let mut bytes = b"VANTAGE-BACKUP 1\n".to_vec();
    let mut w = lz4_flex::frame::FrameEncoder::new(&mut bytes);
    serde_json::to_writer(&mut w, &header).unwrap();
    std::io::Write::write_all(&mut w, b"\nZ\0\0\0\0\0\0\0\0").unwrap();
    w.finish().unwrap();
    let file = b.path().join("newer.backup");
    std::fs::write(&file, &bytes).unwrap();
    let err = Store::restore(&b.path().join("new"), &file).err().unwrap();
    assert!(matches!(err, BackupError::Newer { found, .. } if found == SCHEMA_VERSION + 1), "{err}");
    assert!(err.to_string().contains("written by a newer Vantage (9.0.0"), "{err}");
}
