//! The DataDog exporter against a local sink that checks every request
//! against DataDog's documented shapes (`POST /api/v2/series`,
//! `POST /api/v1/events`, the `DD-API-KEY` header): check results become
//! series, alert transitions events; a 503 is retried; a full queue drops
//! instead of waiting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use pantau_config::{Config, DatadogConfig};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use pantau_proto::v1::{AlertEvent, AlertState, CheckResult, CheckStatus, Severity};
use serde_json::Value;

const KEY: &str = "0123456789abcdef0123456789abcdef";

#[derive(Clone, Default)]
struct Sink {
    series: Arc<Mutex<Vec<Value>>>,
    events: Arc<Mutex<Vec<Value>>>,
    /// Schema violations seen; the test fails on any.
    faults: Arc<Mutex<Vec<String>>>,
    /// Series requests to answer 503 before accepting.
    fail_first: Arc<Mutex<usize>>,
    attempts: Arc<Mutex<usize>>,
}

fn only_keys(v: &Value, allowed: &[&str], what: &str, faults: &mut Vec<String>) {
    match v.as_object() {
        Some(o) => {
            for k in o.keys().filter(|k| !allowed.contains(&k.as_str())) {
                faults.push(format!("{what}: undocumented field `{k}`"));
            }
        }
        None => faults.push(format!("{what}: not an object")),
    }
}

fn tags_ok(v: &Value, what: &str, faults: &mut Vec<String>) {
    let Some(tags) = v.as_array() else {
        return faults.push(format!("{what}.tags: not an array"));
    };
    for t in tags {
        match t.as_str() {
            Some(t) if !t.is_empty() && t.len() <= 200 && !t.contains(char::is_whitespace) => {}
            _ => faults.push(format!("{what}.tags: bad tag {t}")),
        }
    }
}

