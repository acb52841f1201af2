//! The protobuf contract under arbitrary input: every `Target` a client can
//! encode is either refused as INVALID_ARGUMENT naming a field, or accepted
//! and run by the scheduler — and the collector goes on checking everything
//! else either way.

use std::collections::HashMap;
use std::time::Duration;

use pantau_proto::v1::{self, ListLatestResultsRequest, ListTargetsRequest, UpsertTargetRequest, target::Spec};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestCaseError, TestRunner};
use tonic::Code;

use crate::targets::{base_config, start};

/// Durations at and around every edge the contract has: negative seconds and
/// nanos, zero, the 1 s floor, the 30 d ceiling, nanos past a second, and
/// the 10^11 s that once stopped the scheduler.
fn duration() -> impl Strategy<Value = Option<prost_types::Duration>> {
    let seconds = prop_oneof![
        Just(-5_i64),
        Just(0),
        Just(1),
        Just(3),
        Just(30 * 86_400),
        Just(30 * 86_400 + 1),
        Just(100_000_000_000),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>(),
    ];
    let nanos = prop_oneof![
        Just(0_i32),
        Just(-1),
        Just(500_000_000),
        Just(1_000_000_000),
        any::<i32>()
    ];
    proptest::option::of((seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }))
}

/// Text: plausible values for the field, garbage, and (rarely) huge.
fn text(plausible: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(plausible).prop_map(str::to_owned),
        2 => ".{0,40}",
        1 => (1_usize..70_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn spec(closed: &'static str) -> impl Strategy<Value = Option<Spec>> {
    let addresses: &'static [&'static str] =
        Box::leak(vec![closed, "127.0.0.1", "[::1]:1", "127.0.0.1:0", ":80"].into_boxed_slice());
    let http = (
        text(Box::leak(
            vec![
                Box::leak(format!("http://{closed}/").into_boxed_str()) as &str,
                "ftp://x",
                "http://",
            ]
            .into_boxed_slice(),
        )),
        text(&["GET", "HEAD", "get", ""]),
        proptest::collection::vec(any::<u32>(), 0..4),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(
            prop_oneof![
                duration().prop_map(|d| v1::Condition {
                    condition: d.map(v1::condition::Condition::ResponseTimeBelow),
                }),
                text(&["(", "ok", "a+"]).prop_map(|s| v1::Condition {
                    condition: Some(v1::condition::Condition::BodyMatches(s)),
                }),
                text(&["$.x", "$[", ""]).prop_map(|p| v1::Condition {
                    condition: Some(v1::condition::Condition::Json(v1::JsonCondition {
                        path: p,
                        exists: Some(true),
                        ..Default::default()
                    })),
                }),
            ],
            0..3,
        ),
    )
        .prop_map(|(url, method, expected_status, warn_days, conditions)| {
            Spec::Http(v1::HttpSpec {
                url,
                method,
                expected_status,
                warn_days,
                conditions,
                ..Default::default()
            })
        });
    let tcp = (text(addresses), text(&["", "PING\\r\\n"])).prop_map(|(address, send)| {
        Spec::Tcp(v1::TcpSpec {
            address,
            send,
            ..Default::default()
        })
    });
    let tls = (text(addresses), proptest::option::of(any::<u32>())).prop_map(|(address, warn_days)| {
        Spec::Tls(v1::TlsSpec {
            address,
            warn_days,
            ..Default::default()
        })
    });
    let icmp = (
        text(&["127.0.0.1", ""]),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<f64>()),
    )
        .prop_map(|(host, count, max_loss_percent)| {
            Spec::Icmp(v1::IcmpSpec {
                host,
                count,
                max_loss_percent,
            })
        });
    let dns = (
        text(&["localhost", ""]),
        text(&["A", "aaaa", "SRV", ""]),
        text(&["127.0.0.1:1", "", "resolver"]),
    )
        .prop_map(|(name, record_type, resolver)| {
            Spec::Dns(v1::DnsSpec {
                name,
                record_type,
                resolver,
                ..Default::default()
            })
        });
    let push = (text(&["abcdefghijklmnopqrstuv", "short", ""]), duration())
        .prop_map(|(token, grace)| Spec::Push(v1::PushSpec { token, grace }));
    proptest::option::of(prop_oneof![http, tcp, tls, icmp, dns, push])
}

