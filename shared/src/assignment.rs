//! Assignments: a leased work unit as the agent receives it.

use std::fmt;
use std::time::Duration;

use vantage_proto::v1;

use crate::convert::{
    ConvertError, duration_from_wire, duration_to_wire, ports_from_wire, ports_to_wire, ranges_to_wire,
    target_set_from_wire,
};
use crate::options::ProbeOptions;
use crate::ports::PortSpec;
use crate::scope::Scope;
use crate::target::TargetSet;

/// Identifies one lease of one shard: results of an older epoch are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseKey {
    pub scan_id: u64,
    pub shard_id: u64,
    pub epoch: u64,
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scan {} shard {} epoch {}", self.scan_id, self.shard_id, self.epoch)
    }
}

/// One shard of one scan, leased to one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: LeaseKey,
    pub scope: Scope,
    pub targets: TargetSet,
    pub ports: PortSpec,
    pub options: ProbeOptions,
    /// How long the lease lasts without progress.
    pub lease: Duration,
}

impl From<&Assignment> for v1::Assignment {
    fn from(a: &Assignment) -> Self {
        v1::Assignment {
            scan_id: a.key.scan_id,
            shard_id: a.key.shard_id,
            epoch: a.key.epoch,
            scope: Some((&a.scope).into()),
            targets: ranges_to_wire(a.targets.ranges()),
            ports: ports_to_wire(&a.ports),
            options: Some((&a.options).into()),
            lease: Some(duration_to_wire(a.lease)),
        }
    }
}

impl TryFrom<&v1::Assignment> for Assignment {
    type Error = ConvertError;
    fn try_from(w: &v1::Assignment) -> Result<Self, ConvertError> {
        Ok(Assignment {
            key: LeaseKey { scan_id: w.scan_id, shard_id: w.shard_id, epoch: w.epoch },
            // A missing scope is an empty scope: nothing may be scanned.
            scope: w
                .scope
                .as_ref()
                .map(Scope::try_from)
                .transpose()?
                .unwrap_or_else(|| Scope::new(TargetSet::default(), TargetSet::default())),
            targets: target_set_from_wire(&w.targets)?,
            ports: ports_from_wire(&w.ports)?,
            options: w.options.as_ref().map(ProbeOptions::from).unwrap_or_default(),
            lease: duration_from_wire(w.lease.as_ref()).unwrap_or(Duration::from_secs(60)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let a = Assignment {
            key: LeaseKey { scan_id: 7, shard_id: 3, epoch: 2 },
            scope: Scope::loopback(),
            targets: TargetSet::parse("127.0.0.1-9").unwrap(),
            ports: PortSpec::parse("1-1024").unwrap(),
            options: ProbeOptions::default(),
            lease: Duration::from_secs(30),
        };
        assert_eq!(Assignment::try_from(&v1::Assignment::from(&a)).unwrap(), a);
    }

    #[test]
    fn missing_scope_permits_nothing() {
        let w = v1::Assignment { ports: vec![v1::PortRange { first: 1, last: 2 }], ..Default::default() };
        let a = Assignment::try_from(&w).unwrap();
        assert!(!a.scope.permits("127.0.0.1".parse().unwrap()));
    }
}
