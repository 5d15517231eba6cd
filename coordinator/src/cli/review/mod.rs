//! `vantage diff` and `vantage baseline`: what changed between two review
//! periods, and the baselines they compare.

pub mod baseline;
pub mod diff;
