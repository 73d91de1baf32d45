//! TCP stream reassembly, one [`Stream`] per direction of a flow.
//!
//! Contract: [`Stream::segment`] takes segments in capture order and hands the parser the
//! stream's bytes in sequence order as [`Chunk`]s: data straight from the packet when it is the
//! next expected segment (zero copy), buffered data once a hole is filled, and a
//! [`Chunk::Gap`] where bytes are known to be lost. Bounds:
//! - out-of-order bytes are buffered up to [`StreamLimits::ooo_per_stream`] per direction and
//!   [`StreamLimits::ooo_total`] per worker ([`Budget`]); past either bound the hole is declared
//!   a gap and the buffered bytes are delivered after it;
//! - a direction delivers at most [`StreamLimits::depth`] bytes (Suricata's
//!   `stream.reassembly.depth`, default 1 MiB); the flow is still counted afterwards.
//!
//! Overlaps follow the BSD policy (Suricata's default `host-os-policy`): bytes already delivered
//! are never replaced (a retransmission with different data is counted, not re-parsed);
//! buffered segments are kept sorted by start, so a segment that starts earlier wins the bytes it
//! shares with one that starts later, and of two that start at the same sequence number the first
//! received wins.
//!
//! A hole is also declared a gap when the other side acknowledges past it: the receiver got
//! bytes the capture lost, and they will not come again.

/// Sequence-number comparison modulo 2^32.
#[inline]
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// What the parser receives, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes are missing.
    Gap(u32),
    /// This many bytes arrived that the parser asked not to see (a body of known length): the
    /// parser's `out` returns how many of the next bytes it can do without; the stream then
    /// only counts them, and reports the count once they have all passed, or before a gap or
    /// the end of the stream.
    Skipped(u64),
}

/// Reassembly bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Bytes delivered per direction (0 = unlimited).
    pub depth: u32,
    /// Out-of-order bytes buffered per direction.
    pub ooo_per_stream: usize,
    /// Out-of-order bytes buffered per worker.
    pub ooo_total: usize,
    /// A segment further ahead of the next expected byte than this is not buffered (it is
    /// counted as out of window).
    pub max_ahead: u32,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits { depth: 1 << 20, ooo_per_stream: 64 << 10, ooo_total: 64 << 20, max_ahead: 16 << 20 }
    }
}

/// Reassembly counters (per worker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Segments delivered in order, straight from the packet.
    pub in_order: u64,
    /// Segments buffered out of order.
    pub ooo_buffered: u64,
    /// Segments or parts already delivered (retransmissions, overlaps).
    pub retransmitted: u64,
    /// Out-of-order segments whose bytes differ from a buffered segment they overlap (an
    /// evasion attempt or a broken stack). Bytes already delivered are not kept, so a
    /// retransmission of them is counted as `retransmitted` only.
    pub overlap_mismatch: u64,
    /// Holes declared lost.
    pub gaps: u64,
    /// Of those, holes declared because a buffering bound was reached.
    pub ooo_overflow: u64,
    /// Segments too far ahead to buffer.
    pub out_of_window: u64,
    /// Directions that reached the depth limit.
    pub depth_reached: u64,
    /// Out-of-order bytes buffered now (per worker).
    pub ooo_bytes: u64,
    /// Most out-of-order bytes buffered at once.
    pub ooo_bytes_peak: u64,
    /// Of `in_order`, segments inside a skipped body that the flow table passed over without
    /// the session ([`crate::app::AppLayer::fast_sync`]).
    pub fast_skipped: u64,
}

impl StreamCounters {
    pub fn add(&mut self, o: &StreamCounters) {
        self.in_order += o.in_order;
        self.ooo_buffered += o.ooo_buffered;
        self.retransmitted += o.retransmitted;
        self.overlap_mismatch += o.overlap_mismatch;
        self.gaps += o.gaps;
        self.ooo_overflow += o.ooo_overflow;
        self.out_of_window += o.out_of_window;
        self.depth_reached += o.depth_reached;
        self.ooo_bytes += o.ooo_bytes;
        self.ooo_bytes_peak = self.ooo_bytes_peak.max(o.ooo_bytes_peak);
        self.fast_skipped += o.fast_skipped;
    }
}

