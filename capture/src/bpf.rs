//! `--bpf EXPR`: libpcap's filter language (tcpdump's, Suricata's `-f`), compiled by libpcap
//! for Ethernet frames and run by its interpreter on every packet a worker takes, on every
//! source. A packet the filter refuses is counted (`filtered`) and goes no further: no flow, no
//! record. Frames rewritten from other link types are Ethernet by then, so one filter fits all.

/// A compiled filter (one per worker: libpcap's program is not shared).
pub struct Filter {
    prog: ::pcap::BpfProgram,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

impl Filter {
    /// Compiles `expr`; the error is libpcap's, with the expression.
    pub fn compile(expr: &str) -> Result<Filter, String> {
        let dead = ::pcap::Capture::dead(::pcap::Linktype::ETHERNET).map_err(|e| format!("--bpf: libpcap: {e}"))?;
        let prog = dead.compile(expr, true).map_err(|e| format!("--bpf {expr:?}: {e}"))?;
        Ok(Filter { prog })
    }

    /// Whether the filter takes the frame.
    #[inline]
    pub fn matches(&self, frame: &[u8]) -> bool {
        self.prog.filter(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_tcpdump_does() {
        let frame = |proto: u8, dport: u16| {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            f.extend_from_slice(&1234u16.to_be_bytes());
            f.extend_from_slice(&dport.to_be_bytes());
            f.extend_from_slice(&[0; 16]);
            f
        };
        let f = Filter::compile("tcp port 80").unwrap();
        assert!(f.matches(&frame(6, 80)));
        assert!(!f.matches(&frame(6, 443)));
        assert!(!f.matches(&frame(17, 80)));
        let e = Filter::compile("tcp prt 80").unwrap_err();
        assert!(e.contains("--bpf \"tcp prt 80\"") && e.contains("syntax error"), "{e}");
    }
}
