//! `vantage diff`, `vantage baseline`, `vantage import`, `vantage review`
//! and `vantage findings`: what changed between two review periods, the
//! baselines they compare, history brought in from nmap reports, and the
//! findings people act on.

pub mod baseline;
pub mod confirm;
pub mod diff;
pub mod findings;
pub mod import;
