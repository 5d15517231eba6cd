//! Building SYNs and reading the answers, with etherparse.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header, Ipv4Slice, TcpHeader, TcpOptionElement, TcpSlice};
use vantage_shared::PortState;

/// A SYN with an MSS option (as real stacks send; some filters drop bare SYNs).
pub fn syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut tcp = TcpHeader::new(sport, dport, seq, 1024);
    tcp.syn = true;
    tcp.set_options(&[TcpOptionElement::MaximumSegmentSize(1460)]).expect("one option fits");
    tcp.checksum = tcp.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &[]).expect("no payload");
    tcp.to_bytes().to_vec()
}

/// The same SYN inside its IPv4 header, for a send-only `IPPROTO_RAW` socket.
pub fn ipv4_syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let tcp = syn(src, dst, sport, dport, seq);
    let mut ip =
        Ipv4Header::new(tcp.len() as u16, 64, IpNumber::TCP, src.octets(), dst.octets()).expect("a SYN is small");
    ip.header_checksum = ip.calc_header_checksum();
    let mut packet = ip.to_bytes().to_vec();
    packet.extend_from_slice(&tcp);
    packet
}

/// A TCP answer, as far as a SYN scan cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub from: Ipv4Addr,
    pub sport: u16,
    /// Our source port it was sent to.
    pub dport: u16,
    pub ack: u32,
    pub state: PortState,
}

/// Reads an IPv4 packet as the answer to a SYN: SYN-ACK (open) or RST-ACK
/// (closed). Anything else is not an answer.
pub fn answer(packet: &[u8]) -> Option<Answer> {
    let ip = Ipv4Slice::from_slice(packet).ok()?;
    let tcp = TcpSlice::from_slice(ip.payload().payload).ok()?;
    if !tcp.ack() {
        return None;
    }
    let state = match (tcp.syn(), tcp.rst()) {
        (true, false) => PortState::Open,
        (false, true) => PortState::Closed,
        _ => return None,
    };
    Some(Answer {
        from: ip.header().source_addr(),
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        ack: tcp.acknowledgment_number(),
        state,
    })
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::*;

    #[test]
    fn syns_carry_the_sequence_number_and_a_valid_checksum() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 7));
        let bytes = syn(src, dst, 40_000, 443, 0xdead_beef);
        let tcp = TcpSlice::from_slice(&bytes).unwrap();
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!((tcp.source_port(), tcp.destination_port(), tcp.sequence_number()), (40_000, 443, 0xdead_beef));
        assert_eq!(tcp.calc_checksum_ipv4(src.octets(), dst.octets()).unwrap(), tcp.checksum());
    }

    fn reply(syn: bool, rst: bool, ack: bool) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4([198, 18, 1, 7], [198, 18, 0, 1], 64).tcp(443, 40_000, 7, 1024);
        if syn {
            b = b.syn();
        }
        if rst {
            b = b.rst();
        }
        if ack {
            b = b.ack(0xdead_bef0);
        }
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    }

    #[test]
    fn syn_ack_is_open_and_rst_ack_is_closed() {
        let open = answer(&reply(true, false, true)).unwrap();
        assert_eq!(
            (open.state, open.from, open.sport, open.dport, open.ack),
            (PortState::Open, Ipv4Addr::new(198, 18, 1, 7), 443, 40_000, 0xdead_bef0)
        );
        assert_eq!(answer(&reply(false, true, true)).unwrap().state, PortState::Closed);
    }

    #[test]
    fn ipv4_syns_are_whole_packets() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 7));
        let bytes = ipv4_syn(src, dst, 40_000, 22, 7);
        let ip = Ipv4Slice::from_slice(&bytes).unwrap();
        assert_eq!((ip.header().source_addr(), ip.header().destination_addr()), (src, dst));
        let tcp = TcpSlice::from_slice(ip.payload().payload).unwrap();
        assert!(tcp.syn());
        assert_eq!(tcp.destination_port(), 22);
    }

    #[test]
    fn other_packets_are_not_answers() {
        assert_eq!(answer(&reply(true, false, false)), None, "a bare SYN");
        assert_eq!(answer(&reply(false, false, true)), None, "a bare ACK");
        assert_eq!(answer(&[0x45, 0, 0]), None, "garbage");
    }
}
