//! Finds DPDK (>= 22.11) with pkg-config, compiles the C shim for its static-inline functions
//! and runs bindgen over the headers we use, with allowlists.
//!
//! No `-march=native`: the binary must run on any x86-64-v2 sensor. DPDK's own pkg-config
//! cflags carry the distribution's baseline (`-march=corei7` on Debian), which we keep.

use std::env;
use std::path::PathBuf;

const MIN_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new().atleast_version(MIN_VERSION).cargo_metadata(false).probe("libdpdk") {
        Ok(l) => l,
        Err(e) => panic!(
            "DPDK >= {MIN_VERSION} not found by pkg-config ({e}).\n\
             On Debian/Ubuntu: apt-get install -y libdpdk-dev pkg-config clang libclang-dev\n\
             or build without DPDK: cargo build --no-default-features"
        ),
    };
    println!("cargo:rustc-env=SPINEWATCH_DPDK_VERSION={}", lib.version);

    // Link flags: link every DPDK library whole-archive-free and as-needed off, so the PMD
    // plugins' dependencies (ethdev, mbuf...) are there when EAL loads them.
    for p in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", p.display());
    }
    for l in &lib.libs {
        println!("cargo:rustc-link-lib=dylib={l}");
    }
    // pkg-config's --libs has -Wl,--as-needed first; undo it for our libraries.
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");

    // The cflags DPDK asks for (includes, -include rte_config.h, its -march baseline).
    let cflags: Vec<String> = {
        let out = std::process::Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .expect("pkg-config --cflags libdpdk");
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
    };

    let mut cc = cc::Build::new();
    cc.file("csrc/shim.c").opt_level(3).warnings(false);
    let mut i = 0;
    while i < cflags.len() {
        let f = &cflags[i];
        if f == "-include" && i + 1 < cflags.len() {
            cc.flag("-include").flag(&cflags[i + 1]);
            i += 2;
            continue;
        }
        if f.starts_with("-march=native") || f.starts_with("-mtune=native") {
            i += 1;
            continue;
        }
        cc.flag(f);
        i += 1;
    }
    cc.compile("spinewatch_dpdk_shim");

    let mut clang_args: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cflags.len() {
        let f = &cflags[i];
        if f == "-include" && i + 1 < cflags.len() {
            clang_args.push("-include".into());
            clang_args.push(cflags[i + 1].clone());
            i += 2;
            continue;
        }
        if f.starts_with("-I")
            || f.starts_with("-D")
            || f.starts_with("-march=corei7")
            || f.starts_with("-m") && !f.contains("native")
        {
            clang_args.push(f.clone());
        }
        i += 1;
    }

    let bindings = bindgen::Builder::default()
        .header("csrc/shim.h")
        .clang_args(&clang_args)
        .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_strerror|rte_errno_")
        .allowlist_function("rte_eth_dev_.*|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup|rte_eth_promiscuous_enable|rte_eth_link_get_nowait|rte_eth_stats_get|rte_eth_xstats_.*|rte_eth_link_to_str")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|rte_mempool_in_use_count")
        .allowlist_function("rte_mbuf_dyn_rx_timestamp_register|rte_pktmbuf_free_bulk")
        .allowlist_function("rte_thread_register|rte_thread_unregister|rte_socket_id|rte_get_tsc_hz|rte_lcore_count")
        .allowlist_function("rte_ring_create|rte_ring_free")
        .allowlist_function("sw_.*")
        .allowlist_type("rte_eth_conf|rte_eth_dev_info|rte_eth_link|rte_eth_stats|rte_eth_xstat|rte_eth_xstat_name|rte_eth_rss_conf|rte_eth_rxconf|rte_mempool|rte_mbuf")
        .allowlist_var("RTE_ETH_MQ_RX_RSS|RTE_ETH_MQ_RX_NONE|RTE_ETH_LINK_.*|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_PKTMBUF_HEADROOM|RTE_ETH_XSTATS_NAME_SIZE|RTE_MAX_ETHPORTS|SOCKET_ID_ANY|RTE_ETH_NAME_MAX_LEN")
        // Packed+aligned protocol headers bindgen cannot lay out on 22.11.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_.*")
        .opaque_type("rte_arp_hdr|rte_arp_ipv4")
        .opaque_type("rte_mbuf")
        .opaque_type("rte_mempool")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen over DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("write bindings");
}
