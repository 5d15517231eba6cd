//! Types that the Vantage coordinator and its agents share.
//!
//! Both sides must agree on what a target, a scope, a port list and an
//! observation are, and on how a scan is cut into shards; this crate is that
//! agreement. It knows nothing of sockets or storage.
//!
//! # Layout
//! * [`addr`]: inclusive address ranges, IPv4 and IPv6 on one code path.
//! * [`target`]: target sets and their text syntax (addresses, CIDRs, ranges, `!` exclusions).
//! * [`scope`]: what may be scanned at all; checked by coordinator and agent alike.
//! * [`ports`]: port specifications (`22,80`, `1-1024`, `top-100`, `all`).
//! * [`observation`]: what an agent saw at one port.
//! * [`service`]: what answers on an open port (service, product, version, category, TLS).
//! * [`options`]: probe options, typed.
//! * [`version`]: service version strings, ordered, and version ranges.
//! * [`period`]: review periods (`2026-11`).
//! * [`baseline`]: a period's merged exposures, what diffs compare.
//! * [`shard`]: cutting a scan into work units.
//! * [`assignment`]: a leased shard, as the agent receives it.
//! * [`convert`]: the edge to the wire types of `vantage-proto`.

pub mod addr;
pub mod assignment;
pub mod baseline;
pub mod convert;
pub mod observation;
pub mod options;
pub mod period;
pub mod ports;
pub mod scope;
pub mod service;
pub mod shard;
pub mod target;
pub mod version;

pub use addr::AddrRange;
pub use assignment::{Assignment, LeaseKey};
pub use baseline::{BaselineEntry, PortKey};
pub use observation::{Observation, PortState, Proto};
pub use options::{ProbeOptions, ScanMode};
pub use period::Period;
pub use ports::PortSpec;
pub use scope::{Scope, ScopeError};
pub use service::{Access, Category, Method, ServiceFacts, TlsFacts};
pub use shard::Shard;
pub use target::{TargetSet, TargetSpec};
pub use version::{Version, VersionRange};
