//! The safe layer over the raw bindings.

use crate::sys;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The most mbufs one [`Burst`] holds.
pub const MAX_BURST: usize = 512;

/// A failed DPDK call: which one, its return or `rte_errno`, and DPDK's message.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {msg} ({code})")]
pub struct DpdkError {
    pub op: String,
    pub code: i32,
    pub msg: String,
}

fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    unsafe { CStr::from_ptr(sys::rte_strerror(code.abs())) }.to_string_lossy().into_owned()
}

fn err(op: impl Into<String>, code: i32) -> DpdkError {
    DpdkError { op: op.into(), code, msg: strerror(code) }
}

fn rte_errno() -> i32 {
    // SAFETY: reads the calling thread's rte_errno.
    unsafe { sys::sw_errno() }
}

static EAL_UP: AtomicBool = AtomicBool::new(false);

/// Port ids with a live [`Port`] handle: one handle per port, so its queues are handed out once.
static CLAIMED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// The initialised Environment Abstraction Layer. DPDK allows one per process. It lives until
/// the process exits (no `rte_eal_cleanup`: nothing could prove no DPDK object is left).
pub struct Eal {
    _priv: (),
}

impl Eal {
    /// `rte_eal_init` with `args` (the first is the program name).
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if EAL_UP.swap(true, Ordering::SeqCst) {
            return Err(DpdkError {
                op: "rte_eal_init".into(),
                code: -114,
                msg: "EAL is already initialised in this process".into(),
            });
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| {
                CString::new(a.as_str()).map_err(|_| DpdkError {
                    op: "rte_eal_init".into(),
                    code: -22,
                    msg: format!("argument {a:?} contains NUL"),
                })
            })
            .collect::<Result<_, _>>()?;
        // EAL keeps pointers into argv for the life of the process: leak them on purpose.
        let mut argv: Vec<*mut c_char> = cargs.into_iter().map(|c| c.into_raw()).collect();
        let argc = argv.len() as i32;
        argv.push(std::ptr::null_mut());
        let argv = Box::leak(argv.into_boxed_slice());
        // SAFETY: argv is a NUL-terminated array of `argc` valid C strings that lives forever.
        let r = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if r < 0 {
            EAL_UP.store(false, Ordering::SeqCst);
            let code = rte_errno();
            // EAL does not always set rte_errno: "Success (0)" would say nothing.
            if code == 0 {
                return Err(DpdkError {
                    op: "rte_eal_init".into(),
                    code: r,
                    msg: "EAL could not start (its \"EAL:\" lines above say why)".into(),
                });
            }
            return Err(err("rte_eal_init", code));
        }
        Ok(Eal { _priv: () })
    }

    /// Registers the calling (non-EAL) thread with DPDK so it gets an lcore id and mempool
    /// caches work. Returns the lcore id.
    pub fn register_thread(&self) -> Result<u32, DpdkError> {
        // SAFETY: EAL is initialised (we hold &Eal); registering the current thread is allowed.
        let r = unsafe { sys::rte_thread_register() };
        if r < 0 {
            return Err(err("rte_thread_register", rte_errno()));
        }
        // SAFETY: reads the calling thread's lcore id.
        Ok(unsafe { sys::sw_lcore_id() })
    }

    /// Ports DPDK found (PCI devices allowed by `-a`, and vdevs).
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised.
        unsafe { sys::rte_eth_dev_count_avail() }
    }
}

/// TSC cycles now.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { sys::sw_rdtsc() }
}

/// TSC frequency (needs EAL).
pub fn tsc_hz(_eal: &Eal) -> u64 {
    // SAFETY: EAL is initialised, so the TSC frequency is calibrated.
    unsafe { sys::sw_tsc_hz() }
}