fn target(closed: &'static str) -> impl Strategy<Value = v1::Target> {
    (
        prop_oneof![4 => "[a-z0-9_-]{1,12}", 1 => ".{0,20}"],
        text(&["web", ""]),
        prop_oneof![4 => 0_i32..=6, 1 => any::<i32>()],
        duration(),
        duration(),
        proptest::collection::hash_map(".{0,8}", ".{0,8}", 0..4),
        spec(closed),
    )
        .prop_map(|(id, name, kind, interval, timeout, labels, spec)| v1::Target {
            id,
            name,
            kind,
            interval,
            timeout,
            labels: labels.into_iter().collect::<HashMap<_, _>>(),
            spec,
            ..Default::default()
        })
}

/// Targets that must be accepted (so the test sees both answers): a TCP
/// check of a closed loopback port with a plausible interval and labels.
fn valid(closed: &'static str) -> impl Strategy<Value = v1::Target> {
    (
        "[a-z][a-z0-9_-]{0,11}",
        1_i64..=3600,
        proptest::collection::hash_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..4),
    )
        .prop_map(move |(id, seconds, labels)| v1::Target {
            id,
            interval: Some(prost_types::Duration { seconds, nanos: 0 }),
            labels: labels.into_iter().collect(),
            spec: Some(Spec::Tcp(v1::TcpSpec {
                address: closed.to_owned(),
                ..Default::default()
            })),
            ..Default::default()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_protobuf_target_is_refused_naming_a_field_or_runs_and_the_rest_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(dir.path());
    let sentinel_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sentinel = pantau_config::RawTarget::new("sentinel", pantau_config::CheckType::Tcp);
    sentinel.address = Some(sentinel_listener.local_addr().unwrap().to_string());
    config.collector.targets = vec![sentinel.parse("t").unwrap().into()];
    let c = start(config).await;
    let closed: &'static str = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap().to_string();
        drop(l);
        Box::leak(a.into_boxed_str())
    };

    let handle = tokio::runtime::Handle::current();
    let client = c.client.clone();
    let (accepted, refused) = tokio::task::spawn_blocking(move || {
        // A fixed seed: the same 300 cases every run, so the test cannot
        // pass or fail by luck.
        let mut runner = TestRunner::new_with_rng(
            RunConfig {
                cases: 300,
                failure_persistence: None,
                ..RunConfig::default()
            },
            proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
        );
        let counts = std::sync::Mutex::new((0_u32, 0_u32));
        runner
            .run(&prop_oneof![9 => target(closed), 1 => valid(closed)], |t| {
                let mut client = client.clone();
                let answer = handle.block_on(client.upsert_target(UpsertTargetRequest { target: Some(t) }));
                let mut n = counts.lock().unwrap();
                match answer {
                    Ok(_) => n.0 += 1,
                    Err(e) => {
                        n.1 += 1;
                        prop_assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
                        // Every refusal names a field in backticks and quotes little.
                        prop_assert!(e.message().contains('`'), "names no field: {}", e.message());
                        prop_assert!(e.message().len() < 4096, "{} bytes", e.message().len());
                    }
                }
                Ok::<(), TestCaseError>(())
            })
            .unwrap();
        counts.into_inner().unwrap()
    })
    .await
    .unwrap();
    assert!(accepted > 0 && refused > 0, "accepted {accepted}, refused {refused}");

    // The scheduler keeps running: the sentinel gets new results after all that.
    let mut client = c.client.clone();
    let first = latest_checked_at(&mut client).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = latest_checked_at(&mut client).await;
        if now > first {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sentinel stopped being checked"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = client
        .list_targets(ListTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets
        .len();
    assert!(listed > 1, "accepted targets are listed: {listed}");
    drop(sentinel_listener);
    c.stop().await;
}

async fn latest_checked_at(
    client: &mut v1::collector_service_client::CollectorServiceClient<pantau_core::grpc::Channel>,
) -> (i64, i32) {
    let r = client
        .list_latest_results(ListLatestResultsRequest {
            target_ids: vec!["sentinel".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    r.first()
        .and_then(|r| r.checked_at.as_ref())
        .map_or((0, 0), |t| (t.seconds, t.nanos))
}
