//! Hostile messages on the bus: on every subject family a service consumes
//! (check results, interface samples, router info, events, metrics, alerts,
//! incidents, delivery outcomes, consensus), garbage bytes, messages of another type and well-typed
//! messages with extreme values (timestamps at year 0 and past 10000,
//! nanos out of range, NaN and infinities, unknown enum values, strings of
//! 256 KiB, a NUL byte, ten thousand labels) — through a real nats-server
//! against the real `pantau all` binary, and through the in-process bus
//! against the same services run in this process. Afterwards every
//! consumer goes on: a valid DOWN result fires an alert that the notifier
//! delivers to a local webhook and the gateway's WebSocket shows, a valid
//! RouterInfo makes the WAN detector publish `wan_detected`; the bad ones
//! are counted (`pantau_bus_dead_letters_total{consumer}`) and moved to
//! `pantau.deadletter.<consumer>`; and the notifier still delivers after a
//! restart. The NATS run is a sync primary, so the sync-api's outbox takes
//! the hostile results too and still publishes a consensus afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pantau_config::Config;
use pantau_core::bus::{Bus, Subscription, publish_proto, subject};
use pantau_core::service::Context;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{JWT_SECRET, Pantau, Ports, Sink, metric_value, token};

mod messages;

use messages::{down, poison, router};

const WAIT: Duration = Duration::from_secs(60);

/// The consumers of `pantau all`; with sync on (the NATS run: a primary)
/// the sync-api's outbox too.
const CONSUMERS: [&str; 5] = [
    "alert-engine",
    "alert-engine-deliveries",
    "notifier",
    "gateway-feed",
    "wan-detector",
];
const SYNC_OUTBOX: &str = "sync-outbox";

/// Waits until a delivery to `sink` mentions `needle`.
async fn wait_for(sink: &Sink, needle: &str, within: Duration) {
    sink.wait_any(within, |d| d.raw.contains(needle)).await;
}

/// The services' configuration: a rule on `fuzz-*` targets, the shipped
/// default rules on (they read every family too), every alert to the sink.
fn yaml(sink: u16, nats: Option<&str>, auth: bool) -> String {
    let nats = nats.map_or_else(String::new, |u| format!("nats:\n  url: {u}\n"));
    format!(
        "{nats}alert_engine:
  sweep_interval: 1s
  rules:
    - id: fuzz-down
      expr: 'check_up{{location=\"jkt\"}} == 0'
      severity: critical
      message: '{{{{ $labels.target }}}} is down'
notifier:
  poll_interval: 200ms
  retry: {{ initial_backoff: 100ms, max_attempts: 2 }}
  channels:
    - {{ name: sink, type: webhook, url: 'http://127.0.0.1:{sink}/hook' }}
  routes:
    - channels: [sink]
gateway:
  auth:
    enabled: {auth}
    jwt_secret: {JWT_SECRET}
"
    )
}

/// A WebSocket client of the gateway's events, answering pings; keeps
/// every event it has read, so waiting for one kind loses no other.
struct Events {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    seen: Vec<(String, String)>,
}

impl Events {
    async fn connect(url: &str) -> Self {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Ok((ws, _))) =
                tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await
            {
                return Self { ws, seen: Vec::new() };
            }
            assert!(Instant::now() < deadline, "the gateway's WebSocket never accepted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for an event of `kind` whose JSON mentions `needle`.
    async fn wait_for(&mut self, kind: &str, needle: &str) {
        let hit = |(k, t): &(String, String)| k == kind && t.contains(needle);
        if self.seen.iter().any(hit) {
            return;
        }
        let got = tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await.expect("the socket stays open").unwrap() {
                    Ws::Text(t) => {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        let event = (v["type"].as_str().unwrap_or_default().to_owned(), t.to_string());
                        let found = hit(&event);
                        self.seen.push(event);
                        if found {
                            return;
                        }
                    }
                    Ws::Ping(p) => self.ws.send(Ws::Pong(p)).await.unwrap(),
                    _ => {}
                }
            }
        })
        .await;
        assert!(got.is_ok(), "no {kind} event mentioning {needle} within {WAIT:?}");
    }
}

/// Dead letters seen on `pantau.deadletter.>`: consumer → count, each with
/// its original subject and reason in headers.
#[derive(Clone, Default)]
struct DeadLetters(Arc<Mutex<std::collections::BTreeMap<String, usize>>>);

impl DeadLetters {
    async fn watch(bus: &Arc<dyn Bus>) -> Self {
        let seen = Self::default();
        let mut sub = bus.subscribe(Subscription::live("pantau.deadletter.>")).await.unwrap();
        let kept = seen.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                assert!(m.headers.contains_key("pantau-original-subject"), "{:?}", m.headers);
                assert!(m.headers.contains_key("pantau-dead-letter-reason"), "{:?}", m.headers);
                let consumer = m.headers.get("pantau-consumer").cloned().unwrap_or_default();
                *kept.0.lock().unwrap().entry(consumer).or_default() += 1;
            }
        });
        seen
    }

    fn count(&self, consumer: &str) -> usize {
        self.0.lock().unwrap().get(consumer).copied().unwrap_or(0)
    }
}

