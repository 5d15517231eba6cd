//! The agent's own word on what it may touch.
//!
//! Whatever a coordinator asks, an agent scans only addresses that are in
//! the assignment's scope, in its local allow list, and not in its local deny
//! list (DESIGN invariant 3). A compromised coordinator can therefore at most
//! make an agent scan inside what the agent's operator allowed.

use std::net::IpAddr;

use vantage_shared::{Scope, TargetSet};

#[derive(Debug, Clone)]
pub struct LocalPolicy {
    allow: TargetSet,
    deny: TargetSet,
}

/// The part of an assignment that the agent will actually probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub targets: TargetSet,
    /// Addresses of the assignment that were refused.
    pub refused: u128,
}

impl LocalPolicy {
    pub fn new(allow: TargetSet, deny: TargetSet) -> Self {
        LocalPolicy { allow, deny }
    }

    /// May this address be probed at all from this agent?
    pub fn permits(&self, addr: IpAddr) -> bool {
        self.allow.contains(addr) && !self.deny.contains(addr)
    }

    /// Targets ∩ assignment scope ∩ local allow − local deny.
    pub fn admit(&self, targets: &TargetSet, scope: &Scope) -> Admitted {
        let admitted = targets.intersect(scope.effective()).intersect(&self.allow).subtract(&self.deny);
        Admitted { refused: targets.len() - admitted.len(), targets: admitted }
    }

    pub fn allow(&self) -> &TargetSet {
        &self.allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> TargetSet {
        TargetSet::parse(s).unwrap()
    }

    #[test]
    fn local_deny_wins_over_assignment() {
        let policy = LocalPolicy::new(set("127.0.0.0/8"), set("127.0.0.5"));
        let got = policy.admit(&set("127.0.0.1-9"), &Scope::loopback());
        assert_eq!(got.targets, set("127.0.0.1-4 127.0.0.6-9"));
        assert_eq!(got.refused, 1);
        assert!(!policy.permits("127.0.0.5".parse().unwrap()));
    }

    #[test]
    fn addresses_outside_the_assignment_scope_are_refused() {
        let policy = LocalPolicy::new(set("0.0.0.0/0"), TargetSet::default());
        let got = policy.admit(&set("127.0.0.1 198.18.0.1"), &Scope::loopback());
        assert_eq!(got.targets, set("127.0.0.1"));
        assert_eq!(got.refused, 1);
    }

    #[test]
    fn addresses_outside_local_allow_are_refused() {
        let policy = LocalPolicy::new(set("127.0.0.1"), TargetSet::default());
        let scope = Scope::parse_file("198.18.0.0/15\n127.0.0.0/8").unwrap();
        let got = policy.admit(&set("127.0.0.1 198.18.0.1"), &scope);
        assert_eq!(got.targets, set("127.0.0.1"));
    }
}
