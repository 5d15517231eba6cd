use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use vantage_shared::{Observation, ProbeOptions};

use super::*;
use crate::review::baseline::{self, Sources};
use crate::review::open_entry;
use crate::store::{ShardStats, Store};

use RegionState::{AnswersAll, NotOpen, NotScanned, Open};

fn scan(regions: &[&str]) -> ScanRecord {
    ScanRecord {
        id: 1,
        label: String::new(),
        targets: "198.18.1.0-198.18.1.9".into(),
        ports: "1-1000".into(),
        scope: "198.18.0.0/15".into(),
        options: ProbeOptions::default(),
        created_at: SystemTime::UNIX_EPOCH,
        finished_at: None,
        shards_total: 0,
        probes_total: 0,
        review_period: None,
        verification: false,
        regions: regions.iter().map(|r| r.to_string()).collect(),
    }
}

fn shard(id: u64, targets: &str, ports: &str, region: &str, state: ShardState) -> ShardRecord {
    ShardRecord {
        scan_id: 1,
        shard_id: id,
        targets: targets.into(),
        ports: ports.into(),
        probes: 0,
        epoch: 1,
        state,
        region: region.into(),
    }
}

fn done(region: &str) -> ShardState {
    done_with(region, ShardStats::default())
}

fn done_with(region: &str, stats: ShardStats) -> ShardState {
    ShardState::Done { agent: format!("{region}/a"), region: region.into(), stats }
}

/// Every region of `regions` finished the whole scan (one shard each).
fn all_done(regions: &[&str]) -> Vec<ShardRecord> {
    regions.iter().enumerate().map(|(i, r)| shard(i as u64, "198.18.1.0-198.18.1.9", "1-1000", r, done(r))).collect()
}

fn entry(addr: &str, port: u16, regions: &[&str]) -> Result<BaselineEntry, Infallible> {
    Ok(open_entry(addr, port, None, regions, SystemTime::UNIX_EPOCH))
}

fn answers_all(addr: &str, regions: &[&str]) -> Result<BaselineEntry, Infallible> {
    let mut e = open_entry(addr, 0, None, regions, SystemTime::UNIX_EPOCH);
    e.state = PortState::AnswersAll;
    Ok(e)
}

fn rows(coverage: &Coverage, entries: Vec<Result<BaselineEntry, Infallible>>) -> Vec<Row> {
    matrix(entries.into_iter(), coverage).map(Result::unwrap).collect()
}

#[test]
fn open_from_every_region_is_consistent() {
    let c = Coverage::of(&scan(&["ap", "eu", "us"]), &all_done(&["ap", "eu", "us"])).unwrap();
    let r = rows(&c, vec![entry("198.18.1.1", 22, &["ap", "eu", "us"])]);
    assert_eq!(r[0].states, [Open, Open, Open]);
    assert!(!r[0].is_inconsistent());
    assert!(!r[0].is_incomplete());
}

#[test]
fn open_from_one_region_and_scanned_from_another_is_inconsistent() {
    let c = Coverage::of(&scan(&["ap", "eu", "us"]), &all_done(&["ap", "eu", "us"])).unwrap();
    let r = rows(&c, vec![entry("198.18.1.1", 443, &["eu", "us"])]);
    assert_eq!(r[0].states, [NotOpen, Open, Open]);
    assert!(r[0].is_inconsistent());
}

#[test]
fn a_region_that_has_not_finished_did_not_scan() {
    let shards = vec![
        shard(0, "198.18.1.0-198.18.1.9", "1-1000", "eu", done("eu")),
        shard(1, "198.18.1.0-198.18.1.9", "1-1000", "us", ShardState::Pending),
    ];
    let c = Coverage::of(&scan(&["eu", "us"]), &shards).unwrap();
    assert_eq!(c.regions(), ["eu", "us"], "an asked-for region is a column before it did anything");
    let r = rows(&c, vec![entry("198.18.1.1", 22, &["eu"])]);
    assert_eq!(r[0].states, [Open, NotScanned]);
    assert!(!r[0].is_inconsistent(), "not scanning is no evidence of a firewall");
    assert!(r[0].is_incomplete());
}

