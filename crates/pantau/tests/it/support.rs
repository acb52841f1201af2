//! Running the real `pantau` binary in tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use pantau_testkit::free_port;
use tokio::time::Instant;

pub const BIN: &str = env!("CARGO_BIN_EXE_pantau");

/// Ports of one pantau configuration.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub gateway: u16,
    pub admin: u16,
    pub collector_grpc: u16,
    pub collector_admin: u16,
    pub alert_engine_grpc: u16,
    pub alert_engine_admin: u16,
    pub notifier_grpc: u16,
    pub notifier_admin: u16,
    pub wan_detector_grpc: u16,
    pub wan_detector_admin: u16,
}

impl Ports {
    pub fn free() -> Self {
        Self {
            gateway: free_port(),
            admin: free_port(),
            collector_grpc: free_port(),
            collector_admin: free_port(),
            alert_engine_grpc: free_port(),
            alert_engine_admin: free_port(),
            notifier_grpc: free_port(),
            notifier_admin: free_port(),
            wan_detector_grpc: free_port(),
            wan_detector_admin: free_port(),
        }
    }

    /// Environment overrides moving every service but the gateway, the
    /// collector and the admin port off their fixed defaults.
    pub fn other_services_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PANTAU_ALERT_ENGINE__GRPC_PORT", self.alert_engine_grpc.to_string()),
            ("PANTAU_ALERT_ENGINE__ADMIN_PORT", self.alert_engine_admin.to_string()),
            (
                "PANTAU_GATEWAY__ALERT_ENGINE_URL",
                format!("http://127.0.0.1:{}", self.alert_engine_grpc),
            ),
            ("PANTAU_NOTIFIER__GRPC_PORT", self.notifier_grpc.to_string()),
            ("PANTAU_NOTIFIER__ADMIN_PORT", self.notifier_admin.to_string()),
            ("PANTAU_WAN_DETECTOR__GRPC_PORT", self.wan_detector_grpc.to_string()),
            ("PANTAU_WAN_DETECTOR__ADMIN_PORT", self.wan_detector_admin.to_string()),
            (
                "PANTAU_GATEWAY__WAN_DETECTOR_URL",
                format!("http://127.0.0.1:{}", self.wan_detector_grpc),
            ),
        ]
    }
}

/// A config that watches the gateway's /healthz (HTTP) and the collector's
/// gRPC port (TCP), checking every second.
pub fn config_yaml(ports: Ports, data_dir: &Path, nats_url: Option<&str>) -> String {
    let nats = nats_url.map_or_else(String::new, |u| format!("nats:\n  url: {u}\n"));
    format!(
        "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
log:
  format: json
  level: info,pantau=debug
{nats}collector:
  grpc_port: {grpc}
  admin_port: {cadmin}
  interval: 1s
  timeout: 900ms
  targets:
    - id: gateway-healthz
      type: http
      url: http://127.0.0.1:{gw}/healthz
    - id: collector-grpc
      type: tcp
      address: 127.0.0.1:{grpc}
gateway:
  port: {gw}
  collector_url: http://127.0.0.1:{grpc}
  alert_engine_url: http://127.0.0.1:{aegrpc}
  notifier_url: http://127.0.0.1:{ngrpc}
  wan_detector_url: http://127.0.0.1:{wgrpc}
  auth:
    jwt_secret: {secret}
alert_engine:
  grpc_port: {aegrpc}
  admin_port: {aeadmin}
notifier:
  grpc_port: {ngrpc}
  admin_port: {nadmin}
wan_detector:
  grpc_port: {wgrpc}
  admin_port: {wadmin}
",
        data = data_dir.display(),
        admin = ports.admin,
        grpc = ports.collector_grpc,
        cadmin = ports.collector_admin,
        gw = ports.gateway,
        aegrpc = ports.alert_engine_grpc,
        aeadmin = ports.alert_engine_admin,
        ngrpc = ports.notifier_grpc,
        nadmin = ports.notifier_admin,
        wgrpc = ports.wan_detector_grpc,
        wadmin = ports.wan_detector_admin,
        secret = JWT_SECRET,
    )
}

/// A running `pantau` process, killed on drop; its stderr goes to a file.
pub struct Pantau {
    child: Child,
    log: PathBuf,
}

impl Pantau {
    pub fn start(dir: &Path, config: &str, args: &[&str]) -> Self {
        let cfg = dir.join(format!("pantau-{}.yaml", args.join("-")));
        std::fs::write(&cfg, config).unwrap();
        Self::start_with_file(dir, &cfg, args)
    }

    /// Runs with an existing config file.
    pub fn start_with_file(dir: &Path, cfg: &Path, args: &[&str]) -> Self {
        Self::start_with_env(dir, cfg, args, &[])
    }

    /// Runs with an existing config file and environment overrides.
    pub fn start_with_env(dir: &Path, cfg: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let command = args.last().copied().unwrap_or("pantau");
        let log = dir.join(format!("pantau-{command}.log"));
        let child = Command::new(BIN)
            .arg("--config")
            .arg(cfg)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("pantau binary runs");
        Self { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("pantau exited with {status}; log:\n{}", self.log());
        }
    }

