//! nmap's `nmap-service-probes` format (being written): line syntax,
//! port lists, version templates, and patterns compiled with PCRE2.

mod parse;
pub mod pattern;
mod ports;
mod template;

pub use parse::{LineError, LineErrorKind};
pub use ports::{ExcludeList, PortList};
pub use template::MAX_FIELD_LEN;
