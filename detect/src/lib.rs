//! Service and version detection: what answers on an open port.
//!
//! Port numbers lie; the answer must come from the service. For each open
//! port the agent holds one bounded conversation (total time and bytes
//! capped): listen first, since many protocols speak first; then send the
//! probes that the port and the first bytes suggest; then the rest by
//! likelihood, until a parser recognises the answer or the budget runs out.
//!
//! # Layout
//! * [`nmap`]: nmap's `nmap-service-probes` format, parsed and matched with PCRE2.
pub mod cpe;
pub mod nmap;
pub mod protocols;
