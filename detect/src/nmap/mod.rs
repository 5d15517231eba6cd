//! nmap-service-probes (being written).
