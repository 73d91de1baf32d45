//! Any bytes as an SSH session: banners and KEXINIT packets cut anywhere, both ways.
#![no_main]
use detect::app::ssh::{SshCounters, SshState};
use detect::app::stream::Chunk;
use detect::app::AppEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mut st = SshState::default();
    let mut c = SshCounters::default();
    let mut out = Vec::new();
    let m = detect::EventMeta {
        flow_id: 1,
        timestamp: 0,
        ip_version: 4,
        src_ip: [0; 16],
        dest_ip: [0; 16],
        src_port: 1,
        dest_port: 22,
        proto: 6,
        vlan: [0; 3],
        vlan_count: 0,
        tunnel: None,
    };
    let mut emit = |e: &AppEvent<'_>| {
        export::app::write_event(&mut out, &m, e);
    };
    let step = 1 + (ctl & 0x7f) as usize;
    for (i, ch) in rest.chunks(step).enumerate() {
        st.input((ctl as usize >> 7) ^ (i % 2), Chunk::Data(ch), &mut c, &mut emit);
    }
    st.finish(&mut emit);
});
