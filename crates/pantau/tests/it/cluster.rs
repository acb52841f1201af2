//! A cluster of `pantau all` instances for the multi-location tests (and
//! the failover soak): each instance's ports, directory and config.

// Some fields serve only the soak (`tests/soak`), which includes this file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use pantau_proto::prost::Message;
use pantau_proto::v1 as pb;
use pantau_testkit::free_port;
use tokio::time::Instant;

use crate::support::{Pantau, http};

pub const HB: Duration = Duration::from_secs(1);

/// One instance: its ports, directory and config file.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: &'static str,
    pub location: &'static str,
    pub dir: PathBuf,
    pub gateway: u16,
    pub admin: u16,
    pub sync: u16,
    pub collector: u16,
    pub cfg: PathBuf,
}

impl Instance {
    /// Writes the config of an instance; `primary_url` makes it a dependent,
    /// `targets` (YAML list items) are its own.
    pub fn new(
        root: &Path,
        name: &'static str,
        location: &'static str,
        nats: &str,
        primary_url: Option<&str>,
        failover: &str,
        targets: &str,
    ) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (gateway, admin, sync, collector) = (free_port(), free_port(), free_port(), free_port());
        let p = || free_port();
        let role = primary_url.map_or_else(
            || "  enabled: true\n  role: primary\n".to_owned(),
            |u| format!("  primary_url: {u}\n"),
        );
        let (wg, wa, ag, aa, ng, na, ca, sa) = (p(), p(), p(), p(), p(), p(), p(), p());
        let yaml = format!(
            "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 3s
instance:
  name: {name}
  location: {location}
log:
  format: json
  level: info,pantau_sync_api=debug
nats:
  url: {nats}
collector:
  grpc_port: {collector}
  admin_port: {ca}
  interval: 1s
  timeout: 500ms
{targets}wan_detector:
  grpc_port: {wg}
  admin_port: {wa}
alert_engine:
  grpc_port: {ag}
  admin_port: {aa}
notifier:
  grpc_port: {ng}
  admin_port: {na}
gateway:
  port: {gateway}
  collector_url: http://127.0.0.1:{collector}
  wan_detector_url: http://127.0.0.1:{wg}
  alert_engine_url: http://127.0.0.1:{ag}
  notifier_url: http://127.0.0.1:{ng}
  sync_url: http://127.0.0.1:{sync}
  auth:
    enabled: false
sync:
{role}  grpc_port: {sync}
  admin_port: {sa}
  public_url: http://127.0.0.1:{sync}
  collector_url: http://127.0.0.1:{collector}
  token: join-token-for-the-tests
  failover_order: {failover}
  heartbeat_interval: 1s
  sync_interval: 1s
  consensus_window: 2s
  consensus_delay: 1s
",
            data = dir.join("data").display(),
        );
        let cfg = dir.join("pantau.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        Self {
            name,
            location,
            dir,
            gateway,
            admin,
            sync,
            collector,
            cfg,
        }
    }

    /// Serves every gRPC port of this instance over TLS with `tls`'s
    /// certificate and trusts its CA: every gRPC URL in its config becomes
    /// `https://` (a dependent's `primary_url` too).
    pub fn with_tls(self, tls: &pantau_testkit::TlsFiles) -> Self {
        let yaml = std::fs::read_to_string(&self.cfg).unwrap();
        let mut out: Vec<String> = yaml
            .lines()
            .map(|l| {
                if l.contains("_url: http://127.0.0.1") {
                    l.replace("http://", "https://")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        out.push(format!(
            "grpc:\n  tls_cert_file: {}\n  tls_key_file: {}\n  ca_file: {}",
            tls.cert.display(),
            tls.key.display(),
            tls.ca.display()
        ));
        std::fs::write(&self.cfg, out.join("\n") + "\n").unwrap();
        self
    }

    /// Sends every notification to the webhook `url` (a channel `sink` and
    /// a route of every alert to it).
    pub fn with_webhook(self, url: &str) -> Self {
        self.with_notifier(&format!(
            "  channels:\n    - {{ name: sink, type: webhook, url: \"{url}\" }}\n  routes:\n    - {{ channels: [sink] }}"
        ))
    }

    /// Adds `yaml` (keys of the `notifier` section, indented by two) to the
    /// notifier section: channels, routes.
    pub fn with_notifier(self, yaml: &str) -> Self {
        let text = std::fs::read_to_string(&self.cfg).unwrap();
        let mut out = Vec::new();
        let mut in_notifier = false;
        for l in text.lines() {
            out.push(l.to_owned());
            if l == "notifier:" {
                in_notifier = true;
            } else if in_notifier && l.starts_with("  admin_port:") {
                in_notifier = false;
                out.push(yaml.trim_end().to_owned());
            }
        }
        std::fs::write(&self.cfg, out.join("\n") + "\n").unwrap();
        self
    }

    /// Trusts `ca` for `https://` gRPC URLs; its own servers stay plaintext.
    pub fn trusting(self, ca: &Path) -> Self {
        let yaml = std::fs::read_to_string(&self.cfg).unwrap();
        std::fs::write(&self.cfg, format!("{yaml}grpc:\n  ca_file: {}\n", ca.display())).unwrap();
        self
    }

    /// The sync API's URL, `https://` when it serves TLS.
    pub fn sync_url_tls(&self) -> String {
        format!("https://127.0.0.1:{}", self.sync)
    }

    pub fn sync_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sync)
    }

    pub fn status_url(&self) -> String {
        format!("http://127.0.0.1:{}/sync/api/status", self.gateway)
    }

    pub fn start(&self) -> Pantau {
        Pantau::start_with_file(&self.dir, &self.cfg, &["all"])
    }
}

/// The sync status of an instance, or `None` while it does not answer.
pub async fn status(i: &Instance) -> Option<serde_json::Value> {
    let r = http().get(i.status_url()).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// A TCP port that accepts connections for as long as the test runs.
pub fn listening_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            drop(conn);
        }
    });
    port
}

/// Two TCP targets, one up and one down (quorum 2), as YAML.
pub fn targets(up: u16, down: u16) -> String {
    format!(
        "  targets:
    - id: web-up
      type: tcp
      address: 127.0.0.1:{up}
    - id: web-down
      type: tcp
      address: 127.0.0.1:{down}
      quorum: 2
"
    )
}

/// Waits for a consensus on `target` satisfying `ok`.
pub async fn consensus(
    sub: &mut async_nats::Subscriber,
    target: &str,
    within: Duration,
    ok: impl Fn(&pb::ConsensusResult) -> bool,
) -> pb::ConsensusResult {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, sub.next())
            .await
            .unwrap_or_else(|_| panic!("no matching consensus for {target} within {within:?}; saw {seen:?}"))
            .expect("subscription open");
        let c = pb::ConsensusResult::decode(msg.payload.as_ref()).expect("a ConsensusResult");
        if c.target_id == target && ok(&c) {
            return c;
        }
        seen.push((c.target_id.clone(), c.status, c.locations_total, c.locations_stale));
    }
}
