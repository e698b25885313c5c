//! The line printed after a transfer.

use std::time::{Duration, Instant};

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The line printed after a transfer: name, size, time, rate, verification.
pub fn summary(name: &str, bytes: u64, elapsed: Duration) -> String {
    resumed_summary(name, bytes, 0, elapsed)
}

/// The line after a transfer that continued a partial file of `kept` bytes:
/// the rate counts only what moved this time (`size - kept`).
pub fn resumed_summary(name: &str, size: u64, kept: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    let moved = size.saturating_sub(kept);
    let resumed = if kept > 0 {
        format!(", resumed after {}", human_bytes(kept))
    } else {
        String::new()
    };
    format!(
        "{name}: {} in {:.2} s ({}/s{resumed}), md5 ok",
        human_bytes(size),
        secs,
        human_bytes((moved as f64 / secs) as u64)
    )
}

/// A clock for the summary line.
pub struct Timer(Instant);
impl Timer {
    pub fn start() -> Self {
        Self(Instant::now())
    }
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn a_resumed_transfer_counts_only_the_bytes_it_moved() {
        let line = resumed_summary("x", 10 << 20, 8 << 20, Duration::from_secs(1));
        assert_eq!(
            line,
            "x: 10.0 MiB in 1.00 s (2.0 MiB/s, resumed after 8.0 MiB), md5 ok"
        );
        let line = summary("x", 10 << 20, Duration::from_secs(2));
        assert_eq!(line, "x: 10.0 MiB in 2.00 s (5.0 MiB/s), md5 ok");
    }
}
