//! Key encodings: big-endian and fixed-width, so that sled's ordered
//! iteration is the natural order (scan or period and revision, then
//! address, protocol, port).

use std::net::IpAddr;

use vantage_shared::{Period, Proto};

pub fn scan_key(scan_id: u64) -> [u8; 8] {
    scan_id.to_be_bytes()
}

pub fn shard_key(scan_id: u64, shard_id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&scan_id.to_be_bytes());
    k[8..].copy_from_slice(&shard_id.to_be_bytes());
    k
}

/// (scan, family, address as 16 bytes, protocol, port, region): schema 3's
/// key of one observation, still read in place ([`super::observations`]).
/// IPv4 sorts before IPv6 through the family byte.
#[cfg(test)]
pub fn observation_key(scan_id: u64, addr: IpAddr, proto: Proto, port: u16, region: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + 1 + 16 + 1 + 2 + region.len());
    k.extend_from_slice(&scan_id.to_be_bytes());
    push_port_key(&mut k, addr, proto, port);
    k.extend_from_slice(region.as_bytes());
    k
}

/// (scan, shard, lease epoch, batch sequence number): one batch of
/// observations (schema 4), a shard's blocks in the order they were sent.
pub fn observation_block_key(scan_id: u64, shard_id: u64, epoch: u64, seq: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&shard_key(scan_id, shard_id));
    k[16..24].copy_from_slice(&epoch.to_be_bytes());
    k[24..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Family and address, as [`push_port_key`] starts: shorter than, and so
/// sorted before, every port key of that address.
pub fn addr_key(addr: IpAddr) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    push_addr_key(&mut k, addr);
    k
}

/// (period, revision): a baseline revision, and the prefix of its blocks of
/// entries (each keyed further by its first entry's [`push_port_key`]; schema
/// 1 keyed every single entry that way).
pub fn baseline_key(period: Period, revision: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&period.number().to_be_bytes());
    k[4..].copy_from_slice(&revision.to_be_bytes());
    k
}

/// Family, address as 16 bytes, protocol number, port: the order of
/// [`vantage_shared::PortKey`].
pub(super) fn push_port_key(k: &mut Vec<u8>, addr: IpAddr, proto: Proto, port: u16) {
    push_addr_key(k, addr);
    k.push(match proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    });
    k.extend_from_slice(&port.to_be_bytes());
}

fn push_addr_key(k: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            k.push(4);
            k.extend_from_slice(&[0u8; 12]);
            k.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            k.push(6);
            k.extend_from_slice(&a.octets());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observation_keys_sort_naturally() {
        let k = |a: &str, p| observation_key(1, a.parse().unwrap(), Proto::Tcp, p, "r1");
        let mut keys = vec![k("::1", 1), k("198.18.0.10", 22), k("198.18.0.9", 443), k("198.18.0.9", 80)];
        keys.sort();
        assert_eq!(keys, vec![k("198.18.0.9", 80), k("198.18.0.9", 443), k("198.18.0.10", 22), k("::1", 1)]);
        assert!(observation_key(1, "::1".parse().unwrap(), Proto::Tcp, 1, "") < scan_key(2).to_vec());
    }
}
