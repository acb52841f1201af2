//! Multi-location done right, end to end: three `pantau all` instances on
//! one real nats-server check an HTTP target that the test makes fail from
//! chosen locations (it answers by the `x-pantau-location` header every
//! check carries), and a real webhook sink counts the pages.
//!
//! One location failing is PARTIAL and pages nobody; two are DOWN and page
//! once for the majority rule across the cluster, listed on every gateway
//! with its incident (the page's delivery on the timeline);
//! killing the primary (SIGKILL) during the fault keeps the target's quorum
//! and the DOWN, with no resolve and no second page; killing a dependent
//! shows its location stale and the DOWN stays; the recovery resolves once.
//! Also: the target's `quorum` through REST and gRPC, hostile values refused
//! naming the field.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_testkit::Nats;
use tokio::time::Instant;

use crate::cluster::{Instance, consensus, status};
use crate::support::{JWT_SECRET, Pantau, grpc, http, wait_json};

const MAJORITY: &str = "Endpoint down from the majority of locations";

/// Serves `router` on a free loopback port for as long as the test runs.
async fn serve(router: axum::Router) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, router).await });
    port
}

/// The target: 503 to the locations in the set, 200 to the others.
async fn flaky_target(failing: Arc<Mutex<HashSet<String>>>) -> u16 {
    async fn answer(State(f): State<Arc<Mutex<HashSet<String>>>>, h: HeaderMap) -> StatusCode {
        let location = h.get("x-pantau-location").and_then(|v| v.to_str().ok()).unwrap_or("");
        if f.lock().unwrap().contains(location) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    }
    serve(axum::Router::new().fallback(answer).with_state(failing)).await
}

/// The webhook sink: every delivery's body, in order.
async fn sink(got: Arc<Mutex<Vec<serde_json::Value>>>) -> u16 {
    async fn take(State(g): State<Arc<Mutex<Vec<serde_json::Value>>>>, body: String) -> StatusCode {
        g.lock()
            .unwrap()
            .push(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)));
        StatusCode::OK
    }
    serve(axum::Router::new().fallback(take).with_state(got)).await
}

/// Deliveries of the majority rule for `target` in `status`.
fn pages(got: &Mutex<Vec<serde_json::Value>>, target: &str, status: &str) -> usize {
    got.lock()
        .unwrap()
        .iter()
        .filter(|b| {
            let a = &b["notification"]["alerts"][0];
            a["name"] == MAJORITY && a["labels"]["target"] == target && b["status"] == status
        })
        .count()
}

