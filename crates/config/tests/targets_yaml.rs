//! The YAML door under arbitrary input: a `collector.targets` entry made of
//! any known or unknown field holding any kind of value (huge text,
//! negative and enormous numbers, wrong types, nested maps, out-of-range
//! durations) either loads into a target whose typed values hold their
//! bounds, or is refused with errors that name `collector.targets[0]…` and
//! quote at most a little of the input. Never a panic, never a default.

use std::time::Duration;

use pantau_config::types::{Interval, Timeout};
use pantau_config::{Config, LoadOptions, TargetSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

const FIELDS: &[&str] = &[
    "name",
    "interval",
    "timeout",
    "labels",
    "quorum",
    "depends_on",
    "url",
    "method",
    "headers",
    "body",
    "follow_redirects",
    "verify_tls",
    "reuse_connection",
    "expected_status",
    "conditions",
    "address",
    "send",
    "expect",
    "server_name",
    "warn_days",
    "host",
    "count",
    "max_loss_percent",
    "name_to_resolve",
    "record_type",
    "service",
    "use_tls",
    "username",
    "password",
    "query",
    "expected_reply",
    "database",
    "resolver",
    "expected_answers",
    "token",
    "grace",
    "topic",
    "protocol",
    "starttls",
    "expect_matches",
    "colour",
];

/// A value of any shape, biased toward the edges the contract has.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("3000d")),
        Just(json!("30d")),
        Just(json!("-5s")),
        Just(json!("0s")),
        Just(json!("5ms")),
        Just(json!("2s")),
        Just(json!("http://127.0.0.1:9/x")),
        Just(json!("ftp://127.0.0.1/")),
        Just(json!("127.0.0.1:22")),
        Just(json!("[::1]:0")),
        Just(json!("0123456789abcdef-token")),
        Just(json!("A")),
        Just(json!("GET")),
        Just(json!(null)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!(true)),
        Just(json!([200, 99, 1000])),
        Just(json!({"nested": {"deeper": [1, 2]}})),
        Just(json!([{"body_matches": "(unclosed"}, {"json": {"path": "$.a"}}])),
        Just(Value::String("x".repeat(300_000))),
        "[a-z0-9:/._-]{0,40}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
    ]
}

/// A target that must load, with some optional fields that keep it valid.
fn valid_target() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!({"id": "ok-tcp", "type": "tcp", "address": "127.0.0.1:22"})),
            Just(json!({"id": "ok-http", "type": "http", "url": "http://127.0.0.1:9/x", "expected_status": [200, 204]})),
            Just(json!({"id": "ok-ping", "type": "ping", "host": "127.0.0.1", "count": 2})),
            Just(json!({"id": "ok-dns", "type": "dns", "name_to_resolve": "x.test", "resolver": "127.0.0.1", "record_type": "AAAA"})),
            Just(json!({"id": "ok-push", "type": "push", "token": "0123456789abcdef-token", "grace": "30d"})),
        ],
        prop_oneof![Just(None), Just(Some("1s")), Just(Some("30d")), Just(Some("90s"))],
    )
        .prop_map(|(mut t, interval)| {
            if let Some(i) = interval {
                t["interval"] = json!(i);
            }
            t
        })
}

fn target() -> impl Strategy<Value = Value> {
    prop_oneof![1 => valid_target(), 4 => any_target()]
}

fn any_target() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("http"),
        Just("tcp"),
        Just("tls"),
        Just("icmp"),
        Just("ping"),
        Just("dns"),
        Just("push"),
        Just("grpc"),
        Just("redis"),
        Just("postgres"),
        Just("mysql"),
        Just("mariadb"),
        Just("udp"),
        Just("ssh"),
        Just("websocket"),
        Just("mqtt"),
        Just("mail"),
        Just("carrier-pigeon"),
    ];
    let id = prop_oneof![Just("t-1".to_owned()), "[a-z.]{0,3}", Just("x".repeat(200))];
    (
        kind,
        id,
        proptest::collection::vec((proptest::sample::select(FIELDS), value()), 0..6),
    )
        .prop_map(|(kind, id, fields)| {
            let mut t = serde_json::Map::new();
            t.insert("id".into(), json!(id));
            t.insert("type".into(), json!(kind));
            for (k, v) in fields {
                t.insert(k.to_owned(), v);
            }
            Value::Object(t)
        })
}

fn load(doc: &Value) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantau.yaml");
    std::fs::write(&path, serde_yaml::to_string(doc).unwrap()).unwrap();
    Config::load(&LoadOptions {
        file: Some(path),
        env: vec![],
    })
    .map_err(|e| e.to_string())
}

