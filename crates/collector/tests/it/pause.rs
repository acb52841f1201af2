//! Pausing a target through gRPC: its scheduled checks stop while the
//! others go on, the pause (who, why, since) outlives a restart, run-now
//! still checks it, resume checks it at once; hostile requests are refused
//! naming the field.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::{CheckType, RawTarget};
use pantau_core::bus::{Subscription, decode};
use pantau_proto::v1::{
    CheckResult, GetTargetRequest, ListTargetsRequest, PauseTargetRequest, ResumeTargetRequest, RunCheckRequest,
};
use tonic::Code;

use crate::targets::{base_config, start};

/// Target ids with a result on the bus during `span`.
pub(crate) async fn checked_during(bus: &dyn pantau_core::bus::Bus, span: Duration) -> HashSet<String> {
    let mut sub = bus
        .subscribe(Subscription::live("pantau.check.result.>"))
        .await
        .unwrap();
    let mut seen = HashSet::new();
    let end = tokio::time::Instant::now() + span;
    while let Ok(Some(m)) = tokio::time::timeout_at(end, sub.next()).await {
        let r: CheckResult = decode(&m).expect("a CheckResult");
        seen.insert(r.target_id);
    }
    seen
}

pub(crate) fn tcp(id: &str, address: &str) -> std::sync::Arc<pantau_config::TargetConfig> {
    let mut t = RawTarget::new(id, CheckType::Tcp);
    t.address = Some(address.to_owned());
    t.parse("t").unwrap().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_target_is_not_checked_across_a_restart_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = open.local_addr().unwrap().to_string();
    let mut config = base_config(dir.path());
    config.collector.targets = vec![tcp("quiet", &addr), tcp("busy", &addr)];
    let mut c = start(config.clone()).await;

    let seen = checked_during(&*c.ctx.bus, Duration::from_millis(2500)).await;
    assert!(
        seen.contains("quiet") && seen.contains("busy"),
        "both are checked first: {seen:?}"
    );

    // Hostile requests, each refused naming what is wrong.
    let long = c
        .client
        .pause_target(PauseTargetRequest {
            target_id: "quiet".into(),
            reason: "x".repeat(501),
        })
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("`reason`"), "{}", long.message());
    let empty = c.client.pause_target(PauseTargetRequest::default()).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().contains("target_id"), "{}", empty.message());
    let unknown = c
        .client
        .pause_target(PauseTargetRequest {
            target_id: "nope".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let unknown = c
        .client
        .resume_target(ResumeTargetRequest {
            target_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // A configured target can be paused; the answer says who and why.
    let t = c
        .client
        .pause_target(PauseTargetRequest {
            target_id: "quiet".into(),
            reason: "switch swap\u{0} tonight".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let p = t.paused.expect("paused");
    assert_eq!(p.by, "test");
    assert_eq!(p.reason, "switch swap  tonight", "control characters are replaced");
    let since = p.since.expect("since");

    // A check in flight may still land; after that, only `busy` is checked.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let seen = checked_during(&*c.ctx.bus, Duration::from_millis(2500)).await;
    assert!(seen.contains("busy"), "the others go on: {seen:?}");
    assert!(!seen.contains("quiet"), "a paused target is not checked: {seen:?}");

    // Run-now still checks it.
    let r = c
        .client
        .run_check(RunCheckRequest {
            target_id: "quiet".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.target_id, "quiet");

    // Pausing again replaces the reason and keeps the start.
    let again = c
        .client
        .pause_target(PauseTargetRequest {
            target_id: "quiet".into(),
            reason: "still swapping".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .paused
        .unwrap();
    assert_eq!(again.reason, "still swapping");
    assert_eq!(again.since, Some(since));

    // A restart keeps the pause.
    c.stop().await;
    let mut c = start(config).await;
    let listed = c
        .client
        .list_targets(ListTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets;
    let quiet = listed.iter().find(|t| t.id == "quiet").unwrap();
    assert_eq!(quiet.paused.as_ref().map(|p| p.reason.as_str()), Some("still swapping"));
    assert_eq!(quiet.paused.as_ref().and_then(|p| p.since), Some(since));
    assert!(listed.iter().find(|t| t.id == "busy").unwrap().paused.is_none());
    let seen = checked_during(&*c.ctx.bus, Duration::from_millis(3000)).await;
    assert!(seen.contains("busy"), "{seen:?}");
    assert!(!seen.contains("quiet"), "still paused after the restart: {seen:?}");

    // Resume: checked at once, and no longer paused (resuming twice is no error).
    let watch = tokio::spawn({
        let bus = std::sync::Arc::clone(&c.ctx.bus);
        async move { checked_during(&*bus, Duration::from_millis(1500)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = c
        .client
        .resume_target(ResumeTargetRequest {
            target_id: "quiet".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(t.paused.is_none());
    assert!(
        watch.await.unwrap().contains("quiet"),
        "resumed targets are checked at once"
    );
    c.client
        .resume_target(ResumeTargetRequest {
            target_id: "quiet".into(),
        })
        .await
        .unwrap();
    let t = c
        .client
        .get_target(GetTargetRequest { id: "quiet".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(t.paused.is_none());
    c.stop().await;
}

/// The pause store alone, on the given database: a pause, its replacement
/// and a resume, each read back by a new process.
pub(crate) async fn pauses_survive(cfg: &pantau_config::DatabaseConfig, dir: &std::path::Path) {
    use pantau_collector::pause::Pauses;
    use pantau_core::store::Store;
    let open = || Store::connect(cfg, dir, "collector", pantau_collector::MIGRATIONS);
    let store = open().await.unwrap();
    let p = Pauses::load(store.clone()).await.unwrap();
    let first = p.pause("web", "ana", "swap".into()).await.unwrap();
    p.pause("dns", "ana", String::new()).await.unwrap();
    let second = p.pause("web", "bo", "still".into()).await.unwrap();
    assert_eq!(second.since, first.since, "a new reason keeps the start");
    store.close().await;

    let store = open().await.unwrap();
    let p = Pauses::load(store.clone()).await.unwrap();
    assert_eq!(p.get("web"), Some(second));
    assert_eq!(p.len(), 2);
    assert!(p.resume("dns").await.unwrap());
    assert!(!p.resume("dns").await.unwrap(), "resuming twice says it was not paused");
    store.close().await;

    let store = open().await.unwrap();
    let p = Pauses::load(store.clone()).await.unwrap();
    assert!(!p.is_paused("dns") && p.is_paused("web"));
    store.close().await;
}

/// A window holding from a minute ago for an hour.
fn window(
    id: &str,
    targets: &[&str],
    labels: &[(&str, &str)],
    checks: pantau_config::MaintenanceChecks,
) -> pantau_config::MaintenanceWindow {
    let now = std::time::SystemTime::now();
    pantau_config::MaintenanceWindow {
        id: id.into(),
        name: None,
        start: Some(now - Duration::from_secs(60)),
        end: Some(now + Duration::from_secs(3600)),
        cron: None,
        duration: None,
        repeat_every: None,
        repeat_until: None,
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        routers: Vec::new(),
        locations: Vec::new(),
        checks,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_pauses_checks_or_keeps_them_out_of_uptime() {
    use pantau_proto::v1::GetHistoryRequest;
    let dir = tempfile::tempdir().unwrap();
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = open.local_addr().unwrap().to_string();
    let mut config = base_config(dir.path());
    config.collector.history.flush_interval = Duration::from_secs(1);
    let mut kept = RawTarget::new("kept", CheckType::Tcp);
    kept.address = Some(addr.clone());
    kept.labels.insert("site".into(), "jkt".into());
    config.collector.targets = vec![tcp("svc", &addr), std::sync::Arc::new(kept.parse("t").unwrap())];
    // Before the window: `svc` is up and counted.
    let c = start(config.clone()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    c.stop().await;
    let history = |mut c: crate::targets::Running| async move {
        let h = c
            .client
            .get_history(GetHistoryRequest {
                target_id: "svc".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (c, h)
    };

    // The window: `svc`'s checks go on (its port now closed: DOWN on the
    // bus) but stay out of its uptime; `kept` (by label) is not checked.
    drop(open);
    config.maintenance = vec![
        window("swap", &["svc"], &[], pantau_config::MaintenanceChecks::Continue),
        window("site", &[], &[("site", "jkt")], pantau_config::MaintenanceChecks::Pause),
    ];
    let c = start(config).await;
    let (c, before) = history(c).await;
    assert!(before.checks > 0 && before.up == before.checks, "{before:?}");
    let seen = checked_during(&*c.ctx.bus, Duration::from_millis(3000)).await;
    assert!(seen.contains("svc"), "checks go on in a `continue` window: {seen:?}");
    assert!(!seen.contains("kept"), "a `pause` window skips the checks: {seen:?}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (c, after) = history(c).await;
    assert_eq!(
        (after.checks, after.up),
        (before.checks, before.checks),
        "the window's DOWN results are not in the uptime (100 %)"
    );
    c.stop().await;
}
