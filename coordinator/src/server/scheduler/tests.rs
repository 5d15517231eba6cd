use std::time::Duration;

use tokio::sync::mpsc;
use vantage_proto::v1;
use vantage_proto::v1::coordinator_message::Body;
use vantage_shared::{LeaseKey, Scope};

use super::*;
use crate::server::planner;

fn hello_from(name: &str, region: &str) -> v1::Hello {
    v1::Hello { name: name.into(), region: region.into(), version: "test".into(), capacity: 1 }
}

/// Plans and stores a scan of `ports` on 127.0.0.1, one shard per port.
fn add_scan(store: &Store, sched: &Scheduler, ports: &str) -> u64 {
    add_scan_from(store, sched, ports, &[])
}

/// As [`add_scan`], every shard once per region of `regions`.
fn add_scan_from(store: &Store, sched: &Scheduler, ports: &str, regions: &[&str]) -> u64 {
    let req = v1::StartScanRequest {
        targets: "127.0.0.1".into(),
        ports: ports.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    let mut plan = planner::plan(&req, &Scope::loopback(), planner::ShardSizing::Fixed(1)).unwrap();
    let id = store.next_scan_id().unwrap();
    plan.assign_id(id);
    store.put_shards(&plan.shards).unwrap();
    store.put_scan(&plan.record).unwrap();
    sched.add_scan(plan.record, &plan.shards);
    id
}

type Rx = mpsc::Receiver<Result<v1::CoordinatorMessage, tonic::Status>>;

fn connect(sched: &Scheduler, name: &str) -> (String, Rx) {
    connect_from(sched, name, "r1")
}

fn connect_from(sched: &Scheduler, name: &str, region: &str) -> (String, Rx) {
    let (tx, rx) = mpsc::channel(16);
    let id = sched.register_agent(&hello_from(name, region), None, tx).agent_id;
    sched.dispatch();
    (id, rx)
}

/// The stream of agent `id` ends.
fn gone(sched: &Scheduler, id: &str) {
    let conn = sched.state().agents.get(id).expect("connected").conn;
    sched.agent_gone(id, conn, Departure::Lost);
}

fn next_assignment(rx: &mut Rx) -> LeaseKey {
    loop {
        match rx.try_recv().expect("a message is queued").unwrap().body {
            Some(Body::Assignment(a)) => return LeaseKey { scan_id: a.scan_id, shard_id: a.shard_id, epoch: a.epoch },
            _ => continue,
        }
    }
}

fn fixture() -> (tempfile::TempDir, Store, Scheduler) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let sched = Scheduler::new(store.clone(), Duration::from_secs(60));
    (dir, store, sched)
}

#[test]
fn a_dead_agents_unit_goes_to_another_under_a_new_epoch() {
    let (_dir, store, sched) = fixture();
    add_scan(&store, &sched, "80");
    let (a, mut rx_a) = connect(&sched, "a");
    let first = next_assignment(&mut rx_a);
    assert!(sched.check_batch(&a, first, 1).is_ok());

    gone(&sched, &a);
    let (b, mut rx_b) = connect(&sched, "b");
    let second = next_assignment(&mut rx_b);
    assert_eq!((second.scan_id, second.shard_id), (first.scan_id, first.shard_id));
    assert!(second.epoch > first.epoch);

    // The old lease can neither add results nor complete the unit.
    assert_eq!(sched.check_batch(&a, first, 2).unwrap_err(), Refusal::StaleLease(first));
    assert!(sched.complete(&a, first, 0, ShardStats::default()).is_err());
    assert!(sched.complete(&b, second, 0, ShardStats::default()).is_ok());
    // Exactly once.
    assert!(sched.complete(&b, second, 0, ShardStats::default()).is_err());
    assert!(store.scan(first.scan_id).unwrap().unwrap().finished_at.is_some());
}

#[test]
fn completion_needs_every_batch_stored() {
    let (_dir, store, sched) = fixture();
    add_scan(&store, &sched, "80");
    let (a, mut rx) = connect(&sched, "a");
    let key = next_assignment(&mut rx);
    sched.batch_stored(&a, key, 1);
    assert_eq!(sched.complete(&a, key, 2, ShardStats::default()), Err(Refusal::MissingBatches(key, 1)));
    assert!(sched.complete(&a, key, 1, ShardStats::default()).is_ok());
}

#[test]
fn a_resent_batch_is_recognised() {
    let (_dir, store, sched) = fixture();
    add_scan(&store, &sched, "80");
    let (a, mut rx) = connect(&sched, "a");
    let key = next_assignment(&mut rx);
    sched.batch_stored(&a, key, 1);
    assert!(sched.check_batch(&a, key, 1).unwrap().duplicate);
    assert!(!sched.check_batch(&a, key, 2).unwrap().duplicate);
}