/// After the corpus, every consumer goes on with valid messages, and each
/// counted and moved its bad ones.
async fn every_consumer_goes_on(
    bus: &Arc<dyn Bus>,
    sink: &Sink,
    ws: &mut Events,
    dead: &DeadLetters,
    sync: bool,
    metrics: impl AsyncFn() -> String,
) {
    // The alert engine and the notifier: an alert delivered to the webhook;
    // the gateway's feed: the result on the WebSocket.
    publish_proto(bus.as_ref(), &subject::check_result("jkt", "fuzz-1"), &down("fuzz-1"))
        .await
        .unwrap();
    ws.wait_for("check_result", "fuzz-1").await;
    wait_for(sink, "fuzz-1", WAIT).await;
    // The WAN detector: a decision on wan_detected.
    publish_proto(bus.as_ref(), &subject::router_info("fuzz-gw"), &router("fuzz-gw"))
        .await
        .unwrap();
    ws.wait_for("wan_detected", "fuzz-gw").await;
    // The sync-api's outbox: the primary's consensus over fuzz-1's window.
    if sync {
        ws.wait_for("consensus", "fuzz-1").await;
    }
    // Each consumer counted and moved bad messages.
    let consumers: Vec<&str> = CONSUMERS.iter().copied().chain(sync.then_some(SYNC_OUTBOX)).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let text = metrics().await;
        let counted: Vec<(&str, f64)> = consumers
            .iter()
            .map(|c| {
                let label = format!("consumer=\"{c}\"");
                (
                    *c,
                    metric_value(&text, "pantau_bus_dead_letters_total", &label).unwrap_or(0.0),
                )
            })
            .collect();
        let moved: Vec<(&str, usize)> = consumers.iter().map(|c| (*c, dead.count(c))).collect();
        if counted.iter().all(|(_, n)| *n > 0.0) && moved.iter().all(|(_, n)| *n > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters counted {counted:?}, seen on pantau.deadletter.> {moved:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_over_nats_leave_pantau_all_consuming() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nats = pantau_testkit::Nats::start().await.expect("nats-server starts");
    let (sink, sink_addr) = Sink::start().await;
    let sink_port = sink_addr.port();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let cfg_path = dir.path().join("pantau.yaml");
    let yaml = format!(
        "listen_host: 127.0.0.1\ndata_dir: {}\nadmin_port: {}\nshutdown_grace: 5s\nlog: {{ format: json, level: info }}\n\
         instance: {{ name: fuzz-primary, location: jkt }}\n\
         collector: {{ grpc_port: {}, admin_port: {} }}\n\
         sync: {{ enabled: true, grpc_port: {}, admin_port: {}, collector_url: 'http://127.0.0.1:{}', token: fuzz-join-token-0123456789, consensus_window: 1s, consensus_delay: 500ms }}\n{}",
        dir.path().join("data").display(),
        ports.admin,
        ports.collector_grpc,
        ports.collector_admin,
        pantau_testkit::free_port(),
        pantau_testkit::free_port(),
        ports.collector_grpc,
        yaml(sink_port, Some(&nats.url()), true).replace(
            "gateway:\n",
            &format!(
                "gateway:\n  port: {}\n  collector_url: http://127.0.0.1:{}\n",
                ports.gateway, ports.collector_grpc
            )
        ),
    );
    std::fs::write(&cfg_path, yaml).unwrap();
    let env = ports.other_services_env();
    let mut p = Pantau::start_with_env(dir.path(), &cfg_path, &["all"], &env);
    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    let http = reqwest::Client::new();
    // Ready, with every consumer subscribed (the admin port answers before
    // the services have registered their checks; a JetStream durable made
    // after a message was published does not get it).
    let ready = async |p: &mut Pantau| {
        let deadline = Instant::now() + WAIT;
        let subscribed = [
            "alert_engine.consumer",
            "notifier.consumer",
            "gateway.feed",
            "wan_detector.consumer",
            "sync_api.outbox",
        ];
        loop {
            p.assert_running();
            if let Ok(r) = http.get(&readyz).send().await
                && r.status().is_success()
                && let Ok(v) = r.json::<serde_json::Value>().await
                && subscribed.iter().all(|c| v["components"][c]["status"] == "ok")
            {
                return;
            }
            assert!(Instant::now() < deadline, "pantau all never ready:\n{}", p.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    ready(&mut p).await;

    let nats_cfg = pantau_config::NatsConfig {
        url: Some(nats.url()),
        ..pantau_config::NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(
        pantau_core::bus::nats::NatsBus::connect(&nats_cfg, "fuzz")
            .await
            .expect("the test reaches nats"),
    );
    let dead = DeadLetters::watch(&bus).await;
    let ws_url = format!(
        "ws://127.0.0.1:{}/api/v1/monitoring/events?token={}",
        ports.gateway,
        token()
    );
    let mut ws = Events::connect(&ws_url).await;
    let n = poison(bus.as_ref()).await;
    assert!(n > 150, "the corpus holds {n} messages");
    let metrics_url = format!("http://127.0.0.1:{}/metrics", ports.admin);
    let scrape = async || http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    every_consumer_goes_on(&bus, &sink, &mut ws, &dead, true, scrape).await;
    p.assert_running();
    ready(&mut p).await;

    // Restarted, with the corpus still in the stream: nothing is replayed
    // into a panic, and the notifier delivers the next alert.
    drop(ws);
    assert!(p.terminate().success(), "{}", p.log());
    let mut p = Pantau::start_with_env(dir.path(), &cfg_path, &["all"], &env);
    ready(&mut p).await;
    publish_proto(bus.as_ref(), &subject::check_result("jkt", "fuzz-2"), &down("fuzz-2"))
        .await
        .unwrap();
    wait_for(&sink, "fuzz-2", WAIT).await;
    p.assert_running();
    let log = p.log();
    assert!(!log.contains("panicked"), "a panic after the restart:\n{log}");
}

/// The services of `pantau all` in this process on one in-process bus.
struct InProcess {
    bus: Arc<dyn Bus>,
    cfg: Arc<Config>,
    ctx: Context,
    notifier: Context,
    notifier_task: tokio::task::JoinHandle<()>,
    gateway: u16,
}

impl InProcess {
    async fn start(cfg: Config) -> Self {
        let bus: Arc<dyn Bus> = Arc::new(pantau_core::bus::memory::MemoryBus::new());
        let cfg = Arc::new(cfg);
        let ctx = Context::new(Arc::clone(&cfg), Arc::clone(&bus));
        let listener = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let (ae, wan, web) = (listener().await, listener().await, listener().await);
        let gateway = web.local_addr().unwrap().port();
        tokio::spawn(pantau_alert_engine::run(ctx.clone(), ae));
        tokio::spawn(pantau_wan_detector::run(ctx.clone(), wan));
        tokio::spawn(pantau_gateway::run(ctx.clone(), web));
        let (notifier, notifier_task) = Self::notifier(&cfg, &bus).await;
        let me = Self {
            bus,
            cfg,
            ctx,
            notifier,
            notifier_task,
            gateway,
        };
        me.ready().await;
        me
    }

    async fn notifier(cfg: &Arc<Config>, bus: &Arc<dyn Bus>) -> (Context, tokio::task::JoinHandle<()>) {
        let ctx = Context::new(Arc::clone(cfg), Arc::clone(bus));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let run = pantau_notifier::run(ctx.clone(), l, pantau_notifier::Webhooks::default());
        let task = tokio::spawn(async move {
            run.await.expect("the notifier stops cleanly");
        });
        (ctx, task)
    }

    async fn ready(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (a, b) = (self.ctx.health.report().await, self.notifier.health.report().await);
            assert!(!self.notifier_task.is_finished(), "the notifier stopped: {b:?}");
            if a.is_ready()
                && b.is_ready()
                && a.components.contains_key("gateway.feed")
                && b.components.contains_key("notifier.consumer")
            {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {a:?} {b:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn restart_notifier(&mut self) {
        self.notifier.shutdown.cancel();
        tokio::time::timeout(WAIT, &mut self.notifier_task)
            .await
            .expect("the notifier stops")
            .unwrap();
        (self.notifier, self.notifier_task) = Self::notifier(&self.cfg, &self.bus).await;
        self.ready().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_on_the_in_process_bus_leave_every_service_consuming() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = pantau_core::telemetry::render_metrics();
    let (sink, sink_addr) = Sink::start().await;
    let sink_port = sink_addr.port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: Config = serde_yaml::from_str(&yaml(sink_port, None, false)).unwrap();
    cfg.data_dir = dir.path().to_owned();
    cfg.validate().unwrap();
    let mut sys = InProcess::start(cfg).await;
    let dead = DeadLetters::watch(&sys.bus).await;
    let mut ws = Events::connect(&format!("ws://127.0.0.1:{}/api/v1/monitoring/events", sys.gateway)).await;
    let n = poison(sys.bus.as_ref()).await;
    assert!(n > 150, "the corpus holds {n} messages");
    let bus = Arc::clone(&sys.bus);
    every_consumer_goes_on(&bus, &sink, &mut ws, &dead, false, async || {
        pantau_core::telemetry::render_metrics()
    })
    .await;
    sys.restart_notifier().await;
    publish_proto(
        sys.bus.as_ref(),
        &subject::check_result("jkt", "fuzz-2"),
        &down("fuzz-2"),
    )
    .await
    .unwrap();
    wait_for(&sink, "fuzz-2", WAIT).await;
    sys.notifier.shutdown.cancel();
    sys.ctx.shutdown.cancel();
}