/// The worker's shared reassembly resources: the byte budget and recycled segment buffers
/// (so buffering allocates only while the pool warms up).
#[derive(Debug, Default)]
pub struct Budget {
    pub limits: StreamLimits,
    pub counters: StreamCounters,
    spare: Vec<Vec<u8>>,
}

impl Budget {
    pub fn new(limits: StreamLimits) -> Self {
        Budget { limits, counters: StreamCounters::default(), spare: Vec::new() }
    }

    fn take(&mut self, data: &[u8]) -> Vec<u8> {
        let mut v = self.spare.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(data);
        self.counters.ooo_bytes += data.len() as u64;
        self.counters.ooo_bytes_peak = self.counters.ooo_bytes_peak.max(self.counters.ooo_bytes);
        v
    }

    fn give(&mut self, v: Vec<u8>) {
        self.counters.ooo_bytes -= v.len() as u64;
        // Keep a bounded number of spare buffers.
        if self.spare.len() < 4096 {
            self.spare.push(v);
        }
    }
}

#[derive(Debug)]
struct Seg {
    seq: u32,
    data: Vec<u8>,
}

/// One direction of a TCP connection. `repr(C)`, the fields an in-order segment reads first:
/// one cache line holds them.
#[derive(Debug, Default)]
#[repr(C)]
pub struct Stream {
    /// The next sequence number to deliver.
    next: u32,
    /// Whether `next` is set (from the handshake).
    started: bool,
    /// Past the depth limit: nothing more is delivered.
    done: bool,
    /// Bytes delivered so far (gaps included), for the depth limit.
    delivered: u64,
    /// Bytes the parser asked not to see, still to come; and those that came, not yet reported.
    skip: u64,
    skipped: u64,
    /// The sequence number of this direction's FIN, once seen: an ACK of the FIN is not an ACK
    /// of missing data.
    fin: Option<u32>,
    ooo: Vec<Seg>,
    ooo_bytes: usize,
}

impl Stream {
    /// Starts the stream at `next` (the sequence number after the SYN).
    pub fn start(&mut self, next: u32) {
        self.next = next;
        self.started = true;
    }

    #[inline]
    pub fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next sequence number to deliver.
    #[inline]
    pub fn next(&self) -> u32 {
        self.next
    }

    /// Where the body the parser skips ends, when the flow table may pass over its segments
    /// itself (see [`crate::app::AppLayer::fast_sync`]): nothing buffered, no FIN seen, a skip
    /// announced and within the depth limit. Any skip, however short: setting it up is a few
    /// bits on the flow, and every segment passed over saves a session call (with IMIX-sized
    /// segments even a 1 KB body is many segments; a 2 KiB minimum left 28% of the IMIX
    /// capture's in-order segments going through sessions for nothing).
    #[inline]
    pub fn fast_skip(&self, depth: u32) -> Option<u32> {
        if !self.started
            || self.done
            || !self.ooo.is_empty()
            || self.fin.is_some()
            || self.skip == 0
            || self.skip >= 1 << 30
            || (depth != 0 && self.delivered + self.skip > depth as u64)
        {
            return None;
        }
        Some(self.next.wrapping_add(self.skip as u32))
    }

    /// The flow table passed over this direction's bytes up to `upto`, in order, inside the
    /// skip [`Stream::fast_skip`] announced: they are delivered and skipped.
    pub fn fast_consumed(&mut self, upto: u32, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        let n = upto.wrapping_sub(self.next) as u64;
        if n == 0 || n > self.skip || self.done {
            debug_assert!(n == 0, "fast path went {n} bytes past a skip of {}", self.skip);
            return;
        }
        self.next = upto;
        self.skip -= n;
        self.skipped += n;
        self.delivered += n;
        if self.skip == 0 {
            self.flush_skipped(out);
        }
    }

