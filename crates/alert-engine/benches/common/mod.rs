//! What the alert engine's benchmarks share.

/// Resident memory of this process, KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// The peak resident memory of this process since the last
/// [`reset_peak_rss`] (or its start), KiB.
#[allow(dead_code)]
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Starts the peak over from the present RSS (Linux's `clear_refs`).
#[allow(dead_code)]
pub fn reset_peak_rss() {
    // Refused only on kernels before 4.0, where the peak then counts from the start.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sizes from the environment variable `var` (comma-separated), or `default`.
pub fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}
