//! The whole service over the in-process bus: a check result on the bus
//! fires an alert, published and listed over gRPC; a person acknowledges and
//! resolves it; rules are created, refused with the parse position, deleted.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::{AlertRuleConfig, AlertSeverity, Config};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription, decode, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::{
    AcknowledgeAlertRequest, AlertEvent, AlertRule, AlertState, CheckResult, CheckStatus, DeleteRuleRequest,
    GetAlertRequest, ListAlertsRequest, ListRulesRequest, ResolveAlertRequest, Severity, StreamAlertsRequest,
    UpsertRuleRequest,
};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

pub fn check(target: &str, up: bool) -> CheckResult {
    CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        latency: Some(pantau_core::time::to_duration(Duration::from_millis(12))),
        checked_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..Default::default()
    }
}

/// An admin client (a token minted with the service's own keys), once the
/// service answers (it subscribes to the bus before it serves gRPC).
pub async fn ready(ctx: &Context, addr: std::net::SocketAddr) -> AlertEngineServiceClient<pantau_core::grpc::Channel> {
    let channel = ctx
        .security
        .channel_as(&format!("http://{addr}"), "test", "admin")
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let mut c = AlertEngineServiceClient::new(channel.clone());
            if c.list_rules(ListRulesRequest {}).await.is_ok() {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the gRPC server comes up")
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.alert_engine.default_rules = false;
    c.alert_engine.rules = vec![AlertRuleConfig {
        id: "closed-port".into(),
        name: Some("Closed port".into()),
        expr: r#"check_up{target="closed"} == 0"#.into(),
        severity: AlertSeverity::Critical,
        message: "{{ $labels.target }} is down from {{ $labels.location }}".into(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: Some(Duration::from_secs(60)),
        enabled: true,
        depends_on: Vec::new(),
    }];
    c.validate().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_list_acknowledge_resolve_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut alerts = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let ctx = Context::new(Arc::new(config(dir.path())), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let mut client = ready(&ctx, addr).await;
    let mut stream = client
        .stream_alerts(StreamAlertsRequest {
            states: vec![AlertState::Acknowledged.into()],
        })
        .await
        .unwrap()
        .into_inner();

    // An up result fires nothing; a down one fires at once (no `for`).
    publish_proto(
        bus.as_ref(),
        &subject::check_result("jkt", "closed"),
        &check("closed", true),
    )
    .await
    .unwrap();
    publish_proto(
        bus.as_ref(),
        &subject::check_result("jkt", "closed"),
        &check("closed", false),
    )
    .await
    .unwrap();
    let msg = tokio::time::timeout(WAIT, alerts.next())
        .await
        .expect("an alert event")
        .unwrap();
    let ev: AlertEvent = decode(&msg).unwrap();
    assert_eq!(msg.subject, format!("pantau.alert.firing.{}", ev.alert_id));
    assert_eq!(ev.state(), AlertState::Firing);
    assert_eq!(ev.severity(), Severity::Critical);
    assert_eq!(ev.summary, "closed is down from jkt");
    assert_eq!(ev.labels["target"], "closed");

    let listed = client
        .list_alerts(ListAlertsRequest {
            states: vec![AlertState::Firing.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.alerts.len(), 1);
    assert_eq!(listed.alerts[0].id, ev.alert_id);
    assert_eq!(listed.alerts[0].resource, "closed");

    // Still down: one problem, one alert.
    publish_proto(
        bus.as_ref(),
        &subject::check_result("jkt", "closed"),
        &check("closed", false),
    )
    .await
    .unwrap();

    let e = client
        .acknowledge_alert(AcknowledgeAlertRequest {
            id: ev.alert_id.clone(),
            actor: String::new(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let acked = client
        .acknowledge_alert(AcknowledgeAlertRequest {
            id: ev.alert_id.clone(),
            actor: "dina".into(),
            comment: "checking the firewall".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (acked.state(), acked.acknowledged_by.as_str()),
        (AlertState::Acknowledged, "dina")
    );
    let msg = tokio::time::timeout(WAIT, alerts.next())
        .await
        .expect("the ack event")
        .unwrap();
    assert_eq!(msg.subject, format!("pantau.alert.acknowledged.{}", ev.alert_id));
    assert_eq!(decode::<AlertEvent>(&msg).unwrap().actor, "dina");
    let streamed = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("StreamAlerts delivers")
        .unwrap()
        .expect("an event");
    assert_eq!(
        (streamed.state(), streamed.alert_id.as_str()),
        (AlertState::Acknowledged, ev.alert_id.as_str())
    );
    let again = client
        .acknowledge_alert(AcknowledgeAlertRequest {
            id: ev.alert_id.clone(),
            actor: "budi".into(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("already acknowledged by dina"),
        "{}",
        again.message()
    );

    let resolved = client
        .resolve_alert(ResolveAlertRequest {
            id: ev.alert_id.clone(),
            actor: "dina".into(),
            comment: "opened the port".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (resolved.state(), resolved.resolved_by.as_str()),
        (AlertState::Resolved, "dina")
    );
    let msg = tokio::time::timeout(WAIT, alerts.next())
        .await
        .expect("the resolve event")
        .unwrap();
    assert_eq!(msg.subject, format!("pantau.alert.resolved.{}", ev.alert_id));
    let e = client
        .resolve_alert(ResolveAlertRequest {
            id: ev.alert_id.clone(),
            actor: "dina".into(),
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = client
        .get_alert(GetAlertRequest { id: "missing".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let full = client
        .get_alert(GetAlertRequest {
            id: ev.alert_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let trail: Vec<(AlertState, &str)> = full.transitions.iter().map(|t| (t.state(), t.actor.as_str())).collect();
    assert_eq!(
        trail,
        [
            (AlertState::Firing, ""),
            (AlertState::Acknowledged, "dina"),
            (AlertState::Resolved, "dina")
        ]
    );
    assert_eq!(full.transitions[2].comment, "opened the port");

    // Unknown enum values are refused naming the field, never defaulted:
    // StreamAlerts used to wait forever on states=[99] and a rule of
    // severity 99 was stored as a warning.
    let e = client
        .stream_alerts(StreamAlertsRequest { states: vec![99] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`states`"), "{}", e.message());
    for req in [
        ListAlertsRequest {
            states: vec![99],
            ..Default::default()
        },
        ListAlertsRequest {
            severities: vec![-1],
            ..Default::default()
        },
    ] {
        let e = client.list_alerts(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    }
    let e = client
        .upsert_rule(UpsertRuleRequest {
            rule: Some(AlertRule {
                id: "sev".into(),
                expr: "cpu_usage > 80".into(),
                severity: 99,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`rule.severity`"), "{}", e.message());
    let e = client
        .upsert_rule(UpsertRuleRequest {
            rule: Some(AlertRule {
                id: "neg".into(),
                expr: "cpu_usage > 80".into(),
                r#for: Some(prost_types::Duration { seconds: 5, nanos: -1 }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("rule.for"), "{}", e.message());

    // Rules: a bad expression is refused with position and reason.
    let bad = client
        .upsert_rule(UpsertRuleRequest {
            rule: Some(AlertRule {
                id: "cpu".into(),
                expr: "cpu_usage > ".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        bad.message(),
        "rule `cpu` does not parse at column 13: expected a condition, found the end of the expression"
    );
    let made = client
        .upsert_rule(UpsertRuleRequest {
            rule: Some(AlertRule {
                id: "cpu".into(),
                expr: "cpu_usage > 80 for 5m".into(),
                severity: Severity::Warning.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((made.origin.as_str(), made.enabled), ("api", Some(true)));
    assert_eq!(made.r#for.map(|d| d.seconds), Some(300));
    let rules = client.list_rules(ListRulesRequest {}).await.unwrap().into_inner().rules;
    let ids: Vec<(&str, &str)> = rules.iter().map(|r| (r.id.as_str(), r.origin.as_str())).collect();
    assert_eq!(ids, [("closed-port", "file"), ("cpu", "api")]);
    let e = client
        .delete_rule(DeleteRuleRequest {
            id: "closed-port".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    client
        .delete_rule(DeleteRuleRequest { id: "cpu".into() })
        .await
        .unwrap();
    let e = client
        .delete_rule(DeleteRuleRequest { id: "cpu".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.expect("stops").unwrap().unwrap();
}
