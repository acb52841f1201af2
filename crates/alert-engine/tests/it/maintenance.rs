//! Maintenance windows through the API, against both stores and both buses:
//! stored, listed beside the configured ones (read-only), muting what they
//! cover like a configured one, releasing it when deleted, kept across a
//! restart, and published whole for the collector on `pantau.maintenance.*`
//! (after each change, and when a collector asks).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_alert_engine::maintenance::{Source, WindowError};
use pantau_alert_engine::store::AlertStore;
use pantau_alert_engine::{Engine, EngineError};
use pantau_config::{AlertEngineConfig, DatabaseConfig, MaintenanceWindow, NatsConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::nats::NatsBus;
use pantau_core::bus::{Bus, MessageStream, Subscription, decode, publish_encoded};
use pantau_core::error::{ErrorCode, ServiceError};
use pantau_core::store::Store;
use pantau_proto::v1::{AlertEvent, AlertState, MaintenanceSnapshot};
use tokio_util::sync::CancellationToken;

use crate::suppress::{fact, rule, t};

fn window(json: &str) -> MaintenanceWindow {
    pantau_config::maintenance_api::from_json(json.as_bytes()).unwrap()
}

fn at(s: u64) -> String {
    humantime::format_rfc3339(t(s)).to_string()
}

async fn engine(db: &Store, bus: &Arc<dyn Bus>) -> Engine {
    let cfg = AlertEngineConfig {
        default_rules: false,
        rules: vec![rule("down", "check_up == 0", &[])],
        ..AlertEngineConfig::default()
    };
    let configured = window(&format!(
        r#"{{"id":"cfg-win","start":"{}","end":"{}","targets":["db"]}}"#,
        at(0),
        at(3600)
    ));
    Engine::new(cfg, AlertStore::new(db.clone()), Arc::clone(bus))
        .await
        .unwrap()
        .with_maintenance(vec![configured])
}

async fn next(sub: &mut MessageStream, prefix: &str) -> pantau_core::bus::Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| panic!("a message on {prefix}* within 10 s"))
            .unwrap();
        if m.subject.starts_with(prefix) {
            return m;
        }
    }
}

fn code(e: &EngineError) -> ErrorCode {
    e.code()
}