/// A packet-buffer pool.
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the pointer is shared.
unsafe impl Send for Mempool {}
// SAFETY: as above: every mempool operation we expose is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `rte_pktmbuf_pool_create`: `n` mbufs of `data_room` bytes (headroom included), with a
    /// per-lcore cache of `cache`, on NUMA `socket` (-1 for any).
    pub fn create(
        _eal: &Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError {
            op: "rte_pktmbuf_pool_create".into(),
            code: -22,
            msg: "name contains NUL".into(),
        })?;
        // SAFETY: EAL is initialised; cname is a valid C string for the call's duration.
        let p = unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| err(format!("rte_pktmbuf_pool_create({name}, {n} mbufs)"), rte_errno()))
    }

    pub fn avail(&self) -> u32 {
        // SAFETY: the pool is valid while self lives.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid while self lives.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: we own the pool, and every port whose queues take from it holds an Arc to it,
        // so the last reference (this drop) comes after those ports are closed.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}

/// What a device reports about itself.
#[derive(Debug, Clone)]
pub struct DevInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// RSS hash types the device supports (`flow_type_rss_offloads`).
    pub rss_offloads: u64,
    pub rx_offload_capa: u64,
    pub hash_key_size: u8,
    pub rx_desc_max: u16,
    pub rx_desc_min: u16,
    pub socket: i32,
}

/// Link status.
#[derive(Debug, Clone, Copy)]
pub struct LinkInfo {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// Basic port counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortStats {
    pub ipackets: u64,
    pub ibytes: u64,
    /// Dropped by the NIC because RX queues were full.
    pub imissed: u64,
    pub ierrors: u64,
    /// Dropped because the mempool had no mbuf.
    pub rx_nombuf: u64,
    /// Per RX queue (the first 16, where the driver counts them): packets received, and
    /// packets dropped on that queue.
    pub q_ipackets: [u64; 16],
    pub q_drops: [u64; 16],
}

/// An Ethernet port. It keeps the mempools its RX queues take mbufs from alive (they must
/// outlive the port), and the RSS key it was configured with (drivers may read it at start).
#[derive(Debug)]
pub struct Port {
    pub id: u16,
    pub name: String,
    started: bool,
    nb_rxq: u16,
    rss_key: Vec<u8>,
    pools: Vec<Arc<Mempool>>,
    queues_taken: AtomicBool,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool").field("ptr", &self.ptr).finish()
    }
}

/// Toeplitz key of 0x6d5a repeated: with it the hash is symmetric, so both directions of a
/// flow land on the same queue (Woo & Park, "Scalable TCP Session Monitoring with Symmetric
/// Receive-side Scaling").
pub fn symmetric_rss_key(len: usize) -> Vec<u8> {
    (0..len).map(|i| if i % 2 == 0 { 0x6d } else { 0x5a }).collect()
}