    /// Waits up to `within` for the process to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pantau did not exit within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pantau did not stop on SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pantau {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway's signing secret in every test configuration (and passed to
/// the examples as `PANTAU_GATEWAY__AUTH__JWT_SECRET`).
pub const JWT_SECRET: &str = "the-e2e-tests-shared-signing-secret-0123456789";

/// An admin token signed with [`JWT_SECRET`], minted once by the real
/// `pantau token create`.
pub fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(["--data-dir", dir.path().to_str().unwrap(), "token", "create"])
            .args(["--scope", "admin", "--ttl", "2h", "--subject", "e2e"])
            .env_clear()
            .env("PANTAU_GATEWAY__AUTH__JWT_SECRET", JWT_SECRET)
            .output()
            .expect("pantau token create runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A gRPC channel to `127.0.0.1:port` presenting [`token`] (admin).
pub fn grpc(port: u16) -> pantau_core::grpc::Channel {
    grpc_with(port, pantau_core::grpc::Credentials::Token(token().into()))
}

/// A gRPC channel to `127.0.0.1:port` presenting `credentials`.
pub fn grpc_with(port: u16, credentials: pantau_core::grpc::Credentials) -> pantau_core::grpc::Channel {
    let security = pantau_core::grpc::Security::new(std::sync::Arc::new(pantau_config::Config::default()));
    security
        .channel_with(&format!("http://127.0.0.1:{port}"), credentials)
        .unwrap()
}

/// A client that presents [`token`] on every request.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", token()).parse().unwrap(),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Polls `url` until `ok` accepts its JSON body, or panics after `within`.
pub async fn wait_json(
    url: &str,
    within: Duration,
    mut ok: impl FnMut(&serde_json::Value) -> bool,
    p: &mut Pantau,
) -> serde_json::Value {
    let client = http();
    let deadline = Instant::now() + within;
    let mut last;
    loop {
        p.assert_running();
        match client.get(url).send().await {
            Ok(r) => {
                let text = r.text().await.unwrap_or_default();
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                    && ok(&v)
                {
                    return v;
                }
                last = text;
            }
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "{url} never satisfied the test; last answer: {last}\nlog:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both example targets have a result that is `up`.
pub fn both_up(v: &serde_json::Value) -> bool {
    let Some(results) = v["results"].as_array() else {
        return false;
    };
    ["collector-grpc", "gateway-healthz"]
        .iter()
        .all(|id| results.iter().any(|r| r["target_id"] == *id && r["status"] == "up"))
}

/// Reads WebSocket text frames until one is a check result, within `within`.
pub async fn next_ws_result(url: &str, within: Duration) -> serde_json::Value {
    // Browsers cannot set headers on a WebSocket: the token rides in the query.
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}token={}", token());
    let (mut ws, _) = tokio::time::timeout(within, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .expect("websocket connect in time")
        .expect("websocket handshake");
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("a websocket event in time")
            .expect("websocket open")
            .expect("websocket frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).expect("event is JSON");
            if v["type"] == "check_result" {
                return v;
            }
        }
    }
}

/// The value of a counter with the given label fragment in a /metrics text.
pub fn metric_value(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// What a webhook receiver got: its `traceparent` header (empty when none)
/// and its body, as JSON (a JSON string when it is not JSON) and as sent.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub traceparent: String,
    pub body: serde_json::Value,
    pub raw: String,
}

/// A webhook receiver on a free loopback port keeping every request it is
/// sent, whatever its path and method (`/hook` in most configs).
#[derive(Clone, Default)]
pub struct Sink(std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>);

impl Sink {
    pub async fn start() -> (Self, std::net::SocketAddr) {
        let sink = Self::default();
        let s = sink.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, raw: String| {
            let s = s.clone();
            async move {
                let traceparent = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let body = serde_json::from_str(&raw).unwrap_or_else(|_| serde_json::Value::String(raw.clone()));
                s.0.lock().unwrap().push(Delivery { traceparent, body, raw });
                "ok"
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        (sink, addr)
    }

    /// Every delivery so far.
    pub fn all(&self) -> Vec<Delivery> {
        self.0.lock().unwrap().clone()
    }

    /// Waits for a delivery that `ok` accepts while `running` keeps running
    /// (its log is shown if none comes).
    pub async fn wait(&self, within: Duration, ok: impl Fn(&Delivery) -> bool, running: &mut Pantau) -> Delivery {
        self.poll(within, ok, || {
            running.assert_running();
            running.log()
        })
        .await
    }

    /// Waits for a delivery that `ok` accepts.
    pub async fn wait_any(&self, within: Duration, ok: impl Fn(&Delivery) -> bool) -> Delivery {
        self.poll(within, ok, String::new).await
    }

    async fn poll(
        &self,
        within: Duration,
        ok: impl Fn(&Delivery) -> bool,
        mut alive: impl FnMut() -> String,
    ) -> Delivery {
        let deadline = Instant::now() + within;
        loop {
            if let Some(d) = self.0.lock().unwrap().iter().find(|d| ok(d)) {
                return d.clone();
            }
            let log = alive();
            assert!(
                Instant::now() < deadline,
                "no such delivery within {within:?}; got {:?}\nlog:\n{log}",
                self.all().iter().map(|d| &d.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