/// Waits until `pages` is `n` (panics after `within`), then checks it stays
/// `n` for `hold`.
async fn exactly(got: &Mutex<Vec<serde_json::Value>>, status: &str, n: usize, within: Duration, hold: Duration) {
    let deadline = Instant::now() + within;
    while pages(got, "flaky", status) < n {
        assert!(
            Instant::now() < deadline,
            "{n} {status} page(s) expected within {within:?}; the sink got {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(hold).await;
    assert_eq!(
        pages(got, "flaky", status),
        n,
        "exactly {n} {status} page(s); the sink got {:?}",
        got.lock().unwrap()
    );
}

fn set(failing: &Mutex<HashSet<String>>, locations: &[&str]) {
    *failing.lock().unwrap() = locations.iter().map(|l| (*l).to_owned()).collect();
}

/// The firing majority alert of `flaky` as this instance's gateway lists it.
async fn listed(i: &Instance, p: &mut Pantau) -> serde_json::Value {
    let url = format!(
        "http://127.0.0.1:{}/api/v1/monitoring/alerts?rule_id=endpoint-down-majority",
        i.gateway
    );
    wait_json(
        &url,
        Duration::from_secs(20),
        |v| {
            v["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["state"] == "firing" && a["labels"]["target"] == "flaky")
            })
        },
        p,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_page_per_fault_quorum_through_failover_and_stale_locations() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let failing = Arc::new(Mutex::new(HashSet::new()));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (target, hook) = (flaky_target(Arc::clone(&failing)).await, sink(Arc::clone(&got)).await);
    let hook = format!("http://127.0.0.1:{hook}/hook");
    let order = "jkt-1,bdg-1,sby-1";
    let targets = format!(
        "  targets:\n    - id: flaky\n      type: http\n      url: http://127.0.0.1:{target}/flaky\n      timeout: 500ms\n"
    );
    let jkt = Instance::new(root.path(), "jkt-1", "jkt", &nats.url(), None, order, &targets).with_webhook(&hook);
    let dependent = |name, location| {
        Instance::new(
            root.path(),
            name,
            location,
            &nats.url(),
            Some(&jkt.sync_url()),
            order,
            "",
        )
        .with_webhook(&hook)
    };
    let (bdg, sby) = (dependent("bdg-1", "bdg"), dependent("sby-1", "sby"));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe("pantau.consensus.>").await.unwrap();

    let mut pp = jkt.start();
    wait_json(
        &jkt.status_url(),
        Duration::from_secs(20),
        |v| v["role"] == "primary",
        &mut pp,
    )
    .await;
    // A second target through REST with `quorum: 3`, the majority being 2:
    // after failover its PARTIAL (not DOWN) shows the quorum survived.
    let r = http()
        .post(format!("http://127.0.0.1:{}/api/v1/targets", jkt.gateway))
        .json(&serde_json::json!({
            "id": "all-three", "type": "http", "url": format!("http://127.0.0.1:{target}/all"),
            "timeout": "500ms", "quorum": 3
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (mut pa, mut pb_) = (bdg.start(), sby.start());
    for (i, proc_) in [(&bdg, &mut pa), (&sby, &mut pb_)] {
        let url = format!("http://127.0.0.1:{}/api/v1/targets", i.gateway);
        let v = wait_json(
            &url,
            Duration::from_secs(30),
            |v| v.to_string().contains("all-three"),
            proc_,
        )
        .await;
        let synced = v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "all-three")
            .unwrap();
        assert_eq!(synced["quorum"], 3, "the quorum travels with the target: {synced}");
    }

    // All up: UP from three locations.
    let c = consensus(&mut sub, "flaky", Duration::from_secs(30), |c| {
        c.locations_reporting == 3 && c.status == pb::ConsensusStatus::Up as i32
    })
    .await;
    assert_eq!((c.locations_total, c.locations_stale), (3, 0));

    // One location failing: PARTIAL, and nobody is paged.
    set(&failing, &["bdg"]);
    let c = consensus(&mut sub, "flaky", Duration::from_secs(20), |c| {
        c.locations_reporting == 3 && c.down_locations == ["bdg"]
    })
    .await;
    assert_eq!(c.status, pb::ConsensusStatus::Partial as i32, "{c:?}");
    exactly(&got, "firing", 0, Duration::ZERO, Duration::from_secs(5)).await;

    // Two failing: DOWN, one page across the cluster, listed everywhere.
    set(&failing, &["bdg", "sby"]);
    let c = consensus(&mut sub, "flaky", Duration::from_secs(20), |c| {
        c.locations_reporting == 3 && c.down_locations == ["bdg", "sby"]
    })
    .await;
    assert_eq!(c.status, pb::ConsensusStatus::Down as i32, "{c:?}");
    let c3 = consensus(&mut sub, "all-three", Duration::from_secs(20), |c| {
        c.locations_reporting == 3 && c.down_locations == ["bdg", "sby"]
    })
    .await;
    assert_eq!(
        (c3.status, c3.quorum),
        (pb::ConsensusStatus::Partial as i32, 3),
        "{c3:?}"
    );
    exactly(&got, "firing", 1, Duration::from_secs(20), Duration::from_secs(6)).await;
    let on_primary = listed(&jkt, &mut pp).await;
    for (i, proc_) in [(&bdg, &mut pa), (&sby, &mut pb_)] {
        let there = listed(i, proc_).await;
        let id = |v: &serde_json::Value| {
            v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["state"] == "firing")
                .unwrap()["id"]
                .clone()
        };
        assert_eq!(id(&there), id(&on_primary), "the same alert on {}", i.name);
    }
    // A dependent's engine keeps copies: changes are made on the primary.
    let alert_id = on_primary["alerts"][0]["id"].as_str().unwrap().to_owned();
    let r = http()
        .post(format!(
            "http://127.0.0.1:{}/api/v1/monitoring/alerts/{alert_id}/acknowledge",
            bdg.gateway
        ))
        .json(&serde_json::json!({"comment": "from a dependent"}))
        .send()
        .await
        .unwrap();
    let (code, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(code, StatusCode::CONFLICT.as_u16(), "{text}");
    assert!(text.contains("jkt-1"), "names the primary: {text}");
    // Its incidents too: the primary's incident holding the alert, with the
    // page's delivery on its timeline, is listed and shown by each dependent.
    let open = wait_json(
        &format!("http://127.0.0.1:{}/api/v1/incidents?state=open", jkt.gateway),
        Duration::from_secs(20),
        |v| v["incidents"].as_array().is_some_and(|a| !a.is_empty()),
        &mut pp,
    )
    .await;
    // (A default rule may have opened another: the one holding the alert.)
    let mut incident = String::new();
    for i in open["incidents"].as_array().unwrap() {
        let id = i["id"].as_str().unwrap();
        let one: serde_json::Value = http()
            .get(format!("http://127.0.0.1:{}/api/v1/incidents/{id}", jkt.gateway))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if one["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|a| a["id"] == alert_id.as_str()))
        {
            id.clone_into(&mut incident);
        }
    }
    assert!(!incident.is_empty(), "an incident holds {alert_id}: {open}");
    for (i, proc_) in [(&bdg, &mut pa), (&sby, &mut pb_)] {
        wait_json(
            &format!("http://127.0.0.1:{}/api/v1/incidents/{incident}", i.gateway),
            Duration::from_secs(20),
            |v| {
                v["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|a| a["id"] == alert_id.as_str()))
                    && v["timeline"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|e| e["kind"] == "delivered"))
            },
            proc_,
        )
        .await;
        let r = http()
            .post(format!(
                "http://127.0.0.1:{}/api/v1/incidents/{incident}/comments",
                i.gateway
            ))
            .json(&serde_json::json!({"text": "from a dependent"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), StatusCode::CONFLICT.as_u16(), "{}", i.name);
    }

    // SIGKILL the primary during the fault: bdg-1 takes over with the
    // target's quorum and the DOWN; no resolve, no second page.
    drop(pp);
    let promoted = wait_json(
        &bdg.status_url(),
        Duration::from_secs(20),
        |v| v["role"] == "primary",
        &mut pa,
    )
    .await;
    let epoch2 = promoted["epoch"].as_u64().unwrap();
    let c = consensus(&mut sub, "flaky", Duration::from_secs(30), |c| c.epoch == epoch2).await;
    assert_eq!(c.status, pb::ConsensusStatus::Down as i32, "{c:?}");
    assert_eq!(c.instance, "bdg-1");
    let c3 = consensus(&mut sub, "all-three", Duration::from_secs(30), |c| c.epoch == epoch2).await;
    assert_eq!(
        (c3.status, c3.quorum),
        (pb::ConsensusStatus::Partial as i32, 3),
        "{c3:?}"
    );
    exactly(&got, "firing", 1, Duration::ZERO, Duration::from_secs(8)).await;
    exactly(&got, "resolved", 0, Duration::ZERO, Duration::ZERO).await;

    // SIGKILL a dependent during the fault: its location is stale, its
    // last result counts, the DOWN stays.
    drop(pb_);
    let c = consensus(&mut sub, "flaky", Duration::from_secs(30), |c| {
        c.epoch == epoch2 && c.stale_locations.contains(&"sby".to_owned())
    })
    .await;
    assert_eq!(c.status, pb::ConsensusStatus::Down as i32, "{c:?}");
    // The new primary knows the locations that reported to it (bdg, sby);
    // the old primary's history stayed in its own store.
    assert_eq!((c.locations_total, c.locations_reporting), (2, 1), "{c:?}");
    let metrics = http()
        .get(format!("http://127.0.0.1:{}/metrics", bdg.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("pantau_sync_location_stale")
            && l.contains("target_id=\"flaky\"")
            && l.contains("location=\"sby\"")
            && l.ends_with(" 1")),
        "{metrics}"
    );
    exactly(&got, "resolved", 0, Duration::ZERO, Duration::from_secs(5)).await;

    // The instances tell the truth: the primary's own row is active and
    // healthy, the killed dependent is not healthy once it has failed.
    let url = format!("http://127.0.0.1:{}/sync/api/instances", bdg.gateway);
    let v = wait_json(
        &url,
        Duration::from_secs(30),
        |v| {
            v["instances"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|i| i["id"] == "sby-1" && i["state"] == "failed" && i["health"] != "healthy")
            })
        },
        &mut pa,
    )
    .await;
    let own = |v: &serde_json::Value| {
        v["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "bdg-1")
            .unwrap()
            .clone()
    };
    let first = own(&v);
    assert_eq!(first["state"], "active", "{first}");
    assert!(
        first["health"] == "healthy" || first["health"] == "degraded",
        "the primary's own health is known: {first}"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let later = own(&wait_json(&url, Duration::from_secs(5), |_| true, &mut pa).await);
    assert_ne!(
        later["last_heartbeat"], first["last_heartbeat"],
        "the primary's own row heartbeats"
    );

    // Recovery: bdg up again; sby's last result (down) still counts, so the
    // target is PARTIAL, no longer DOWN: exactly one resolve.
    set(&failing, &[]);
    // (bdg's circuit breaker may hold the target down for its
    // `recovery_timeout`, 60 s.)
    let c = consensus(&mut sub, "flaky", Duration::from_secs(90), |c| {
        c.epoch == epoch2 && c.locations_reporting == 1 && c.down_locations == ["sby"]
    })
    .await;
    assert_eq!(c.status, pb::ConsensusStatus::Partial as i32, "{c:?}");
    exactly(&got, "resolved", 1, Duration::from_secs(20), Duration::from_secs(5)).await;
    exactly(&got, "firing", 1, Duration::ZERO, Duration::ZERO).await;
    assert!(status(&bdg).await.is_some());
    pa.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_quorum_is_refused_naming_the_field_through_rest_and_grpc() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let p = Instance::new(root.path(), "jkt-1", "jkt", &nats.url(), None, "jkt-1", "");
    // gRPC callers present tokens signed with the tests' shared secret.
    let yaml = std::fs::read_to_string(&p.cfg).unwrap();
    let yaml = yaml.replace(
        "  auth:\n    enabled: false\n",
        &format!("  auth:\n    enabled: false\n    jwt_secret: {JWT_SECRET}\n"),
    );
    std::fs::write(&p.cfg, yaml).unwrap();
    let mut pp = p.start();
    wait_json(
        &p.status_url(),
        Duration::from_secs(20),
        |v| v["role"] == "primary",
        &mut pp,
    )
    .await;
    let url = format!("http://127.0.0.1:{}/api/v1/targets", p.gateway);
    let huge = "9".repeat(5_000);
    for (quorum, why) in [
        ("0", "at least 1"),
        ("65", "at most 64"),
        ("-1", ""),
        ("4294967296", ""),
        (huge.as_str(), ""),
        ("\"two\"", ""),
        ("2.5", ""),
        ("null, \"quorum\": 2", ""),
    ] {
        let body = format!(r#"{{"id": "q", "type": "tcp", "address": "127.0.0.1:1", "quorum": {quorum}}}"#);
        let r = http()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (code, text) = (r.status(), r.text().await.unwrap());
        assert_eq!(code, StatusCode::BAD_REQUEST.as_u16(), "quorum {quorum:.20}: {text}");
        assert!(text.contains("quorum"), "names the field: {text:.300}");
        assert!(text.contains(why), "says why ({why}): {text:.300}");
        assert!(
            text.len() < 2_000,
            "quotes at most a little input: {} bytes",
            text.len()
        );
    }
    let mut c = CollectorServiceClient::new(grpc(p.collector));
    for (quorum, why) in [(0, "at least 1"), (65, "at most 64"), (u32::MAX, "at most 64")] {
        let target = pb::Target {
            id: "q".into(),
            quorum: Some(quorum),
            spec: Some(pb::target::Spec::Tcp(pb::TcpSpec {
                address: "127.0.0.1:1".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let e = c
            .upsert_target(pb::UpsertTargetRequest { target: Some(target) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(
            e.message().contains("target.quorum") && e.message().contains(why),
            "{}",
            e.message()
        );
    }
    // A good one is kept and listed with its quorum.
    let r = http()
        .post(&url)
        .json(&serde_json::json!({"id": "q", "type": "tcp", "address": "127.0.0.1:1", "quorum": 2}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let listed = c.list_targets(pb::ListTargetsRequest {}).await.unwrap().into_inner();
    let q = listed.targets.iter().find(|t| t.id == "q").unwrap();
    assert_eq!(q.quorum, Some(2));
    pp.assert_running();
}