async fn contract(db_cfg: DatabaseConfig, bus: Arc<dyn Bus>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::connect(&db_cfg, dir.path(), "alert-engine", pantau_alert_engine::MIGRATIONS)
        .await
        .unwrap();
    let mut windows = bus.subscribe(Subscription::live("pantau.maintenance.>")).await.unwrap();
    let mut alerts = bus.subscribe(Subscription::live("pantau.alert.>")).await.unwrap();
    let e = engine(&db, &bus).await;

    // Created through the API: stored, listed, published whole.
    let api = window(&format!(
        r#"{{"id":"swap","start":"{}","end":"{}","targets":["web"],"checks":"pause"}}"#,
        at(0),
        at(100)
    ));
    let made = e.put_maintenance_window(api.clone(), true, "ana", t(1)).await.unwrap();
    assert_eq!((made.source, made.created_by.as_str()), (Source::Api, "ana"));
    let m = next(&mut windows, "pantau.maintenance.changed.swap").await;
    let snap: MaintenanceSnapshot = decode(&m).unwrap();
    assert_eq!(snap.windows.len(), 1, "API windows only: {snap:?}");
    assert_eq!(
        pantau_config::maintenance_api::from_proto(&snap.windows[0]).unwrap(),
        api
    );
    let first_revision = snap.revision;

    // It mutes what it covers, as a configured window does.
    let muted = e
        .ingest(vec![fact("check_up", &[("target", "web")], 0.0, 10)], t(10))
        .await
        .unwrap();
    assert_eq!(muted[0].alert.suppressed_by, "maintenance:swap");
    let by_config = e
        .ingest(vec![fact("check_up", &[("target", "db")], 0.0, 11)], t(11))
        .await
        .unwrap();
    assert_eq!(by_config[0].alert.suppressed_by, "maintenance:cfg-win");

    // Refusals, named: a configured id, a taken id, a bad window.
    let clash = window(&format!(
        r#"{{"id":"cfg-win","start":"{}","end":"{}","targets":["x"]}}"#,
        at(0),
        at(10)
    ));
    let err = e.put_maintenance_window(clash, false, "ana", t(12)).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Window(WindowError::Configured(ref id)) if id == "cfg-win"),
        "{err}"
    );
    assert_eq!(code(&err), ErrorCode::Conflict);
    assert!(err.to_string().contains("cfg-win"), "{err}");
    let err = e
        .put_maintenance_window(api.clone(), true, "ana", t(12))
        .await
        .unwrap_err();
    assert_eq!(code(&err), ErrorCode::Conflict, "{err}");
    let mut bad = api.clone();
    bad.end = bad.start;
    let err = e.put_maintenance_window(bad, false, "ana", t(12)).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::InvalidArgument, "{err}");
    assert!(err.to_string().contains("`end`"), "{err}");
    let err = e.delete_maintenance_window("cfg-win", "ana", t(12)).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::Conflict, "{err}");
    let err = e.delete_maintenance_window("nope", "ana", t(12)).await.unwrap_err();
    assert_eq!(code(&err), ErrorCode::NotFound, "{err}");

    let listed = e.maintenance_windows().await;
    let ids: Vec<(&str, Source)> = listed.iter().map(|l| (l.window.id.as_str(), l.source)).collect();
    assert_eq!(ids, [("cfg-win", Source::Config), ("swap", Source::Api)]);

    // A restart keeps it (and its author).
    drop(e);
    let e = engine(&db, &bus).await;
    let kept = e.maintenance_window("swap").await.unwrap();
    assert_eq!((kept.window.clone(), kept.created_by.as_str()), (api.clone(), "ana"));
    let restarted = e.maintenance_snapshot().await;
    assert!(
        restarted.revision > first_revision,
        "a restarted engine's revision is later"
    );

    // A collector asks: the running engine answers with a snapshot.
    let e = Arc::new(e);
    let stop = CancellationToken::new();
    let task = tokio::spawn(pantau_alert_engine::maintenance::run(
        Arc::clone(&e),
        Arc::clone(&bus),
        stop.clone(),
    ));
    let m = next(&mut windows, "pantau.maintenance.snapshot.").await;
    assert_eq!(decode::<MaintenanceSnapshot>(&m).unwrap().windows.len(), 1, "at start");
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish_encoded(
        bus.as_ref(),
        "pantau.maintenance.wanted.collector-1",
        Vec::<u8>::new().into(),
    )
    .await
    .unwrap();
    let m = next(&mut windows, "pantau.maintenance.snapshot.").await;
    assert_eq!(
        decode::<MaintenanceSnapshot>(&m).unwrap().windows.len(),
        1,
        "when asked"
    );

    // Deleted: the alert it muted, still open, pages now.
    e.ingest(vec![fact("check_up", &[("target", "web")], 0.0, 20)], t(20))
        .await
        .unwrap();
    e.delete_maintenance_window("swap", "ana", t(21)).await.unwrap();
    let m = next(&mut alerts, "pantau.alert.firing.").await;
    let ev: AlertEvent = decode(&m).unwrap();
    assert_eq!((ev.state(), ev.labels["target"].as_str()), (AlertState::Firing, "web"));
    let m = next(&mut windows, "pantau.maintenance.deleted.swap").await;
    let snap: MaintenanceSnapshot = decode(&m).unwrap();
    assert!(snap.windows.is_empty() && snap.revision > restarted.revision);
    assert_eq!(e.maintenance_windows().await.len(), 1, "the configured one stays");
    stop.cancel();
    task.await.unwrap().unwrap();
    drop(e);
    let e = engine(&db, &bus).await;
    assert!(e.maintenance_window("swap").await.is_err(), "the deletion is stored");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_the_in_process_bus() {
    Box::pin(contract(DatabaseConfig::default(), Arc::new(MemoryBus::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_nats() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let nats = pantau_testkit::Nats::start().await.expect("nats-server for the test");
    let nats_cfg = NatsConfig {
        url: Some(nats.url()),
        ..NatsConfig::default()
    };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&nats_cfg, "alert-engine-maintenance").await.unwrap());
    let cfg = DatabaseConfig {
        url: Some(pg.url()),
        ..DatabaseConfig::default()
    };
    Box::pin(contract(cfg, bus)).await;
}

/// The gRPC face: hostile windows are INVALID_ARGUMENT naming the field, a
/// configured id ALREADY_EXISTS naming it, and every write is in the
/// service's gRPC audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_grpc_refused_by_name_and_audited() {
    use pantau_proto::v1::{
        DeleteMaintenanceWindowRequest, GetMaintenanceWindowRequest, ListMaintenanceWindowsRequest, MaintenanceSource,
        PutMaintenanceWindowRequest,
    };
    use tonic::Code;

    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut cfg = crate::service::config(dir.path());
    cfg.maintenance = vec![window(
        r#"{"id":"cfg-win","start":"2099-01-01T00:00:00Z","end":"2099-01-01T01:00:00Z","targets":["db"]}"#,
    )];
    let ctx = pantau_core::service::Context::new(Arc::new(cfg), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    let mut client = crate::service::ready(&ctx, addr).await;

    let good = pantau_config::maintenance_api::to_proto(&window(
        r#"{"id":"swap","cron":"0 2 * * SAT","duration":"2h","routers":["core-1"]}"#,
    ));
    let put = |window, create_only| PutMaintenanceWindowRequest {
        window: Some(window),
        create_only,
        actor: String::new(),
    };
    let made = client
        .put_maintenance_window(put(good.clone(), true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.source(), MaintenanceSource::Api);
    assert_eq!(made.created_by, "test", "the token's subject");
    let hostile = [
        (
            pantau_proto::v1::MaintenanceWindow {
                checks: 42,
                ..good.clone()
            },
            "window.`checks`",
        ),
        (
            pantau_proto::v1::MaintenanceWindow {
                cron: "0 0 31 2 *".into(),
                ..good.clone()
            },
            "window.`cron`",
        ),
        (
            pantau_proto::v1::MaintenanceWindow {
                routers: vec!["a".into(), "b c".into()],
                ..good.clone()
            },
            "window.`routers[1]`",
        ),
        (
            pantau_proto::v1::MaintenanceWindow {
                name: "n".repeat(300),
                ..good.clone()
            },
            "window.`name`",
        ),
    ];
    for (w, field) in hostile {
        let e = client.put_maintenance_window(put(w, false)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
    }
    let e = client
        .put_maintenance_window(PutMaintenanceWindowRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let clash = pantau_proto::v1::MaintenanceWindow {
        id: "cfg-win".into(),
        ..good.clone()
    };
    let e = client.put_maintenance_window(put(clash, false)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e}");
    assert!(e.message().contains("cfg-win"), "{}", e.message());

    let list = client
        .list_maintenance_windows(ListMaintenanceWindowsRequest {})
        .await
        .unwrap()
        .into_inner()
        .windows;
    let ids: Vec<(&str, MaintenanceSource)> = list.iter().map(|w| (w.id.as_str(), w.source())).collect();
    assert_eq!(
        ids,
        [("cfg-win", MaintenanceSource::Config), ("swap", MaintenanceSource::Api)]
    );
    let got = client
        .get_maintenance_window(GetMaintenanceWindowRequest { id: "swap".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.cron, "0 2 * * SAT");
    client
        .delete_maintenance_window(DeleteMaintenanceWindowRequest {
            id: "swap".into(),
            actor: String::new(),
        })
        .await
        .unwrap();
    let e = client
        .get_maintenance_window(GetMaintenanceWindowRequest { id: "swap".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Every write is in the service's gRPC audit log, refused ones too.
    let db = Store::connect(
        &DatabaseConfig::default(),
        dir.path(),
        "alert-engine",
        pantau_alert_engine::MIGRATIONS,
    )
    .await
    .unwrap();
    let entries = pantau_core::audit::Audit::open(&db)
        .await
        .unwrap()
        .entries(100)
        .await
        .unwrap();
    let puts = entries
        .iter()
        .filter(|e| e.method.ends_with("AlertEngineService/PutMaintenanceWindow"))
        .count();
    let deletes: Vec<_> = entries
        .iter()
        .filter(|e| e.method.ends_with("AlertEngineService/DeleteMaintenanceWindow"))
        .collect();
    assert_eq!(puts, 7, "{entries:#?}");
    assert_eq!((deletes.len(), deletes[0].actor.as_str()), (1, "test"), "{entries:#?}");
    db.close().await;
    ctx.shutdown.cancel();
    run.await.unwrap().unwrap();
}
