//! Alerts raised by hand (`CreateAlert`) over gRPC and the in-process bus:
//! published as a rule's firing, answered once while open, acknowledged and
//! resolved by a person only, kept across a restart (no rule retires them),
//! and hostile requests refused naming the field.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription, decode};
use pantau_core::service::Context;
use pantau_proto::v1::{
    AcknowledgeAlertRequest, AlertEvent, AlertState, CreateAlertRequest, ListAlertsRequest, ResolveAlertRequest,
    Severity,
};
use tonic::Code;

use crate::service::{config, ready};

const WAIT: Duration = Duration::from_secs(10);

fn backup() -> CreateAlertRequest {
    CreateAlertRequest {
        severity: Severity::Critical.into(),
        source: "backup-job".into(),
        title: "Nightly backup failed".into(),
        message: "tar exited 2".into(),
        resource: "db-1".into(),
        labels: [("team".to_owned(), "ops".to_owned())].into(),
        actor: "dina".into(),
    }
}

async fn next(sub: &mut pantau_core::bus::MessageStream) -> (String, AlertEvent) {
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an alert event")
        .unwrap();
    let ev: AlertEvent = decode(&msg).unwrap();
    (msg.subject.clone(), ev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_alert_fires_once_is_acknowledged_resolved_by_hand_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut events = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let ctx = Context::new(Arc::new(config(dir.path())), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let mut client = ready(&ctx, addr).await;

    let made = client.create_alert(backup()).await.unwrap().into_inner();
    assert!(made.created);
    let a = made.alert.unwrap();
    assert_eq!(
        (a.rule_id.as_str(), a.rule_name.as_str()),
        ("manual", "Nightly backup failed")
    );
    assert_eq!((a.source.as_str(), a.resource.as_str()), ("backup-job", "db-1"));
    assert_eq!((a.state(), a.severity()), (AlertState::Firing, Severity::Critical));
    assert_eq!(a.summary, "tar exited 2");
    let (subject, ev) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.firing.{}", a.id));
    assert_eq!(ev.annotations["source"], "backup-job");
    assert_eq!(ev.annotations["resource"], "db-1");
    assert_eq!(ev.labels["team"], "ops");
    assert_eq!(ev.actor, "dina");

    // The same alert again while it is open: answered, nothing new.
    let again = client.create_alert(backup()).await.unwrap().into_inner();
    assert!(!again.created);
    assert_eq!(again.alert.unwrap().id, a.id);
    // Another title is another alert.
    let other = client
        .create_alert(CreateAlertRequest {
            title: "Disk almost full".into(),
            severity: Severity::Warning.into(),
            ..backup()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.created);
    let other_id = other.alert.unwrap().id;
    assert_ne!(other_id, a.id);
    let (subject, _) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.firing.{other_id}"));

    // A restart: still open (no rule retires it), and not fired again.
    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.expect("stops").unwrap().unwrap();
    let ctx = Context::new(Arc::new(config(dir.path())), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let mut client = ready(&ctx, addr).await;
    let listed = client
        .list_alerts(ListAlertsRequest {
            rule_id: "manual".into(),
            states: vec![AlertState::Firing.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.alerts.len(), 2, "{:?}", listed.alerts);
    let again = client.create_alert(backup()).await.unwrap().into_inner();
    assert!(!again.created, "the restored alert is the open one");

    client
        .acknowledge_alert(AcknowledgeAlertRequest {
            id: a.id.clone(),
            actor: "dina".into(),
            comment: "restoring".into(),
        })
        .await
        .unwrap();
    let (subject, _) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.acknowledged.{}", a.id));
    let resolved = client
        .resolve_alert(ResolveAlertRequest {
            id: a.id.clone(),
            actor: "dina".into(),
            comment: "restored".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.resolved_by, "dina");
    let (subject, ev) = next(&mut events).await;
    assert_eq!(subject, format!("pantau.alert.resolved.{}", a.id));
    assert_eq!(ev.state(), AlertState::Resolved);

    // Once resolved, raising it again is a new alert (no cooldown by hand).
    let third = client.create_alert(backup()).await.unwrap().into_inner();
    assert!(third.created);
    assert_ne!(third.alert.unwrap().id, a.id);

    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.expect("stops").unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_create_requests_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config(dir.path())), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let mut client = ready(&ctx, addr).await;

    let huge = "x".repeat(1 << 20);
    let cases: Vec<(CreateAlertRequest, &str)> = vec![
        (
            CreateAlertRequest {
                severity: 99,
                ..backup()
            },
            "`severity`",
        ),
        (
            CreateAlertRequest {
                severity: -1,
                ..backup()
            },
            "`severity`",
        ),
        (
            CreateAlertRequest {
                severity: 0,
                ..backup()
            },
            "`severity`",
        ),
        (
            CreateAlertRequest {
                title: String::new(),
                ..backup()
            },
            "`title`",
        ),
        (
            CreateAlertRequest {
                title: "a\u{0}b".into(),
                ..backup()
            },
            "`title`",
        ),
        (
            CreateAlertRequest {
                title: huge.clone(),
                ..backup()
            },
            "`title`",
        ),
        (
            CreateAlertRequest {
                message: huge.clone(),
                ..backup()
            },
            "`message`",
        ),
        (
            CreateAlertRequest {
                source: huge.clone(),
                ..backup()
            },
            "`source`",
        ),
        (
            CreateAlertRequest {
                resource: "r\n".into(),
                ..backup()
            },
            "`resource`",
        ),
        (
            CreateAlertRequest {
                labels: [("bad name".to_owned(), "v".to_owned())].into(),
                ..backup()
            },
            "`labels.",
        ),
        (
            CreateAlertRequest {
                labels: (0..100).map(|i| (format!("l{i}"), huge[..10].to_owned())).collect(),
                ..backup()
            },
            "`labels`",
        ),
        (
            CreateAlertRequest {
                actor: " ".into(),
                ..backup()
            },
            "actor",
        ),
    ];
    for (req, field) in cases {
        let e = client.create_alert(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {}", e.message());
        assert!(e.message().contains(field), "{field} not named: {}", e.message());
        assert!(e.message().len() <= 1024, "bounded: {} bytes", e.message().len());
    }
    let listed = client
        .list_alerts(ListAlertsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.alerts.is_empty(), "nothing was raised");

    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.expect("stops").unwrap().unwrap();
}