impl Port {
    /// The port DPDK named `name` (a PCI address or a vdev name such as `net_pcap0`).
    pub fn by_name(_eal: &Eal, name: &str) -> Result<Port, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError {
            op: "rte_eth_dev_get_port_by_name".into(),
            code: -22,
            msg: "name contains NUL".into(),
        })?;
        let mut id = 0u16;
        // SAFETY: EAL is up; cname valid; id is a valid out pointer.
        let r = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if r != 0 {
            return Err(DpdkError {
                op: format!("port {name}"),
                code: r,
                msg: "no such DPDK port (check the PCI address / vdev and that its driver is loaded)".into(),
            });
        }
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        if claimed.contains(&id) {
            return Err(DpdkError {
                op: format!("port {name}"),
                code: -16,
                msg: "the port already has a handle".into(),
            });
        }
        claimed.push(id);
        Ok(Port {
            id,
            name: name.to_owned(),
            started: false,
            nb_rxq: 0,
            rss_key: Vec::new(),
            pools: Vec::new(),
            queues_taken: AtomicBool::new(false),
        })
    }

    pub fn info(&self) -> Result<DevInfo, DpdkError> {
        let mut di = sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port; di is a valid out struct.
        let r = unsafe { sys::rte_eth_dev_info_get(self.id, &mut di) };
        if r != 0 {
            return Err(err(format!("rte_eth_dev_info_get({})", self.name), r));
        }
        let driver = if di.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: non-null driver_name is a static C string owned by the driver.
            unsafe { CStr::from_ptr(di.driver_name) }.to_string_lossy().into_owned()
        };
        // SAFETY: port id valid.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) };
        Ok(DevInfo {
            driver,
            max_rx_queues: di.max_rx_queues,
            max_tx_queues: di.max_tx_queues,
            rss_offloads: di.flow_type_rss_offloads,
            rx_offload_capa: di.rx_offload_capa,
            hash_key_size: di.hash_key_size,
            rx_desc_max: di.rx_desc_lim.nb_max,
            rx_desc_min: di.rx_desc_lim.nb_min,
            socket,
        })
    }

    /// `rte_eth_dev_configure` with `rxq` RX queues and `txq` TX queues. With `rss_hf != 0`,
    /// RSS over those hash types with the symmetric key of `key_len` bytes. `mtu` 0 keeps the
    /// driver's default.
    pub fn configure(
        &mut self,
        rxq: u16,
        txq: u16,
        rss_hf: u64,
        key_len: usize,
        rx_offloads: u64,
        mtu: u32,
    ) -> Result<(), DpdkError> {
        let mut conf = sys::rte_eth_conf::default();
        // Drivers keep the key pointer (some read it at start): the port owns the key.
        let key_len = if key_len == 0 { 40 } else { key_len.min(255) };
        self.rss_key = symmetric_rss_key(key_len);
        if rss_hf != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            conf.rx_adv_conf.rss_conf.rss_key = self.rss_key.as_mut_ptr();
            conf.rx_adv_conf.rss_conf.rss_key_len = key_len as u8;
        }
        conf.rxmode.offloads = rx_offloads;
        conf.rxmode.mtu = mtu;
        self.nb_rxq = rxq;
        // SAFETY: conf lives across the call; the key it points to lives as long as the port
        // (self.rss_key is only replaced by the next configure).
        let r = unsafe { sys::rte_eth_dev_configure(self.id, rxq, txq, &conf) };
        if r != 0 {
            return Err(err(format!("rte_eth_dev_configure({}, {rxq} rx queues)", self.name), r));
        }
        Ok(())
    }

    /// Sets up RX queue `q` to take mbufs from `pool`; the port keeps the pool alive.
    /// The nearest RX descriptor count the driver accepts (its bounds and alignment).
    pub fn adjust_rx_descriptors(&self, want: u16) -> Result<u16, DpdkError> {
        let mut rx = want;
        let mut tx = 512u16;
        // SAFETY: valid port id; both pointers are valid for the call.
        let r = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx, &mut tx) };
        if r != 0 {
            return Err(err(format!("rte_eth_dev_adjust_nb_rx_tx_desc({})", self.name), r));
        }
        Ok(rx)
    }

    pub fn rx_queue_setup(&mut self, q: u16, nb_desc: u16, socket: i32, pool: &Arc<Mempool>) -> Result<(), DpdkError> {
        if q >= self.nb_rxq {
            return Err(DpdkError {
                op: format!("rx_queue_setup({} queue {q})", self.name),
                code: -22,
                msg: format!("the port has {} RX queues", self.nb_rxq),
            });
        }
        if !self.pools.iter().any(|p| Arc::ptr_eq(p, pool)) {
            self.pools.push(pool.clone());
        }
        // SAFETY: port configured with more than q queues; the pool pointer stays valid as long
        // as the port (self.pools holds it); a null rxconf means the driver's defaults.
        let r = unsafe {
            sys::rte_eth_rx_queue_setup(self.id, q, nb_desc, socket as u32, std::ptr::null(), pool.ptr.as_ptr())
        };
        if r != 0 {
            return Err(err(format!("rte_eth_rx_queue_setup({} queue {q}, {nb_desc} descriptors)", self.name), r));
        }
        Ok(())
    }

    pub fn tx_queue_setup(&mut self, q: u16, nb_desc: u16, socket: i32) -> Result<(), DpdkError> {
        // SAFETY: port configured; null txconf means the driver's defaults.
        let r = unsafe { sys::rte_eth_tx_queue_setup(self.id, q, nb_desc, socket as u32, std::ptr::null()) };
        if r != 0 {
            return Err(err(format!("rte_eth_tx_queue_setup({} queue {q})", self.name), r));
        }
        Ok(())
    }

    pub fn promiscuous_enable(&mut self) -> Result<(), DpdkError> {
        // SAFETY: valid port id.
        let r = unsafe { sys::rte_eth_promiscuous_enable(self.id) };
        if r != 0 && r != -95 {
            return Err(err(format!("rte_eth_promiscuous_enable({})", self.name), r));
        }
        Ok(())
    }

    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: valid, configured port.
        let r = unsafe { sys::rte_eth_dev_start(self.id) };
        if r != 0 {
            return Err(err(format!("rte_eth_dev_start({})", self.name), r));
        }
        self.started = true;
        Ok(())
    }

    pub fn stop(&mut self) {
        if self.started {
            // SAFETY: valid, started port; no RX queue handle lives (they borrow the port,
            // and this takes it mutably), so nothing polls it.
            unsafe { sys::rte_eth_dev_stop(self.id) };
            self.started = false;
        }
    }

    pub fn link(&self) -> LinkInfo {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid port; l is a valid out struct.
        unsafe { sys::rte_eth_link_get_nowait(self.id, &mut l) };
        LinkInfo { up: l.link_status() != 0, speed_mbps: l.link_speed, full_duplex: l.link_duplex() != 0 }
    }

    pub fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port; s is a valid out struct.
        unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            ibytes: s.ibytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            rx_nombuf: s.rx_nombuf,
            q_ipackets: s.q_ipackets,
            q_drops: s.q_errors,
        }
    }

    /// Every extended statistic the driver has, by name.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        // SAFETY: a null array asks for the count.
        let n = unsafe { sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        if n <= 0 {
            return Vec::new();
        }
        let mut names = vec![sys::rte_eth_xstat_name::default(); n as usize];
        let mut vals = vec![sys::rte_eth_xstat::default(); n as usize];
        // SAFETY: both arrays hold n elements.
        let a = unsafe { sys::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let b = unsafe { sys::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), n as u32) };
        if a != n || b != n {
            return Vec::new();
        }
        vals.iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates xstat names within RTE_ETH_XSTATS_NAME_SIZE.
                let s = unsafe { CStr::from_ptr(name.name.as_ptr()) }.to_string_lossy().into_owned();
                Some((s, v.value))
            })
            .collect()
    }

    /// The handles of every configured RX queue, once per started port: each queue can be
    /// polled by exactly one thread, and the port cannot be stopped while a handle lives.
    pub fn rx_queues(&self, ts: Option<TimestampField>) -> Result<Vec<RxQueue<'_>>, DpdkError> {
        if !self.started {
            return Err(DpdkError {
                op: format!("rx_queues({})", self.name),
                code: -22,
                msg: "the port is not started".into(),
            });
        }
        if self.queues_taken.swap(true, Ordering::SeqCst) {
            return Err(DpdkError {
                op: format!("rx_queues({})", self.name),
                code: -16,
                msg: "the RX queues were already handed out".into(),
            });
        }
        Ok((0..self.nb_rxq).map(|q| RxQueue { port: self.id, queue: q, ts, _port: PhantomData }).collect())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop();
        CLAIMED.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != self.id);
        // SAFETY: the port is stopped and no queue handle lives (they borrow the port); its
        // pools are still alive (self.pools drops after this).
        unsafe { sys::rte_eth_dev_close(self.id) };
    }
}

