//! A local HTTP sink that records every request, and a notifier running on
//! loopback over a given bus and data directory.

use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use pantau_config::Config;
use pantau_core::bus::Bus;
use pantau_core::grpc::Channel;
use pantau_core::service::Context;
use pantau_proto::v1::notifier_service_client::NotifierServiceClient;
use pantau_proto::v1::{AlertEvent, AlertState, Severity};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    /// The raw query string, empty when none.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status the sink answered.
    pub answered: u16,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} sent no JSON ({e}): {:?}", self.path, self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The query parameters, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// One query parameter, decoded; empty when absent.
    pub fn query_param(&self, name: &str) -> String {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    /// The body as a form, decoded.
    pub fn form(&self) -> std::collections::BTreeMap<String, String> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

#[derive(Default)]
pub struct SinkState {
    requests: Mutex<Vec<Recorded>>,
    fail_next: AtomicUsize,
    fail_status: AtomicU16,
    /// Paths starting with a prefix that fail: (prefix, times left, status).
    fail_paths: Mutex<Vec<(String, usize, u16)>>,
    /// Answers for paths starting with a prefix: (prefix, status, body).
    answers: Mutex<Vec<(String, u16, String)>>,
}

/// A local HTTP server answering `{"ok": true}` and recording each request.
pub struct Sink {
    pub url: String,
    state: Arc<SinkState>,
    task: JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(s): State<Arc<SinkState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path_failure = s
        .fail_paths
        .lock()
        .unwrap()
        .iter_mut()
        .find(|(prefix, left, _)| *left > 0 && uri.path().starts_with(prefix.as_str()))
        .map(|(_, left, status)| {
            *left -= 1;
            *status
        });
    let failure = path_failure.or_else(|| {
        s.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
            .then(|| s.fail_status.load(Ordering::SeqCst))
    });
    let answer = s
        .answers
        .lock()
        .unwrap()
        .iter()
        .find(|(prefix, _, _)| uri.path().starts_with(prefix.as_str()))
        .map(|(_, status, body)| (*status, body.clone()));
    let (status, reply) = if let Some(code) = failure {
        (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "{\"ok\":false,\"description\":\"sink told to fail\"}".to_owned(),
        )
    } else if let Some((status, body)) = answer {
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body)
    } else {
        (StatusCode::OK, "{\"ok\":true}".to_owned())
    };
    s.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body,
        answered: status.as_u16(),
    });
    (status, reply)
}

impl Sink {
    pub async fn start() -> Self {
        let state = Arc::new(SinkState::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(record).with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, state, task }
    }

    /// The next `n` requests get `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state.fail_status.store(status, Ordering::SeqCst);
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` requests to paths starting with `prefix` get `status`.
    pub fn fail_path(&self, prefix: &str, n: usize, status: u16) {
        self.state
            .fail_paths
            .lock()
            .unwrap()
            .push((prefix.to_owned(), n, status));
    }

    /// Requests to paths starting with `prefix` get `status` and `body`
    /// (a service's documented success answer) instead of `{"ok": true}`;
    /// the latest answer given for a prefix wins.
    pub fn answer(&self, prefix: &str, status: u16, body: &str) {
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(0, (prefix.to_owned(), status, body.to_owned()));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (at most `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sink got {} of {n} requests within {within:?}: {:?}",
                got.len(),
                got.iter().map(|r| (&r.path, r.answered)).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A configuration for tests: SQLite in `dir`, quick polling and retries.
pub fn config(dir: &Path, notifier: serde_json::Value) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        listen_host: "127.0.0.1".into(),
        ..Config::default()
    };
    let mut n = serde_json::to_value(&c.notifier).unwrap();
    n["poll_interval"] = "50ms".into();
    n["retry"]["initial_backoff"] = "50ms".into();
    n["retry"]["max_backoff"] = "200ms".into();
    n["request_timeout"] = "2s".into();
    let serde_json::Value::Object(fields) = notifier else {
        panic!("the notifier section is an object")
    };
    for (k, v) in fields {
        n[k] = v;
    }
    c.notifier = serde_json::from_value(n).expect("a valid notifier section");
    c.validate().expect("a valid test config");
    c
}

/// A notifier running on loopback.
pub struct Running {
    pub grpc: String,
    pub admin: String,
    pub ctx: Context,
    handle: JoinHandle<Result<(), pantau_notifier::NotifierError>>,
    admin_task: JoinHandle<()>,
}

impl Running {
    /// Starts the notifier and waits until it consumes alert events.
    pub async fn start(config: Config, bus: Arc<dyn Bus>) -> Self {
        let ctx = Context::new(Arc::new(config), bus);
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_url = format!("http://{}", admin.local_addr().unwrap());
        let hooks = pantau_notifier::Webhooks::default();
        let router = pantau_core::health::admin_router(ctx.health.clone()).merge(hooks.router());
        let stop = ctx.shutdown.clone();
        let admin_task = tokio::spawn(async move {
            axum::serve(admin, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        let handle = tokio::spawn(pantau_notifier::run(ctx.clone(), grpc, hooks));
        let running = Self {
            grpc: grpc_url,
            admin: admin_url,
            ctx,
            handle,
            admin_task,
        };
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let r = running.ctx.health.report().await;
                if r.is_ready() && r.components.contains_key("notifier.consumer") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the notifier became ready");
        running
    }

    /// An admin client (a token minted with the notifier's own keys).
    pub fn client(&self) -> NotifierServiceClient<Channel> {
        NotifierServiceClient::new(self.ctx.security.channel_as(&self.grpc, "test", "admin").unwrap())
    }

    /// Stops it (as SIGTERM would) and waits for it to finish.
    pub async fn stop(self) {
        self.ctx.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("the notifier stopped")
            .unwrap()
            .unwrap();
        let _ = self.admin_task.await;
    }
}

/// An alert engine event.
pub fn event(id: &str, state: AlertState, severity: Severity) -> AlertEvent {
    let mut e = AlertEvent {
        alert_id: id.into(),
        rule_id: "http-down".into(),
        rule_name: "EndpointDown".into(),
        summary: format!("{id} is down"),
        description: "HTTP 503 from jkt and sby".into(),
        fingerprint: format!("fp-{id}"),
        starts_at: Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        ..Default::default()
    };
    if state == AlertState::Resolved {
        e.ends_at = Some(prost_types::Timestamp {
            seconds: 1_800_000_600,
            nanos: 0,
        });
    }
    e.labels.insert("instance".into(), "api.example.org".into());
    e.set_state(state);
    e.set_severity(severity);
    e
}

/// Publishes `e` as the alert engine does.
pub async fn publish(bus: &dyn Bus, e: &AlertEvent) {
    let state = match e.state() {
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
        AlertState::Acknowledged => "acknowledged",
        AlertState::Unspecified => "unspecified",
    };
    let subject = pantau_core::bus::subject::alert(state, &e.alert_id);
    pantau_core::bus::publish_proto(bus, &subject, e).await.unwrap();
}

/// A webhook channel named `name` posting to `url`, and a route of every alert to it.
pub fn one_webhook(url: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut ch = serde_json::json!({"name": "hook", "type": "webhook", "url": url, "secret": "hook-secret-1"});
    if let serde_json::Value::Object(fields) = extra {
        for (k, v) in fields {
            ch[k] = v;
        }
    }
    serde_json::json!({
        "channels": [ch],
        "routes": [{"channels": ["hook"]}],
    })
}
