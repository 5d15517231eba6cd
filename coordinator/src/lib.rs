//! The Vantage coordinator and operator CLI.
//!
//! The coordinator is where a monthly review's state lives: the scope, the
//! scans and their shards, the leases given to agents, and every observation.
//! Operators reach it through the CLI; agents through their stream.
//!
//! # Layout
//! * [`server`]: the gRPC services, planner and scheduler (`vantage serve`).
//! * [`store`]: sled behind a typed API; the only module that touches sled.
//! * [`review`]: periods' baselines and the diff between them.
//! * [`notify`]: tickets and notifications (Jira, GitHub, webhooks, Slack, email) from findings.
//! * [`nmap_xml`]: scan results as an nmap XML report, for the tools that read those.
//! * [`report`]: the monthly report (HTML, Markdown, JSON, CSV) built from findings,
//!   the diff and baselines.
//! * [`workflow`]: the review's multi-step work (re-probes, verification, a
//!   whole review) as calls on the Control API, shared by the CLI and the schedule.
//! * [`schedule`]: the monthly review, its reminders and the daily re-check
//!   of critical findings, run by `vantage serve`.
//! * [`cli`]: the operator commands, one folder per noun, one file per verb,
//!   and the embedded mode that runs a coordinator and an agent in-process.

pub mod cli;
pub mod nmap_xml;
pub mod notify;
pub mod report;
pub mod review;
pub mod schedule;
pub mod server;
pub mod store;
pub mod workflow;
