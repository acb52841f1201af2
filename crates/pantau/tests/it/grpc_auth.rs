//! Every gRPC server of a real `pantau all` (collector, WAN detector, alert
//! engine, notifier, sync API) against every kind of caller: no token is
//! UNAUTHENTICATED; a forged or expired token is UNAUTHENTICATED; a reader's
//! write is PERMISSION_DENIED; a writer's write works and is audited in the
//! service's store (refusals too); health stays open; reflection answers
//! authenticated callers only.

use std::time::Duration;

use futures::StreamExt;
use pantau_config::{AuthConfig, DatabaseConfig};
use pantau_core::auth::{Claims, Keys, now_secs};
use pantau_core::grpc::{Channel, Credentials};
use pantau_proto::v1 as pb;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_proto::v1::notifier_service_client::NotifierServiceClient;
use pantau_proto::v1::sync_service_client::SyncServiceClient;
use pantau_proto::v1::wan_detector_service_client::WanDetectorServiceClient;
use pantau_testkit::free_port;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{JWT_SECRET, Pantau, Ports, both_up, config_yaml, grpc_with, wait_json};

fn keys(secret: &str) -> Keys {
    let dir = tempfile::tempdir().unwrap();
    Keys::load(
        &AuthConfig {
            jwt_secret: Some(secret.to_owned()),
            ..AuthConfig::default()
        },
        dir.path(),
    )
    .unwrap()
}

fn token(scope: &str) -> String {
    keys(JWT_SECRET)
        .mint("grpc-test", scope, Duration::from_secs(600))
        .unwrap()
        .0
}

