//! Derived and location dependencies through the real alert engine on a
//! real nats-server: a router whose site label names ten targets' site, its
//! WAN link judged by the WAN detector (`wan_detected`) going down → one
//! alert event (the WAN link's, naming the ten), ten held alerts recorded
//! with it as their cause, and one resolve; a location whose every result
//! is down → one `location_up` alert, the targets depending on it held.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_config::{AlertRuleConfig, AlertSeverity, NatsConfig};
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, MessageStream, Subscription, decode, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::alert_engine_service_client::AlertEngineServiceClient;
use pantau_proto::v1::{
    AlertEvent, AlertState, CheckResult, CheckStatus, EventKind, InterfaceSample, ListAlertsRequest, RouterEvent,
    RouterInfo,
};

use crate::service::{config, ready};

const SITE_TARGETS: usize = 10;

fn rule(id: &str, expr: &str, message: &str) -> AlertRuleConfig {
    AlertRuleConfig {
        id: id.into(),
        name: None,
        expr: expr.into(),
        severity: AlertSeverity::Critical,
        message: message.into(),
        labels: std::collections::BTreeMap::new(),
        for_: None,
        cooldown: Some(Duration::ZERO),
        enabled: true,
        depends_on: Vec::new(),
    }
}

fn result(target: &str, location: &str, up: bool, labels: &[(&str, &str)], parents: &[&str]) -> CheckResult {
    CheckResult {
        target_id: target.into(),
        location: location.into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        checked_at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        depends_on: parents.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    }
}

fn sample(up: bool) -> InterfaceSample {
    InterfaceSample {
        router_id: "core".into(),
        if_index: 4,
        if_name: "ether1".into(),
        oper_up: up,
        admin_up: true,
        sampled_at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
        ..Default::default()
    }
}

struct Running {
    bus: Arc<dyn Bus>,
    ctx: Context,
    client: AlertEngineServiceClient<pantau_core::grpc::Channel>,
    alerts: MessageStream,
    run: tokio::task::JoinHandle<Result<(), pantau_alert_engine::AlertEngineError>>,
    _nats: pantau_testkit::Nats,
    _dir: tempfile::TempDir,
}

async fn start(rules: Vec<AlertRuleConfig>) -> Running {
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let nats_cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&nats_cfg, "alert-engine-derived").await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.nats = nats_cfg;
    cfg.alert_engine.rules = rules;
    cfg.alert_engine.dependencies.derive_from_wan = true;
    cfg.validate().unwrap();
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let alerts = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let client = ready(&ctx, addr).await;
    Running {
        bus,
        ctx,
        client,
        alerts,
        run,
        _nats: nats,
        _dir: dir,
    }
}

impl Running {
    async fn publish<M: prost::Message>(&self, subj: &str, m: &M) {
        publish_proto(self.bus.as_ref(), subj, m).await.unwrap();
    }

    async fn next_event(&mut self, within: Duration) -> Option<(String, AlertEvent)> {
        let msg = tokio::time::timeout(within, self.alerts.next()).await.ok()??;
        Some((msg.subject.clone(), decode(&msg).unwrap()))
    }

