//! nmap's `nmap-service-probes` format (being written): line syntax,
//! port lists and version templates.

mod parse;
mod ports;
mod template;

pub use parse::{LineError, LineErrorKind};
pub use ports::{ExcludeList, PortList};
pub use template::MAX_FIELD_LEN;
