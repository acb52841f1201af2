//! The protocol probes through the assembled `pantau all`: websocket, mqtt,
//! mail (smtp), udp and http_steps targets created over REST and a redis
//! target over gRPC (`CollectorService/UpsertTarget`), each against a real
//! local server — Debian's mosquitto and redis-server and PyPI's aiosmtpd
//! started by the testkit, `pantau all`'s own WebSocket feed and REST API,
//! a UDP echo socket — and seen `up` in `/api/v1/results/latest`. Then a
//! hostile body per type (a wrong type, an unknown field, a value out of
//! range) is refused with a 400 naming the field.

use std::time::Duration;

use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_proto::v1::{self, UpsertTargetRequest, target::Spec};
use pantau_testkit::{Mosquitto, REDIS_PASSWORD, Redis, Smtp, SmtpTls};
use serde_json::{Value, json};

use crate::support::{Pantau, Ports, both_up, config_yaml, http, token, wait_json};

const SOON: Duration = Duration::from_secs(30);

/// A UDP socket answering every datagram with `echo:` and the datagram.
async fn udp_echo() -> String {
    let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = echo.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = [0_u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&buf[..n]);
            let _ = echo.send_to(&answer, from).await;
        }
    });
    addr
}

async fn post(base: &str, body: &Value) -> (u16, Value) {
    let resp = http()
        .post(format!("{base}/api/v1/targets"))
        .json(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `body` with `key` set to `value`.
fn set(body: &Value, key: &str, value: Value) -> Value {
    let mut b = body.clone();
    b.as_object_mut().unwrap().insert(key.to_owned(), value);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_probe_type_is_up_through_pantau_all_and_hostile_bodies_are_named() {
    let mqtt = Mosquitto::start()
        .await
        .expect("mosquitto starts (apt-get install mosquitto)");
    let smtp = Smtp::start(SmtpTls::None, None)
        .await
        .expect("aiosmtpd starts (make deps-smtp)");
    let redis = Redis::start()
        .await
        .expect("redis-server starts (apt-get install redis-server)");
    let udp = udp_echo().await;

    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, &dir.path().join("data"), None);
    let mut p = Pantau::start(dir.path(), &config, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(&format!("{base}/api/v1/results/latest"), SOON, both_up, &mut p).await;

    let gw = ports.gateway;
    let bodies = [
        json!({
            "id": "e2e-websocket", "type": "websocket", "interval": "1s",
            "url": format!("ws://127.0.0.1:{gw}/api/v1/monitoring/events?token={}", token()),
        }),
        json!({
            "id": "e2e-mqtt", "type": "mqtt", "interval": "1s",
            "address": mqtt.addr().to_string(), "topic": "pantau/e2e",
        }),
        json!({
            "id": "e2e-smtp", "type": "mail", "interval": "1s",
            "protocol": "smtp", "address": smtp.addr().to_string(),
        }),
        json!({
            "id": "e2e-udp", "type": "udp", "interval": "1s",
            "address": udp, "send": "ping", "expect": "echo:ping",
        }),
        json!({
            "id": "e2e-steps", "type": "http_steps", "interval": "1s",
            "steps": [
                {"name": "health", "url": format!("http://127.0.0.1:{gw}/healthz"), "expected_status": [200]},
                {
                    "name": "targets", "url": format!("http://127.0.0.1:{gw}/api/v1/targets"),
                    "headers": {"authorization": format!("Bearer {}", token())},
                    "expected_status": [200],
                    "extract": {"first": {"json": "$.targets[0].id"}},
                },
                {
                    "name": "first", "url": format!("http://127.0.0.1:{gw}/api/v1/targets/{{{{first}}}}"),
                    "headers": {"authorization": format!("Bearer {}", token())},
                    "expected_status": [200],
                },
            ],
        }),
    ];
    for b in &bodies {
        let (code, v) = post(&base, b).await;
        assert_eq!(code, 200, "{b}: {v}");
        assert_eq!(v["source"], "api", "{v}");
    }

    // Redis over gRPC, with its password (which no answer shows).
    let mut grpc = CollectorServiceClient::new(crate::support::grpc(ports.collector_grpc));
    let t = grpc
        .upsert_target(UpsertTargetRequest {
            target: Some(v1::Target {
                id: "e2e-redis".into(),
                interval: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
                spec: Some(Spec::Redis(v1::RedisSpec {
                    address: redis.addr().to_string(),
                    password: REDIS_PASSWORD.into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
        })
        .await
        .expect("the redis target is accepted over gRPC")
        .into_inner();
    let Some(Spec::Redis(r)) = &t.spec else { panic!("{t:?}") };
    assert_eq!(r.password, "***", "the password is masked in the answer");

    let ids = [
        "e2e-websocket",
        "e2e-mqtt",
        "e2e-smtp",
        "e2e-udp",
        "e2e-steps",
        "e2e-redis",
    ];
    let v = wait_json(
        &format!("{base}/api/v1/results/latest"),
        SOON,
        |v| {
            let Some(results) = v["results"].as_array() else {
                return false;
            };
            ids.iter()
                .all(|id| results.iter().any(|r| r["target_id"] == *id && r["status"] == "up"))
        },
        &mut p,
    )
    .await;
    let text = v.to_string();
    assert!(!text.contains(REDIS_PASSWORD), "a result shows the redis password");
    let listed = http()
        .get(format!("{base}/api/v1/targets/e2e-redis"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(REDIS_PASSWORD), "{listed}");

    // Hostile bodies: per type a wrong type, an unknown field and a value out
    // of range, each a 400 whose message names the field.
    let redis_body = json!({
        "id": "e2e-redis-rest", "type": "redis", "address": redis.addr().to_string(), "password": REDIS_PASSWORD,
    });
    let huge = "x".repeat(100_000);
    let hostile: Vec<(Value, &str)> = vec![
        (set(&bodies[0], "url", json!(["ws://x"])), "url"),
        (set(&bodies[0], "ping_interval", json!(1)), "ping_interval"),
        (set(&bodies[0], "url", json!(format!("ws://{huge}"))), "url"),
        (set(&bodies[1], "topic", json!({"a": 1})), "topic"),
        (set(&bodies[1], "qos", json!(2)), "qos"),
        (set(&bodies[1], "address", json!("127.0.0.1:70000")), "address"),
        (set(&bodies[2], "starttls", json!("yes please")), "starttls"),
        (set(&bodies[2], "helo", json!("x")), "helo"),
        (set(&bodies[2], "protocol", json!("gopher")), "protocol"),
        (set(&bodies[3], "expect", json!([1, 2])), "expect"),
        (set(&bodies[3], "reply_port", json!(1)), "reply_port"),
        (set(&bodies[3], "send", json!(huge.clone())), "send"),
        (set(&bodies[4], "steps", json!("all of them")), "steps"),
        (set(&bodies[4], "parallel", json!(true)), "parallel"),
        (
            set(
                &bodies[4],
                "steps",
                json!(vec![json!({"url": format!("http://127.0.0.1:{gw}/healthz")}); 21]),
            ),
            "steps",
        ),
        (set(&redis_body, "query", json!(7.5e300)), "query"),
        (set(&redis_body, "database", json!(3)), "database"),
        (set(&redis_body, "query", json!(huge.clone())), "query"),
    ];
    for (body, field) in hostile {
        let (code, v) = post(&base, &body).await;
        let shown: String = body.to_string().chars().take(160).collect();
        assert_eq!(code, 400, "{shown}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(field), "{shown}: the error does not name `{field}`: {v}");
        assert!(!msg.contains(REDIS_PASSWORD), "{msg}");
        assert!(msg.len() < 2000, "{shown}: an error of {} bytes", msg.len());
    }
    p.assert_running();
}
