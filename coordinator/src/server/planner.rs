//! The planner: from an operator's request to stored scan and shard records.
//!
//! This is the coordinator's scope check (DESIGN invariant 3, first half):
//! a scan that names one address outside the configured scope is refused as
//! a whole, before anything is stored or sent.

use std::time::SystemTime;

use vantage_proto::v1;
use vantage_shared::shard::{self, shard_count};
use vantage_shared::target::TargetError;
use vantage_shared::{Period, PortSpec, ProbeOptions, Scope, ScopeError, TargetSet, TargetSpec};

use crate::store::{ScanRecord, ShardRecord, ShardState};

/// Plans larger than this many shards are refused: split the scan.
pub const MAX_SHARDS: u128 = 1_000_000;
/// Regions one scan may run from at most.
pub const MAX_REGIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("targets: {0}")]
    Targets(TargetError),
    #[error("exclude: {0}")]
    Exclude(TargetError),
    #[error("{0}")]
    Ports(#[from] vantage_shared::ports::PortSpecError),
    #[error("{0}")]
    Scope(#[from] ScopeError),
    #[error("scan too large: {shards} shards of {per_shard} probes; narrow the targets or ports")]
    TooLarge { shards: u128, per_shard: u64 },
    #[error(transparent)]
    Period(#[from] vantage_shared::period::PeriodError),
    #[error("regions: {0}")]
    Regions(String),
}

impl From<PlanError> for tonic::Status {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Scope(ScopeError::OutOfScope { .. }) => tonic::Status::permission_denied(e.to_string()),
            e => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

/// A planned scan: its record and its shards, not yet stored.
pub struct Plan {
    pub record: ScanRecord,
    pub shards: Vec<ShardRecord>,
}

impl Plan {
    /// Numbers the scan once it is accepted, so refused requests use no id.
    pub fn assign_id(&mut self, id: u64) {
        self.record.id = id;
        for s in &mut self.shards {
            s.scan_id = id;
        }
    }
}

/// How many probes go into one shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShardSizing {
    /// Exactly this many (`vantage serve --shard-probes`).
    Fixed(u64),
    /// About [`shard::SHARD_TIME`] of work at this many probes per second
    /// (what the agents measured, or the scan's rate cap); larger when the
    /// scan would otherwise need more than [`MAX_SHARDS`] shards.
    Rate(f64),
}

impl ShardSizing {
    /// Sizing before any agent has measured anything: the default shard.
    pub fn guess() -> ShardSizing {
        ShardSizing::Rate(shard::DEFAULT_SHARD_PROBES as f64 / shard::SHARD_TIME.as_secs_f64())
    }

    /// Probes per shard for `probes` probes in all.
    fn per_shard(self, probes: u128) -> u64 {
        match self {
            ShardSizing::Fixed(n) => n,
            ShardSizing::Rate(rate) => {
                let fit = u64::try_from(probes.div_ceil(MAX_SHARDS)).unwrap_or(u64::MAX);
                shard::sized_for(rate).max(fit)
            }
        }
    }
}

/// Plans a scan (with id 0 until [`Plan::assign_id`]). With regions, every
/// shard is planned once per region, the regions of a shard next to each
/// other so that they run at about the same time.
pub fn plan(req: &v1::StartScanRequest, scope: &Scope, sizing: ShardSizing) -> Result<Plan, PlanError> {
    let mut spec = TargetSpec::parse(&req.targets).map_err(PlanError::Targets)?;
    let exclude = TargetSpec::parse(&req.exclude).map_err(PlanError::Exclude)?;
    spec.exclude = TargetSet::from_ranges([spec.exclude.ranges(), exclude.include.ranges()].concat());
    let targets = spec.resolve();
    let ports = PortSpec::parse(&req.ports)?;
    let regions = regions(&req.regions)?;
    scope.check(&targets, req.allow_huge)?;
    let copies = regions.len().max(1);
    // Whole hosts per shard can round a shard down to a fraction of its
    // size; twice the fit keeps a sized plan under the cap.
    let total = targets.len().saturating_mul(u128::from(ports.len())).saturating_mul(copies as u128);
    let shard_probes = sizing.per_shard(total.saturating_mul(2));
    let shards = shard_count(&targets, &ports, shard_probes).saturating_mul(copies as u128);
    if shards > MAX_SHARDS {
        return Err(PlanError::TooLarge { shards, per_shard: shard_probes });
    }
    // Without regions, one copy that any agent may run.
    let unit_regions = if regions.is_empty() { vec![String::new()] } else { regions.clone() };
    let shards: Vec<ShardRecord> = shard::plan(&targets, &ports, shard_probes)
        .flat_map(|s| unit_regions.iter().map(move |region| (s.clone(), region.clone())))
        .enumerate()
        .map(|(i, (s, region))| ShardRecord {
            scan_id: 0,
            shard_id: i as u64,
            targets: TargetSet::from_ranges(s.targets.clone()).to_string(),
            ports: s.ports.to_string(),
            probes: clamp(s.probes()),
            epoch: 0,
            state: ShardState::Pending,
            region,
        })
        .collect();
    let options = req.options.as_ref().map(ProbeOptions::from).unwrap_or_default();
    let created_at = SystemTime::now();
    let period = if req.period.is_empty() { Period::of(created_at) } else { req.period.parse()? };
    let record = ScanRecord {
        id: 0,
        label: req.label.clone(),
        targets: targets.to_string(),
        ports: ports.to_string(),
        scope: scope_file(scope),
        options,
        created_at,
        finished_at: None,
        shards_total: shards.len() as u64,
        probes_total: clamp(targets.len().saturating_mul(u128::from(ports.len())).saturating_mul(copies as u128)),
        review_period: Some(period),
        verification: req.verification,
        regions,
    };
    Ok(Plan { record, shards })
}

/// The requested regions, sorted and without repeats.
fn regions(requested: &[String]) -> Result<Vec<String>, PlanError> {
    let mut out: Vec<String> = Vec::with_capacity(requested.len());
    for r in requested {
        let name = r.trim();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == ',' || c.is_control()) {
            return Err(PlanError::Regions(format!("`{r}` is no region name (expected e.g. eu-west)")));
        }
        out.push(name.to_string());
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_REGIONS {
        return Err(PlanError::Regions(format!("{} regions; at most {MAX_REGIONS}", out.len())));
    }
    Ok(out)
}

fn clamp(n: u128) -> u64 {
    n.min(u128::from(u64::MAX)) as u64
}

/// A scope in the syntax `Scope::parse_file` reads back.
pub fn scope_file(scope: &Scope) -> String {
    let mut text = scope.allow().to_string().replace(',', "\n");
    for r in scope.exclude().ranges() {
        text.push_str(&format!("\n!{r}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(targets: &str, ports: &str) -> v1::StartScanRequest {
        v1::StartScanRequest { targets: targets.into(), ports: ports.into(), ..Default::default() }
    }

    #[test]
    fn plans_cover_the_request() {
        let p = plan(&req("127.0.0.1-4", "1-1000"), &Scope::loopback(), ShardSizing::Fixed(1000)).unwrap();
        assert_eq!(p.shards.len(), 4);
        assert_eq!(p.record.probes_total, 4000);
        assert_eq!(p.shards.iter().map(|s| s.probes).sum::<u64>(), 4000);
    }

    #[test]
    fn out_of_scope_is_refused_whole() {
        let err = plan(&req("127.0.0.1,198.18.0.1", "80"), &Scope::loopback(), ShardSizing::Fixed(1000)).err().unwrap();
        assert!(matches!(err, PlanError::Scope(ScopeError::OutOfScope { .. })));
        assert_eq!(tonic::Status::from(err).code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn exclusions_from_both_places_apply() {
        let mut r = req("127.0.0.1-10 !127.0.0.2", "80");
        r.exclude = "127.0.0.3-10".into();
        let p = plan(&r, &Scope::loopback(), ShardSizing::Fixed(1000)).unwrap();
        assert_eq!(p.record.targets, "127.0.0.1");
    }

    #[test]
    fn excluding_everything_is_an_empty_scan() {
        let mut r = req("127.0.0.1", "80");
        r.exclude = "127.0.0.0/8".into();
        assert!(matches!(
            plan(&r, &Scope::loopback(), ShardSizing::Fixed(1000)),
            Err(PlanError::Scope(ScopeError::Empty))
        ));
    }

    #[test]
    fn every_shard_is_planned_once_per_region() {
        let mut r = req("127.0.0.1-4", "1-1000");
        r.regions = vec!["us".into(), "eu".into(), "ap".into(), "eu".into()];
        let p = plan(&r, &Scope::loopback(), ShardSizing::Fixed(1000)).unwrap();
        assert_eq!(p.record.regions, ["ap", "eu", "us"]);
        assert_eq!(p.shards.len(), 12);
        assert_eq!(p.record.probes_total, 12_000);
        for region in ["ap", "eu", "us"] {
            let of: Vec<_> = p.shards.iter().filter(|s| s.region == region).collect();
            assert_eq!(of.iter().map(|s| s.probes).sum::<u64>(), 4000, "{region}");
        }
        // The copies of one shard sit next to each other.
        assert_eq!(p.shards[0].targets, p.shards[2].targets);
        assert_ne!(p.shards[2].targets, p.shards[3].targets);
    }

    #[test]
    fn bad_region_names_are_refused() {
        for bad in ["", " ", "eu west", "eu,us"] {
            let mut r = req("127.0.0.1", "80");
            r.regions = vec![bad.into()];
            assert!(
                matches!(plan(&r, &Scope::loopback(), ShardSizing::Fixed(1000)), Err(PlanError::Regions(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn without_regions_any_agent_runs_each_shard_once() {
        let p = plan(&req("127.0.0.1-4", "1-1000"), &Scope::loopback(), ShardSizing::Fixed(1000)).unwrap();
        assert!(p.record.regions.is_empty());
        assert!(p.shards.iter().all(|s| s.region.is_empty()));
    }

    #[test]
    fn scope_text_round_trips() {
        let scope = Scope::parse_file("198.18.0.0/15\n127.0.0.1\n!198.18.0.7").unwrap();
        assert_eq!(Scope::parse_file(&scope_file(&scope)).unwrap(), scope);
    }

    #[test]
    fn shards_sized_from_a_rate_take_about_thirty_seconds_and_stay_under_the_cap() {
        let p = plan(&req("127.0.0.1", "1-65535"), &Scope::loopback(), ShardSizing::Rate(1_000.0)).unwrap();
        assert_eq!(p.shards.iter().map(|s| s.probes).collect::<Vec<_>>(), [30_000, 30_000, 5_535]);
        // A slow agent on a huge scan: the rate alone would need 16 million shards.
        let targets = TargetSpec::parse("127.0.0.0/8").unwrap().resolve();
        let ports = PortSpec::parse("1-1000").unwrap();
        let total = targets.len() * u128::from(ports.len());
        let per_shard = ShardSizing::Rate(10.0).per_shard(total * 2);
        let shards = shard_count(&targets, &ports, per_shard);
        assert!(shards <= MAX_SHARDS && shards > MAX_SHARDS / 4, "{shards} shards of {per_shard}");
        assert_eq!(ShardSizing::Fixed(7).per_shard(total), 7);
    }
}
