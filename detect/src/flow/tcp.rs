//! TCP session tracking (Suricata-like: the handshake, then the FIN/RST exchange) and
//! sequence-number arithmetic.

use super::table::Flow;
use super::*;

/// Sequence-number comparison modulo 2^32.
#[inline]
pub(crate) fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Suricata-like TCP session tracking from the handshake and the FIN/RST exchange. `dir` 0 is
/// to-server. Only a flow that opens with a SYN gets a session (midstream pick-up is off).
#[inline]
pub(crate) fn tcp_update(f: &mut Flow, dir: usize, d: &Decoded) {
    let fl = TcpFlags(d.tcp_flags);
    let seq = d.tcp_seq;
    let ack = d.tcp_ack;
    let syn = fl.has(TcpFlags::SYN);
    let fin = fl.has(TcpFlags::FIN);
    let has_ack = fl.has(TcpFlags::ACK);
    let t = &mut f.tcp;
    if t.state == TcpState::None {
        if dir == 0 && syn && !has_ack && f.pkts == [1, 0] {
            t.state = TcpState::SynSent;
            t.next_seq[0] = seq.wrapping_add(1);
            t.window[0] = d.tcp_window;
        }
        return;
    }
    let other = 1 - dir;
    if fl.has(TcpFlags::RST) {
        let valid = if t.state == TcpState::SynSent {
            dir == 1 && has_ack && ack == t.next_seq[0]
        } else {
            // The window scale is in the SYN options, which we do not parse: allow the largest
            // (14), so a valid RST on a scaled window is never refused.
            let win = (t.window[other].max(1) as u32) << 14;
            let off = seq.wrapping_sub(t.next_seq[dir]);
            off < win
        };
        if valid {
            t.state = TcpState::Closed;
        }
        return;
    }
    let advance = d.payload_len as u32 + syn as u32 + fin as u32;
    let acks_other_fin = has_ack && ack == t.next_seq[other];
    match t.state {
        TcpState::SynSent => {
            if dir == 1 && syn && has_ack && ack == t.next_seq[0] {
                t.state = TcpState::SynRecv;
                t.next_seq[1] = seq.wrapping_add(1);
                t.window[1] = d.tcp_window;
            }
            return;
        }
        TcpState::SynRecv => {
            if dir == 0 && has_ack && !syn && ack == t.next_seq[1] {
                t.state = TcpState::Established;
            } else {
                return;
            }
        }
        _ => {}
    }
    let end = seq.wrapping_add(advance);
    if seq_lt(t.next_seq[dir], end) {
        t.next_seq[dir] = end;
    }
    t.window[dir] = d.tcp_window;
    // Suricata's naming: a FIN from the client moves ESTABLISHED to CLOSE_WAIT, a FIN from the
    // server to FIN_WAIT1; both paths end in CLOSED once the last FIN is acknowledged.
    t.state = match (t.state, dir, fin) {
        (TcpState::Established, 0, true) => TcpState::CloseWait,
        (TcpState::Established, 1, true) => TcpState::FinWait1,
        (TcpState::CloseWait, 1, true) => TcpState::LastAck,
        (TcpState::LastAck, 0, false) if acks_other_fin => TcpState::Closed,
        (TcpState::FinWait1, 0, true) if acks_other_fin => TcpState::TimeWait,
        (TcpState::FinWait1, 0, true) => TcpState::Closing,
        (TcpState::FinWait1, 0, false) if acks_other_fin => TcpState::FinWait2,
        (TcpState::FinWait2, 0, true) => TcpState::TimeWait,
        (TcpState::Closing, _, false) if acks_other_fin => TcpState::TimeWait,
        (TcpState::TimeWait, 1, false) if acks_other_fin => TcpState::Closed,
        (s, _, _) => s,
    };
}
