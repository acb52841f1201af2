//! Reading the child: its `/metrics` text and `/proc` figures.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::SystemTime;

pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            l.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Cumulative buckets `(le, count)` of a histogram, summed over its other labels.
pub fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with(&prefix)) {
        let le = l
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next()?.parse::<f64>().ok());
        if let (Some(le), Some(c)) = (le, l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())) {
            by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += c;
        }
    }
    let mut v: Vec<(f64, f64)> = by_le.into_values().collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// The q-quantile of the observations between two scrapes (linear within a
/// bucket, as Prometheus' histogram_quantile); infinite past the last bound.
pub fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let old = before.iter().map(|b| b.1).chain(std::iter::repeat(0.0));
    let d: Vec<(f64, f64)> = after.iter().zip(old).map(|(&(le, c), o)| (le, c - o)).collect();
    let total = d.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, c) in &d {
        if c >= want {
            if le.is_infinite() {
                return Some(f64::INFINITY);
            }
            return Some(prev.0 + (le - prev.0) * (want - prev.1) / (c - prev.1).max(f64::MIN_POSITIVE));
        }
        prev = (le, c);
    }
    None
}

pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Fields of `/proc/<pid>/status` given in kB, in MiB (NaN where missing).
fn status_mib<const N: usize>(pid: u32, keys: [&str; N]) -> [f64; N] {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    keys.map(|key| {
        s.lines()
            .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |k| k / 1024.0)
    })
}

/// `pid`'s RSS and its peak, in MiB.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let [rss, hwm] = status_mib(pid, ["VmRSS:", "VmHWM:"]);
    (rss, hwm)
}

/// `pid`'s resident memory in MiB by kind: anonymous (the heap, stacks) and
/// file-backed (mostly the binary's code).
pub fn rss_split_mib(pid: u32) -> (f64, f64) {
    let [anon, file] = status_mib(pid, ["RssAnon:", "RssFile:"]);
    (anon, file)
}

pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub async fn metrics(http: &reqwest::Client, admin: u16) -> Result<String, String> {
    let r = http
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .map_err(|e| format!("/metrics: {e}"))?;
    r.text().await.map_err(|e| format!("/metrics: {e}"))
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

pub fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}
