//! Hand-offs between workers: a datagram reassembled from fragments goes to the worker that owns
//! its flow.
//!
//! A NIC's symmetric RSS (and the file source, which dispatches the same way) spreads fragments
//! by their address pair only, since only the first fragment carries the ports, and every other
//! packet by its 5-tuple. So the worker that reassembles a datagram is often not the one that
//! holds its flow: a DNS response larger than the MTU would make a second flow, one direction
//! each. Each ordered pair of workers has a bounded single-producer single-consumer ring
//! ([`rtrb`], lock-free); the reassembling worker copies the datagram into a slot from the
//! pair's return ring and pushes it; the owner takes it at its next burst and applies it in
//! packet order: before its first own packet that comes later in the input (by the file's
//! packet number when the source gives one, else by timestamp), or at the end of the input.
//! Slots go back through the return ring, so nothing is allocated once a slot has grown to the
//! largest datagram it carried. A full ring drops the datagram, counted.
//!
//! Nothing on the packet path is shared but the rings themselves.

use crate::decode::Decoded;
use crate::time::Micros;
use rtrb::{Consumer, Producer, RingBuffer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Slots per ordered pair of workers.
pub const DEFAULT_RING: usize = 256;

/// A reassembled datagram on its way to its flow's worker.
#[derive(Debug, Default)]
pub struct Handoff {
    /// The datagram decoded (offsets into `packet`).
    pub d: Decoded,
    /// The reassembled IP datagram.
    pub packet: Vec<u8>,
    /// The bytes it counts on its flow.
    pub bytes: u32,
    /// The time of the fragment that completed it.
    pub ts: Micros,
    /// That fragment's position in the input (1-based; 0: the source numbers no packets).
    pub seq: u64,
    /// The sending worker (its slot goes back there).
    from: usize,
}

impl Handoff {
    /// Whether this hand-off comes before a packet at input position `seq` (or, without
    /// numbers, at time `ts`).
    #[inline]
    pub fn before(&self, seq: u64, ts: Micros) -> bool {
        if seq != 0 && self.seq != 0 {
            self.seq < seq
        } else {
            self.ts <= ts
        }
    }

    fn seq_ts(&self) -> (u64, Micros) {
        (self.seq, self.ts)
    }
}

/// What a worker's hand-offs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardCounters {
    /// Datagrams handed to another worker.
    pub sent: u64,
    /// Datagrams dropped because the ring to their worker was full.
    pub ring_full: u64,
    /// Datagrams taken from other workers and applied to a flow here.
    pub received: u64,
    /// Of those, applied after this worker had already processed a later packet (the other
    /// worker was behind: packet order across the two was not kept).
    pub late: u64,
    /// Times a worker stopped waiting for the others' packet time ([`Gate`]).
    pub gate_timeouts: u64,
}

/// Packet-time order across workers, for a replay whose queues carry no common order (DPDK
/// `net_pcap` reading one split file per queue): each worker publishes a lower bound of the
/// time of its next packet (its watermark), and before a packet at time `t` waits until every
/// other worker's watermark has reached `t` (ties go to the lower worker index). Then every
/// datagram another worker reassembled from earlier fragments is already in this worker's ring.
/// The earliest packet of all can always go, so the workers never wait on each other in a
/// circle. A live sensor does not use it: it costs a look at every other worker's watermark per
/// packet.
#[derive(Debug, Clone)]
pub struct Gate {
    marks: Arc<[crossbeam_utils::CachePadded<AtomicU64>]>,
}

impl Gate {
    pub fn new(n: usize) -> Gate {
        Gate { marks: (0..n).map(|_| crossbeam_utils::CachePadded::new(AtomicU64::new(0))).collect() }
    }

    /// Worker `me`'s next packet is at `ts` or later (`u64::MAX`: its input is done).
    #[inline]
    pub fn publish(&self, me: usize, ts: Micros) {
        self.marks[me].store(ts, Ordering::Release);
    }

    #[inline]
    fn clear(&self, me: usize, ts: Micros) -> bool {
        self.marks.iter().enumerate().all(|(j, m)| {
            if j == me {
                return true;
            }
            let w = m.load(Ordering::Acquire);
            w > ts || (w == ts && j > me)
        })
    }

