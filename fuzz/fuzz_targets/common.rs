//! What the targets share: the flow context of the events they render.

/// A flow context for rendering events (the values do not matter to the parsers).
pub fn meta(proto: u8, dest_port: u16) -> detect::EventMeta {
    detect::EventMeta {
        flow_id: 1,
        timestamp: 0,
        ip_version: 4,
        src_ip: [0; 16],
        dest_ip: [0; 16],
        src_port: 1,
        dest_port,
        proto,
        vlan: [0; 3],
        vlan_count: 0,
        tunnel: None,
    }
}
