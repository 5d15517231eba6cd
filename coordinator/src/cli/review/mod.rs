//! `vantage diff`, `vantage baseline` and `vantage import`: what changed
//! between two review periods, the baselines they compare, and history
//! brought in from nmap reports. And the review's local files, checked and
//! edited offline: `vantage register`, `vantage inventory` and `vantage vulns`.

pub mod baseline;
pub mod confirm;
pub mod diff;
pub mod import;
pub mod inventory;
pub mod register;
pub mod vulns;
