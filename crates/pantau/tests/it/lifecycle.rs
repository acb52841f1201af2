//! A lifecycle per service, in the real binary: a critical task that fails
//! stops `pantau all` (or a single service) non-zero, naming the service
//! and the task; a supervised task that fails is started again, counted in
//! `pantau_task_restarts_total`, and the process stays ready. The failures
//! are injected with `TEST_PANTAU_FAIL_TASK` (pantau-core's `test-hooks`
//! feature, on only in test builds).

use std::time::Duration;

use crate::support::{Pantau, Ports, config_yaml, http, metric_value, wait_json};

const HOOK: &str = "TEST_PANTAU_FAIL_TASK";

fn start(dir: &std::path::Path, command: &str, fail: &str) -> (Pantau, Ports) {
    let ports = Ports::free();
    let cfg = dir.join(format!("pantau-{command}.yaml"));
    std::fs::write(&cfg, config_yaml(ports, &dir.join("data"), None)).unwrap();
    let p = Pantau::start_with_env(dir, &cfg, &[command], &[(HOOK, fail.to_owned())]);
    (p, ports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_critical_task_stops_pantau_all_naming_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = start(dir.path(), "all", "alert-engine/consumer");
    let status = p.wait_exit(Duration::from_secs(30));
    let log = p.log();
    assert!(!status.success(), "{status}; log:\n{log}");
    assert!(
        log.contains("alert-engine: task `consumer` failed: failure injected by TEST_PANTAU_FAIL_TASK"),
        "the exit names the service and the task; log:\n{log}"
    );
    assert!(
        log.contains("stopped cleanly"),
        "the other services were drained; log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_service_stops_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = start(dir.path(), "wan-detector", "wan-detector/consumer");
    let status = p.wait_exit(Duration::from_secs(30));
    let log = p.log();
    assert!(!status.success(), "{status}; log:\n{log}");
    assert!(log.contains("wan-detector: task `consumer` failed"), "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_supervised_task_is_restarted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, ports) = start(dir.path(), "all", "alert-engine/sweep");
    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    let report = wait_json(
        &readyz,
        Duration::from_secs(30),
        |v| {
            v["status"] == "ready"
                && v["components"]["alert-engine.tasks"]["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("restarts: sweep=1"))
        },
        &mut p,
    )
    .await;
    assert_eq!(
        report["components"]["alert-engine.tasks"]["level"], "degraded",
        "{report}"
    );
    let metrics = http()
        .get(format!("http://127.0.0.1:{}/metrics", ports.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let restarts = |task: &str| {
        metric_value(
            &metrics,
            "pantau_task_restarts_total",
            &format!("service=\"alert-engine\",task=\"{task}\""),
        )
    };
    assert_eq!(restarts("sweep"), Some(1.0), "{metrics}");
    assert_eq!(restarts("consumer"), None, "{metrics}");
    let log = p.log();
    assert!(
        log.contains("background task failed") && log.contains("failure injected by TEST_PANTAU_FAIL_TASK"),
        "the failure is logged with its cause; log:\n{log}"
    );
    let status = p.terminate();
    assert!(
        status.success(),
        "a restarted task is no failure: {status}\n{}",
        p.log()
    );
}
