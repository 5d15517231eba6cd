//! `vantage-agent`: the part of Vantage that touches the network.
//!
//! Agents run in cloud regions, the true outside view of an organisation.
//! They dial out to the coordinator (so they work behind NAT), accept typed
//! work only, check every address against the assignment's scope and their
//! own local policy, probe, and stream observations back.
//!
//! # Layout
//! * [`cli`]: the command line of `vantage-agent`.
//! * [`config`]: flags and their validation into an [`AgentConfig`].
//! * [`config_file`]: TOML configuration files for both binaries, keyed by their options.
//! * [`identity`]: enrollment, the certificate and key it keeps, renewal.
//! * [`policy`]: the agent's local allow/deny lists.
//! * [`session`]: the connection to the coordinator and its reconnect loop.
//! * [`work`]: running one assignment: batches, acknowledgements, completion.
//! * [`tally`]: spotting hosts that answer on every port.
//! * [`detection`]: the stage that identifies the service on every open port.
//! * [`engine`]: the scanner itself (probe order, connect, SYN and UDP scans, banners).
//! * [`metrics`]: the agent's Prometheus metrics.
//! * [`endpoint`]: the HTTP endpoint of metrics and health, shared with the `vantage` binary.
//! * [`process`]: logging and signal handling, shared with the `vantage` binary.

pub mod cli;
pub mod config;
pub mod config_file;
pub mod detection;
pub mod endpoint;
pub mod engine;
pub mod identity;
pub mod metrics;
pub mod policy;
pub mod process;
pub mod session;
pub mod tally;
pub mod work;

pub use config::{AgentArgs, AgentConfig};
pub use session::Agent;
