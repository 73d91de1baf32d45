//! Core pinning.

/// Pins the calling thread to `core`. Returns false (and the caller logs it) when the core does
/// not exist or the OS refused.
pub fn pin_current(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// The cores this process may run on.
pub fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids().map(|v| v.into_iter().map(|c| c.id).collect()).unwrap_or_default()
}
