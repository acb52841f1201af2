//! [`NatsCluster`]: N real `nats-server`s forming one JetStream cluster on
//! free loopback ports.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::nats::healthz;
use crate::{TestkitError, binary, free_port};

/// How long the servers get to find each other and elect a JetStream meta
/// leader (every `/healthz` answers 200 only then).
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Starts tried with fresh ports when another process took one meanwhile.
const START_ATTEMPTS: u32 = 3;
/// The cluster's name in the servers' configuration.
const CLUSTER_NAME: &str = "pantau-test";

/// One server of a [`NatsCluster`].
struct Node {
    port: u16,
    monitor_port: u16,
    route_port: u16,
    child: Option<Child>,
}

/// N `nats-server`s with JetStream, routed to each other as one cluster,
/// each with its own store directory; all killed when dropped.
///
/// A node can be killed ([`NatsCluster::kill`], SIGKILL like a crash) and
/// started again on the same ports with the same store.
pub struct NatsCluster {
    binary: PathBuf,
    dir: TempDir,
    token: Option<String>,
    tls: bool,
    nodes: Vec<Node>,
}

impl std::fmt::Debug for NatsCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsCluster")
            .field("urls", &self.urls())
            .field(
                "running",
                &self.nodes.iter().map(|n| n.child.is_some()).collect::<Vec<_>>(),
            )
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl NatsCluster {
    /// Starts `size` servers (at least 1) and waits until every one is
    /// healthy, which in a cluster means a JetStream meta leader is elected.
    pub async fn start(size: usize) -> Result<Self, TestkitError> {
        Self::start_with(size, None, false).await
    }

    /// Like [`NatsCluster::start`], with clients required to present `token`.
    pub async fn start_with_token(size: usize, token: &str) -> Result<Self, TestkitError> {
        Self::start_with(size, Some(token.to_owned()), false).await
    }

    /// Like [`NatsCluster::start_with_token`], with clients also required to
    /// use TLS: the servers present a self-signed certificate for 127.0.0.1
    /// and localhost, whose PEM is [`NatsCluster::ca_file`]; the URLs are `tls://`.
    pub async fn start_with_tls(size: usize, token: &str) -> Result<Self, TestkitError> {
        Self::start_with(size, Some(token.to_owned()), true).await
    }

    async fn start_with(size: usize, token: Option<String>, tls: bool) -> Result<Self, TestkitError> {
        let binary = binary::require("nats-server", "nats-server")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-nats-cluster-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        if tls {
            write_certificate(dir.path())?;
        }
        let mut cluster = Self {
            binary,
            dir,
            token,
            tls,
            nodes: Vec::new(),
        };
        let mut attempt = 1;
        loop {
            cluster.nodes = (0..size.max(1))
                .map(|_| Node {
                    port: free_port(),
                    monitor_port: free_port(),
                    route_port: free_port(),
                    child: None,
                })
                .collect();
            match cluster.start_all().await {
                Err(e) if attempt < START_ATTEMPTS && e.port_taken() => {
                    attempt += 1;
                    cluster.kill_all().await;
                }
                Err(e) => {
                    cluster.kill_all().await;
                    return Err(e);
                }
                Ok(()) => return Ok(cluster),
            }
        }
    }

    async fn start_all(&mut self) -> Result<(), TestkitError> {
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        for i in 0..self.nodes.len() {
            self.wait_healthy(i).await?;
        }
        Ok(())
    }

    /// The number of servers.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// `nats://127.0.0.1:PORT` of node `i`.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn url(&self, i: usize) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.nodes[i].port)
    }

    /// The PEM of the servers' certificate, to trust as a CA (`nats.ca_file`),
    /// when the cluster was started with TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("cert.pem"))
    }

    /// Every node's client URL, comma-separated: the seeds for `nats.url`.
    pub fn urls(&self) -> String {
        (0..self.nodes.len()).map(|i| self.url(i)).collect::<Vec<_>>().join(",")
    }

    /// `http://127.0.0.1:PORT` of node `i`'s monitoring endpoint (`/healthz`, `/jsz`, ..).
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].monitor_port)
    }

    /// Node `i`'s server name (`n0`, `n1`, ..), as JetStream names peers and leaders.
    pub fn server_name(i: usize) -> String {
        format!("n{i}")
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.child.is_some())
    }

    /// Node `i`'s log file (every run appended).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}.log"))
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tail(&self) -> String {
        (0..self.nodes.len())
            .map(|i| format!("--- n{i}\n{}", binary::log_tail(&self.log_path(i), 20)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kills node `i` (SIGKILL, like a crashed machine) and waits for it to
    /// exit; its store is kept. Does nothing when it is not running.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            // An error means it has already exited; `wait` reaps it either way.
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts node `i` again on its ports with its store and waits until it
    /// is healthy (back in the cluster).
    ///
    /// # Panics
    /// If there is no node `i`.
    pub async fn start_again(&mut self, i: usize) -> Result<(), TestkitError> {
        self.kill(i).await;
        self.spawn(i)?;
        self.wait_healthy(i).await
    }

    async fn kill_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i).await;
        }
    }

    fn spawn(&mut self, i: usize) -> Result<(), TestkitError> {
        let conf = self.dir.path().join(format!("n{i}.conf"));
        std::fs::write(&conf, self.config(i)).map_err(|e| TestkitError::io("write", &conf, e))?;
        let log = self.log_path(i);
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| TestkitError::io("open", &log, e))?;
        let err = out.try_clone().map_err(|e| TestkitError::io("open", &log, e))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TestkitError::io("start", &self.binary, e))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    async fn wait_healthy(&mut self, i: usize) -> Result<(), TestkitError> {
        let log = self.log_path(i);
        let port = self.nodes[i].monitor_port;
        let result = binary::wait_until_ready("nats-server", &mut self.nodes[i].child, &log, READY_WITHIN, || {
            healthz(port)
        })
        .await;
        if result.is_err() {
            self.kill(i).await;
        }
        result
    }

    /// Node `i`'s configuration file: its ports, its store, routes to every other node.
    fn config(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let routes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("nats-route://127.0.0.1:{}", n.route_port))
            .collect();
        let mut auth = self
            .token
            .as_ref()
            .map(|t| format!("authorization {{\n  token: {}\n}}\n", quoted(t)))
            .unwrap_or_default();
        if self.tls {
            let d = self.dir.path();
            let _ = write!(
                auth,
                "tls {{\n  cert_file: {}\n  key_file: {}\n}}\n",
                quoted(&d.join("cert.pem").to_string_lossy()),
                quoted(&d.join("key.pem").to_string_lossy())
            );
        }
        format!(
            "server_name: n{i}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n\
             jetstream {{\n  store_dir: {store}\n}}\n\
             cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{route}\n  routes: [{routes}]\n}}\n{auth}",
            port = node.port,
            monitor = node.monitor_port,
            route = node.route_port,
            store = quoted(&store_dir(self.dir.path(), i).to_string_lossy()),
            routes = routes.join(", "),
        )
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                let _ = child.start_kill();
            }
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: `cert.pem` and
/// `key.pem` in `dir`.
fn write_certificate(dir: &Path) -> Result<(), TestkitError> {
    let bad = |what: &'static str, e: &dyn std::fmt::Display| {
        TestkitError::io(what, "the NATS test certificate", std::io::Error::other(e.to_string()))
    };
    let key = rcgen::KeyPair::generate().map_err(|e| bad("generate a key for", &e))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| bad("make", &e))?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pantau test nats");
    let cert = params.self_signed(&key).map_err(|e| bad("sign", &e))?;
    for (name, pem) in [("cert.pem", cert.pem()), ("key.pem", key.serialize_pem())] {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(|e| TestkitError::io("write", &path, e))?;
    }
    Ok(())
}

fn store_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("n{i}-js"))
}

/// A double-quoted string for the NATS configuration format.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_form_one_cluster_and_a_node_comes_back() {
        let mut c = NatsCluster::start(3).await.expect("start a 3-node cluster");
        assert_eq!(c.size(), 3);
        assert_eq!(c.urls().split(',').count(), 3);
        // Every node sees the other two as routes.
        for i in 0..3 {
            let routez = http_get(&format!("{}/routez", c.monitor_url(i))).await;
            assert!(
                routez.contains("\"num_routes\": 2"),
                "n{i} routes:\n{routez}\n{}",
                c.log_tail()
            );
        }
        c.kill(1).await;
        assert!(!c.is_running(1));
        c.start_again(1).await.expect("n1 rejoins");
        assert!(c.is_running(1));
    }

    async fn http_get(url: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = tokio::net::TcpStream::connect(authority).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
}
