//! `vantage reachability`: a scan's open ports from every region it ran in.
//!
//! One verb, the default: [`show`].

pub mod show;