#[test]
fn only_the_shard_that_holds_the_port_counts() {
    // us finished the shard of ports 1-500 only; eu all of it.
    let shards = vec![
        shard(0, "198.18.1.0-198.18.1.9", "1-500", "eu", done("eu")),
        shard(1, "198.18.1.0-198.18.1.9", "1-500", "us", done("us")),
        shard(2, "198.18.1.0-198.18.1.9", "501-1000", "eu", done("eu")),
        shard(3, "198.18.1.0-198.18.1.9", "501-1000", "us", ShardState::Pending),
    ];
    let c = Coverage::of(&scan(&["eu", "us"]), &shards).unwrap();
    let r = rows(&c, vec![entry("198.18.1.1", 80, &["eu"]), entry("198.18.1.1", 800, &["eu"])]);
    assert_eq!(r[0].states, [Open, NotOpen]);
    assert_eq!(r[1].states, [Open, NotScanned]);
}

#[test]
fn an_address_outside_the_regions_shards_was_not_scanned() {
    let shards = vec![
        shard(0, "198.18.1.0-198.18.1.9", "1-1000", "eu", done("eu")),
        shard(1, "198.18.1.0-198.18.1.4", "1-1000", "us", done("us")),
    ];
    let c = Coverage::of(&scan(&["eu", "us"]), &shards).unwrap();
    let r = rows(&c, vec![entry("198.18.1.4", 80, &["eu"]), entry("198.18.1.5", 80, &["eu"])]);
    assert_eq!(r[0].states, [Open, NotOpen]);
    assert_eq!(r[1].states, [Open, NotScanned]);
}

#[test]
fn a_shard_that_skipped_probes_proves_nothing() {
    let refused = ShardStats { refused: 3, ..ShardStats::default() };
    let unroutable = ShardStats { unreachable: 1, ..ShardStats::default() };
    let shards = vec![
        shard(0, "198.18.1.0-198.18.1.9", "1-1000", "ap", done_with("ap", refused)),
        shard(1, "198.18.1.0-198.18.1.9", "1-1000", "eu", done("eu")),
        shard(2, "198.18.1.0-198.18.1.9", "1-1000", "us", done_with("us", unroutable)),
    ];
    let c = Coverage::of(&scan(&["ap", "eu", "us"]), &shards).unwrap();
    let r = rows(&c, vec![entry("198.18.1.1", 22, &["eu"])]);
    assert_eq!(r[0].states, [NotScanned, Open, NotScanned]);
    assert!(!r[0].is_inconsistent());
    let partial: Vec<u64> = c.summaries().iter().map(|s| s.shards_partial).collect();
    assert_eq!(partial, [1, 0, 1]);
}

#[test]
fn a_host_answering_everything_from_a_region_answers_its_ports_there() {
    let c = Coverage::of(&scan(&["eu", "us"]), &all_done(&["eu", "us"])).unwrap();
    let r = rows(&c, vec![answers_all("198.18.1.1", &["eu"]), entry("198.18.1.1", 22, &["us"])]);
    assert_eq!((r[0].port, r[0].states.clone()), (0, vec![AnswersAll, NotOpen]));
    assert!(r[0].is_inconsistent(), "a CDN edge in one region only");
    assert_eq!(r[1].states, [AnswersAll, Open]);
    assert!(!r[1].is_inconsistent());
}

#[test]
fn answers_all_stays_with_its_host() {
    let c = Coverage::of(&scan(&["eu", "us"]), &all_done(&["eu", "us"])).unwrap();
    let r = rows(&c, vec![answers_all("198.18.1.1", &["eu", "us"]), entry("198.18.1.2", 22, &["us"])]);
    assert_eq!(r[0].states, [AnswersAll, AnswersAll]);
    assert_eq!(r[1].states, [NotOpen, Open]);
}

