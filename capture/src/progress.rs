//! The progress line of a long replay: on a terminal only (stderr), after the first few
//! seconds, at most once a second, rewritten in place: how far through the input (bytes or
//! packets), the rate, and the time left. Cleared when the replay ends, so the summary follows
//! on a clean line. Not on the packet path: the reader's thread or the runner's calls it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// What the input is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Packets,
}

#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    unit: Unit,
    total: u64,
    started: Instant,
    next: Instant,
    shown: bool,
    on: bool,
}

/// Seconds before the first line: short replays show none.
const AFTER: Duration = Duration::from_secs(3);

impl Progress {
    /// A progress line for `total` units of input (0: unknown, as standard input), shown only
    /// if stderr is a terminal.
    pub fn new(what: &'static str, total: u64, unit: Unit) -> Progress {
        let on = std::io::stderr().is_terminal();
        let now = Instant::now();
        Progress { what, unit, total, started: now, next: now + AFTER, shown: false, on }
    }

    /// `done` units read so far and `packets` processed: redraws the line when it is due.
    pub fn update(&mut self, done: u64, packets: u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
        let mut line = format!("\r\x1b[K{}: ", self.what);
        let size = |n: u64| match self.unit {
            Unit::Bytes => format!("{:.1} MB", n as f64 / 1e6),
            Unit::Packets => format!("{n} packets"),
        };
        if self.total > 0 {
            let pct = (done as f64 * 100.0 / self.total as f64).min(100.0);
            line += &format!("{pct:.0}% of {}", size(self.total));
            if done > 0 && done < self.total {
                let left = secs * (self.total - done) as f64 / done as f64;
                line += &format!(", about {left:.0} s left");
            }
        } else {
            line += &size(done);
        }
        line += &format!(", {packets} packets ({:.2} Mpps)", packets as f64 / secs / 1e6);
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(line.as_bytes());
        let _ = e.flush();
        self.shown = true;
    }

    /// Clears the line, if one was shown.
    pub fn finish(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(b"\r\x1b[K");
            let _ = e.flush();
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
