//! Timestamps: microseconds since the Unix epoch, as the packet clock of the engine.
//!
//! Packet time drives every timeout, so replaying a capture gives the same records whatever the
//! machine's clock or speed.

/// Microseconds since the Unix epoch.
pub type Micros = u64;

pub const MICROS_PER_SEC: u64 = 1_000_000;

/// Seconds to microseconds, saturating.
#[inline]
pub fn secs(s: u32) -> Micros {
    s as u64 * MICROS_PER_SEC
}