/// The RX timestamp dynamic field (`rte_mbuf_dyn_rx_timestamp_register`). Registered before a
/// port starts, PMDs such as `net_pcap` stamp each mbuf with the capture time.
#[derive(Debug, Clone, Copy)]
pub struct TimestampField {
    offset: i32,
    flag: u64,
}

impl TimestampField {
    pub fn register(_eal: &Eal) -> Result<TimestampField, DpdkError> {
        let mut offset = 0i32;
        let mut flag = 0u64;
        // SAFETY: valid out pointers; EAL is up.
        let r = unsafe { sys::rte_mbuf_dyn_rx_timestamp_register(&mut offset, &mut flag) };
        if r != 0 {
            return Err(err("rte_mbuf_dyn_rx_timestamp_register", rte_errno()));
        }
        Ok(TimestampField { offset, flag })
    }
}

/// One RX queue of a started port, handed out once ([`Port::rx_queues`]) and borrowing the
/// port, so it is polled by one thread at a time (`rx_burst` takes `&mut self`, and the handle
/// is not `Clone`) and the port outlives it.
#[derive(Debug)]
pub struct RxQueue<'p> {
    pub port: u16,
    pub queue: u16,
    ts: Option<TimestampField>,
    _port: PhantomData<&'p Port>,
}