#[tokio::test]
async fn a_restart_raises_epochs_past_every_old_lease() {
    let (dir, store, sched) = fixture();
    let scan = add_scan(&store, &sched, "80,81");
    let (_a, mut rx) = connect(&sched, "a");
    let before = next_assignment(&mut rx);
    drop((sched, store));

    let store = Store::open(dir.path()).unwrap();
    let sched = Scheduler::new(store.clone(), Duration::from_secs(60));
    assert_eq!(sched.restore().await.unwrap(), 1);
    let (b, mut rx) = connect(&sched, "b");
    let after = next_assignment(&mut rx);
    assert_eq!(after.scan_id, scan);
    assert!(after.epoch > before.epoch + 1, "{after} vs {before}");
    assert!(sched.check_batch(&b, before, 1).is_err());
}

#[test]
fn an_expired_lease_is_cancelled_and_given_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let sched = Scheduler::new(store.clone(), Duration::ZERO);
    add_scan(&store, &sched, "80");
    let (a, mut rx_a) = connect(&sched, "a");
    let first = next_assignment(&mut rx_a);
    sched.expire_leases();
    let cancelled = rx_a.try_recv().unwrap().unwrap();
    assert!(matches!(cancelled.body, Some(Body::Cancel(c)) if c.shard_id == first.shard_id));
    // Leased again at once, under a newer epoch; the old one is refused.
    let again = next_assignment(&mut rx_a);
    assert_eq!(again.shard_id, first.shard_id);
    assert!(again.epoch > first.epoch);
    assert!(sched.check_batch(&a, first, 1).is_err());
}

#[test]
fn an_enrolled_agent_that_reconnects_replaces_its_old_stream() {
    let (_dir, store, sched) = fixture();
    add_scan(&store, &sched, "80");
    let who = AgentIdentity { id: "a-1".into(), region: "eu-west".into() };
    let (tx, mut rx) = mpsc::channel(16);
    let first = sched.register_agent(&hello_from("edge", "r1"), Some(&who), tx);
    sched.dispatch();
    let lease = next_assignment(&mut rx);
    assert_eq!(sched.agents()[0].region, "eu-west", "the region is the enrollment's, not the hello's");

    let (tx, mut rx) = mpsc::channel(16);
    let second = sched.register_agent(&hello_from("edge", "r1"), Some(&who), tx);
    assert!(first.cancel.is_cancelled(), "the old stream is cut off");
    assert_eq!(second.agent_id, first.agent_id);
    sched.dispatch();
    let again = next_assignment(&mut rx);
    assert_eq!((again.scan_id, again.shard_id), (lease.scan_id, lease.shard_id));
    assert!(again.epoch > lease.epoch);

    // The old stream's end does not unregister the new one.
    sched.agent_gone(&first.agent_id, first.conn, Departure::Lost);
    assert_eq!(sched.agents().len(), 1);
    assert!(sched.check_batch(&second.agent_id, again, 1).is_ok());

    // Revocation cuts the stream and frees its lease.
    assert!(sched.disconnect(&second.agent_id));
    assert!(second.cancel.is_cancelled());
    assert!(sched.agents().is_empty());
    assert_eq!(sched.check_batch(&second.agent_id, again, 1).unwrap_err(), Refusal::StaleLease(again));
}

#[test]
fn a_regions_unit_goes_only_to_an_agent_of_that_region() {
    let (_dir, store, sched) = fixture();
    let scan = add_scan_from(&store, &sched, "80", &["eu", "us"]);
    let (eu, mut rx_eu) = connect_from(&sched, "a", "eu");
    let eu_key = next_assignment(&mut rx_eu);
    assert_eq!(store.shard(scan, eu_key.shard_id).unwrap().unwrap().region, "eu");
    assert!(sched.complete(&eu, eu_key, 0, ShardStats::default()).is_ok());
    // The us copy waits for a us agent, however idle the eu agent is.
    assert!(rx_eu.try_recv().is_err(), "the eu agent got the us unit");
    assert!(store.scan(scan).unwrap().unwrap().finished_at.is_none());

    let (us, mut rx_us) = connect_from(&sched, "b", "us");
    let us_key = next_assignment(&mut rx_us);
    assert_ne!(us_key.shard_id, eu_key.shard_id);
    assert_eq!(store.shard(scan, us_key.shard_id).unwrap().unwrap().region, "us");
    assert!(sched.complete(&us, us_key, 0, ShardStats::default()).is_ok());
    assert!(store.scan(scan).unwrap().unwrap().finished_at.is_some());
    let regions: Vec<_> = store.shards(scan).unwrap().iter().map(|s| s.done_region().unwrap().to_string()).collect();
    assert_eq!(regions, ["eu", "us"]);
}

