//! Scope: the addresses an organisation allows Vantage to touch.
//!
//! Scope is checked twice (DESIGN invariant 3): by the coordinator when it
//! plans a scan, and by the agent before it sends a single packet. Both use
//! this type, so both sides agree on what "inside" means.

use std::fmt;
use std::net::IpAddr;

use crate::target::{TargetError, TargetSet, TargetSpec};

/// Addresses a scan may cover without `--i-know-this-is-huge`: a /8.
pub const HUGE_SCAN_ADDRESSES: u128 = 1 << 24;

/// Allowed ranges minus excluded ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    allow: TargetSet,
    exclude: TargetSet,
    effective: TargetSet,
}

/// Why a target set does not fit a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("{addr} is outside the scope ({scope}); widen the scope file to scan it")]
    OutOfScope { addr: IpAddr, scope: String },
    #[error("no address is left to scan (the targets are empty, or all are excluded)")]
    Empty,
    #[error("{count} addresses is more than a /8 ({limit}); pass --i-know-this-is-huge if you mean it")]
    Huge { count: u128, limit: u128 },
}

impl Scope {
    pub fn new(allow: TargetSet, exclude: TargetSet) -> Self {
        let effective = allow.subtract(&exclude);
        Scope { allow, exclude, effective }
    }

    /// The safe default when nothing else is configured: loopback only.
    pub fn loopback() -> Self {
        Self::new(TargetSet::parse("127.0.0.0/8, ::1").expect("literal parses"), TargetSet::default())
    }

    /// Parses a scope file (target syntax: one entry per line, `!` excludes).
    pub fn parse_file(text: &str) -> Result<Self, TargetError> {
        let spec = TargetSpec::parse_lines(text)?;
        Ok(Self::new(spec.include, spec.exclude))
    }

    pub fn allow(&self) -> &TargetSet {
        &self.allow
    }
    pub fn exclude(&self) -> &TargetSet {
        &self.exclude
    }

    /// The addresses the scope lets through.
    pub fn effective(&self) -> &TargetSet {
        &self.effective
    }

    /// May this address be probed?
    pub fn permits(&self, addr: IpAddr) -> bool {
        self.effective.contains(addr)
    }

    /// Accepts a resolved target set only if every address is inside, it is not
    /// empty, and it is not huge unless the operator said so.
    pub fn check(&self, targets: &TargetSet, allow_huge: bool) -> Result<(), ScopeError> {
        if targets.is_empty() {
            return Err(ScopeError::Empty);
        }
        if let Some(addr) = self.effective.first_missing(targets) {
            return Err(ScopeError::OutOfScope { addr, scope: self.to_string() });
        }
        let count = targets.len();
        if count > HUGE_SCAN_ADDRESSES && !allow_huge {
            return Err(ScopeError::Huge { count, limit: HUGE_SCAN_ADDRESSES });
        }
        Ok(())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.effective.is_empty() {
            return f.write_str("empty");
        }
        write!(f, "{}", self.allow)?;
        if !self.exclude.is_empty() {
            write!(f, " except {}", self.exclude)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> TargetSet {
        TargetSet::parse(s).unwrap()
    }

    #[test]
    fn loopback_default_refuses_other_addresses() {
        let scope = Scope::loopback();
        assert!(scope.permits("127.0.0.1".parse().unwrap()));
        assert!(scope.permits("::1".parse().unwrap()));
        assert!(!scope.permits("198.18.0.1".parse().unwrap()));
        let err = scope.check(&set("198.18.0.1"), false).unwrap_err();
        assert!(matches!(err, ScopeError::OutOfScope { .. }));
        assert!(err.to_string().starts_with("198.18.0.1 is outside the scope (127.0.0.0/8,::1)"));
    }

    #[test]
    fn exclusions_in_scope_file_win() {
        let scope = Scope::parse_file("198.18.0.0/24\n!198.18.0.128/25\n").unwrap();
        assert!(scope.check(&set("198.18.0.1-127"), false).is_ok());
        assert!(scope.check(&set("198.18.0.200"), false).is_err());
    }

    #[test]
    fn empty_targets_are_refused() {
        assert_eq!(Scope::loopback().check(&TargetSet::default(), false), Err(ScopeError::Empty));
    }

    #[test]
    fn huge_needs_consent() {
        let scope = Scope::parse_file("0.0.0.0/0").unwrap();
        let all = set("0.0.0.0/0");
        assert!(matches!(scope.check(&all, false), Err(ScopeError::Huge { .. })));
        assert!(scope.check(&all, true).is_ok());
        assert!(scope.check(&set("198.18.0.0/15"), false).is_ok());
    }
}