#[test]
fn a_scan_without_regions_has_the_regions_of_its_agents() {
    // Records from before regions name only the agent, `<region>/<name>`.
    let old = ShardState::Done { agent: "us/b".into(), region: String::new(), stats: ShardStats::default() };
    let shards = vec![
        shard(0, "198.18.1.0-198.18.1.4", "1-1000", "", done("eu")),
        shard(1, "198.18.1.5-198.18.1.9", "1-1000", "", old),
        shard(2, "198.18.1.10", "1-1000", "", ShardState::Leased { agent: "ap/c".into(), region: "ap".into() }),
    ];
    let c = Coverage::of(&scan(&[]), &shards).unwrap();
    assert_eq!(c.regions(), ["ap", "eu", "us"]);
    let r = rows(&c, vec![entry("198.18.1.1", 22, &["eu"]), entry("198.18.1.6", 22, &["us"])]);
    assert_eq!(r[0].states, [NotScanned, Open, NotScanned]);
    assert_eq!(r[1].states, [NotScanned, NotScanned, Open]);
    assert!(r.iter().all(|r| !r.is_inconsistent()), "each port was scanned from one region only");
}

#[test]
fn a_bad_shard_record_is_an_error() {
    let shards = vec![shard(0, "not an address", "1-1000", "eu", done("eu"))];
    assert!(Coverage::of(&scan(&["eu"]), &shards).unwrap_err().contains("shard 0 targets"));
}

#[test]
fn an_error_ends_the_matrix() {
    let c = Coverage::of(&scan(&["eu"]), &all_done(&["eu"])).unwrap();
    let entries: Vec<Result<BaselineEntry, &str>> =
        vec![Ok(open_entry("198.18.1.1", 22, None, &["eu"], SystemTime::UNIX_EPOCH)), Err("disk"), Err("again")];
    let out: Vec<_> = matrix(entries.into_iter(), &c).collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1], Err("disk"));
}

fn observation(addr: &str, port: u16, state: PortState, region: &str) -> Observation {
    Observation {
        addr: addr.parse().unwrap(),
        proto: Proto::Tcp,
        port,
        state,
        rtt: Duration::from_millis(1),
        seen_at: SystemTime::UNIX_EPOCH,
        banner: Vec::new(),
        region: region.into(),
        agent: format!("{region}/a"),
        service: None,
    }
}

/// The whole path the coordinator takes: stored observations merged by the
/// baseline's grouping, against stored shard records.
#[test]
fn the_matrix_of_a_stored_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = scan(&["ap", "eu", "us"]);
    store.put_scan(&record).unwrap();
    store.put_shards(&all_done(&["ap", "eu", "us"])).unwrap();
    let obs = [
        observation("198.18.1.1", 8080, PortState::Open, "eu"),
        observation("198.18.1.1", 22, PortState::Open, "ap"),
        observation("198.18.1.1", 22, PortState::Open, "eu"),
        observation("198.18.1.1", 22, PortState::Open, "us"),
        observation("198.18.1.1", 80, PortState::Open, "us"),
        observation("198.18.1.2", 0, PortState::AnswersAll, "ap"),
        observation("198.18.1.2", 443, PortState::Open, "eu"),
    ];
    store.put_observations(1, &obs).unwrap();
    let coverage = Coverage::of(&record, &store.shards(1).unwrap()).unwrap();
    let got: Vec<(u16, Vec<RegionState>, bool)> =
        matrix(baseline::entries_of(&store, Sources::scan(&record)), &coverage)
            .map(|r| r.map(|r| (r.port, r.states.clone(), r.is_inconsistent())).unwrap())
            .collect();
    assert_eq!(
        got,
        vec![
            (22, vec![Open, Open, Open], false),
            (80, vec![NotOpen, NotOpen, Open], true),
            // No region scanned port 8080 but the one that saw it open.
            (8080, vec![NotScanned, Open, NotScanned], false),
            (0, vec![AnswersAll, NotOpen, NotOpen], true),
            (443, vec![AnswersAll, Open, NotOpen], true),
        ]
    );
}