impl<'p> RxQueue<'p> {
    /// Receives up to `burst.capacity()` packets into an empty `burst`; returns how many.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst<'p>) -> usize {
        debug_assert_eq!(burst.len, 0, "burst not freed");
        burst.free();
        // SAFETY: the array has room for `burst.want` pointers; the port is started and has
        // this queue (handed out once by rx_queues of the port's only handle, which it
        // borrows), and only this thread polls it (&mut self, no Clone).
        let n = unsafe { sys::sw_rx_burst(self.port, self.queue, burst.mbufs.as_mut_ptr(), burst.want) };
        burst.len = n as usize;
        burst.ts = self.ts;
        let (off, flag) = self.ts.map(|t| (t.offset, t.flag)).unwrap_or((-1, 0));
        // SAFETY: the first n pointers are mbufs just received and owned by the burst; every
        // output array holds MAX_BURST >= n elements.
        unsafe {
            sys::sw_burst_meta(
                burst.mbufs.as_ptr(),
                n,
                burst.data.as_mut_ptr(),
                burst.data_len.as_mut_ptr(),
                burst.pkt_len.as_mut_ptr(),
                off,
                flag,
                burst.stamps.as_mut_ptr(),
            )
        };
        burst.len
    }
}

/// A reusable array of received mbufs; freed in bulk by [`Burst::free`] (and on drop). Its
/// lifetime is the port's, so its mbufs cannot outlive their pool.
pub struct Burst<'p> {
    mbufs: [*mut sys::rte_mbuf; MAX_BURST],
    len: usize,
    want: u16,
    ts: Option<TimestampField>,
    // Per-packet metadata, read in one shim call per burst.
    data: [*const u8; MAX_BURST],
    data_len: [u16; MAX_BURST],
    pkt_len: [u32; MAX_BURST],
    stamps: [u64; MAX_BURST],
    _port: PhantomData<&'p Port>,
}

// SAFETY: mbufs may be freed from any lcore-registered or unregistered thread; the burst owns
// the mbufs it holds.
unsafe impl Send for Burst<'_> {}

impl<'p> Burst<'p> {
    /// A burst that receives at most `size` (≤ [`MAX_BURST`]) packets at a time.
    pub fn new(size: usize) -> Burst<'p> {
        Burst {
            mbufs: [std::ptr::null_mut(); MAX_BURST],
            len: 0,
            want: size.clamp(1, MAX_BURST) as u16,
            ts: None,
            data: [std::ptr::null(); MAX_BURST],
            data_len: [0; MAX_BURST],
            pkt_len: [0; MAX_BURST],
            stamps: [0; MAX_BURST],
            _port: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The received packets, borrowed.
    pub fn iter(&self) -> impl Iterator<Item = MbufRef<'_>> + '_ {
        let ts = self.ts;
        self.mbufs[..self.len].iter().map(move |&p| MbufRef { ptr: p, ts, _b: PhantomData })
    }

    /// Each received frame as (first segment's bytes, frame length, RX timestamp or 0 when the
    /// PMD set none), from the metadata read at receive time: no call into DPDK per packet.
    #[inline]
    pub fn frames(&self) -> impl Iterator<Item = (&[u8], u32, u64)> + '_ {
        (0..self.len).map(move |i| {
            let d = self.data[i];
            let n = self.data_len[i] as usize;
            let bytes: &[u8] = if d.is_null() || n == 0 {
                &[]
            } else {
                // SAFETY: d/n are the first segment of mbuf i, owned by this burst until free
                // or drop, which need &mut self while this borrow of self lives.
                unsafe { std::slice::from_raw_parts(d, n) }
            };
            (bytes, self.pkt_len[i], self.stamps[i])
        })
    }