#[test]
fn any_yaml_target_is_parsed_into_bounded_types_or_refused_by_name() {
    let mut runner = TestRunner::new_with_rng(
        RunConfig {
            cases: 400,
            failure_persistence: None,
            ..RunConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&target(), |t| {
            let doc = json!({"collector": {"targets": [t]}});
            match load(&doc) {
                Ok(c) => {
                    accepted.set(accepted.get() + 1);
                    let t = &c.collector.targets[0];
                    let interval = t.interval.map_or(c.collector.interval, Interval::get);
                    prop_assert!((Interval::MIN..=Interval::MAX).contains(&interval));
                    let timeout = t.timeout.map_or(c.collector.timeout, Timeout::get);
                    prop_assert!(
                        timeout <= interval || matches!(t.spec, TargetSpec::Push(_)),
                        "{timeout:?} > {interval:?}"
                    );
                    if let TargetSpec::Push(p) = &t.spec {
                        prop_assert!(p.token.len() >= 16);
                        prop_assert!(p.grace.is_none_or(|g| g.get() <= Duration::from_secs(30 * 86_400)));
                    }
                }
                Err(e) => {
                    refused.set(refused.get() + 1);
                    prop_assert!(e.contains("collector.targets"), "{e}");
                    // Each problem quotes at most ~100 bytes of what was sent.
                    prop_assert!(e.len() < 8 * 1024, "{} bytes: {}", e.len(), &e[..300]);
                }
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted > 0 && refused > 0, "accepted {accepted}, refused {refused}");
}

#[test]
fn the_same_bad_targets_give_the_same_keys_every_time() {
    for (yaml, key) in [
        (
            "{id: a, type: tcp, address: '127.0.0.1:1', interval: 3000d}",
            "collector.targets[0].interval",
        ),
        ("{id: a, type: http, url: 'ftp://x/'}", "collector.targets[0].url"),
        ("{id: a, type: tcp, address: '[::1]:0'}", "collector.targets[0].address"),
        ("{id: a, type: push, token: short}", "collector.targets[0].token"),
        ("{id: a, type: icmp, host: h, count: 0}", "collector.targets[0].count"),
        (
            "{id: a, type: dns, name_to_resolve: x, resolver: 'not an ip'}",
            "collector.targets[0].resolver",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', url: 'http://x/'}",
            "collector.targets[0].url",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', quorum: 0}",
            "collector.targets[0].quorum",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', quorum: 65}",
            "collector.targets[0].quorum",
        ),
        // A value of the wrong type is refused by the decoder, whose path
        // spells the index with a dot.
        (
            "{id: a, type: tcp, address: 'h:1', quorum: -1}",
            "collector.targets[0].quorum",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', quorum: 4294967296}",
            "collector.targets[0].quorum",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', quorum: two}",
            "collector.targets[0].quorum",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', quorum: [2]}",
            "collector.targets[0].quorum",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', depends_on: [b, 'site:x']}",
            "collector.targets[0].depends_on[1]",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', depends_on: [a]}",
            "collector.targets[0].depends_on[0]",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', depends_on: ['interface:r1']}",
            "collector.targets[0].depends_on[0]",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', depends_on: b}",
            "collector.targets[0].depends_on",
        ),
        (
            "{id: a, type: tcp, address: 'h:1', depends_on: [{x: 1}]}",
            "collector.targets[0].depends_on[0]",
        ),
        // The probes: wrong types, out-of-range and unknown values.
        (
            "{id: a, type: grpc, address: 'h:1', use_tls: maybe}",
            "collector.targets[0].use_tls",
        ),
        (
            "{id: a, type: grpc, address: 'h:1', service: [a]}",
            "collector.targets[0].service",
        ),
        (
            "{id: a, type: grpc, address: 'h:1', service: 'a b'}",
            "collector.targets[0].service",
        ),
        (
            "{id: a, type: grpc, address: 'h:99999'}",
            "collector.targets[0].address",
        ),
        (
            "{id: a, type: grpc, address: 'h:1', verify_tls: false}",
            "collector.targets[0].verify_tls",
        ),
        (
            "{id: a, type: redis, address: 'h:1', password: [a]}",
            "collector.targets[0].password",
        ),
        (
            "{id: a, type: redis, address: 'h:1', query: {a: 1}}",
            "collector.targets[0].query",
        ),
        (
            "{id: a, type: redis, address: 'h:1', query: ''}",
            "collector.targets[0].query",
        ),
        ("{id: a, type: redis}", "collector.targets[0].address"),
        (
            "{id: a, type: redis, address: 'h:1', send: PING}",
            "collector.targets[0].send",
        ),
        (
            "{id: a, type: postgres, address: 'h:1'}",
            "collector.targets[0].username",
        ),
        (
            "{id: a, type: postgres, address: 'h:1', username: u, database: ''}",
            "collector.targets[0].database",
        ),
        (
            "{id: a, type: mysql, address: 'h:1', username: u, query: ' '}",
            "collector.targets[0].query",
        ),
        (
            "{id: a, type: mariadb, address: 'h:0', username: u}",
            "collector.targets[0].address",
        ),
        (
            "{id: a, type: mysql, address: 'h:1', username: {a: b}}",
            "collector.targets[0].username",
        ),
        // websocket, mqtt, mail: wrong types, out-of-range and unknown values.
        ("{id: a, type: websocket, url: 'ftp://h/'}", "collector.targets[0].url"),
        (
            "{id: a, type: websocket, url: 'ws://h/', expect_matches: '(['}",
            "collector.targets[0].expect_matches",
        ),
        (
            "{id: a, type: websocket, url: 'ws://h/', send: [a]}",
            "collector.targets[0].send",
        ),
        (
            "{id: a, type: websocket, url: 'ws://h/', verify_tls: false}",
            "collector.targets[0].verify_tls",
        ),
        (
            "{id: a, type: mqtt, address: 'h:1', topic: 'a/#'}",
            "collector.targets[0].topic",
        ),
        (
            "{id: a, type: mqtt, address: 'h:1', topic: {a: 1}}",
            "collector.targets[0].topic",
        ),
        ("{id: a, type: mqtt}", "collector.targets[0].address"),
        (
            "{id: a, type: mqtt, address: 'h:1', password: p}",
            "collector.targets[0].password",
        ),
        (
            "{id: a, type: mail, address: 'h:25', protocol: smtps}",
            "collector.targets[0].protocol",
        ),
        ("{id: a, type: mail, address: 'h:25'}", "collector.targets[0].protocol"),
        (
            "{id: a, type: mail, address: 'h:25', protocol: smtp, starttls: yes-please}",
            "collector.targets[0].starttls",
        ),
        (
            "{id: a, type: mail, address: 'h:25', protocol: imap, use_tls: true, starttls: true}",
            "collector.targets[0].starttls",
        ),
        (
            "{id: a, type: mail, address: 'h:25', protocol: pop3, warn_days: -1}",
            "collector.targets[0].warn_days",
        ),
        // A cycle among targets is refused, naming the first on it.
        (
            "{id: a, type: tcp, address: 'h:1', depends_on: [b]}, {id: b, type: tcp, address: 'h:1', depends_on: ['target:a']}",
            "collector.targets[0].depends_on",
        ),
    ] {
        let doc: Value = serde_yaml::from_str(&format!("{{collector: {{targets: [{yaml}]}}}}")).unwrap();
        let e = load(&doc).unwrap_err();
        assert!(e.contains(&format!("`{key}`")), "{yaml}: {e}");
    }
}

/// `collector.targets` itself of the wrong kind is refused by name; in a
/// list read entry by entry, a bad entry after good ones is keyed by its own
/// index, and every bad entry is said, not only the first.
#[test]
fn a_targets_list_of_the_wrong_kind_or_with_bad_entries_is_refused_by_name() {
    for targets in [json!("not a list"), json!({"id": "a"}), json!(7)] {
        let e = load(&json!({"collector": {"targets": targets}})).unwrap_err();
        assert!(
            e.contains("collector.targets") && e.contains("a list of targets"),
            "{e}"
        );
    }
    let good = json!({"id": "ok", "type": "tcp", "address": "127.0.0.1:1"});
    let doc = json!({"collector": {"targets": [
        good,
        {"id": "b", "type": "http", "url": "ftp://x/"},
        {"id": "c", "type": "tcp", "address": "h:1", "quorum": 0},
    ]}});
    let e = load(&doc).unwrap_err();
    assert!(e.contains("collector.targets[1].url"), "{e}");
    assert!(e.contains("collector.targets[2].quorum"), "{e}");
    assert!(!e.contains("collector.targets[0]"), "{e}");
    let many: Vec<Value> = (0..3000)
        .map(|i| json!({"id": format!("t{i}"), "type": "tcp", "address": "127.0.0.1:1"}))
        .collect();
    let c = load(&json!({"collector": {"targets": many}})).unwrap();
    assert_eq!(c.collector.targets.len(), 3000);
    assert_eq!(c.collector.targets[2999].id, "t2999");
}
