//! Targets through gRPC: upsert and delete persisted across a restart, bad
//! input rejected field by field, the breaker's cycle, push monitors and
//! history.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pantau_config::{CheckType, Config, RawTarget};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::grpc::Channel;
use pantau_core::service::Context;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_proto::v1::{
    self, BreakerState, CheckStatus, DeleteTargetRequest, GetHistoryRequest, GetTargetRequest,
    ListLatestResultsRequest, ListTargetsRequest, PushRequest, TargetSource, UpsertTargetRequest, target::Spec,
};
use tonic::Code;

pub(crate) struct Running {
    pub(crate) ctx: Context,
    task: tokio::task::JoinHandle<Result<(), pantau_collector::CollectorError>>,
    pub(crate) client: CollectorServiceClient<Channel>,
    /// With this process's service token, as the gateway relays pushes.
    pub(crate) pusher: CollectorServiceClient<Channel>,
}

impl Running {
    pub(crate) async fn stop(self) {
        self.ctx.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub(crate) async fn start(config: Config) -> Running {
    start_on(config, Arc::new(MemoryBus::new())).await
}

/// [`start`] on a bus of the test's choice.
pub(crate) async fn start_on(config: Config, bus: Arc<dyn Bus>) -> Running {
    config.validate().unwrap();
    let ctx = Context::new(Arc::new(config), bus);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(pantau_collector::run(ctx.clone(), l));
    // An admin client: a token minted with the collector's own keys.
    let channel = ctx
        .security
        .channel_as(&format!("http://{addr}"), "test", "admin")
        .unwrap();
    let mut client = CollectorServiceClient::new(channel);
    let pusher = CollectorServiceClient::new(ctx.channel(&format!("http://{addr}")));
    let mut tries = 0;
    loop {
        match client.list_targets(ListTargetsRequest {}).await {
            Ok(_) => break,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("collector gRPC never came up: {e}"),
        }
    }
    Running {
        ctx,
        task,
        client,
        pusher,
    }
}

pub(crate) fn base_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.data_dir = dir.to_owned();
    c.collector.interval = Duration::from_secs(1);
    c.collector.timeout = Duration::from_millis(500);
    c.metrics.enabled = false;
    c
}

fn tcp_target(id: &str, address: &str) -> v1::Target {
    v1::Target {
        id: id.into(),
        spec: Some(Spec::Tcp(v1::TcpSpec {
            address: address.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserted_targets_survive_a_restart_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(dir.path());
    let mut from_file = RawTarget::new("from-file", CheckType::Tcp);
    from_file.address = Some("127.0.0.1:1".into());
    config.collector.targets = vec![from_file.parse("t").unwrap().into()];
    let mut c = start(config.clone()).await;

    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap().to_string();
    let saved = c
        .client
        .upsert_target(UpsertTargetRequest {
            target: Some(tcp_target("api-added", &open_addr)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.source(), TargetSource::Api);

    // Bad input: each refusal names the field.
    let cases: Vec<(v1::Target, &str)> = vec![
        (
            v1::Target {
                id: "no-spec".into(),
                ..Default::default()
            },
            "spec",
        ),
        (tcp_target("bad id!", &open_addr), "target.id"),
        (tcp_target("no-port", "127.0.0.1"), "target.address"),
        (
            v1::Target {
                id: "fast".into(),
                interval: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 100_000_000,
                }),
                ..tcp_target("fast", &open_addr)
            },
            "target.interval",
        ),
        (
            // 10^11 s: accepted before, then the scheduler panicked and no
            // target was checked again.
            v1::Target {
                id: "far".into(),
                interval: Some(prost_types::Duration {
                    seconds: 100_000_000_000,
                    nanos: 0,
                }),
                ..tcp_target("far", &open_addr)
            },
            "target.interval",
        ),
        (
            v1::Target {
                id: "web".into(),
                spec: Some(Spec::Http(v1::HttpSpec {
                    url: "ftp://x".into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            "target.url",
        ),
        (
            v1::Target {
                id: "dns".into(),
                spec: Some(Spec::Dns(v1::DnsSpec {
                    name: "x".into(),
                    record_type: "SRV".into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            "spec.dns.record_type",
        ),
    ];
    // Values that used to be replaced by a default are refused, naming the field.
    let d = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
    let mut hostile: Vec<(v1::Target, &str)> = vec![
        (
            v1::Target {
                interval: d(-5, 0),
                ..tcp_target("neg", &open_addr)
            },
            "interval",
        ),
        (
            v1::Target {
                timeout: d(-1, 0),
                ..tcp_target("neg-timeout", &open_addr)
            },
            "timeout",
        ),
        (
            v1::Target {
                interval: d(5, -3),
                ..tcp_target("neg-nanos", &open_addr)
            },
            "interval",
        ),
        (
            v1::Target {
                kind: 99,
                ..tcp_target("kind-99", &open_addr)
            },
            "kind",
        ),
        (
            v1::Target {
                kind: v1::CheckKind::Http.into(),
                ..tcp_target("kind-mismatch", &open_addr)
            },
            "kind",
        ),
        (
            v1::Target {
                name: "n".repeat(1 << 20),
                ..tcp_target("huge-name", &open_addr)
            },
            "target.name",
        ),
        (
            v1::Target {
                labels: (0..100).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
                ..tcp_target("many-labels", &open_addr)
            },
            "target.labels",
        ),
    ];
    hostile.push((
        v1::Target {
            labels: [("team".to_owned(), "v".repeat(1 << 20))].into(),
            ..tcp_target("huge-label", &open_addr)
        },
        "target.labels.team",
    ));
    for (t, field) in cases.into_iter().chain(hostile) {
        let e = c
            .client
            .upsert_target(UpsertTargetRequest { target: Some(t) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
        assert!(
            e.message().len() < 1024,
            "{field}: the error quotes a little: {}",
            e.message().len()
        );
    }
    // A 1 MB id is NOT_FOUND, not echoed whole into the status (which a
    // grpcio client saw as RESOURCE_EXHAUSTED: metadata too large).
    let e = c
        .client
        .get_target(GetTargetRequest {
            id: "x".repeat(1 << 20),
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::NotFound,
        "{}",
        &e.message()[..e.message().len().min(200)]
    );
    assert!(e.message().len() < 300, "{}", e.message().len());
    let e = c
        .client
        .get_history(GetHistoryRequest {
            target_id: "api-added".into(),
            resolution: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`resolution`"), "{}", e.message());
    let e = c
        .client
        .upsert_target(UpsertTargetRequest {
            target: Some(tcp_target("from-file", &open_addr)),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = c
        .client
        .delete_target(DeleteTargetRequest { id: "from-file".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // The new target is checked at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let latest = c
            .client
            .list_latest_results(ListLatestResultsRequest {
                target_ids: vec!["api-added".into()],
            })
            .await;
        if latest.is_ok_and(|r| r.into_inner().results.iter().any(|r| r.status() == CheckStatus::Up)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "api-added never checked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;

    // A restart keeps it; a delete removes it for good.
    let mut c = start(config.clone()).await;
    let ids: Vec<String> = c
        .client
        .list_targets(ListTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["api-added", "from-file"]);
    c.client
        .delete_target(DeleteTargetRequest { id: "api-added".into() })
        .await
        .unwrap();
    let e = c
        .client
        .get_target(GetTargetRequest { id: "api-added".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    c.stop().await;
    let mut c = start(config).await;
    let n = c
        .client
        .list_targets(ListTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets
        .len();
    assert_eq!(n, 1);
    c.stop().await;
}

/// The status of `id`'s latest result, if it has one.
async fn latest_status(client: &mut CollectorServiceClient<Channel>, id: &str) -> Option<CheckStatus> {
    client
        .list_latest_results(ListLatestResultsRequest {
            target_ids: vec![id.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .results
        .first()
        .map(v1::CheckResult::status)
}

/// Waits up to 5 s for `id`'s latest result to say `want`.
async fn wait_for(client: &mut CollectorServiceClient<Channel>, id: &str, want: CheckStatus) {
    for _ in 0..100 {
        if latest_status(client, id).await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`{id}` never became {want:?}");
}

/// The schedule's queue holds entries: a target replaced while its check is
/// queued is next checked as it now is, and a deleted one not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_target_is_checked_as_it_now_is_and_a_deleted_one_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(base_config(dir.path())).await;
    c.client
        .upsert_target(UpsertTargetRequest {
            target: Some(tcp_target("moving", &closed_port())),
        })
        .await
        .unwrap();
    wait_for(&mut c.client, "moving", CheckStatus::Down).await;

    // Replaced by a target whose port is open: its checks now connect there.
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while open.accept().await.is_ok() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    c.client
        .upsert_target(UpsertTargetRequest {
            target: Some(tcp_target("moving", &open_addr)),
        })
        .await
        .unwrap();
    wait_for(&mut c.client, "moving", CheckStatus::Up).await;
    // Checked again at its interval, still at the new address.
    let seen = accepted.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) > seen);
    assert_eq!(latest_status(&mut c.client, "moving").await, Some(CheckStatus::Up));

    // Deleted: no check connects any more.
    c.client
        .delete_target(DeleteTargetRequest { id: "moving".into() })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_delete = accepted.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), after_delete);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_and_the_target_is_still_reported_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(dir.path());
    config.collector.circuit_breaker.failure_threshold = 2;
    let mut t = RawTarget::new("closed", CheckType::Tcp);
    t.address = Some(closed_port());
    config.collector.targets = vec![t.parse("t").unwrap().into()];
    let mut c = start(config).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut saw_open_result = false;
    while tokio::time::Instant::now() < deadline && !saw_open_result {
        let target = c
            .client
            .get_target(GetTargetRequest { id: "closed".into() })
            .await
            .unwrap()
            .into_inner();
        if target.breaker() == BreakerState::Open {
            let latest = c
                .client
                .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
                .await
                .unwrap()
                .into_inner();
            let r = &latest.results[0];
            if r.breaker() == BreakerState::Open {
                assert_eq!(r.status(), CheckStatus::Down);
                assert_eq!(
                    r.reason(),
                    v1::FailureReason::Refused,
                    "the last failure's reason is kept: {r:?}"
                );
                saw_open_result |= r.message.contains("circuit open");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_open_result, "the breaker never opened with a DOWN result");
    // Its gauge is written from the schedule at scrape time: down is 0.
    let scraped = pantau_core::telemetry::render_metrics();
    assert!(
        scraped.contains("pantau_collector_check_up{target=\"closed\",kind=\"tcp\"} 0\n"),
        "{scraped}"
    );
    // Rejected checks keep coming while it is open: each quotes the last
    // real failure once, never the previous rejection (which nested without
    // bound before).
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        let latest = c
            .client
            .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
            .await
            .unwrap()
            .into_inner();
        let m = &latest.results[0].message;
        assert!(m.matches("circuit open").count() <= 1, "nested: {m}");
        assert!(m.matches("last failure").count() <= 1, "nested: {m}");
        assert!(m.len() < 400, "bounded: {m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_monitors_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(dir.path());
    let mut t = RawTarget::new("nightly-backup", CheckType::Push);
    t.token = Some("push-token-0123456789".into());
    t.interval = Some(Duration::from_secs(60));
    config.collector.targets = vec![t.parse("t").unwrap().into()];
    let mut c = start(config).await;
    // No push yet, but interval + grace has not passed: no DOWN result (it
    // was "no push received yet" within about a second before).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let early = c
        .client
        .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert!(early.results.is_empty(), "judged before interval + grace: {early:?}");

    let e = c
        .pusher
        .push(PushRequest {
            token: "wrong-token-0000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        !e.message().contains("wrong-token"),
        "the token is echoed: {}",
        e.message()
    );
    let e = c
        .pusher
        .push(PushRequest {
            token: "push-token-0123456789".into(),
            status: "sideways".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // A latency too large for a Duration (found by the API fuzzer) is refused, not a panic.
    for latency_ms in [3.987e223, -1.0, f64::NAN] {
        let e = c
            .pusher
            .push(PushRequest {
                token: "push-token-0123456789".into(),
                latency_ms,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{latency_ms}");
        assert!(e.message().contains("latency_ms"), "{}", e.message());
    }

    let r = c
        .pusher
        .push(PushRequest {
            token: "push-token-0123456789".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.target_id, "nightly-backup");
    let latest = c
        .client
        .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest.results[0].status(), CheckStatus::Up);
    c.pusher
        .push(PushRequest {
            token: "push-token-0123456789".into(),
            status: "down".into(),
            message: "disk full".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let latest = c
        .client
        .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest.results[0].status(), CheckStatus::Down);
    assert_eq!(latest.results[0].message, "disk full");
    // A pushed message of 100 KiB: the result (and its detail) keep at most
    // 1,024 characters, and never an earlier message.
    c.pusher
        .push(PushRequest {
            token: "push-token-0123456789".into(),
            status: "down".into(),
            message: "é".repeat(100 * 1024),
            ..Default::default()
        })
        .await
        .unwrap();
    let latest = c
        .client
        .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
        .await
        .unwrap()
        .into_inner();
    let r = &latest.results[0];
    assert!(
        r.message.chars().count() <= 1025,
        "{} characters",
        r.message.chars().count()
    );
    assert!(
        !r.message.contains("disk full"),
        "an earlier message is kept: {}",
        r.message
    );
    if let Some(v1::check_result::Detail::Push(d)) = &r.detail {
        assert!(d.pushed_message.chars().count() <= 1024, "{}", d.pushed_message.len());
    }
    // The token is never shown.
    let shown = c
        .client
        .get_target(GetTargetRequest {
            id: "nightly-backup".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(Spec::Push(p)) = shown.spec else {
        panic!("{shown:?}")
    };
    assert_eq!(p.token, "***");

    // Stopping flushes the finished minutes; the two pushes are history.
    c.stop().await;
    let store = pantau_core::store::Store::connect(
        &pantau_config::DatabaseConfig::default(),
        dir.path(),
        "collector",
        pantau_collector::MIGRATIONS,
    )
    .await
    .unwrap();
    let h = pantau_collector::history::History::new(store, &pantau_config::HistoryConfig::default());
    h.record(
        "other",
        true,
        Duration::from_millis(10),
        SystemTime::now() - Duration::from_secs(120),
    );
    h.record(
        "other",
        false,
        Duration::from_millis(30),
        SystemTime::now() - Duration::from_secs(120),
    );
    assert_eq!(h.flush(SystemTime::now()).await.unwrap(), 1);
    let points = h
        .query(
            "other",
            SystemTime::now() - Duration::from_secs(3600),
            SystemTime::now(),
            pantau_collector::history::Resolution::Minute,
        )
        .await
        .unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].checks, points[0].up), (2, 1));
    assert!((points[0].lat_avg - 20.0).abs() < 1e-9);
    let hours = h
        .query(
            "other",
            SystemTime::now() - Duration::from_secs(7200),
            SystemTime::now(),
            pantau_collector::history::Resolution::Hour,
        )
        .await
        .unwrap();
    assert_eq!(hours.iter().map(|p| p.checks).sum::<u64>(), 2);

    // And through gRPC.
    let c = start({
        let mut cfg = base_config(dir.path());
        let mut t = RawTarget::new("other", CheckType::Tcp);
        t.address = Some("127.0.0.1:1".into());
        cfg.collector.targets = vec![t.parse("t").unwrap().into()];
        cfg
    })
    .await;
    let mut client = c.client.clone();
    let hist = client
        .get_history(GetHistoryRequest {
            target_id: "other".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((hist.checks, hist.up), (2, 1));
    assert!((hist.uptime_percent - 50.0).abs() < 1e-9);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_targets_through_shards() {
    let pg = pantau_testkit::Postgres::start().await.expect("PostgreSQL starts");
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = open.local_addr().unwrap().to_string();
    let config = |index: u32, dir: &std::path::Path| {
        let mut c = base_config(dir);
        c.database.url = Some(pg.url());
        c.database.schema_prefix = "shard_test".into();
        c.collector.shard.index = index;
        c.collector.shard.count = 2;
        c.collector.shard.reload_interval = Duration::from_secs(1);
        c.collector.targets = (0..20)
            .map(|i| {
                let mut t = RawTarget::new(format!("t{i}"), CheckType::Tcp);
                t.address = Some(addr.clone());
                t.parse("t").unwrap().into()
            })
            .collect();
        c
    };
    let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start(config(0, d0.path())).await;
    let mut b = start(config(1, d1.path())).await;
    let ids = |r: v1::ListTargetsResponse| r.targets.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let ta = ids(a.client.list_targets(ListTargetsRequest {}).await.unwrap().into_inner());
    let tb = ids(b.client.list_targets(ListTargetsRequest {}).await.unwrap().into_inner());
    assert!(!ta.is_empty() && !tb.is_empty(), "{ta:?} {tb:?}");
    assert_eq!(ta.len() + tb.len(), 20, "every target exactly once: {ta:?} {tb:?}");
    assert!(ta.iter().all(|t| !tb.contains(t)));

    // A target added through one replica is checked by its owner.
    let second = pantau_config::ShardConfig {
        index: 1,
        count: 2,
        ..Default::default()
    };
    let (mut via, mut owner) = if second.owns("added") {
        (a.client.clone(), b.client.clone())
    } else {
        (b.client.clone(), a.client.clone())
    };
    via.upsert_target(UpsertTargetRequest {
        target: Some(tcp_target("added", &addr)),
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = ids(owner.list_targets(ListTargetsRequest {}).await.unwrap().into_inner());
        if t.iter().any(|t| t == "added") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner never picked up the added target"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And deleted through either, the owner drops it.
    via.delete_target(DeleteTargetRequest { id: "added".into() })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = ids(owner.list_targets(ListTargetsRequest {}).await.unwrap().into_inner());
        if !t.iter().any(|t| t == "added") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner kept a deleted target"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await;
    b.stop().await;
}
