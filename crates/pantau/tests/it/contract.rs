//! One contract, three doors: the same bad target is refused with the same
//! reason whether it comes as YAML (`pantau config check`), as REST JSON
//! through the gateway, or as protobuf straight to the collector's gRPC.

use std::process::Command;
use std::time::Duration;

use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_proto::v1::notifier_service_client::NotifierServiceClient;
use pantau_proto::v1::{self, UpsertTargetRequest, target::Spec};
use serde_json::json;

use crate::support::{BIN, Pantau, Ports, both_up, config_yaml, http, wait_json};

/// A bad target in each form, and the reason all three must give.
struct Case {
    yaml: &'static str,
    json: serde_json::Value,
    proto: v1::Target,
    field: &'static str,
    reason: &'static str,
}

fn tcp(id: &str, interval: Option<prost_types::Duration>, timeout: Option<prost_types::Duration>) -> v1::Target {
    v1::Target {
        id: id.into(),
        interval,
        timeout,
        spec: Some(Spec::Tcp(v1::TcpSpec {
            address: "127.0.0.1:1".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn secs(s: i64) -> prost_types::Duration {
    prost_types::Duration { seconds: s, nanos: 0 }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            yaml: "{id: far, type: tcp, address: '127.0.0.1:1', interval: 3000d}",
            json: json!({"id": "far", "type": "tcp", "address": "127.0.0.1:1", "interval": "3000d"}),
            proto: tcp("far", Some(secs(3000 * 86_400)), None),
            field: "interval",
            reason: "must be between 1s and 30days",
        },
        Case {
            yaml: "{id: slow, type: tcp, address: '127.0.0.1:1', interval: 2s, timeout: 5s}",
            json: json!({"id": "slow", "type": "tcp", "address": "127.0.0.1:1", "interval": "2s", "timeout": "5s"}),
            proto: tcp("slow", Some(secs(2)), Some(secs(5))),
            field: "timeout",
            reason: "must not exceed the target's interval (2s)",
        },
        Case {
            yaml: "{id: web, type: http, url: 'ftp://127.0.0.1/'}",
            json: json!({"id": "web", "type": "http", "url": "ftp://127.0.0.1/"}),
            proto: v1::Target {
                id: "web".into(),
                spec: Some(Spec::Http(v1::HttpSpec {
                    url: "ftp://127.0.0.1/".into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            field: "url",
            reason: "must be an absolute http:// or https:// URL",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_rest_and_grpc_refuse_a_bad_target_with_the_same_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, &dir.path().join("data"), None);
    let mut p = Pantau::start(dir.path(), &config, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        Duration::from_secs(20),
        both_up,
        &mut p,
    )
    .await;
    let mut grpc = CollectorServiceClient::new(crate::support::grpc(ports.collector_grpc));

    for case in cases() {
        // YAML.
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, format!("collector:\n  targets:\n    - {}\n", case.yaml)).unwrap();
        let out = Command::new(BIN)
            .args(["config", "check", file.to_str().unwrap()])
            .env_clear()
            .output()
            .unwrap();
        let yaml_err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{yaml_err}");

        // REST.
        let resp = http()
            .post(format!("{base}/api/v1/targets"))
            .json(&case.json)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{}", case.field);
        let body: serde_json::Value = resp.json().await.unwrap();
        let rest_err = body["error"]["message"].as_str().unwrap_or_default().to_owned();

        // gRPC.
        let status = grpc
            .upsert_target(UpsertTargetRequest {
                target: Some(case.proto.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let grpc_err = status.message().to_owned();

        for (door, err) in [("YAML", &yaml_err), ("REST", &rest_err), ("gRPC", &grpc_err)] {
            assert!(
                err.contains(&format!(".{}`", case.field)),
                "{door} does not name `{}`: {err}",
                case.field
            );
            assert!(
                err.contains(case.reason),
                "{door} gives another reason for `{}`: {err}",
                case.field
            );
        }
    }
    unknown_enum_values_are_refused_by_name(&base, ports).await;
    p.assert_running();
}

/// `pantau all` opens only the gateway, the admin port (and a sync API) on
/// `listen_host`; the internal gRPC servers listen on loopback. Checked on
/// two loopback addresses: a server bound to 0.0.0.0 answers on 127.0.0.2,
/// one bound to 127.0.0.1 does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_grpc_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, &dir.path().join("data"), None).replacen(
        "listen_host: 127.0.0.1",
        "listen_host: 0.0.0.0",
        1,
    );
    assert!(config.contains("listen_host: 0.0.0.0"), "{config}");
    let mut p = Pantau::start(dir.path(), &config, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        Duration::from_secs(20),
        both_up,
        &mut p,
    )
    .await;
    let reachable = |addr: String| async move { tokio::net::TcpStream::connect(addr).await.is_ok() };
    assert!(
        reachable(format!("127.0.0.2:{}", ports.gateway)).await,
        "the gateway listens on listen_host"
    );
    assert!(
        reachable(format!("127.0.0.2:{}", ports.admin)).await,
        "the admin port listens on listen_host"
    );
    for (name, port) in [
        ("collector", ports.collector_grpc),
        ("alert-engine", ports.alert_engine_grpc),
        ("notifier", ports.notifier_grpc),
        ("wan-detector", ports.wan_detector_grpc),
    ] {
        assert!(
            reachable(format!("127.0.0.1:{port}")).await,
            "{name} serves on loopback"
        );
        assert!(
            !reachable(format!("127.0.0.2:{port}")).await,
            "{name}'s gRPC must not listen beyond loopback in `pantau all`"
        );
    }
    p.assert_running();
}

/// Every enum field a client sends, given a value this version does not
/// know, through gRPC and through REST: INVALID_ARGUMENT / 400 naming the
/// field, never a default. (The sync API's `HeartbeatRequest.status` is
/// covered in `sync.rs`, which runs a primary.)
async fn unknown_enum_values_are_refused_by_name(base: &str, ports: Ports) {
    let connect = crate::support::grpc;
    let mut collector = CollectorServiceClient::new(connect(ports.collector_grpc));
    let mut alerts = AlertEngineServiceClient::new(connect(ports.alert_engine_grpc));
    let mut notifier = NotifierServiceClient::new(connect(ports.notifier_grpc));
    let target = |f: fn(&mut v1::Target)| {
        let mut t = tcp("enum-case", None, None);
        f(&mut t);
        UpsertTargetRequest { target: Some(t) }
    };
    let grpc: Vec<(&str, Result<(), tonic::Status>)> = vec![
        ("kind", collector.upsert_target(target(|t| t.kind = 99)).await.map(drop)),
        (
            "source",
            collector.upsert_target(target(|t| t.source = 99)).await.map(drop),
        ),
        (
            "breaker",
            collector.upsert_target(target(|t| t.breaker = -3)).await.map(drop),
        ),
        (
            "resolution",
            collector
                .get_history(v1::GetHistoryRequest {
                    target_id: "gateway-healthz".into(),
                    resolution: 99,
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "states",
            alerts
                .list_alerts(v1::ListAlertsRequest {
                    states: vec![1, 99],
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "severities",
            alerts
                .list_alerts(v1::ListAlertsRequest {
                    severities: vec![99],
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "states",
            alerts
                .stream_alerts(v1::StreamAlertsRequest { states: vec![99] })
                .await
                .map(drop),
        ),
        (
            "severity",
            alerts
                .upsert_rule(v1::UpsertRuleRequest {
                    rule: Some(v1::AlertRule {
                        id: "enum-case".into(),
                        expr: "cpu_usage > 90".into(),
                        severity: 99,
                        ..Default::default()
                    }),
                })
                .await
                .map(drop),
        ),
        (
            "status",
            notifier
                .list_deliveries(v1::ListDeliveriesRequest {
                    status: 99,
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
    ];
    for (field, answer) in grpc {
        let status = answer.expect_err(field);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(&format!("{field}`")),
            "gRPC does not name `{field}`: {}",
            status.message()
        );
    }

    let c = http();
    let get = |path: &str| c.get(format!("{base}{path}")).send();
    let rest = vec![
        ("state", get("/api/v1/monitoring/alerts?state=firing,sleeping").await),
        ("severity", get("/api/v1/monitoring/alerts?severity=apocalyptic").await),
        ("status", get("/api/v1/deliveries?status=lost").await),
        ("status", get("/api/v1/results/latest?status=sideways").await),
        (
            "resolution",
            get("/api/v1/targets/gateway-healthz/history?resolution=fortnight").await,
        ),
        ("metric", get("/api/v1/monitoring/performance?metric=vibes").await),
        (
            "type",
            c.post(format!("{base}/api/v1/targets"))
                .json(&json!({"id": "enum-case", "type": "carrier-pigeon", "address": "127.0.0.1:1"}))
                .send()
                .await,
        ),
        (
            "record_type",
            c.post(format!("{base}/api/v1/targets"))
                .json(&json!({"id": "enum-case", "type": "dns", "name_to_resolve": "x", "record_type": "SRVX"}))
                .send()
                .await,
        ),
        (
            "severity",
            c.post(format!("{base}/api/v1/monitoring/alerts/rules"))
                .json(&json!({"id": "enum-case", "expr": "cpu_usage > 90", "severity": "apocalyptic"}))
                .send()
                .await,
        ),
    ];
    for (field, resp) in rest {
        let resp = resp.unwrap();
        let url = resp.url().to_string();
        assert_eq!(resp.status(), 400, "{field} at {url}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_argument", "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "REST does not name `{field}` at {url}: {message}"
        );
    }
}
