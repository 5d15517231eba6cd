//! Harness for Vantage's end-to-end tests: real binaries, real sockets.
//!
//! # Layout
//! * [`bins`]: building and locating `vantage` and `vantage-agent`.
//! * [`proc`]: child processes that are killed (by PID) when the test ends,
//!   and commands run with a time limit.
//! * [`targets`]: loopback listeners with a known ground truth.
//!
//! Tests only ever touch loopback addresses (127.0.0.0/8).

pub mod bins;
pub mod proc;
pub mod targets;
