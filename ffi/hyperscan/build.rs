//! Probes the system's Hyperscan (libhs >= 5.2) with pkg-config; with it, `has_hyperscan` is set
//! and the crate links libhs, without it every constructor says so at run time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo::rustc-check-cfg=cfg(has_hyperscan)");
    if let Ok(hs) = pkg_config::Config::new().atleast_version("5.2").cargo_metadata(false).probe("libhs") {
        for p in &hs.link_paths {
            println!("cargo:rustc-link-search=native={}", p.display());
        }
        println!("cargo:rustc-cfg=has_hyperscan");
    }
}
