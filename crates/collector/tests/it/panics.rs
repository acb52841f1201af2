//! A check that panics (the `test-hooks` feature's `PANIC_HOST`) is a failed
//! result of its own target; the schedule keeps checking every other target
//! and the collector stays ready.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use metrics_util::debugging::DebugValue;
use pantau_collector::checks::PANIC_HOST;
use pantau_config::{CheckType, Config, RawTarget};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription, decode};
use pantau_core::service::Context;
use pantau_proto::v1::{CheckResult, CheckStatus, FailureReason};

fn target(id: &str, check: CheckType, url: Option<String>, address: Option<String>) -> RawTarget {
    let mut t = RawTarget::new(id, check);
    t.url = url;
    t.address = address;
    t
}

#[test]
fn a_panicking_check_fails_its_target_and_spares_the_others() {
    let ((results, report), snapshotter) = crate::recorded(run_three_targets());

    let up = |id: &str| {
        results
            .iter()
            .filter(|r| r.target_id == id && r.status() == CheckStatus::Up)
            .count()
    };
    assert!(up("web") >= 3, "web was checked on: {results:#?}");
    assert!(up("port") >= 3, "port was checked on: {results:#?}");
    let boom: Vec<&CheckResult> = results.iter().filter(|r| r.target_id == "boom").collect();
    assert!(boom.len() >= 2, "the panicking target keeps reporting: {boom:#?}");
    for r in &boom {
        assert_eq!(r.status(), CheckStatus::Down, "{r:?}");
        assert_eq!(r.reason(), FailureReason::Internal, "{r:?}");
        assert!(
            r.message
                .contains("check panicked: check of `boom` panicked on purpose"),
            "{}",
            r.message
        );
        assert!(r.message.chars().count() <= pantau_collector::scheduler::MAX_MESSAGE + 1);
    }

    let tasks = &report.components["collector.tasks"];
    assert_eq!(tasks.status, "ok", "{report:?}");
    // Checks keep completing, so the dead man's switch is quiet.
    assert_eq!(report.components["collector.progress"].status, "ok", "{report:?}");
    assert!(report.is_ready(), "{report:?}");
    assert!(
        !tasks.detail.clone().unwrap_or_default().contains("restarts"),
        "{tasks:?}"
    );

    let panics: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if key.key().name() == "pantau_collector_check_panics_total" => {
                let labels: BTreeMap<_, _> = key.key().labels().map(|l| (l.key(), l.value())).collect();
                assert_eq!(labels.get("kind"), Some(&"tcp"));
                Some(n)
            }
            _ => None,
        })
        .sum();
    // Every panic is counted once; the last one may have happened as the
    // collection of results ended, its result not yet on the bus.
    assert!(
        (boom.len()..=boom.len() + 1).contains(&(panics as usize)),
        "every panic is counted once: {panics} counted, {} results",
        boom.len()
    );
}

/// Runs the collector with a web target, a TCP target and one whose check
/// panics, for about 3.5 s; gives back every result on the bus and the
/// readiness report at the end.
async fn run_three_targets() -> (Vec<CheckResult>, pantau_core::health::Report) {
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_addr = web.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(web, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.data_dir = dir.path().to_owned();
    config.instance.location = "jkt".into();
    config.metrics.enabled = false;
    config.collector.interval = Duration::from_secs(1);
    config.collector.timeout = Duration::from_millis(500);
    // The breaker never opens here: every result of the panicking target is
    // a check that ran (and panicked).
    config.collector.circuit_breaker.failure_threshold = 1_000;
    config.collector.targets = vec![
        target("web", CheckType::Http, Some(format!("http://{web_addr}/ok")), None)
            .parse("t")
            .unwrap()
            .into(),
        target("port", CheckType::Tcp, None, Some(web_addr.to_string()))
            .parse("t")
            .unwrap()
            .into(),
        target("boom", CheckType::Tcp, None, Some(format!("{PANIC_HOST}:1")))
            .parse("t")
            .unwrap()
            .into(),
    ];
    config.validate().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut on_bus = bus
        .subscribe(Subscription::live("pantau.check.result.jkt.*"))
        .await
        .unwrap();
    let ctx = Context::new(Arc::new(config), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = tokio::spawn(pantau_collector::run(ctx.clone(), grpc));

    let mut results = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, on_bus.next()).await {
        results.push(decode::<CheckResult>(&msg).expect("a CheckResult"));
    }
    let report = ctx.health.report().await;
    crate::stop_collector(&ctx, run).await;
    (results, report)
}