    /// Returns every mbuf to its pool in one call.
    #[inline]
    pub fn free(&mut self) {
        if self.len > 0 {
            // SAFETY: the first `len` pointers are mbufs this burst received and still owns.
            unsafe { sys::sw_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Takes the last packet out of the burst as an owned [`Mbuf`].
    pub fn pop(&mut self) -> Option<Mbuf<'p>> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let p = self.mbufs[self.len];
        // SAFETY: p is a received mbuf owned by this burst, now handed over exactly once.
        NonNull::new(p).map(|ptr| unsafe { Mbuf::from_raw(ptr, self.ts) })
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        self.free();
    }
}

fn mbuf_data<'a>(p: *const sys::rte_mbuf) -> &'a [u8] {
    // SAFETY: p is a valid mbuf; mtod + data_len is the first segment's readable data, which
    // stays valid while the mbuf is owned (the caller ties 'a to the owner).
    unsafe {
        let d = sys::sw_mbuf_data(p);
        let n = sys::sw_mbuf_data_len(p) as usize;
        if d.is_null() || n == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(d, n)
        }
    }
}

fn mbuf_rss(p: *const sys::rte_mbuf) -> Option<u32> {
    // SAFETY: p is a valid mbuf; the hash field is meaningful when the PMD set the flag.
    unsafe { (sys::sw_mbuf_ol_flags(p) & sys::sw_mbuf_f_rx_rss_hash() != 0).then(|| sys::sw_mbuf_rss_hash(p)) }
}

fn mbuf_ts(p: *const sys::rte_mbuf, ts: Option<TimestampField>) -> Option<u64> {
    let f = ts?;
    // SAFETY: p is valid; the dynfield offset was registered, and we only read it when the
    // PMD set the flag.
    unsafe {
        if sys::sw_mbuf_ol_flags(p) & f.flag != 0 {
            Some(sys::sw_mbuf_timestamp(p, f.offset))
        } else {
            None
        }
    }
}

/// A borrowed packet of a [`Burst`].
#[derive(Clone, Copy)]
pub struct MbufRef<'a> {
    ptr: *const sys::rte_mbuf,
    ts: Option<TimestampField>,
    _b: PhantomData<&'a ()>,
}

impl<'a> MbufRef<'a> {
    /// The first segment's bytes (all of it unless the frame was scattered).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        mbuf_data(self.ptr)
    }

    /// The whole frame's length, every segment.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: valid mbuf while the burst holds it.
        unsafe { sys::sw_mbuf_pkt_len(self.ptr) }
    }

    /// The RSS hash, when the NIC computed one.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        mbuf_rss(self.ptr)
    }

    /// The PMD's RX timestamp, when the field is registered and the PMD set it.
    #[inline]
    pub fn timestamp(&self) -> Option<u64> {
        mbuf_ts(self.ptr, self.ts)
    }
}

/// An owned packet buffer: freed on drop, never `Clone` (a copy would free twice). Its
/// lifetime is its port's, so it cannot outlive its pool.
pub struct Mbuf<'p> {
    ptr: NonNull<sys::rte_mbuf>,
    ts: Option<TimestampField>,
    _port: PhantomData<&'p Port>,
}

// SAFETY: an mbuf is owned by one thread at a time; freeing from another thread is allowed.
unsafe impl Send for Mbuf<'_> {}

impl Mbuf<'_> {
    /// # Safety
    /// `ptr` must be a valid mbuf that the caller owns and hands over (it is freed on drop), and
    /// its pool must outlive the returned value.
    pub unsafe fn from_raw<'p>(ptr: NonNull<sys::rte_mbuf>, ts: Option<TimestampField>) -> Mbuf<'p> {
        Mbuf { ptr, ts, _port: PhantomData }
    }

    pub fn data(&self) -> &[u8] {
        mbuf_data(self.ptr.as_ptr())
    }

    pub fn pkt_len(&self) -> u32 {
        // SAFETY: valid owned mbuf.
        unsafe { sys::sw_mbuf_pkt_len(self.ptr.as_ptr()) }
    }

    pub fn timestamp(&self) -> Option<u64> {
        mbuf_ts(self.ptr.as_ptr(), self.ts)
    }

    pub fn rss_hash(&self) -> Option<u32> {
        mbuf_rss(self.ptr.as_ptr())
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once.
        unsafe { sys::sw_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

/// RSS hash types we ask for (IP, TCP, UDP), before masking by the device's support.
pub fn rss_hf_default() -> u64 {
    // SAFETY: pure function returning a constant.
    unsafe { sys::sw_rss_hf_default() }
}

/// RSS on the IP addresses only (every packet of two hosts on one queue, fragments with them).
pub fn rss_hf_ip() -> u64 {
    // SAFETY: pure function returning a constant.
    unsafe { sys::sw_rss_hf_ip() }
}

/// The RX offload flags for the RSS hash and scattered RX.
pub fn rx_offload_rss_hash() -> u64 {
    // SAFETY: constant.
    unsafe { sys::sw_rx_offload_rss_hash() }
}

pub fn rx_offload_scatter() -> u64 {
    // SAFETY: constant.
    unsafe { sys::sw_rx_offload_scatter() }
}