fn expired() -> String {
    let claims = Claims {
        sub: "grpc-test".into(),
        iss: "pantau".into(),
        iat: now_secs() - 600,
        exp: now_secs() - 300,
        scope: "admin".into(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn as_token(port: u16, t: &str) -> Channel {
    grpc_with(port, Credentials::Token(t.into()))
}

fn anonymous(port: u16) -> Channel {
    grpc_with(port, Credentials::None)
}

/// Asserts a refusal's code and that its message says `why`.
fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, why: &str) {
    let s = r.expect_err("refused");
    assert_eq!(s.code(), code, "{s:?}");
    assert!(s.message().contains(why), "`{}` should say `{why}`", s.message());
}

async fn audit(data: &std::path::Path, service: &str) -> Vec<pantau_core::audit::Entry> {
    let migrations = match service {
        "collector" => pantau_collector::MIGRATIONS,
        "alert-engine" => pantau_alert_engine::MIGRATIONS,
        "notifier" => pantau_notifier::MIGRATIONS,
        _ => pantau_sync_api::MIGRATIONS,
    };
    let store = pantau_core::store::Store::connect(&DatabaseConfig::default(), data, service, migrations)
        .await
        .unwrap();
    let entries = pantau_core::audit::Audit::open(&store)
        .await
        .unwrap()
        .entries(100)
        .await
        .unwrap();
    store.close().await;
    entries
}

fn upsert(id: &str) -> pb::UpsertTargetRequest {
    pb::UpsertTargetRequest {
        target: Some(pb::Target {
            id: id.into(),
            spec: Some(pb::target::Spec::Tcp(pb::TcpSpec {
                address: "127.0.0.1:1".into(),
                ..Default::default()
            })),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_refuses_missing_forged_expired_and_insufficient_tokens_and_audits_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let data = dir.path().join("data");
    let (sync_grpc, sync_admin) = (free_port(), free_port());
    let config = config_yaml(ports, &data, None).replace(
        "gateway:\n",
        &format!("gateway:\n  sync_url: http://127.0.0.1:{sync_grpc}\n"),
    ) + &format!("sync:\n  enabled: true\n  grpc_port: {sync_grpc}\n  admin_port: {sync_admin}\n");
    let mut pantau = Pantau::start(dir.path(), &config, &["all"]);
    wait_json(
        &format!("http://127.0.0.1:{}/api/v1/results/latest", ports.gateway),
        Duration::from_secs(20),
        both_up,
        &mut pantau,
    )
    .await;

    let (read, write, admin) = (
        token("monitoring:read"),
        token("monitoring:read monitoring:write"),
        token("admin"),
    );
    let forged = keys("another-secret-that-is-long-enough-0123456789")
        .mint("grpc-test", "admin", Duration::from_secs(600))
        .unwrap()
        .0;
    let expired = expired();

    // Health stays open on every port; reflection wants a token.
    let all = [
        (ports.collector_grpc, "pantau.v1.CollectorService"),
        (ports.wan_detector_grpc, "pantau.v1.WanDetectorService"),
        (ports.alert_engine_grpc, "pantau.v1.AlertEngineService"),
        (ports.notifier_grpc, "pantau.v1.NotifierService"),
        (sync_grpc, "pantau.v1.SyncService"),
    ];
    for (port, service) in all {
        let status = HealthClient::new(anonymous(port))
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{service}: health is open: {e:?}"))
            .into_inner();
        assert_eq!(status.status, 1, "{service} serving");
        let list = |ch: Channel| async move {
            use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
            let req = tonic_reflection::pb::v1::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut answers = ServerReflectionClient::new(ch)
                .server_reflection_info(futures::stream::iter(vec![req]))
                .await?
                .into_inner();
            answers.next().await.transpose().map(|m| format!("{m:?}"))
        };
        refused(
            list(anonymous(port)).await,
            Code::Unauthenticated,
            "bearer token is required",
        );
        let listed = list(as_token(port, &read)).await.unwrap();
        assert!(listed.contains(service), "{service}: {listed}");
    }

    // Collector: reads with a reader, writes with a writer.
    let mut collector = CollectorServiceClient::new(anonymous(ports.collector_grpc));
    refused(
        collector.list_targets(pb::ListTargetsRequest {}).await,
        Code::Unauthenticated,
        "bearer token is required",
    );
    for (t, why) in [
        (&forged, "signature is not valid"),
        (&expired, "expired"),
        (&"not-a-jwt".to_owned(), "malformed"),
    ] {
        let mut collector = CollectorServiceClient::new(as_token(ports.collector_grpc, t));
        refused(
            collector.list_targets(pb::ListTargetsRequest {}).await,
            Code::Unauthenticated,
            why,
        );
        refused(
            collector.upsert_target(upsert("forged")).await,
            Code::Unauthenticated,
            why,
        );
    }
    let mut collector = CollectorServiceClient::new(as_token(ports.collector_grpc, &read));
    collector
        .list_targets(pb::ListTargetsRequest {})
        .await
        .expect("a reader lists");
    refused(
        collector.upsert_target(upsert("by-reader")).await,
        Code::PermissionDenied,
        "monitoring:write",
    );
    let mut collector = CollectorServiceClient::new(as_token(ports.collector_grpc, &write));
    collector
        .upsert_target(upsert("by-writer"))
        .await
        .expect("a writer upserts");
    refused(
        collector.push(pb::PushRequest::default()).await,
        Code::PermissionDenied,
        "`service`",
    );

    // WAN detector: reads only.
    let mut wan = WanDetectorServiceClient::new(anonymous(ports.wan_detector_grpc));
    refused(
        wan.list_routers(pb::ListRoutersRequest {}).await,
        Code::Unauthenticated,
        "bearer",
    );
    let mut wan = WanDetectorServiceClient::new(as_token(ports.wan_detector_grpc, &expired));
    refused(
        wan.list_routers(pb::ListRoutersRequest {}).await,
        Code::Unauthenticated,
        "expired",
    );
    let mut wan = WanDetectorServiceClient::new(as_token(ports.wan_detector_grpc, &read));
    wan.list_routers(pb::ListRoutersRequest {})
        .await
        .expect("a reader lists routers");

    // Alert engine.
    let rule = || pb::UpsertRuleRequest {
        rule: Some(pb::AlertRule {
            id: "grpc-rule".into(),
            name: "gRPC rule".into(),
            expr: r#"check_up{target="nothing"} == 0"#.into(),
            severity: pb::Severity::Warning.into(),
            enabled: Some(true),
            ..Default::default()
        }),
    };
    let mut engine = AlertEngineServiceClient::new(anonymous(ports.alert_engine_grpc));
    refused(engine.upsert_rule(rule()).await, Code::Unauthenticated, "bearer");
    let mut engine = AlertEngineServiceClient::new(as_token(ports.alert_engine_grpc, &forged));
    refused(
        engine.list_rules(pb::ListRulesRequest {}).await,
        Code::Unauthenticated,
        "signature",
    );
    let mut engine = AlertEngineServiceClient::new(as_token(ports.alert_engine_grpc, &read));
    engine
        .list_rules(pb::ListRulesRequest {})
        .await
        .expect("a reader lists rules");
    refused(
        engine.upsert_rule(rule()).await,
        Code::PermissionDenied,
        "monitoring:write",
    );
    let mut engine = AlertEngineServiceClient::new(as_token(ports.alert_engine_grpc, &write));
    engine.upsert_rule(rule()).await.expect("a writer adds a rule");

    // Notifier: a test send of a channel that does not exist passes the
    // guard and is NOT_FOUND.
    let test = || pb::TestChannelRequest {
        channel: "nowhere".into(),
        ..Default::default()
    };
    let mut notifier = NotifierServiceClient::new(anonymous(ports.notifier_grpc));
    refused(notifier.test_channel(test()).await, Code::Unauthenticated, "bearer");
    let mut notifier = NotifierServiceClient::new(as_token(ports.notifier_grpc, &read));
    notifier
        .list_channels(pb::ListChannelsRequest {})
        .await
        .expect("a reader lists channels");
    refused(
        notifier.test_channel(test()).await,
        Code::PermissionDenied,
        "monitoring:write",
    );
    let mut notifier = NotifierServiceClient::new(as_token(ports.notifier_grpc, &write));
    let e = notifier.test_channel(test()).await.expect_err("no such channel");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // Sync API: status for readers, promotion for admins only.
    let mut sync = SyncServiceClient::new(anonymous(sync_grpc));
    refused(
        sync.get_status(pb::GetStatusRequest {}).await,
        Code::Unauthenticated,
        "bearer",
    );
    let mut sync = SyncServiceClient::new(as_token(sync_grpc, &write));
    sync.get_status(pb::GetStatusRequest {})
        .await
        .expect("a reader reads the status");
    refused(
        sync.promote(pb::PromoteRequest {}).await,
        Code::PermissionDenied,
        "`admin`",
    );
    let mut sync = SyncServiceClient::new(as_token(sync_grpc, &admin));
    let promoted = sync.promote(pb::PromoteRequest {}).await;
    assert!(
        !matches!(
            promoted.as_ref().map_err(tonic::Status::code),
            Err(Code::Unauthenticated | Code::PermissionDenied)
        ),
        "{promoted:?}"
    );

    // Every write, allowed or refused, is in its service's audit log.
    let entries = audit(&data, "collector").await;
    let upserts: Vec<_> = entries
        .iter()
        .filter(|e| e.method == "pantau.v1.CollectorService/UpsertTarget")
        .map(|e| (e.actor.as_str(), e.outcome.as_str()))
        .collect();
    assert!(upserts.contains(&("grpc-test", "OK")), "{entries:?}");
    assert!(upserts.contains(&("grpc-test", "PERMISSION_DENIED")), "{entries:?}");
    assert!(upserts.contains(&("anonymous", "UNAUTHENTICATED")), "{entries:?}");
    assert!(
        entries.iter().all(|e| e.remote == "127.0.0.1" && e.at > 0),
        "{entries:?}"
    );
    assert!(
        !entries.iter().any(|e| e.method.ends_with("/ListTargets")),
        "reads are not audited"
    );
    let entries = audit(&data, "alert-engine").await;
    assert!(
        entries
            .iter()
            .any(|e| e.method.ends_with("/UpsertRule") && e.actor == "grpc-test" && e.outcome == "OK"),
        "{entries:?}"
    );
    let entries = audit(&data, "notifier").await;
    assert!(
        entries
            .iter()
            .any(|e| e.method.ends_with("/TestChannel") && e.outcome == "NOT_FOUND" && e.actor == "grpc-test"),
        "{entries:?}"
    );
    let entries = audit(&data, "sync-api").await;
    assert!(
        entries
            .iter()
            .any(|e| e.method.ends_with("/Promote") && e.outcome == "PERMISSION_DENIED"),
        "{entries:?}"
    );

    // A REST write reaches the collector as the gateway's service token,
    // on behalf of the REST caller: audited with both names.
    let r = crate::support::http()
        .post(format!("http://127.0.0.1:{}/api/v1/targets", ports.gateway))
        .json(&serde_json::json!({"id": "by-rest", "type": "tcp", "address": "127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let entries = audit(&data, "collector").await;
    assert!(
        entries
            .iter()
            .any(|e| e.method.ends_with("/UpsertTarget") && e.actor == "e2e (via service:pantau)" && e.outcome == "OK"),
        "{entries:?}"
    );
    pantau.assert_running();
}
