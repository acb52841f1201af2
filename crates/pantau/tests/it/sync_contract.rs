//! The original distributed-monitoring contract at a real primary with a
//! real dependent (two `pantau all` processes on one nats-server): the
//! documented routes and names beside Pantau's own — `PUT` heartbeats,
//! camelCase bodies, `GET /sync/api/endpoints[/{id}]` with each target's
//! whole configuration, `GET /sync/api/notification-services`, the failover
//! order an instance gives when it registers, and the dependent's results
//! and history visible at the primary with `?location=`; the channels'
//! secrets go to instances only and into no log.

use std::time::Duration;

use pantau_testkit::{Nats, free_port};
use tokio::time::Instant;

use crate::cluster::{Instance, listening_port, targets};
use crate::support::{http, wait_json};

const JOIN: &str = "join-token-for-the-tests";
/// Secrets of the primary's channels: given to instances, never logged.
const SLACK_URL: &str = "https://hooks.slack.com/services/T0PANTAU/B0PANTAU/slack-secret-4f9d2c";
const ROUTING_KEY: &str = "pagerduty-routing-key-7a1e55";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::many_single_char_names)] // p and a: the primary and the dependent, as in sync.rs
async fn the_documented_sync_routes_and_names_at_a_primary() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let order = "jkt-1,bdg-1";
    let p = Instance::new(
        root.path(),
        "jkt-1",
        "jkt",
        &nats.url(),
        None,
        order,
        &targets(listening_port(), free_port()),
    )
    .with_notifier(&format!(
        "  channels:
    - {{ name: ops-slack, type: slack, url: \"{SLACK_URL}\", rate_limit: 5 }}
    - {{ name: oncall, type: pagerduty, routing_key: \"{ROUTING_KEY}\" }}
    - {{ name: mail, type: email, to: [ops@example.org], smtp: {{ host: 127.0.0.1, port: 2525, tls: none, from: p@example.org }} }}"
    ));
    let a = Instance::new(root.path(), "bdg-1", "bdg", &nats.url(), Some(&p.sync_url()), order, "");
    let mut pp = p.start();
    wait_json(
        &p.status_url(),
        Duration::from_secs(20),
        |v| v["role"] == "primary",
        &mut pp,
    )
    .await;
    let mut pa = a.start();
    wait_json(
        &a.status_url(),
        Duration::from_secs(20),
        |v| v["primary_reachable"] == true,
        &mut pa,
    )
    .await;
    let api = |path: &str| format!("http://127.0.0.1:{}/sync/api/{path}", p.gateway);
    let c = http();

    // Registration in the document's camelCase, with a failover position.
    let body = serde_json::json!({
        "instanceId": "zz-1", "location": "zz", "failoverOrder": 7,
        "publicEndpoint": "http://127.0.0.1:1", "cpuCount": 2, "memoryBytes": 1024
    });
    let r = c
        .post(api("register"))
        .bearer_auth(JOIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let token = r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // An unknown camelCase name is still refused by name.
    let bad = serde_json::json!({"instanceId": "zz-2", "location": "zz", "failOverOrder": 1});
    let r = c
        .post(api("register"))
        .bearer_auth(JOIN)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("failOverOrder"));

    // The heartbeat by PUT (the document's method), camelCase; POST still works.
    let beat =
        serde_json::json!({"instanceId": "zz-1", "status": "healthy", "uptimeSeconds": 3.5, "activeEndpoints": 2});
    for put in [true, false] {
        let req = if put {
            c.put(api("heartbeat"))
        } else {
            c.post(api("heartbeat"))
        };
        let r = req.bearer_auth(&token).json(&beat).send().await.unwrap();
        assert_eq!(r.status(), 200, "put={put}: {}", r.text().await.unwrap());
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["primary_id"], "jkt-1");
    }
    let r = c
        .put(api("heartbeat"))
        .bearer_auth("not-a-token")
        .json(&beat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The failover order names the registered instance at the position it gave.
    let order = c
        .get(api("failover-order"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let ids: Vec<_> = order["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["position"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [("jkt-1".to_owned(), 0), ("bdg-1".to_owned(), 1), ("zz-1".to_owned(), 7)],
        "{order}"
    );

    // Endpoints, whole: the URL and the address are there.
    let get = |path: String, bearer: Option<&str>| {
        let mut r = c.get(api(&path));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    let r = get("endpoints?instanceId=zz-1".into(), Some(&token)).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let endpoints = v["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{v}");
    let up = endpoints.iter().find(|e| e["id"] == "web-up").unwrap();
    assert!(up.to_string().contains("127.0.0.1"), "the address is given: {up}");
    assert!(!v["hash"].as_str().unwrap().is_empty());
    let r = get("endpoints/web-up?instance_id=zz-1".into(), Some(&token))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["id"], "web-up");
    // Refusals: no such endpoint, no token, another instance's id, a bad id.
    let r = get("endpoints/nope?instance_id=zz-1".into(), Some(&token))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = get("endpoints?instance_id=zz-1".into(), None).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = get("endpoints?instance_id=bdg-1".into(), Some(&token)).await.unwrap();
    assert_eq!(r.status(), 401, "zz-1's token is not bdg-1's");
    let r = get("endpoints".into(), Some(&token)).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("instance_id"));
    let long = "x".repeat(5000);
    let r = get(format!("endpoints/{long}?instance_id=zz-1"), Some(&token))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Notification services and the shared settings.
    let r = get("notification-services?instanceId=zz-1".into(), Some(&token))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["settings"]["check_interval_seconds"].as_f64() > Some(0.0), "{v}");
    assert!(v["settings"]["heartbeat_interval_seconds"].as_f64() > Some(0.0), "{v}");
    // Each channel whole, secrets in clear for the instance.
    let service = |id: &str| {
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no service {id}: {v}"))
            .clone()
    };
    let slack = service("ops-slack");
    assert_eq!(slack["kind"], "slack");
    assert_eq!(slack["settings"]["url"], SLACK_URL, "{slack}");
    assert_eq!(slack["settings"]["rate_limit"], 5, "{slack}");
    assert_eq!(slack["secret_fields"], serde_json::json!(["url"]));
    let pd = service("oncall");
    assert_eq!(pd["kind"], "pagerduty");
    assert_eq!(pd["settings"]["routing_key"], ROUTING_KEY, "{pd}");
    assert_eq!(pd["secret_fields"], serde_json::json!(["routing_key"]));
    let mail = service("mail");
    assert_eq!(mail["settings"]["to"], serde_json::json!(["ops@example.org"]));
    assert_eq!(mail["settings"]["smtp"]["port"], 2525, "{mail}");
    assert_eq!(mail["secret_fields"], serde_json::json!([]));
    // Anyone else is refused: no token, a wrong one, the join token, another
    // instance's id with zz-1's token.
    for (query, bearer) in [
        ("instance_id=zz-1", None),
        ("instance_id=zz-1", Some("not-a-token")),
        ("instance_id=zz-1", Some(JOIN)),
        ("instance_id=bdg-1", Some(token.as_str())),
    ] {
        let r = get(format!("notification-services?{query}"), bearer).await.unwrap();
        assert_eq!(r.status(), 401, "{query} {bearer:?}");
        let text = r.text().await.unwrap();
        assert!(!text.contains(ROUTING_KEY) && !text.contains("slack-secret"), "{text}");
    }
    // The masked views of the same channels keep hiding them.
    let channels = c
        .get(format!("http://127.0.0.1:{}/api/v1/channels", p.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(channels.contains("ops-slack"), "{channels}");
    assert!(
        !channels.contains(ROUTING_KEY) && !channels.contains("slack-secret"),
        "{channels}"
    );

    // The dependent's results, at the primary, by location.
    let latest = |loc: &str| format!("http://127.0.0.1:{}/api/v1/results/latest?location={loc}", p.gateway);
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let v: serde_json::Value = c.get(latest("bdg")).send().await.unwrap().json().await.unwrap();
        if v["results"].as_array().is_some_and(|r| r.len() == 2) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "bdg's results never showed at the primary: {v}"
        );
        pa.assert_running();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["location"], "bdg", "{r}");
    }
    let by_status = |loc: &str, st: &str| format!("{}&status={st}", latest(loc));
    let v: serde_json::Value = c
        .get(by_status("bdg", "down"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let down: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target_id"].clone())
        .collect();
    assert_eq!(down, ["web-down"]);
    // An unknown location has none; a bad one is refused by name.
    let v: serde_json::Value = c.get(latest("nowhere")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 0);
    let r = c.get(latest("bad%20loc")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("location"));
    // The primary's own location still answers from its live feed.
    let v: serde_json::Value = c.get(latest("jkt")).send().await.unwrap().json().await.unwrap();
    assert!(!v["results"].as_array().unwrap().is_empty());

    // The dependent's history, at the primary, by location.
    let history =
        |target: &str, query: &str| format!("http://127.0.0.1:{}/api/v1/targets/{target}/history?{query}", p.gateway);
    let deadline = Instant::now() + Duration::from_secs(30);
    let up = loop {
        let v: serde_json::Value = c
            .get(history("web-up", "location=bdg&period=1h"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["checks"].as_u64() >= Some(2) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "bdg's history never showed at the primary: {v}"
        );
        pa.assert_running();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(up["target_id"], "web-up");
    assert_eq!(up["resolution"], "minute");
    assert_eq!(up["up"], up["checks"], "web-up is up from bdg: {up}");
    let point = &up["points"][0];
    assert!(
        point["checks"].as_u64() > Some(0) && point["latency_max_ms"].as_f64() >= Some(0.0),
        "{up}"
    );
    let down: serde_json::Value = c
        .get(history("web-down", "location=bdg&resolution=hour"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(down["resolution"], "hour");
    assert!(down["checks"].as_u64() > Some(0), "{down}");
    assert_eq!(down["up"], 0, "web-down is down from bdg: {down}");
    // The primary's own location answers from its collector; an unknown
    // location has no checks; a bad one is refused by name.
    let own: serde_json::Value = c
        .get(history("web-up", "location=jkt"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(own["checks"].as_u64() > Some(0), "{own}");
    let none: serde_json::Value = c
        .get(history("web-up", "location=nowhere"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["checks"], 0, "{none}");
    for bad in ["bad%20loc", &"x".repeat(200), "", "%00"] {
        let r = c
            .get(history("web-up", &format!("location={bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "location={bad}");
        assert!(r.text().await.unwrap().contains("location"), "location={bad}");
    }
    let r = c
        .get(history("web-up", "location=bdg&resolution=week"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("resolution"));

    pp.assert_running();
    pa.assert_running();
    // No log of either process holds a channel secret.
    for (who, log) in [("primary", pp.log()), ("dependent", pa.log())] {
        assert!(
            !log.contains(ROUTING_KEY) && !log.contains("slack-secret"),
            "the {who}'s log holds a channel secret"
        );
    }
}
