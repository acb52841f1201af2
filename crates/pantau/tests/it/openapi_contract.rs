//! The OpenAPI document is the truth: a real `pantau all`'s answers, for a
//! sample of routes (lists, single resources, errors of every kind), each
//! validate against the schema the document gives for that route, method and
//! status. A status the document does not list fails too. The validation is
//! `openapi-schema-validator`'s OpenAPI 3.1 validator, in .venv-deploy.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Pantau, Ports, both_up, config_yaml, http, wait_json};

/// Validates every case against `doc`; prints one line per problem.
const VALIDATE: &str = r#"
import json, sys
from openapi_schema_validator import OAS31Validator
given = json.load(sys.stdin)
doc = given["doc"]
problems = []
for c in given["cases"]:
    where = f'{c["method"].upper()} {c["url"]} -> {c["status"]}'
    op = doc["paths"].get(c["path"], {}).get(c["method"])
    if op is None:
        problems.append(f"{where}: the route is not documented"); continue
    answer = op["responses"].get(str(c["status"]))
    if answer is None:
        problems.append(f"{where}: status not documented (documented: {', '.join(op['responses'])})"); continue
    content = answer.get("content", {}).get("application/json")
    if content is None:
        if c["body"] is not None:
            problems.append(f"{where}: a body where none is documented")
        continue
    schema = dict(content["schema"], components=doc["components"])
    for e in OAS31Validator(schema).iter_errors(c["body"]):
        problems.append(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
print("\n".join(problems))
"#;

struct Case {
    method: Method,
    /// The documented path template.
    path: &'static str,
    /// The request's path and query.
    url: String,
    body: Option<Value>,
    /// Without the admin token.
    anonymous: bool,
}

fn case(method: Method, path: &'static str, url: impl Into<String>) -> Case {
    Case {
        method,
        path,
        url: url.into(),
        body: None,
        anonymous: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_validate_against_the_openapi_document() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-deploy/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make deps-deploy` (PyPI package openapi-spec-validator)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let config = config_yaml(ports, &dir.path().join("data"), None);
    let mut p = Pantau::start(dir.path(), &config, &["all"]);
    let base = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{base}/api/v1/results/latest"),
        Duration::from_secs(20),
        both_up,
        &mut p,
    )
    .await;
    let client = http();
    let anonymous = reqwest::Client::new();
    let doc: Value = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    use Method as M;
    let mut cases = vec![
        case(M::GET, "/health", "/health"),
        case(M::GET, "/api/v1/health", "/api/v1/health"),
        case(M::GET, "/api/v1/results/latest", "/api/v1/results/latest"),
        case(
            M::GET,
            "/api/v1/results/latest",
            "/api/v1/results/latest?status=sideways",
        ),
        case(M::GET, "/api/v1/targets", "/api/v1/targets"),
        case(M::GET, "/api/v1/targets/{id}", "/api/v1/targets/gateway-healthz"),
        case(M::GET, "/api/v1/targets/{id}", "/api/v1/targets/nope"),
        case(M::GET, "/api/v1/targets/{id}", "/api/v1/targets/a.b"),
        case(
            M::POST,
            "/api/v1/targets/{id}/check",
            "/api/v1/targets/collector-grpc/check",
        ),
        case(
            M::GET,
            "/api/v1/targets/{id}/history",
            "/api/v1/targets/gateway-healthz/history?period=1h",
        ),
        case(
            M::GET,
            "/api/v1/monitoring/alerts",
            "/api/v1/monitoring/alerts?state=firing,resolved&limit=5",
        ),
        case(M::GET, "/api/v1/monitoring/alerts", "/api/v1/monitoring/alerts?limit=0"),
        case(
            M::GET,
            "/api/v1/monitoring/alerts/{id}",
            "/api/v1/monitoring/alerts/nope",
        ),
        case(
            M::GET,
            "/api/v1/monitoring/alerts/rules",
            "/api/v1/monitoring/alerts/rules",
        ),
        case(M::GET, "/api/v1/monitoring/silences", "/api/v1/monitoring/silences"),
        case(M::GET, "/api/v1/monitoring/metrics", "/api/v1/monitoring/metrics"),
        case(
            M::GET,
            "/api/v1/monitoring/performance",
            "/api/v1/monitoring/performance?period=1h&metric=uptime",
        ),
        case(M::GET, "/api/v1/channels", "/api/v1/channels"),
        case(M::GET, "/api/v1/channel-types", "/api/v1/channel-types"),
        case(M::GET, "/api/v1/deliveries", "/api/v1/deliveries?limit=1000"),
        case(M::GET, "/api/v1/routers", "/api/v1/routers"),
        case(M::GET, "/api/v1/routers/{id}/wan", "/api/v1/routers/ghost/wan"),
        case(M::GET, "/api/v1/users", "/api/v1/users"),
        case(M::GET, "/api/v1/audit", "/api/v1/audit?limit=5"),
        case(M::GET, "/api/v1/auth/keys", "/api/v1/auth/keys"),
        case(M::GET, "/api/v1/auth/whoami", "/api/v1/auth/whoami"),
        case(M::GET, "/api/v1/push/{token}", "/api/v1/push/no-such-token?status=up"),
        case(M::GET, "/api/v1/monitoring/events", "/api/v1/monitoring/events"),
        case(M::GET, "/sync/api/status", "/sync/api/status"),
        case(M::GET, "/sync/api/instances", "/sync/api/instances"),
        Case {
            anonymous: true,
            ..case(M::DELETE, "/api/v1/auth/keys/{id}", "/api/v1/auth/keys/k1")
        },
        Case {
            body: Some(json!({"metric_name": "queue_depth", "value": 3, "labels": {"queue": "mail"}})),
            ..case(M::POST, "/api/v1/monitoring/metrics", "/api/v1/monitoring/metrics")
        },
        Case {
            body: Some(json!({"name": "ci", "scopes": ["monitoring:read"], "ttl": "1d"})),
            ..case(M::POST, "/api/v1/auth/keys", "/api/v1/auth/keys")
        },
        Case {
            body: Some(json!({"name": "ci", "scopes": []})),
            ..case(M::POST, "/api/v1/auth/keys", "/api/v1/auth/keys")
        },
    ];
    let mut checked = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for c in cases.drain(..) {
        let who = if c.anonymous { &anonymous } else { &client };
        let mut req = who.request(c.method.clone(), format!("{base}{}", c.url));
        if let Some(b) = &c.body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} {}: not JSON ({e}): {text}", c.method, c.url))
        };
        seen.insert(status);
        checked.push(json!({
            "method": c.method.as_str().to_ascii_lowercase(),
            "path": c.path,
            "url": c.url,
            "status": status,
            "body": body,
        }));
    }
    // The sample covers answers and errors of each kind.
    for s in [200, 201, 202, 400, 401, 404, 409, 426] {
        assert!(seen.contains(&s), "no case answered {s}: {seen:?}");
    }
    let input = serde_json::to_vec(&json!({"doc": doc, "cases": checked})).unwrap();
    let mut child = std::process::Command::new(&python)
        .args(["-c", VALIDATE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let problems = String::from_utf8_lossy(&out.stdout);
    assert!(
        problems.trim().is_empty(),
        "answers that the OpenAPI document does not describe:\n{problems}"
    );
    p.assert_running();
}
