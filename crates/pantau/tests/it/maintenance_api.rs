//! Issue 18, maintenance windows through the API, as users run it: under
//! `pantau all`, a window created over REST pauses its target's checks (no
//! new results), survives a restart of the process (the restarted
//! collector learns it again from the alert engine over the bus), mutes the
//! target's alert once replaced by a `checks: continue` window, and its
//! deletion pages the alert still open. The configured window is listed
//! read-only; hostile bodies are 400s naming the field; the escalation
//! policies are listed.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::{Pantau, Ports, Sink, config_yaml, http, wait_json};

const WAIT: Duration = Duration::from_secs(60);

fn svc_result(v: &Value) -> Option<&Value> {
    v["results"].as_array()?.iter().find(|r| r["target_id"] == "svc")
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// When `svc` was last checked, if it was (the gateway must answer).
async fn latest_svc(gw: &str) -> Option<String> {
    let r = http()
        .get(format!("{gw}/api/v1/results/latest"))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("JSON");
    svc_result(&v).and_then(|r| r["checked_at"].as_str().map(str::to_owned))
}

/// Whether `svc` has no result newer than `since` for `span`.
async fn no_new_result(gw: &str, since: Option<&str>, span: Duration) -> Result<(), String> {
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        let now = latest_svc(gw).await;
        if now.as_deref() > since {
            return Err(format!("a new result at {now:?} (after {since:?})"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_window_pauses_mutes_survives_a_restart_and_its_deletion_pages() {
    let (hook, hook_addr) = Sink::start().await;
    let svc = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let svc_port = svc.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::free();
    let base = config_yaml(ports, &dir.path().join("data"), None);
    let yaml = base
        .replace(
            "  targets:\n",
            &format!("  targets:\n    - id: svc\n      type: tcp\n      address: 127.0.0.1:{svc_port}\n"),
        )
        .replace(
            "alert_engine:\n",
            "alert_engine:\n  default_rules: false\n  rules:\n    - id: svc-down\n      expr: 'check_up{target=\"svc\"} == 0'\n      severity: critical\n",
        )
        .replace(
            "notifier:\n",
            &format!(
                "notifier:\n  poll_interval: 100ms\n  channels:\n    - {{ name: hook, type: webhook, url: 'http://127.0.0.1:{}/hook' }}\n  routes:\n    - {{ channels: [hook], escalation: page }}\n  escalations:\n    - {{ name: page, repeat_every: 1h, steps: [{{ after: 30m, channels: [hook] }}], remind_every: 4h }}\n",
                hook_addr.port()
            ),
        )
        + "maintenance:\n  - { id: cfg-win, start: '2099-01-01T00:00:00Z', end: '2099-01-01T01:00:00Z', targets: [collector-grpc] }\n";
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(&cfg, &yaml).unwrap();
    let mut p = Pantau::start_with_env(dir.path(), &cfg, &["all"], &ports.other_services_env());
    let gw = format!("http://127.0.0.1:{}", ports.gateway);
    wait_json(
        &format!("{gw}/api/v1/results/latest"),
        WAIT,
        |v| svc_result(v).is_some_and(|r| r["status"] == "up"),
        &mut p,
    )
    .await;

    // Created over REST: listed beside the configured one, and it pauses `svc`.
    let now = SystemTime::now();
    let window = json!({
        "id": "swap", "name": "switch swap", "targets": ["svc"], "checks": "pause",
        "start": time(now - Duration::from_secs(60)), "end": time(now + Duration::from_secs(3600)),
    });
    let r = http()
        .post(format!("{gw}/api/v1/maintenance"))
        .json(&window)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let made: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["source"].as_str(), made["active"].as_bool()),
        (Some("api"), Some(true)),
        "{made}"
    );
    assert_eq!(made["created_by"], "e2e", "the token's subject: {made}");
    let r = http()
        .post(format!("{gw}/api/v1/maintenance"))
        .json(&window)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "the id is taken");
    let list: Value = http()
        .get(format!("{gw}/api/v1/maintenance"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sources: Vec<(&str, &str)> = list["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["id"].as_str().unwrap(), w["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("cfg-win", "config"), ("swap", "api")], "{list}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paused_at = latest_svc(&gw).await;
    no_new_result(&gw, paused_at.as_deref(), Duration::from_secs(4))
        .await
        .expect("no check of `svc` while the window holds");

    // Read-only configured window; hostile bodies named.
    let r = http()
        .put(format!("{gw}/api/v1/maintenance/cfg-win"))
        .json(&json!({"cron": "0 2 * * *", "duration": "1h", "targets": ["x"]}))
        .send()
        .await
        .unwrap();
    let (code, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("cfg-win") && text.contains("configuration"), "{text}");
    let r = http()
        .delete(format!("{gw}/api/v1/maintenance/cfg-win"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    for (body, field) in [
        (
            json!({"id": "b", "start": time(now), "end": time(now - Duration::from_secs(5)), "targets": ["x"]}),
            "`end`",
        ),
        (
            json!({"id": "b", "cron": "0 0 30 2 *", "duration": "1h", "targets": ["x"]}),
            "`cron`",
        ),
        (
            json!({"id": "b", "cron": "0 2 * * *", "duration": "1h", "repeat_every": "7d", "targets": ["x"]}),
            "`repeat_every`",
        ),
        (
            json!({"id": "b", "cron": "0 2 * * *", "duration": "1h", "targets": ["x", "y", "no way"]}),
            "`targets[2]`",
        ),
        (
            json!({"id": "b", "cron": "0 2 * * *", "duration": "1h", "targets": ["x"], "checks": "stop"}),
            "`checks`",
        ),
        (
            json!({"id": "b", "cron": "0 2 * * *", "duration": 5, "targets": ["x"]}),
            "`duration`",
        ),
        (
            json!({"id": "b", "cron": "0 2 * * *", "duration": "1h", "targets": ["x"], "colour": "red"}),
            "colour",
        ),
        (
            json!({"id": "b", "cron": "x".repeat(100_000), "duration": "1h", "targets": ["x"]}),
            "`cron`",
        ),
        (json!([1, 2]), "`body`"),
    ] {
        let r = http()
            .post(format!("{gw}/api/v1/maintenance"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (code, text) = (r.status(), r.text().await.unwrap());
        assert_eq!(code, 400, "{field}: {text}");
        assert!(text.contains(field) && text.len() < 2000, "{field}: {text:.300}");
    }

    // Escalation policies, as the notifier parsed them.
    let esc: Value = http()
        .get(format!("{gw}/api/v1/escalations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        esc,
        json!({"policies": [{"name": "page", "repeat_every": "1h", "steps": [{"after": "30m", "channels": ["hook"]}], "remind_every": "4h", "routes": [0]}]}),
    );

    // A restart keeps the window, and the restarted collector applies it.
    assert!(p.terminate().success(), "{}", p.log());
    let mut p = Pantau::start_with_env(dir.path(), &cfg, &["all"], &ports.other_services_env());
    let kept = wait_json(
        &format!("{gw}/api/v1/maintenance/swap"),
        WAIT,
        |v| v["id"] == "swap",
        &mut p,
    )
    .await;
    assert_eq!(
        (kept["source"].as_str(), kept["name"].as_str()),
        (Some("api"), Some("switch swap"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    no_new_result(&gw, paused_at.as_deref(), Duration::from_secs(4))
        .await
        .expect("still no check of `svc` after the restart");

    // `svc` goes down; replaced by a `continue` window, its checks run and
    // its alert fires muted.
    drop(svc);
    let cont = json!({"name": "switch swap", "targets": ["svc"], "checks": "continue",
        "start": time(now - Duration::from_secs(60)), "end": time(now + Duration::from_secs(3600))});
    let r = http()
        .put(format!("{gw}/api/v1/maintenance/swap"))
        .json(&cont)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let alerts = wait_json(
        &format!("{gw}/api/v1/monitoring/alerts?rule_id=svc-down&state=firing"),
        WAIT,
        |v| v["alerts"].as_array().is_some_and(|a| !a.is_empty()),
        &mut p,
    )
    .await;
    assert_eq!(alerts["alerts"][0]["suppressed_by"], "maintenance:swap", "{alerts}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        hook.all()
            .iter()
            .all(|d| d.body["notification"]["alerts"][0]["labels"]["target"] != "svc"),
        "muted: nobody paged"
    );

    // Deleted: the alert still open pages now.
    let r = http()
        .delete(format!("{gw}/api/v1/maintenance/swap"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    hook.wait(
        WAIT,
        |d| {
            d.body["notification"]["alerts"][0]["labels"]["target"] == "svc"
                && d.body["notification"]["status"] == "firing"
        },
        &mut p,
    )
    .await;
    let r = http()
        .get(format!("{gw}/api/v1/maintenance/swap"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(p.terminate().success(), "{}", p.log());
}