    /// Returns every buffer to the pool (the flow ended or the parser stopped).
    pub fn release(&mut self, budget: &mut Budget) {
        for s in self.ooo.drain(..) {
            budget.give(s.data);
        }
        self.ooo_bytes = 0;
    }

    /// Resets for reuse by another flow.
    pub fn reset(&mut self, budget: &mut Budget) {
        self.release(budget);
        self.next = 0;
        self.delivered = 0;
        self.started = false;
        self.done = false;
        self.fin = None;
        self.skip = 0;
        self.skipped = 0;
    }

    /// This direction sent its FIN at sequence number `seq`.
    pub fn fin(&mut self, seq: u32) {
        self.fin = Some(seq);
    }

    /// Hands `data` (at most the depth limit allows) to `out` and advances.
    #[inline]
    fn deliver(&mut self, chunk: Chunk<'_>, budget: &mut Budget, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        let len = match chunk {
            Chunk::Data(d) => d.len() as u32,
            Chunk::Gap(n) => n,
            Chunk::Skipped(_) => return,
        };
        self.next = self.next.wrapping_add(len);
        if self.done {
            return;
        }
        let depth = budget.limits.depth as u64;
        let room = if depth == 0 { u64::MAX } else { depth.saturating_sub(self.delivered) };
        let take = (len as u64).min(room) as u32;
        if take > 0 {
            match chunk {
                Chunk::Data(d) => {
                    let mut d = &d[..take as usize];
                    while !d.is_empty() {
                        if self.skip == 0 {
                            self.skip = out(Chunk::Data(d));
                            break;
                        }
                        let k = (d.len() as u64).min(self.skip);
                        self.skip -= k;
                        self.skipped += k;
                        d = &d[k as usize..];
                        if self.skip == 0 {
                            self.flush_skipped(out);
                        }
                    }
                }
                _ => {
                    self.flush_skipped(out);
                    self.skip = 0;
                    self.skip = out(Chunk::Gap(take));
                }
            }
        }
        self.delivered += take as u64;
        if depth != 0 && self.delivered >= depth {
            self.flush_skipped(out);
            self.done = true;
            budget.counters.depth_reached += 1;
            self.release(budget);
        }
    }

    /// Reports the skipped bytes not yet reported; the parser's answer is the next skip.
    #[inline]
    fn flush_skipped(&mut self, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        if self.skipped > 0 {
            let n = std::mem::take(&mut self.skipped);
            self.skip = out(Chunk::Skipped(n));
        }
    }

    /// Delivers buffered segments that now start at or before `next`.
    fn drain(&mut self, budget: &mut Budget, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        while let Some(first) = self.ooo.first() {
            if seq_lt(self.next, first.seq) {
                break;
            }
            let s = self.ooo.remove(0);
            self.ooo_bytes -= s.data.len();
            let skip = self.next.wrapping_sub(s.seq) as usize;
            if skip < s.data.len() {
                self.deliver(Chunk::Data(&s.data[skip..]), budget, out);
            }
            budget.give(s.data);
        }
    }

    /// Declares the bytes up to the first buffered segment lost, and delivers what follows.
    fn skip_hole(&mut self, budget: &mut Budget, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        if let Some(first) = self.ooo.first() {
            let hole = first.seq.wrapping_sub(self.next);
            budget.counters.gaps += 1;
            self.deliver(Chunk::Gap(hole), budget, out);
            self.drain(budget, out);
        }
    }

    /// One segment of this direction: `seq` its sequence number, `data` its payload as
    /// captured, `claimed` the payload length the headers give (more than `data.len()` when the
    /// capture cut the frame: the missing tail is a gap).
    #[inline]
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        claimed: u32,
        budget: &mut Budget,
        out: &mut impl FnMut(Chunk<'_>) -> u64,
    ) {
        if !self.started || claimed == 0 {
            return;
        }
        let end = seq.wrapping_add(claimed);
        if !seq_lt(self.next, end) {
            // Entirely before `next`: a retransmission.
            budget.counters.retransmitted += 1;
            return;
        }
        if !seq_lt(self.next, seq) {
            // Starts at or before `next`: deliver the new part now.
            let skip = self.next.wrapping_sub(seq);
            if skip > 0 {
                budget.counters.retransmitted += 1;
            } else {
                budget.counters.in_order += 1;
            }
            let skip = skip as usize;
            if skip < data.len() {
                self.deliver(Chunk::Data(&data[skip..]), budget, out);
            }
            let cut = claimed as usize - data.len().max(skip).min(claimed as usize);
            if cut > 0 {
                budget.counters.gaps += 1;
                self.deliver(Chunk::Gap(cut as u32), budget, out);
            }
            if !self.ooo.is_empty() {
                self.drain(budget, out);
            }
            return;
        }
        if self.done {
            return;
        }
        // Ahead of `next`: buffer it, within bounds.
        if seq.wrapping_sub(self.next) > budget.limits.max_ahead {
            budget.counters.out_of_window += 1;
            return;
        }
        let lim = budget.limits;
        while !self.ooo.is_empty()
            && (self.ooo_bytes + data.len() > lim.ooo_per_stream
                || budget.counters.ooo_bytes as usize + data.len() > lim.ooo_total)
        {
            budget.counters.ooo_overflow += 1;
            self.skip_hole(budget, out);
            if self.done {
                return;
            }
        }
        if !seq_lt(self.next, seq) {
            // The hole closed while draining: this segment is now in order or old.
            return self.segment(seq, data, claimed, budget, out);
        }
        if data.len() > lim.ooo_per_stream || budget.counters.ooo_bytes as usize + data.len() > lim.ooo_total {
            // Cannot buffer even alone: the bytes up to its end are lost.
            budget.counters.ooo_overflow += 1;
            budget.counters.gaps += 1;
            let hole = end.wrapping_sub(self.next);
            self.deliver(Chunk::Gap(hole), budget, out);
            return;
        }
        for s in &self.ooo {
            // Overlap of [seq, seq + len) with [s.seq, s.seq + s.len), in sequence space.
            let (a0, a1) = (seq, seq.wrapping_add(data.len() as u32));
            let (b0, b1) = (s.seq, s.seq.wrapping_add(s.data.len() as u32));
            let lo = if seq_lt(a0, b0) { b0 } else { a0 };
            let hi = if seq_lt(a1, b1) { a1 } else { b1 };
            if seq_lt(lo, hi) {
                let n = hi.wrapping_sub(lo) as usize;
                let x = &data[lo.wrapping_sub(a0) as usize..][..n];
                let y = &s.data[lo.wrapping_sub(b0) as usize..][..n];
                if x != y {
                    budget.counters.overlap_mismatch += 1;
                    break;
                }
            }
        }
        let pos = self.ooo.iter().position(|s| seq_lt(seq, s.seq)).unwrap_or(self.ooo.len());
        let buf = budget.take(data);
        self.ooo_bytes += buf.len();
        self.ooo.insert(pos, Seg { seq, data: buf });
        budget.counters.ooo_buffered += 1;
        if (data.len() as u32) < claimed {
            // A cut frame ahead of a hole: its missing tail is lost too, which the next
            // segment's or the ACK's gap will cover.
        }
    }

    /// The other side acknowledged up to `ack`: bytes of this direction before it that never
    /// arrived are lost.
    #[inline]
    pub fn acked(&mut self, ack: u32, budget: &mut Budget, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        if self.ooo.is_empty() && !seq_lt(self.next, ack) {
            return;
        }
        let ack = match self.fin {
            Some(f) if seq_lt(f, ack) => f,
            _ => ack,
        };
        if !self.started || !seq_lt(self.next, ack) || ack.wrapping_sub(self.next) > budget.limits.max_ahead {
            return;
        }
        loop {
            match self.ooo.first() {
                Some(f) if !seq_lt(ack, f.seq) => {
                    // The hole before the first buffered segment is acknowledged.
                    self.skip_hole(budget, out);
                }
                _ => {
                    if seq_lt(self.next, ack) {
                        budget.counters.gaps += 1;
                        let hole = ack.wrapping_sub(self.next);
                        self.deliver(Chunk::Gap(hole), budget, out);
                    }
                    return;
                }
            }
            if !seq_lt(self.next, ack) {
                return;
            }
        }
    }

    /// End of the flow: what is buffered is delivered after a gap for each hole.
    pub fn finish(&mut self, budget: &mut Budget, out: &mut impl FnMut(Chunk<'_>) -> u64) {
        while !self.ooo.is_empty() && !self.done {
            self.skip_hole(budget, out);
        }
        self.flush_skipped(out);
        self.release(budget);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn run(stream: &mut Stream, budget: &mut Budget, segs: &[(u32, &[u8])]) -> (Vec<u8>, Vec<u32>) {
        let mut data = Vec::new();
        let mut gaps = Vec::new();
        for (seq, d) in segs {
            stream.segment(*seq, d, d.len() as u32, budget, &mut |c| {
                match c {
                    Chunk::Data(b) => data.extend_from_slice(b),
                    Chunk::Gap(n) => gaps.push(n),
                    Chunk::Skipped(_) => {}
                }
                0
            });
        }
        stream.finish(budget, &mut |c| {
            match c {
                Chunk::Data(b) => data.extend_from_slice(b),
                Chunk::Gap(n) => gaps.push(n),
                Chunk::Skipped(_) => {}
            }
            0
        });
        (data, gaps)
    }

    fn fresh(next: u32, limits: StreamLimits) -> (Stream, Budget) {
        let mut s = Stream::default();
        s.start(next);
        (s, Budget::new(limits))
    }

    #[test]
    fn test_in_order_out_of_order_and_retransmissions() {
        let (mut s, mut b) = fresh(100, StreamLimits::default());
        let (d, g) =
            run(&mut s, &mut b, &[(100, b"GET "), (108, b"HTTP"), (104, b"/ x "), (100, b"GET "), (106, b"x HT")]);
        assert_eq!(d, b"GET / x HTTP");
        assert!(g.is_empty());
        assert_eq!((b.counters.ooo_buffered, b.counters.ooo_bytes), (1, 0));
        assert!(b.counters.retransmitted >= 2);
    }

    #[test]
    fn test_sequence_wraps() {
        let (mut s, mut b) = fresh(u32::MAX - 1, StreamLimits::default());
        let (d, _) = run(&mut s, &mut b, &[(1, b"cd"), (u32::MAX - 1, b"ab"), (3, b"e")]);
        assert_eq!(d, b"abcde");
    }

    #[test]
    fn test_overlap_policy_bsd() {
        // Buffered [10,20) "BBBB..." received first, then [5,15) "AAAA...": the earlier start
        // wins the shared bytes; equal starts keep the first received.
        let (mut s, mut b) = fresh(0, StreamLimits::default());
        let (d, _) = run(&mut s, &mut b, &[(10, b"BBBBBBBBBB"), (5, b"AAAAAAAAAA"), (5, b"CCCCCCCCCC"), (0, b"00000")]);
        assert_eq!(d, b"00000AAAAAAAAAABBBBB");
        assert_eq!(b.counters.overlap_mismatch, 2, "A differs from B, C from A and B");
    }

    #[test]
    fn test_gap_at_end_and_on_overflow() {
        let (mut s, mut b) = fresh(0, StreamLimits::default());
        let (d, g) = run(&mut s, &mut b, &[(0, b"ab"), (5, b"fg")]);
        assert_eq!((d.as_slice(), g.as_slice()), (&b"abfg"[..], &[3][..]));
        let lim = StreamLimits { ooo_per_stream: 4, ..StreamLimits::default() };
        let (mut s, mut b) = fresh(0, lim);
        let (d, g) = run(&mut s, &mut b, &[(2, b"cd"), (6, b"gh"), (10, b"kl")]);
        // "cd" and "gh" fill the bound; "kl" forces the first hole out, then fits.
        assert_eq!((d.as_slice(), g.as_slice()), (&b"cdghkl"[..], &[2, 2, 2][..]));
        assert_eq!(b.counters.ooo_bytes, 0);
        assert!(b.counters.ooo_overflow >= 1);
    }

    #[test]
    fn test_ack_declares_gap() {
        let (mut s, mut b) = fresh(0, StreamLimits::default());
        let mut out = Vec::new();
        s.segment(0, b"ab", 2, &mut b, &mut |c| {
            out.push(format!("{c:?}"));
            0
        });
        s.segment(6, b"gh", 2, &mut b, &mut |c| {
            out.push(format!("{c:?}"));
            0
        });
        s.acked(8, &mut b, &mut |c| {
            out.push(format!("{c:?}"));
            0
        });
        assert_eq!(out, ["Data([97, 98])", "Gap(4)", "Data([103, 104])"]);
        s.acked(12, &mut b, &mut |c| {
            out.push(format!("{c:?}"));
            0
        });
        assert_eq!(out.last().unwrap(), "Gap(4)");
    }

    #[test]
    fn test_skipped_bytes_are_counted_then_reported() {
        // The parser reads 2 bytes, then asks to skip 5: it is told "Skipped(5)" once they
        // passed, in whatever segments, and sees the bytes after them.
        let (mut s, mut b) = fresh(0, StreamLimits::default());
        let mut log = Vec::new();
        let mut out = |c: Chunk<'_>| {
            log.push(format!("{c:?}"));
            match c {
                Chunk::Data(d) if d.starts_with(b"hd") => 5,
                _ => 0,
            }
        };
        for (seq, d) in [(0u32, &b"hd12"[..]), (4, b"34"), (6, b"5xyzw")] {
            s.segment(seq, d, d.len() as u32, &mut b, &mut out);
        }
        assert_eq!(log, ["Data([104, 100, 49, 50])", "Skipped(5)", "Data([122, 119])"]);
        // A gap inside a skip: what was skipped is reported first, then the gap.
        let (mut s, mut b) = fresh(0, StreamLimits::default());
        let mut log = Vec::new();
        let mut out = |c: Chunk<'_>| {
            log.push(format!("{c:?}"));
            if matches!(c, Chunk::Data(d) if d.starts_with(b"hd")) {
                10
            } else {
                0
            }
        };
        s.segment(0, b"hd123", 5, &mut b, &mut out);
        s.segment(5, b"ab", 2, &mut b, &mut out);
        s.segment(11, b"zz", 2, &mut b, &mut out);
        s.acked(13, &mut b, &mut out);
        s.finish(&mut b, &mut out);
        assert_eq!(log, ["Data([104, 100, 49, 50, 51])", "Skipped(2)", "Gap(4)", "Data([122, 122])"]);
    }

    #[test]
    fn test_depth_limit_and_cut_frames() {
        let lim = StreamLimits { depth: 5, ..StreamLimits::default() };
        let (mut s, mut b) = fresh(0, lim);
        let (d, _) = run(&mut s, &mut b, &[(0, b"abc"), (3, b"defg"), (7, b"hij")]);
        assert_eq!(d, b"abcde");
        assert!(s.is_done());
        assert_eq!(b.counters.depth_reached, 1);
        // A frame cut by the capture: 4 bytes claimed, 2 present.
        let (mut s, mut b) = fresh(0, StreamLimits::default());
        let mut out = Vec::new();
        s.segment(0, b"ab", 4, &mut b, &mut |c| {
            out.push(format!("{c:?}"));
            0
        });
        s.segment(4, b"ef", 2, &mut b, &mut |c| {
            out.push(format!("{c:?}"));
            0
        });
        assert_eq!(out, ["Data([97, 98])", "Gap(2)", "Data([101, 102])"]);
    }
}