/// DataDog's v2 series schema (MetricPayload).
fn check_series(body: &Value, faults: &mut Vec<String>) {
    only_keys(body, &["series"], "payload", faults);
    let Some(series) = body["series"].as_array().filter(|s| !s.is_empty()) else {
        return faults.push("payload.series: required, a non-empty array".into());
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for s in series {
        only_keys(
            s,
            &[
                "metric",
                "type",
                "points",
                "tags",
                "unit",
                "resources",
                "interval",
                "metadata",
                "source_type_name",
            ],
            "series",
            faults,
        );
        match s["metric"].as_str() {
            Some(m) if !m.is_empty() && m.len() <= 200 && m.starts_with(|c: char| c.is_ascii_alphabetic()) => {}
            _ => faults.push(format!("series.metric: required name, got {}", s["metric"])),
        }
        if s["type"].as_u64().is_none_or(|t| t > 3) {
            faults.push(format!("series.type: 0 to 3, got {}", s["type"]));
        }
        let Some(points) = s["points"].as_array().filter(|p| !p.is_empty()) else {
            faults.push("series.points: required, non-empty".into());
            continue;
        };
        for p in points {
            only_keys(p, &["timestamp", "value"], "point", faults);
            match p["timestamp"].as_i64() {
                Some(t) if (now - 3600..=now + 600).contains(&t) => {}
                _ => faults.push(format!(
                    "point.timestamp: an int64 within the last hour, got {}",
                    p["timestamp"]
                )),
            }
            if !p["value"].is_number() {
                faults.push(format!("point.value: a number, got {}", p["value"]));
            }
        }
        tags_ok(&s["tags"], "series", faults);
        if !(s["unit"].is_null() || s["unit"].is_string()) {
            faults.push("series.unit: a string".into());
        }
    }
}

/// DataDog's v1 event schema (EventCreateRequest).
fn check_event(body: &Value, faults: &mut Vec<String>) {
    only_keys(
        body,
        &[
            "title",
            "text",
            "alert_type",
            "date_happened",
            "aggregation_key",
            "source_type_name",
            "tags",
            "priority",
            "host",
            "related_event_id",
            "device_name",
        ],
        "event",
        faults,
    );
    match body["title"].as_str() {
        Some(t) if !t.is_empty() && t.chars().count() <= 100 => {}
        _ => faults.push(format!(
            "event.title: required, at most 100 characters, got {}",
            body["title"]
        )),
    }
    match body["text"].as_str() {
        Some(t) if t.chars().count() <= 4000 => {}
        _ => faults.push("event.text: required, at most 4000 characters".into()),
    }
    let types = [
        "error",
        "warning",
        "info",
        "success",
        "user_update",
        "recommendation",
        "snapshot",
    ];
    if body["alert_type"].as_str().is_none_or(|t| !types.contains(&t)) {
        faults.push(format!(
            "event.alert_type: one of {types:?}, got {}",
            body["alert_type"]
        ));
    }
    if !body["date_happened"].is_i64() {
        faults.push("event.date_happened: an int64".into());
    }
    if body["aggregation_key"].as_str().is_none_or(|k| k.len() > 100) {
        faults.push("event.aggregation_key: at most 100 characters".into());
    }
    tags_ok(&body["tags"], "event", faults);
}

impl Sink {
    async fn start(&self) -> String {
        let s = self.clone();
        let e = self.clone();
        let app = axum::Router::new()
            .route(
                "/api/v2/series",
                axum::routing::post(move |h: HeaderMap, body: String| {
                    let s = s.clone();
                    async move {
                        *s.attempts.lock().unwrap() += 1;
                        if let Some(r) = s.refuse(&h) {
                            return r;
                        }
                        {
                            let mut fail = s.fail_first.lock().unwrap();
                            if *fail > 0 {
                                *fail -= 1;
                                return (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned());
                            }
                        }
                        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        check_series(&v, &mut s.faults.lock().unwrap());
                        s.series.lock().unwrap().push(v);
                        (StatusCode::ACCEPTED, r#"{"errors":[]}"#.to_owned())
                    }
                }),
            )
            .route(
                "/api/v1/events",
                axum::routing::post(move |h: HeaderMap, body: String| {
                    let e = e.clone();
                    async move {
                        if let Some(r) = e.refuse(&h) {
                            return r;
                        }
                        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        check_event(&v, &mut e.faults.lock().unwrap());
                        e.events.lock().unwrap().push(v);
                        (StatusCode::ACCEPTED, r#"{"status":"ok"}"#.to_owned())
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn refuse(&self, h: &HeaderMap) -> Option<(StatusCode, String)> {
        if h.get("dd-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
            self.faults.lock().unwrap().push("DD-API-KEY missing or wrong".into());
            return Some((StatusCode::FORBIDDEN, "bad key".into()));
        }
        if !h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
        {
            self.faults
                .lock()
                .unwrap()
                .push("content-type is not application/json".into());
        }
        None
    }
}

fn config(dir: &std::path::Path, url: &str, queue: usize) -> Config {
    let key = dir.join("dd-key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.exporters.datadog = Some(DatadogConfig {
        site: "datadoghq.eu".into(),
        url: Some(url.parse().unwrap()),
        api_key_env: None,
        api_key_file: Some(key),
        interval: Duration::from_secs(1),
        queue,
        tags: vec!["env:test".into()],
    });
    c.validate().unwrap();
    c
}

fn result(target: &str, up: bool) -> CheckResult {
    CheckResult {
        target_id: target.into(),
        location: "jkt".into(),
        status: if up { CheckStatus::Up } else { CheckStatus::Down }.into(),
        latency: Some(pantau_core::time::to_duration(Duration::from_millis(42))),
        checked_at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
        ..Default::default()
    }
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(15), async {
        while !ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_become_series_and_alerts_events_in_datadogs_shapes() {
    let sink = Sink::default();
    *sink.fail_first.lock().unwrap() = 1;
    let url = sink.start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config(dir.path(), &url, 100)), Arc::clone(&bus));
    pantau_notifier::datadog::start(&ctx).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    publish_proto(bus.as_ref(), &subject::check_result("jkt", "api"), &result("api", true))
        .await
        .unwrap();
    publish_proto(bus.as_ref(), &subject::check_result("jkt", "db"), &result("db", false))
        .await
        .unwrap();
    let alert = AlertEvent {
        alert_id: "a1".into(),
        rule_id: "manual".into(),
        rule_name: "Nightly backup failed ".repeat(10),
        state: AlertState::Firing.into(),
        severity: Severity::Critical.into(),
        summary: "x".repeat(10_000),
        labels: [("team".to_owned(), "ops and more".to_owned())].into(),
        fingerprint: "f".repeat(300),
        starts_at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
        ..Default::default()
    };
    publish_proto(bus.as_ref(), &subject::alert("firing", "a1"), &alert)
        .await
        .unwrap();

    until("the series, after a 503", || !sink.series.lock().unwrap().is_empty()).await;
    until("the event", || !sink.events.lock().unwrap().is_empty()).await;
    assert!(*sink.attempts.lock().unwrap() >= 2, "the 503 was retried");
    let faults = sink.faults.lock().unwrap().clone();
    assert!(faults.is_empty(), "{faults:#?}");

    let series = sink.series.lock().unwrap()[0]["series"].as_array().unwrap().clone();
    let find = |metric: &str, target: &str| {
        series
            .iter()
            .find(|s| {
                s["metric"] == metric
                    && s["tags"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t == &format!("target:{target}"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {metric} for {target}: {series:#?}"))
    };
    assert_eq!(find("pantau.check.up", "api")["points"][0]["value"], 1.0);
    assert_eq!(find("pantau.check.up", "db")["points"][0]["value"], 0.0);
    let d = find("pantau.check.duration", "api");
    assert_eq!(
        (d["points"][0]["value"].as_f64(), d["unit"].as_str()),
        (Some(0.042), Some("second"))
    );
    assert!(d["tags"].as_array().unwrap().iter().any(|t| t == "env:test"), "{d}");
    assert!(d["tags"].as_array().unwrap().iter().any(|t| t == "location:jkt"), "{d}");

    let ev = sink.events.lock().unwrap()[0].clone();
    assert_eq!(ev["alert_type"], "error");
    assert!(
        ev["title"]
            .as_str()
            .unwrap()
            .starts_with("[Firing] Nightly backup failed"),
        "{ev}"
    );
    assert!(
        ev["tags"].as_array().unwrap().iter().any(|t| t == "team:ops_and_more"),
        "{ev}"
    );
    assert!(!ev.to_string().contains(KEY), "the key only in its header");

    // The resolve is a success event.
    let resolved = AlertEvent {
        state: AlertState::Resolved.into(),
        actor: "dina".into(),
        ..alert
    };
    publish_proto(bus.as_ref(), &subject::alert("resolved", "a1"), &resolved)
        .await
        .unwrap();
    until("the resolve event", || sink.events.lock().unwrap().len() >= 2).await;
    assert_eq!(sink.events.lock().unwrap()[1]["alert_type"], "success");
    assert!(sink.faults.lock().unwrap().is_empty());
    ctx.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_instead_of_waiting_and_a_down_intake_never_blocks() {
    let sink = Sink::default();
    // DataDog answers 503 to everything for a while: the exporter retries,
    // the bus keeps flowing, the queue stays bounded.
    *sink.fail_first.lock().unwrap() = 1_000;
    let url = sink.start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(config(dir.path(), &url, 5)), Arc::clone(&bus));
    pantau_notifier::datadog::start(&ctx).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();
    for i in 0..500 {
        publish_proto(
            bus.as_ref(),
            &subject::check_result("jkt", &format!("t{i}")),
            &result(&format!("t{i}"), true),
        )
        .await
        .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "publishing never waits for the exporter"
    );
    // Let DataDog come back: what reaches it is at most the queue's worth per batch.
    *sink.fail_first.lock().unwrap() = 0;
    until("a batch", || !sink.series.lock().unwrap().is_empty()).await;
    let sent: usize = sink
        .series
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            b["series"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["metric"] == "pantau.check.up")
                .count()
        })
        .sum();
    assert!(
        (1..=10).contains(&sent),
        "bounded by the queue (5) per interval: {sent}"
    );
    assert!(sink.faults.lock().unwrap().is_empty());
    ctx.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "http://127.0.0.1:9", 10);
    cfg.exporters.datadog.as_mut().unwrap().api_key_file = Some(dir.path().join("missing"));
    let ctx = Context::new(Arc::new(cfg), Arc::new(MemoryBus::new()));
    let e = pantau_notifier::datadog::start(&ctx).unwrap_err();
    assert!(e.to_string().contains("exporters.datadog.api_key_file"), "{e}");
}
