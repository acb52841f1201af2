//! The first path, end to end: collector → bus → gateway (REST and WebSocket),
//! over the in-process bus (`pantau all`) and over a real nats-server
//! (`pantau collector` + `pantau gateway` as two processes).

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_testkit::Nats;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{JWT_SECRET, Pantau, Ports, both_up, config_yaml, http, metric_value, next_ws_result, wait_json};

const SOON: Duration = Duration::from_secs(15);

async fn grpc_services(port: u16) -> Vec<String> {
    // Reflection answers authenticated callers only.
    let mut client = ServerReflectionClient::new(crate::support::grpc(port));
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .expect("reflection answers")
        .into_inner();
    let first = answers.next().await.expect("one answer").expect("no error");
    match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn grpc_health(port: u16, service: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health answers")
        .into_inner();
    resp.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_process_over_the_in_process_bus() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let mut p = Pantau::start(
        dir.path(),
        &config_yaml(ports, &dir.path().join("data"), None),
        &["all"],
    );
    let latest = format!("http://127.0.0.1:{}/api/v1/results/latest", ports.gateway);

    // REST: both targets have results, each naming its check type.
    let v = wait_json(&latest, SOON, both_up, &mut p).await;
    let kinds: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"http".to_owned()) && kinds.contains(&"tcp".to_owned()),
        "{v}"
    );

    // WebSocket: new results stream in.
    let ev = next_ws_result(
        &format!("ws://127.0.0.1:{}/api/v1/monitoring/events", ports.gateway),
        SOON,
    )
    .await;
    assert_eq!(ev["data"]["status"], "up", "{ev}");

    // gRPC: reflection lists the collector's service; health says SERVING.
    let services = grpc_services(ports.collector_grpc).await;
    assert!(
        services.iter().any(|s| s == "pantau.v1.CollectorService"),
        "{services:?}"
    );
    assert!(services.iter().any(|s| s == "grpc.health.v1.Health"), "{services:?}");
    // Reflection lists what this port serves, not every Pantau service.
    for elsewhere in [
        "pantau.v1.AlertEngineService",
        "pantau.v1.NotifierService",
        "pantau.v1.WanDetectorService",
        "pantau.v1.SyncService",
    ] {
        assert!(
            !services.iter().any(|s| s == elsewhere),
            "{elsewhere} is not served here: {services:?}"
        );
    }
    assert_eq!(
        grpc_health(ports.collector_grpc, "pantau.v1.CollectorService").await,
        ServingStatus::Serving
    );
    assert_eq!(grpc_health(ports.collector_grpc, "").await, ServingStatus::Serving);

    // The admin port: ready, with the collector's metrics.
    let ready = http()
        .get(format!("http://127.0.0.1:{}/readyz", ports.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = http()
        .get(format!("http://127.0.0.1:{}/metrics", ports.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric_value(&metrics, "pantau_collector_checks_total", "result=\"up\"").is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    // The per-target gauge (written at scrape time from the schedule) and the
    // per-type histogram (its handle kept, not looked up per check).
    assert_eq!(
        metric_value(&metrics, "pantau_collector_check_up{", "kind=\"http\""),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "pantau_collector_check_duration_seconds_count",
            "kind=\"tcp\""
        )
        .is_some_and(|v| v >= 1.0),
        "{metrics}"
    );

    // SIGTERM drains and exits 0.
    let status = p.terminate();
    assert!(status.success(), "exit {status}; log:\n{}", p.log());
    assert!(p.log().contains("stopped cleanly"), "{}", p.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_and_gateway_over_nats_survive_a_nats_restart() {
    let mut nats = Nats::start().await.expect("nats-server starts");
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, &dir.path().join("data"), Some(&nats.url()));
    let mut collector = Pantau::start(dir.path(), &config, &["collector"]);
    let mut gateway = Pantau::start(dir.path(), &config, &["gateway"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    let latest = format!("{base}/api/v1/results/latest");

    wait_json(&latest, SOON, both_up, &mut gateway).await;
    collector.assert_running();
    let ev = next_ws_result(
        &format!("ws://127.0.0.1:{}/api/v1/monitoring/events", ports.gateway),
        SOON,
    )
    .await;
    assert_eq!(ev["data"]["location"], "local", "{ev}");

    // Garbage on a result subject is counted and skipped.
    let client = async_nats::connect(nats.url()).await.unwrap();
    client
        .publish(
            "pantau.check.result.x.y",
            "definitely not protobuf \u{1}\u{2}\u{ff}".into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let text = http()
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric_value(&text, "pantau_bus_decode_errors_total", "pantau.check.result").is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "decode error never counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway.assert_running();
    drop(client);

    // Restart NATS in the middle: results resume, neither service exits.
    nats.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    collector.assert_running();
    gateway.assert_running();
    nats.start_again().await.expect("nats-server restarts");
    let restarted = pantau_core::time::rfc3339(SystemTime::now());
    let v = wait_json(
        &latest,
        Duration::from_secs(30),
        |v| {
            v["results"].as_array().is_some_and(|rs| {
                rs.len() == 2
                    && rs
                        .iter()
                        .all(|r| r["checked_at"].as_str().is_some_and(|t| t > restarted.as_str()))
            })
        },
        &mut gateway,
    )
    .await;
    assert!(both_up(&v), "{v}");
    collector.assert_running();
    assert!(
        collector.log().contains("reconnect") || collector.log().contains("disconnected"),
        "{}",
        collector.log()
    );
}

/// `examples/checks.yaml` (fixed ports 8080, 50051, 9100): every check type
/// is up, each naming its type; the push monitor comes up when pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_example_shows_every_type_up() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/checks.yaml");
    let data = dir.path().join("data");
    // The example's own ports (8080, 50051, 9100) as documented; the other
    // services move to free ports so tests running at the same time do not clash.
    let mut env = Ports::free().other_services_env();
    env.push(("PANTAU_GATEWAY__AUTH__JWT_SECRET", JWT_SECRET.to_owned()));
    let mut p = Pantau::start_with_env(
        dir.path(),
        &example,
        &["--data-dir", data.to_str().unwrap(), "all"],
        &env,
    );
    let latest = "http://127.0.0.1:8080/api/v1/results/latest";
    let expect = [
        ("gateway-healthz", "http"),
        ("collector-grpc", "tcp"),
        ("collector-health", "grpc"),
        ("loopback-ping", "icmp"),
        ("localhost-dns", "dns"),
    ];
    let v = wait_json(
        latest,
        SOON,
        |v| {
            let rs = v["results"].as_array().cloned().unwrap_or_default();
            expect.iter().all(|(id, kind)| {
                rs.iter()
                    .any(|r| r["target_id"] == *id && r["kind"] == *kind && r["status"] == "up")
            })
        },
        &mut p,
    )
    .await;
    let ping = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target_id"] == "loopback-ping")
        .unwrap()
        .clone();
    assert_eq!(ping["icmp"]["received"], 3, "{ping}");
    let push = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target_id"] == "nightly-job")
        .cloned();
    assert!(push.is_none_or(|r| r["status"] == "down"), "not pushed yet");

    // A push through the gateway brings it up; a wrong token is a 404.
    let client = http();
    let r = client
        .post("http://127.0.0.1:8080/api/v1/push/example-push-token-change-me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = client
        .post("http://127.0.0.1:8080/api/v1/push/not-the-token-0000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post("http://127.0.0.1:8080/api/v1/push/example-push-token-change-me?status=maybe")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    wait_json(
        latest,
        SOON,
        |v| {
            v["results"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["target_id"] == "nightly-job" && r["kind"] == "push" && r["status"] == "up")
            })
        },
        &mut p,
    )
    .await;
    assert!(p.terminate().success(), "{}", p.log());
}
