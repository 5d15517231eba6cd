//! Service and version detection: what answers on an open port.
//!
//! Port numbers lie; the answer must come from the service. For each open
//! port the agent holds one bounded conversation (total time and bytes
//! capped): listen first, since many protocols speak first; then send the
//! probes that the port and the first bytes suggest; then the rest by
//! likelihood, until a parser recognises the answer or the budget runs out.
//!
//! # Layout
//! * [`conversation`]: the [`Detector`] and its bounded conversation with one port.
//! * [`plan`]: which probes a port gets, in which order, and how long to listen.
//! * [`protocols`]: the built-in probes and parsers, a module per protocol (UDP ones in `udp`).
//! * [`tls`]: the TLS handshake through rustls and the certificate facts.
//! * [`cpe`]: CPE 2.3 names.
//! * [`nmap`]: nmap's `nmap-service-probes` format, parsed and matched with PCRE2.

pub mod conversation;
pub mod cpe;
pub mod nmap;
pub mod plan;
pub mod protocols;
pub mod tls;

pub use conversation::{DetectConfig, Detection, Detector};
