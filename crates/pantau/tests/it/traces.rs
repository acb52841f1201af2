//! One trace from a check result to the delivered notification, and from a
//! REST acknowledge to its notification: with `telemetry.otlp_endpoint`
//! set, spans reach a local OTLP receiver; the context crosses the bus in
//! message headers, gRPC in metadata and the outgoing webhook in its
//! `traceparent` header. Each span is exported under the service that made
//! it (`pantau-collector`, `pantau-gateway`, …), though `pantau all` runs
//! them in one process. The multi-location trace is in `traces_cluster.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use pantau_testkit::free_port;

pub use crate::support::Sink;
use crate::support::{JWT_SECRET, Pantau, Ports, http};

/// One span as received, with its resource's service and instance.
#[derive(Debug, Clone)]
pub struct Got {
    pub trace: String,
    pub id: String,
    pub parent: String,
    pub name: String,
    pub kind: i32,
    pub service: String,
    pub instance: String,
}

/// A local OTLP/gRPC trace receiver.
#[derive(Clone, Default)]
pub struct Receiver(Arc<Mutex<Vec<Got>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let attr = |key: &str| {
                rs.resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|a| a.key == key))
                    .and_then(|a| a.value.as_ref()?.value.as_ref())
                    .map(|v| match v {
                        Value::StringValue(s) => s.clone(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default()
            };
            let (service, instance) = (attr("service.name"), attr("service.instance.id"));
            for ss in rs.scope_spans {
                for span in ss.spans {
                    got.push(Got {
                        trace: hex::encode(&span.trace_id),
                        id: hex::encode(&span.span_id),
                        parent: hex::encode(&span.parent_span_id),
                        name: span.name,
                        kind: span.kind,
                        service: service.clone(),
                        instance: instance.clone(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Serves on a free loopback port.
    pub async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let r = receiver.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(r))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
                .await
        });
        (receiver, addr)
    }

    pub fn spans(&self) -> Vec<Got> {
        self.0.lock().unwrap().clone()
    }

    /// `span` and its ancestors received so far, from `span` up.
    pub fn ancestry(&self, span: &str) -> Vec<Got> {
        let by_id: HashMap<String, Got> = self.spans().into_iter().map(|g| (g.id.clone(), g)).collect();
        let mut out = Vec::new();
        let mut cur = by_id.get(span);
        while let Some(g) = cur {
            out.push(g.clone());
            cur = by_id.get(&g.parent);
            if out.len() > 100 {
                break;
            }
        }
        out
    }

    /// Waits until the chain from span `id` up holds every name of `names`
    /// in order (root-most last); returns the chain.
    pub async fn wait_chain(&self, id: &str, names: &[&str], within: Duration, log: impl Fn() -> String) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let chain = self.ancestry(id);
            let mut want = names.iter().peekable();
            for g in &chain {
                if want.peek().is_some_and(|n| **n == g.name) {
                    want.next();
                }
            }
            if want.peek().is_none() {
                return chain;
            }
            if tokio::time::Instant::now() > deadline {
                let seen: Vec<(String, String, String)> = chain
                    .iter()
                    .map(|g| (g.name.clone(), g.service.clone(), g.instance.clone()))
                    .collect();
                panic!(
                    "the chain from {id} lacks {:?} (in order {names:?}); it is {seen:?}\nlog:\n{}",
                    want.collect::<Vec<_>>(),
                    log()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The trace id and span id a W3C `traceparent` names.
pub fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a traceparent: {traceparent:?}");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// A `pantau all` watching a closed port, with a rule on it routed to a
/// webhook and spans exported to `otlp`.
fn config(dir: &std::path::Path, otlp: SocketAddr, sink: SocketAddr, closed: u16) -> String {
    let p = Ports::free();
    format!(
        r#"listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
log: {{ format: json, level: info }}
telemetry: {{ otlp_endpoint: "http://{otlp}" }}
metrics: {{ enabled: false }}
collector:
  grpc_port: {cgrpc}
  admin_port: {cadmin}
  interval: 1s
  timeout: 900ms
  targets:
    - {{ id: closed-port, type: tcp, address: "127.0.0.1:{closed}" }}
gateway:
  port: {gw}
  collector_url: http://127.0.0.1:{cgrpc}
  alert_engine_url: http://127.0.0.1:{aegrpc}
  notifier_url: http://127.0.0.1:{ngrpc}
  wan_detector_url: http://127.0.0.1:{wgrpc}
  auth: {{ jwt_secret: {JWT_SECRET} }}
alert_engine:
  grpc_port: {aegrpc}
  admin_port: {aeadmin}
  default_rules: false
  rules:
    - {{ id: closed-port, name: Closed port, expr: 'check_up{{target="closed-port"}} == 0', severity: critical, message: down }}
wan_detector: {{ grpc_port: {wgrpc}, admin_port: {wadmin} }}
notifier:
  grpc_port: {ngrpc}
  admin_port: {nadmin}
  channels:
    - {{ name: sink, type: webhook, url: "http://{sink}/hook" }}
  routes:
    - {{ channels: [sink] }}
"#,
        data = dir.join("data").display(),
        admin = p.admin,
        cgrpc = p.collector_grpc,
        cadmin = p.collector_admin,
        gw = p.gateway,
        aegrpc = p.alert_engine_grpc,
        aeadmin = p.alert_engine_admin,
        ngrpc = p.notifier_grpc,
        nadmin = p.notifier_admin,
        wgrpc = p.wan_detector_grpc,
        wadmin = p.wan_detector_admin,
    )
}

fn gateway_port(config: &str) -> u16 {
    let line = config
        .lines()
        .skip_while(|l| !l.starts_with("gateway:"))
        .find(|l| l.trim_start().starts_with("port:"))
        .unwrap();
    line.trim().trim_start_matches("port:").trim().parse().unwrap()
}

/// The names, services and kinds along a chain, for messages.
fn show(chain: &[Got]) -> Vec<(String, String)> {
    chain.iter().map(|g| (g.name.clone(), g.service.clone())).collect()
}

/// Whether the chain has `name` exported as `service` (and of `kind`, if given).
fn has(chain: &[Got], name: &str, service: &str, kind: Option<SpanKind>) -> bool {
    chain
        .iter()
        .any(|g| g.name == name && g.service == service && kind.is_none_or(|k| g.kind == k as i32))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_its_alert_the_delivery_and_a_rest_acknowledge_are_traced_end_to_end() {
    let (receiver, otlp) = Receiver::start().await;
    let (sink, sink_addr) = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), otlp, sink_addr, free_port());
    let gateway = gateway_port(&config);
    let mut pantau = Pantau::start(dir.path(), &config, &["all"]);

    // A check result → its alert → the delivery: one trace, each span under
    // its own service; the webhook's traceparent names the delivery span.
    let firing = sink
        .wait(Duration::from_secs(30), |h| h.body["status"] == "firing", &mut pantau)
        .await;
    assert!(firing.body.to_string().contains("closed-port"), "{:?}", firing.body);
    let (trace, deliver) = ids(&firing.traceparent);
    let chain = receiver
        .wait_chain(
            &deliver,
            &["notifier.deliver", "alert_engine.ingest", "collector.check"],
            Duration::from_secs(30),
            || pantau.log(),
        )
        .await;
    assert!(chain.iter().all(|g| g.trace == trace), "{:?}", show(&chain));
    assert!(
        has(&chain, "notifier.deliver", "pantau-notifier", None),
        "{:?}",
        show(&chain)
    );
    assert!(
        has(&chain, "alert_engine.ingest", "pantau-alert-engine", None),
        "{:?}",
        show(&chain)
    );
    assert!(
        has(&chain, "collector.check", "pantau-collector", None),
        "{:?}",
        show(&chain)
    );
    assert_eq!(
        chain.last().unwrap().name,
        "collector.check",
        "a check starts its own trace"
    );
    assert!(
        firing.body["notification"]["trace_parent"]
            .as_str()
            .unwrap_or("")
            .contains(&trace),
        "the body carries the alert's trace: {:?}",
        firing.body
    );

    // A REST acknowledge, sent with a trace of its own: the gateway continues
    // it, over gRPC to the alert engine, over the bus to the notifier, and
    // the acknowledgement's webhook carries it.
    let alert_id = firing.body["notification"]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("an alert id in {:?}", firing.body))
        .to_owned();
    let ours = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = http()
        .post(format!(
            "http://127.0.0.1:{gateway}/api/v1/monitoring/alerts/{alert_id}/acknowledge"
        ))
        .header("traceparent", format!("00-{ours}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({ "comment": "looking" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let acked = sink
        .wait(
            Duration::from_secs(30),
            |h| h.body["status"] == "acknowledged",
            &mut pantau,
        )
        .await;
    let (trace, deliver) = ids(&acked.traceparent);
    assert_eq!(
        trace, ours,
        "the acknowledgement's webhook continues the REST request's trace"
    );
    let method = "pantau.v1.AlertEngineService/AcknowledgeAlert";
    let chain = receiver
        .wait_chain(
            &deliver,
            &["notifier.deliver", method, method, "http"],
            Duration::from_secs(30),
            || pantau.log(),
        )
        .await;
    assert!(chain.iter().all(|g| g.trace == ours), "{:?}", show(&chain));
    assert!(
        has(&chain, method, "pantau-alert-engine", Some(SpanKind::Server)),
        "{:?}",
        show(&chain)
    );
    assert!(
        has(&chain, method, "pantau-gateway", Some(SpanKind::Client)),
        "{:?}",
        show(&chain)
    );
    assert!(has(&chain, "http", "pantau-gateway", None), "{:?}", show(&chain));
    assert_eq!(
        chain.last().unwrap().parent,
        "00f067aa0ba902b7",
        "the REST caller's span is the root's parent"
    );

    // A hostile traceparent on REST is ignored: answered, in a new trace.
    let long = "x".repeat(8000);
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-0000000000000000-01",
        long.as_str(),
    ] {
        let answer = http()
            .get(format!("http://127.0.0.1:{gateway}/api/v1/monitoring/alerts"))
            .header("traceparent", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", &bad[..bad.len().min(40)]);
    }
    let spans = receiver.spans();
    assert!(
        spans.iter().all(|g| g.service != "pantau-all" || g.name == "task"),
        "every span but the process's own is named by its service: {:?}",
        spans
            .iter()
            .filter(|g| g.service == "pantau-all")
            .map(|g| g.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(pantau.terminate().success(), "{}", pantau.log());
}