    /// Waits until worker `me` may take a packet at `ts`; false if it gave up after
    /// `patience` (a worker that stopped without saying so).
    pub fn wait(&self, me: usize, ts: Micros, patience: std::time::Duration) -> bool {
        if self.clear(me, ts) {
            return true;
        }
        self.publish(me, ts);
        let start = std::time::Instant::now();
        let mut spins = 0u32;
        while !self.clear(me, ts) {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
                if spins.is_multiple_of(1024) && start.elapsed() > patience {
                    return false;
                }
            }
        }
        true
    }
}

impl ShardCounters {
    pub fn add(&mut self, o: &ShardCounters) {
        self.sent += o.sent;
        self.ring_full += o.ring_full;
        self.received += o.received;
        self.late += o.late;
        self.gate_timeouts += o.gate_timeouts;
    }
}

struct Link {
    /// Full slots to the peer.
    tx: Producer<Handoff>,
    /// Empty slots coming back from the peer.
    free: Consumer<Handoff>,
}

struct Inbox {
    /// Full slots from the peer.
    rx: Consumer<Handoff>,
    /// Empty slots going back.
    back: Producer<Handoff>,
}

/// One worker's end of the mesh.
pub struct Shard {
    pub me: usize,
    pub n: usize,
    /// To each other worker (None at `me`).
    out: Vec<Option<Link>>,
    /// From each other worker (None at `me`).
    inbox: Vec<Option<Inbox>>,
    /// Taken from the inboxes, waiting for their place in this worker's packet order; sorted.
    held: VecDeque<Handoff>,
    /// The latest own packet applied: (seq, ts).
    last: (u64, Micros),
    /// Replay in packet-time order across workers (None: live, or the file source's order).
    gate: Option<Gate>,
    pub counters: ShardCounters,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("me", &self.me).field("n", &self.n).field("held", &self.held.len()).finish()
    }
}

/// The rings between `n` workers, `ring` slots per ordered pair: one [`Shard`] per worker.
pub fn mesh(n: usize, ring: usize) -> Vec<Shard> {
    let ring = ring.max(1);
    let mut shards: Vec<Shard> = (0..n)
        .map(|me| Shard {
            me,
            n,
            out: (0..n).map(|_| None).collect(),
            inbox: (0..n).map(|_| None).collect(),
            held: VecDeque::with_capacity(ring * n.saturating_sub(1)),
            last: (0, 0),
            gate: None,
            counters: ShardCounters::default(),
        })
        .collect();
    for a in 0..n {
        for b in 0..n {
            if a == b {
                continue;
            }
            let (tx, rx) = RingBuffer::<Handoff>::new(ring);
            let (mut back, free) = RingBuffer::<Handoff>::new(ring);
            for _ in 0..ring {
                let _ = back.push(Handoff { from: a, ..Handoff::default() });
            }
            shards[a].out[b] = Some(Link { tx, free });
            shards[b].inbox[a] = Some(Inbox { rx, back });
        }
    }
    shards
}

impl Shard {
    /// The worker that owns a flow of hash `hash` (the flow table's [`crate::hash::key_hash`]):
    /// the file source's and the replay split's choice.
    #[inline]
    pub fn owner(&self, hash: u64) -> usize {
        crate::hash::worker_of(hash, self.n)
    }

    /// Hands a datagram to worker `to`; false (counted) when its ring is full.
    #[cold]
    pub fn send(&mut self, to: usize, d: &Decoded, packet: &[u8], bytes: u32, ts: Micros, seq: u64) -> bool {
        let Some(link) = self.out.get_mut(to).and_then(|l| l.as_mut()) else { return false };
        let Ok(mut h) = link.free.pop() else {
            self.counters.ring_full += 1;
            return false;
        };
        h.d = *d;
        h.packet.clear();
        h.packet.extend_from_slice(packet);
        h.bytes = bytes;
        h.ts = ts;
        h.seq = seq;
        h.from = self.me;
        match link.tx.push(h) {
            Ok(()) => {
                self.counters.sent += 1;
                true
            }
            // Cannot happen (as many slots as the ring holds), but a slot is never lost silently.
            Err(rtrb::PushError::Full(h)) => {
                self.counters.ring_full += 1;
                drop(h);
                false
            }
        }
    }

    /// Keeps packet-time order with the other workers through `gate` (see [`Gate`]).
    pub fn set_gate(&mut self, gate: Gate) {
        self.gate = Some(gate);
    }

