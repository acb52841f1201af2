//! The `pantau all` child process: its binary, configuration, log and stop.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::Settings;

pub fn pantau_bin() -> PathBuf {
    // This bench runs from <target>/release/deps/; the binary is <target>/release/pantau.
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("pantau")));
    beside
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/pantau"))
}

pub struct Pantau {
    pub child: Child,
    pub log: PathBuf,
    pub stopped: bool,
    pub _dir: tempfile::TempDir,
}

impl Pantau {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Err(format!("pantau exited ({st}); its log ends:\n{}", tail(&self.log, 20))),
            _ => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL after 15 s. Returns how it went.
    pub fn stop(&mut self) -> String {
        self.stopped = true;
        let t = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        for _ in 0..300 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return format!("stopped on SIGTERM in {:.1}s ({st})", t.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not stop within 15s of SIGTERM: killed".to_owned()
    }
}

impl Drop for Pantau {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop();
        }
    }
}

pub fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Warnings and errors in pantau's log (JSON, or plain text such as a panic):
/// each distinct message, with `/t/<i>` for every target, and its count.
pub fn log_summary(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().take(1_000_000) {
        let key = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => {
                let msg = v["fields"]["message"]
                    .as_str()
                    .or(v["message"].as_str())
                    .unwrap_or(line);
                let (level, target) = (v["level"].as_str().unwrap_or("?"), v["target"].as_str().unwrap_or("?"));
                // The error a warning names, when it does: what went wrong, not only that it did.
                match v["fields"]["error"].as_str() {
                    Some(e) => format!(
                        "{level} {target}: {msg} (error: {})",
                        e.chars().take(120).collect::<String>()
                    ),
                    None => format!("{level} {target}: {msg}"),
                }
            }
            Err(_) => format!("(plain) {line}"),
        };
        let (mut shape, mut rest) = (String::new(), key.as_str());
        while let Some(at) = rest.find("/t/") {
            shape.push_str(&rest[..at + 3]);
            shape.push_str("<i>");
            rest = rest[at + 3..].trim_start_matches(|c: char| c.is_ascii_digit());
        }
        shape.push_str(rest);
        *seen.entry(shape.chars().take(200).collect()).or_default() += 1;
    }
    let mut out = String::new();
    for (m, n) in seen.iter().take(12) {
        let _ = write!(out, "\n    {n:>6} × {m}");
    }
    if seen.len() > 12 {
        let _ = write!(out, "\n    … and {} more kinds", seen.len() - 12);
    }
    if seen.is_empty() { " none".to_owned() } else { out }
}

/// The extra rule: a down bench target pages at once (no `for`).
pub const RULES: &str = r#"  rules:
    - id: bench-down
      name: bench-down
      expr: 'check_up{bench="yes"} == 0'
      severity: critical
      message: "{{ $labels.target }} is down""#;

pub struct Ports {
    pub gateway: u16,
    pub admin: u16,
}

/// `pantau all` on free loopback ports (as crates/pantau/tests/it/support.rs
/// does), N HTTP targets, the webhook channel, auth off.
pub fn config_yaml(
    dir: &std::path::Path,
    n: usize,
    rules: bool,
    s: &Settings,
    targets: u16,
    hook: u16,
) -> (String, Ports) {
    let [gw, admin, cg, ca, aeg, aea, ng, na, wg, wa, sg] = std::array::from_fn(|_| pantau_testkit::free_port());
    let iv = s.interval.as_millis();
    let timeout = (iv * 9 / 10).min(5000);
    let mut y = format!(
        "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
log:
  format: json
  level: warn
gateway:
  port: {gw}
  collector_url: http://127.0.0.1:{cg}
  alert_engine_url: http://127.0.0.1:{aeg}
  notifier_url: http://127.0.0.1:{ng}
  wan_detector_url: http://127.0.0.1:{wg}
  sync_url: http://127.0.0.1:{sg}
  auth:
    enabled: false
sync:
  grpc_port: {sg}
wan_detector:
  grpc_port: {wg}
  admin_port: {wa}
alert_engine:
  grpc_port: {aeg}
  admin_port: {aea}
  default_rules: {rules}
{RULES}
notifier:
  grpc_port: {ng}
  admin_port: {na}
  channels:
    - name: bench
      type: webhook
      url: http://127.0.0.1:{hook}/hook
  routes:
    - channels: [bench]
collector:
  grpc_port: {cg}
  admin_port: {ca}
  interval: {iv}ms
  timeout: {timeout}ms
  workers:
    concurrency: 1024
  targets:
",
        data = dir.display()
    );
    for i in 0..n {
        let _ = writeln!(
            y,
            r#"    - {{id: h{i}, type: http, url: "http://127.0.0.1:{targets}/t/{i}", labels: {{bench: "yes"}}}}"#
        );
    }
    (y, Ports { gateway: gw, admin })
}
