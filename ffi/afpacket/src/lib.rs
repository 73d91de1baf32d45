//! Linux AF_PACKET receive rings (TPACKET_V3), for hosts without a DPDK-capable NIC: a raw
//! socket bound to one interface, in a fanout group that spreads flows over the sockets of
//! the group by a symmetric hash (the kernel reassembles IP fragments for the decision, as
//! Suricata's `cluster_flow` with `defrag: yes`), with its ring of blocks mapped into the
//! process. The kernel fills a block and hands it over ([`Ring::next_block`]); dropping the
//! [`Block`] gives it back.
//!
//! One of spinewatch's FFI crates (the only ones with `unsafe`): every `unsafe` block says why
//! it is sound in a `// SAFETY:` line.
#![deny(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_FANOUT: libc::c_int = 18;
const TPACKET_V3: libc::c_int = 2;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const ETH_P_ALL: u16 = 0x0003;
/// Where a block's bytes are taken from: past `version`, `offset_to_priv` and `block_status`.
const AFTER_STATUS: usize = 12;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    kind: libc::c_ushort,
    alen: libc::c_ushort,
    address: [u8; 8],
}

/// Ring geometry and membership.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Bytes per block (a power of two, a multiple of the page size).
    pub block_size: u32,
    pub block_count: u32,
    /// The most of a frame kept (the rest is cut; the wire length is still reported).
    pub frame_size: u32,
    /// A block is handed over after this long even if not full (milliseconds).
    pub retire_ms: u32,
    /// The fanout group every worker's socket of one interface joins (None: no fanout).
    pub fanout_group: Option<u16>,
    pub promiscuous: bool,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 20,
            block_count: 64,
            frame_size: 16 << 10,
            retire_ms: 10,
            fanout_group: None,
            promiscuous: true,
        }
    }
}

/// Kernel counters of a ring since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Packets that reached the socket (delivered and dropped).
    pub packets: u64,
    /// Packets the kernel dropped: the ring was full.
    pub drops: u64,
    /// Times the ring froze (every block in user hands).
    pub freezes: u64,
}

/// One socket and its mapped ring.
pub struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    cur: usize,
    stats: RingStats,
}

// SAFETY: the mapping belongs to this value alone; the kernel only touches blocks whose
// status says they are its own, and this value only those it handed over.
#[allow(unsafe_code)]
unsafe impl Send for Ring {}

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[allow(unsafe_code)]
fn setsockopt<T>(fd: libc::c_int, level: libc::c_int, name: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: `v` is a valid, initialised value of the size passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(fd, level, name, v as *const T as *const libc::c_void, std::mem::size_of::<T>() as u32)
    };
    if r != 0 {
        return Err(last_err(what));
    }
    Ok(())
}

/// The index of a network interface.
#[allow(unsafe_code)]
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name with a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(last_err(&format!("interface {name}")));
    }
    Ok(i)
}

