//! One trace from a check result to the delivered notification: with
//! `telemetry.otlp_endpoint` set, a DOWN check result that fires an alert
//! that is delivered gives spans `collector.check` → `alert_engine.ingest` →
//! `notifier.deliver` sharing one trace id, received by a local OTLP
//! receiver; the context crosses the bus in message headers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use pantau_testkit::free_port;

use crate::support::{Pantau, Ports};

/// (trace id, span name) of every span received.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<(Vec<u8>, String)>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            for ss in rs.scope_spans {
                for span in ss.spans {
                    got.push((span.trace_id, span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// A trace id that has every one of `names`, if any.
    fn trace_with(&self, names: &[&str]) -> Option<Vec<u8>> {
        let got = self.0.lock().unwrap();
        let mut by_trace: HashMap<&[u8], HashSet<&str>> = HashMap::new();
        for (id, name) in got.iter() {
            by_trace.entry(id.as_slice()).or_default().insert(name.as_str());
        }
        by_trace
            .into_iter()
            .find(|(_, n)| names.iter().all(|x| n.contains(x)))
            .map(|(id, _)| id.to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_result_its_alert_and_the_delivery_share_one_trace() {
    // The OTLP receiver.
    let receiver = Receiver::default();
    let otlp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_addr = otlp.local_addr().unwrap();
    let r = receiver.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(r))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(otlp))
            .await
    });
    // Where the notifier delivers.
    let hooks = Arc::new(Mutex::new(Vec::<String>::new()));
    let h = Arc::clone(&hooks);
    let sink = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let h = Arc::clone(&h);
            async move {
                h.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let sink_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink_l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(sink_l, sink).await });

    let dir = tempfile::tempdir().unwrap();
    let p = Ports::free();
    let closed = free_port();
    let config = format!(
        r#"listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
log: {{ format: json, level: info }}
telemetry: {{ otlp_endpoint: "http://{otlp_addr}" }}
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
    - {{ name: sink, type: webhook, url: "http://{sink_addr}/hook" }}
  routes:
    - {{ channels: [sink] }}
"#,
        data = dir.path().join("data").display(),
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
    );
    let mut pantau = Pantau::start(dir.path(), &config, &["all"]);

    // The alert is delivered…
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hooks.lock().unwrap().is_empty() {
        pantau.assert_running();
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery; log:\n{}",
            pantau.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = hooks.lock().unwrap()[0].clone();
    assert!(body.contains("closed-port"), "{body}");
    // …and its trace arrives whole (the batch exporter sends every few seconds).
    let names = ["collector.check", "alert_engine.ingest", "notifier.deliver"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let trace = loop {
        if let Some(t) = receiver.trace_with(&names) {
            break t;
        }
        if tokio::time::Instant::now() > deadline {
            let seen: HashSet<String> = receiver.0.lock().unwrap().iter().map(|(_, n)| n.clone()).collect();
            panic!(
                "no trace holds all of {names:?}; span names seen: {seen:?}\nlog:\n{}",
                pantau.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(trace.len(), 16, "a W3C trace id");
    assert!(pantau.terminate().success(), "{}", pantau.log());
}