#[test]
fn a_regions_unit_of_a_lost_agent_waits_for_its_region() {
    let (_dir, store, sched) = fixture();
    add_scan_from(&store, &sched, "80", &["eu"]);
    let (eu, mut rx_eu) = connect_from(&sched, "a", "eu");
    let first = next_assignment(&mut rx_eu);
    let (_us, mut rx_us) = connect_from(&sched, "b", "us");
    gone(&sched, &eu);
    assert!(rx_us.try_recv().is_err(), "the us agent got the eu unit");
    let (_eu2, mut rx_eu2) = connect_from(&sched, "c", "eu");
    let again = next_assignment(&mut rx_eu2);
    assert_eq!(again.shard_id, first.shard_id);
    assert!(again.epoch > first.epoch);
}

#[test]
fn an_agent_takes_its_own_regions_work_first() {
    let (_dir, store, sched) = fixture();
    let any = add_scan(&store, &sched, "80");
    let eu_scan = add_scan_from(&store, &sched, "81", &["eu"]);
    let (_eu, mut rx) = connect_from(&sched, "a", "eu");
    assert_eq!(next_assignment(&mut rx).scan_id, eu_scan);
    assert_ne!(any, eu_scan);
}

#[test]
fn a_finished_shard_records_the_region_it_was_scanned_from() {
    let (_dir, store, sched) = fixture();
    let scan = add_scan(&store, &sched, "80");
    let (a, mut rx) = connect_from(&sched, "a", "ap-south");
    let key = next_assignment(&mut rx);
    let leased = store.shard(scan, key.shard_id).unwrap().unwrap();
    assert!(matches!(leased.state, ShardState::Leased { ref region, .. } if region == "ap-south"));
    sched.complete(&a, key, 0, ShardStats::default()).unwrap();
    assert_eq!(store.shard(scan, key.shard_id).unwrap().unwrap().done_region(), Some("ap-south"));
}

#[test]
fn a_scans_status_shows_each_agents_share() {
    let (_dir, store, sched) = fixture();
    let scan = add_scan(&store, &sched, "80,81");
    let (a, mut rx_a) = connect_from(&sched, "a", "eu");
    let (_b, mut rx_b) = connect_from(&sched, "b", "us");
    let ka = next_assignment(&mut rx_a);
    let kb = next_assignment(&mut rx_b);
    sched.progress(&a, ka, 1);
    sched.complete(&a, ka, 0, ShardStats { probes: 1, ..Default::default() }).unwrap();
    let status = sched.watch(scan).expect("running").borrow().clone();
    let share: Vec<(&str, &str, u64, u64, u32)> = status
        .agents
        .iter()
        .map(|p| (p.agent_id.as_str(), p.region.as_str(), p.probes_done, p.shards_done, p.running))
        .collect();
    assert_eq!(share, [("eu/a", "eu", 1, 1, 0), ("us/b", "us", 0, 0, 1)]);
    assert_eq!(kb.scan_id, scan);
}

#[test]
fn finished_shards_give_each_regions_pace() {
    let (_dir, store, sched) = fixture();
    assert_eq!(sched.shard_rate(&[]), None, "nothing measured yet");
    add_scan_from(&store, &sched, "80", &["eu", "us"]);
    let (eu, mut rx_eu) = connect_from(&sched, "a", "eu");
    let (us, mut rx_us) = connect_from(&sched, "b", "us");
    let stats = |probes, elapsed_ms| ShardStats { probes, elapsed_ms, ..Default::default() };
    sched.complete(&eu, next_assignment(&mut rx_eu), 0, stats(3_000, 1_000)).unwrap();
    sched.complete(&us, next_assignment(&mut rx_us), 0, stats(500, 1_000)).unwrap();
    assert_eq!(sched.shard_rate(&["eu".into()]), Some(3_000.0));
    assert_eq!(sched.shard_rate(&["us".into()]), Some(500.0));
    assert_eq!(sched.shard_rate(&["ap".into()]), None);
    // The next shard moves the pace halfway; a shard too short to tell does not.
    add_scan_from(&store, &sched, "81", &["eu"]);
    sched.complete(&eu, next_assignment(&mut rx_eu), 0, stats(1_000, 1_000)).unwrap();
    assert_eq!(sched.shard_rate(&["eu".into()]), Some(2_000.0));
    add_scan_from(&store, &sched, "82", &["eu"]);
    sched.complete(&eu, next_assignment(&mut rx_eu), 0, stats(10, 5)).unwrap();
    assert_eq!(sched.shard_rate(&["eu".into()]), Some(2_000.0));
}