    /// Every alert of a state, once `want` of them are there.
    async fn alerts(&mut self, state: AlertState, want: usize) -> Vec<pantau_proto::v1::Alert> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let got = self
                .client
                .list_alerts(ListAlertsRequest {
                    states: vec![state.into()],
                    page_size: 500,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .alerts;
            if got.len() >= want || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        self.ctx.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.run)
            .await
            .expect("stops")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sites_targets_are_held_by_its_routers_wan_link() {
    let mut r = start(vec![
        rule("down", "check_up == 0", "{{ $labels.target }} is down"),
        rule(
            "wan-down",
            r#"interface_up{role="wan"} == 0"#,
            "WAN {{ $labels.interface }} of {{ $labels.router }} is down",
        ),
    ])
    .await;
    // The router's site, its WAN link (the detector's verdict), up.
    let info = RouterInfo {
        router_id: "core".into(),
        labels: [("site".to_owned(), "jkt-1".to_owned())].into(),
        ..Default::default()
    };
    r.publish(&subject::router_info("core"), &info).await;
    let wan = RouterEvent {
        id: "wan-1".into(),
        kind: EventKind::WanDetected.into(),
        source: "core".into(),
        occurred_at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
        attributes: [("wan_interfaces".to_owned(), "ether1".to_owned())].into(),
        ..Default::default()
    };
    r.publish(&subject::event("wan_detected", "core"), &wan).await;
    r.publish(&subject::iface_sample("core", 4), &sample(true)).await;
    let pos = |i: usize| format!("pos-{i:02}");
    for i in 0..SITE_TARGETS {
        r.publish(
            &subject::check_result("jkt", &pos(i)),
            &result(&pos(i), "jkt", true, &[("site", "jkt-1")], &[]),
        )
        .await;
    }
    // A target of another site, down on its own all along.
    r.publish(
        &subject::check_result("jkt", "sby-pos"),
        &result("sby-pos", "jkt", false, &[("site", "sby")], &[]),
    )
    .await;
    let (_, own) = r.next_event(Duration::from_secs(15)).await.expect("sby-pos pages");
    assert_eq!(own.labels["target"], "sby-pos");

    // The uplink goes down, then every target behind it.
    r.publish(&subject::iface_sample("core", 4), &sample(false)).await;
    let (subj, root) = r.next_event(Duration::from_secs(15)).await.expect("the WAN alert");
    assert!(subj.starts_with("pantau.alert.firing."), "{subj}");
    assert_eq!(root.rule_id, "wan-down");
    for i in 0..SITE_TARGETS {
        r.publish(
            &subject::check_result("jkt", &pos(i)),
            &result(&pos(i), "jkt", false, &[("site", "jkt-1")], &[]),
        )
        .await;
    }
    let firing = r.alerts(AlertState::Firing, SITE_TARGETS + 2).await;
    let held: Vec<_> = firing
        .iter()
        .filter(|a| a.rule_id == "down" && a.resource != "sby-pos")
        .collect();
    assert_eq!(held.len(), SITE_TARGETS, "{firing:#?}");
    for a in &held {
        assert_eq!(a.suppressed_by, format!("depends:{}", root.alert_id), "{a:?}");
    }
    assert!(
        r.next_event(Duration::from_secs(2)).await.is_none(),
        "the held alerts page no one"
    );

    // The uplink comes back, and the targets with it: one resolve.
    r.publish(&subject::iface_sample("core", 4), &sample(true)).await;
    for i in 0..SITE_TARGETS {
        r.publish(
            &subject::check_result("jkt", &pos(i)),
            &result(&pos(i), "jkt", true, &[("site", "jkt-1")], &[]),
        )
        .await;
    }
    let (subj, resolved) = r.next_event(Duration::from_secs(15)).await.expect("the WAN resolve");
    assert_eq!(subj, format!("pantau.alert.resolved.{}", root.alert_id));
    assert_eq!(resolved.state(), AlertState::Resolved);
    assert!(r.next_event(Duration::from_secs(2)).await.is_none(), "nothing else");
    assert_eq!(r.alerts(AlertState::Firing, 1).await.len(), 1, "sby-pos only");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_whose_results_are_all_down_holds_its_dependents() {
    let mut r = start(vec![
        rule("down", "check_up == 0", "{{ $labels.target }} is down"),
        rule(
            "location-down",
            "location_up == 0",
            "location {{ $labels.location }} is down",
        ),
    ])
    .await;
    // `bdg-office` is checked from jkt and depends on the location bdg.
    let office = |up: bool| result("bdg-office", "jkt", up, &[], &["location:bdg"]);
    r.publish(&subject::check_result("jkt", "bdg-office"), &office(true))
        .await;
    for t in ["bdg-a", "bdg-b"] {
        r.publish(&subject::check_result("bdg", t), &result(t, "bdg", true, &[], &[]))
            .await;
    }
    for t in ["bdg-a", "bdg-b"] {
        r.publish(&subject::check_result("bdg", t), &result(t, "bdg", false, &[], &[]))
            .await;
    }
    let mut fired = Vec::new();
    while let Some((subj, ev)) = r.next_event(Duration::from_secs(3)).await {
        assert!(subj.starts_with("pantau.alert.firing."), "{subj}");
        fired.push(ev);
    }
    let root = fired
        .iter()
        .find(|e| e.rule_id == "location-down")
        .expect("the location's alert")
        .clone();
    assert_eq!(root.labels["location"], "bdg");
    r.publish(&subject::check_result("jkt", "bdg-office"), &office(false))
        .await;
    let firing = r.alerts(AlertState::Firing, fired.len() + 1).await;
    let held = firing
        .iter()
        .find(|a| a.resource == "bdg-office")
        .expect("the dependent's alert is recorded");
    assert_eq!(held.suppressed_by, format!("depends:{}", root.alert_id));
    assert!(
        r.next_event(Duration::from_secs(2)).await.is_none(),
        "the dependent pages no one"
    );
    r.stop().await;
}