    /// With a gate: waits for the other workers to reach `ts`, then takes what they sent.
    #[inline]
    pub fn sync(&mut self, ts: Micros) {
        if let Some(g) = &self.gate {
            if !g.wait(self.me, ts, std::time::Duration::from_secs(2)) {
                self.counters.gate_timeouts += 1;
            }
            self.poll();
        }
    }

    /// With a gate: this worker's next packet is at `ts` or later (`u64::MAX`: none will come).
    #[inline]
    pub fn publish(&self, ts: Micros) {
        if let Some(g) = &self.gate {
            g.publish(self.me, ts);
        }
    }

    /// Takes what the other workers sent into the held queue, in order. Once per burst.
    #[inline]
    pub fn poll(&mut self) {
        for i in 0..self.inbox.len() {
            let Some(ib) = self.inbox[i].as_mut() else { continue };
            while let Ok(h) = ib.rx.pop() {
                let late = self.last != (0, 0) && h.before(self.last.0, self.last.1);
                // A hand-off that is already behind this worker's packets goes first.
                let at = if late {
                    self.counters.late += 1;
                    0
                } else {
                    self.held.partition_point(|x| x.seq_ts() <= h.seq_ts())
                };
                self.held.insert(at, h);
            }
        }
    }

    /// Whether hand-offs wait here.
    #[inline]
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// The next held hand-off due before an own packet at (`seq`, `ts`) (`None`: none due).
    #[inline]
    pub fn next_due(&mut self, seq: u64, ts: Micros) -> Option<Handoff> {
        if self.held.front()?.before(seq, ts) {
            self.held.pop_front()
        } else {
            None
        }
    }

    /// The next held hand-off, whatever its place (the end of the input).
    pub fn next_any(&mut self) -> Option<Handoff> {
        self.held.pop_front()
    }

    /// An own packet at (`seq`, `ts`) was processed.
    #[inline]
    pub fn mark(&mut self, seq: u64, ts: Micros) {
        self.last = (seq, ts);
    }

    /// Gives an applied hand-off's slot back to its sender.
    pub fn recycle(&mut self, h: Handoff) {
        self.counters.received += 1;
        if let Some(ib) = self.inbox.get_mut(h.from).and_then(|i| i.as_mut()) {
            let _ = ib.back.push(h);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn handoffs_arrive_in_order_and_slots_come_back() {
        let mut m = mesh(3, 2);
        let d = Decoded::default();
        let (a, rest) = m.split_at_mut(1);
        let (b, c) = rest.split_at_mut(1);
        let (a, b, c) = (&mut a[0], &mut b[0], &mut c[0]);
        assert!(b.send(0, &d, b"two", 3, 20, 7));
        assert!(c.send(0, &d, b"one", 3, 10, 5));
        assert!(c.send(0, &d, b"three", 5, 30, 9));
        // Two slots per pair: the third from c is refused, counted.
        assert!(!c.send(0, &d, b"four", 4, 40, 11));
        assert_eq!(c.counters.ring_full, 1);
        a.poll();
        assert!(a.next_due(5, 0).is_none(), "nothing before packet 5");
        let h = a.next_due(6, 0).expect("packet 5's datagram is due before packet 6");
        assert_eq!(h.packet, b"one");
        a.recycle(h);
        let h = a.next_due(100, 0).unwrap();
        assert_eq!(h.packet, b"two");
        a.recycle(h);
        let h = a.next_any().unwrap();
        assert_eq!(h.packet, b"three");
        a.recycle(h);
        assert!(a.next_any().is_none());
        assert_eq!(a.counters.received, 3);
        // The slots are back: c can send twice again.
        assert!(c.send(0, &d, b"x", 1, 50, 12));
        assert!(c.send(0, &d, b"y", 1, 60, 13));
        let _ = b;
    }

    #[test]
    fn without_numbers_order_is_by_time_and_late_ones_are_counted() {
        let mut m = mesh(2, 4);
        let (a, b) = m.split_at_mut(1);
        let (a, b) = (&mut a[0], &mut b[0]);
        let d = Decoded::default();
        a.mark(0, 100);
        b.send(0, &d, b"late", 4, 50, 0);
        b.send(0, &d, b"ok", 2, 150, 0);
        a.poll();
        assert_eq!(a.counters.late, 1);
        assert_eq!(a.next_due(0, 120).unwrap().packet, b"late");
        assert!(a.next_due(0, 120).is_none());
        assert_eq!(a.next_due(0, 150).unwrap().packet, b"ok");
    }
}