impl Ring {
    /// Opens a ring on `ifname`.
    #[allow(unsafe_code)]
    pub fn open(ifname: &str, cfg: &RingConfig) -> io::Result<Ring> {
        let ifindex = interface_index(ifname)?;
        // SAFETY: plain socket(2) call; the descriptor is owned right after.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, ETH_P_ALL.to_be() as libc::c_int) };
        if raw < 0 {
            return Err(last_err("AF_PACKET socket (needs CAP_NET_RAW)"));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        setsockopt(s, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3, "PACKET_VERSION TPACKET_V3")?;
        let page = 4096u32;
        if !cfg.block_size.is_power_of_two() || !cfg.block_size.is_multiple_of(page) || cfg.frame_size > cfg.block_size
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring block size: a power of two of pages, at least a frame",
            ));
        }
        let req = TpacketReq3 {
            block_size: cfg.block_size,
            block_nr: cfg.block_count,
            frame_size: cfg.frame_size,
            frame_nr: (cfg.block_size / cfg.frame_size) * cfg.block_count,
            retire_blk_tov: cfg.retire_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(s, libc::SOL_PACKET, PACKET_RX_RING, &req, "PACKET_RX_RING")?;
        let map_len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: maps the ring the kernel just made for this socket, shared, the size we asked.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                s,
                0,
            )
        };
        let map = if map == libc::MAP_FAILED {
            // SAFETY: as above, without locking the pages (RLIMIT_MEMLOCK may be low).
            let m = unsafe {
                libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, s, 0)
            };
            if m == libc::MAP_FAILED {
                return Err(last_err("mmap of the packet ring"));
            }
            m
        } else {
            map
        };
        let ring = Ring {
            fd,
            map: map as *mut u8,
            map_len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            cur: 0,
            stats: RingStats::default(),
        };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = ETH_P_ALL.to_be();
        sa.sll_ifindex = ifindex as i32;
        // SAFETY: `sa` is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                s,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r != 0 {
            return Err(last_err(&format!("bind to {ifname}")));
        }
        if cfg.promiscuous {
            let m = PacketMreq { ifindex: ifindex as i32, kind: PACKET_MR_PROMISC, alen: 0, address: [0; 8] };
            setsockopt(s, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &m, "promiscuous mode")?;
        }
        if let Some(g) = cfg.fanout_group {
            let arg: u32 = g as u32 | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
            setsockopt(s, libc::SOL_PACKET, PACKET_FANOUT, &arg, "PACKET_FANOUT hash")?;
        }
        Ok(ring)
    }

    /// The status word of block `i` (shared with the kernel).
    #[allow(unsafe_code)]
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block `i` < block_count lies inside the mapping, which lives as long as
        // `self`; its status word (offset 8 of `struct tpacket_block_desc`) is 4-byte aligned
        // and only ever accessed atomically here and by the kernel.
        unsafe { &*(self.map.add(i * self.block_size + 8) as *const AtomicU32) }
    }

    /// The next block the kernel handed over, waiting up to `timeout_ms` for one (None if none
    /// came). Blocks come in ring order.
    #[allow(unsafe_code)]
    pub fn next_block(&mut self, timeout_ms: i32) -> io::Result<Option<Block<'_>>> {
        if self.status(self.cur).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN | libc::POLLERR, revents: 0 };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(None);
                }
                return Err(e);
            }
            if self.status(self.cur).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                return Ok(None);
            }
        }
        let i = self.cur;
        self.cur = (self.cur + 1) % self.block_count;
        // SAFETY: the kernel handed block `i` over (status USER, read with Acquire): until we
        // set it back to KERNEL, in Block's drop, it does not write it. The slice starts after
        // the status word (offset 8..12), which stays reachable only through the atomic.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.map.add(i * self.block_size + AFTER_STATUS), self.block_size - AFTER_STATUS)
        };
        Ok(Some(Block { bytes, status: self.status(i) }))
    }

    /// The counters as last read by [`Ring::stats`] (no system call).
    pub fn totals(&self) -> RingStats {
        self.stats
    }

    /// The kernel's counters, added up since the ring opened (the kernel resets them at each
    /// read).
    #[allow(unsafe_code)]
    pub fn stats(&mut self) -> io::Result<RingStats> {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st` is a valid out buffer of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                &mut st as *mut TpacketStatsV3 as *mut libc::c_void,
                &mut len,
            )
        };
        if r != 0 {
            return Err(last_err("PACKET_STATISTICS"));
        }
        self.stats.packets += st.packets as u64;
        self.stats.drops += st.drops as u64;
        self.stats.freezes += st.freeze_q_cnt as u64;
        Ok(self.stats)
    }
}

impl Drop for Ring {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; no Block borrows it any more
        // (they borrow `self`).
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
    }
}

/// A block the kernel handed over; given back when dropped. Its packets borrow it, so none
/// outlives the hand-back.
pub struct Block<'a> {
    /// The block from offset [`AFTER_STATUS`] on.
    bytes: &'a [u8],
    status: &'a AtomicU32,
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        self.status.store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// A packet of a block.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The frame as captured (at most the ring's frame size).
    pub data: &'a [u8],
    /// Its length on the wire.
    pub wire_len: u32,
    /// Capture time, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// A VLAN tag the NIC or the kernel took out of the frame: (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
}

fn rd32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn rd16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

impl Block<'_> {
    /// The block's packets, in order (a malformed header ends the walk).
    pub fn packets(&self) -> impl Iterator<Item = Packet<'_>> + '_ {
        let b: &[u8] = self.bytes;
        // num_pkts at 12 and offset_to_first_pkt at 16 of the block; offsets here are from 12.
        let n = rd32(b, 12 - AFTER_STATUS).unwrap_or(0);
        let mut at = (rd32(b, 16 - AFTER_STATUS).unwrap_or(0) as usize).saturating_sub(AFTER_STATUS);
        let mut left = n;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let h = at;
            let next = rd32(b, h)? as usize;
            let sec = rd32(b, h + 4)? as u64;
            let nsec = rd32(b, h + 8)? as u64;
            let snap = rd32(b, h + 12)? as usize;
            let len = rd32(b, h + 16)?;
            let status = rd32(b, h + 20)?;
            let mac = rd16(b, h + 24)? as usize;
            let tci = rd32(b, h + 32)? as u16;
            let tpid = rd16(b, h + 36)?;
            let data = b.get(h + mac..h + mac + snap)?;
            let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 { tpid } else { 0x8100 };
            let vlan = (status & TP_STATUS_VLAN_VALID != 0).then_some((tpid, tci));
            if next == 0 {
                left = 0;
            } else {
                at = h + next;
            }
            Some(Packet { data, wire_len: len, ts_ns: sec * 1_000_000_000 + nsec, vlan })
        })
    }
}
