//! `vantage diff`, `vantage baseline`, `vantage import`, `vantage review`
//! and `vantage findings`: what changed between two review periods, the
//! baselines they compare, history brought in from nmap reports, and the
//! findings people act on. And the review's local files, checked and edited
//! offline: `vantage register`, `vantage inventory`, `vantage vulns` and
//! `vantage integrations`.

pub mod baseline;
pub mod confirm;
pub mod diff;
pub mod findings;
pub mod import;
pub mod integrations;
pub mod inventory;
pub mod register;
pub mod verify;
pub mod vulns;
