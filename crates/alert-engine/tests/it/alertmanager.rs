//! A real Alertmanager (Debian's prometheus-alertmanager) receives the
//! pushed alert and lists it in its own API; the resolve ends it there.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, publish_proto, subject};
use pantau_core::service::Context;
use serde_json::Value;

use crate::service::{check, config, ready};

const AM_CONFIG: &str = "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n";

async fn active(http: &reqwest::Client, am: &str) -> Vec<Value> {
    let v: Value = http
        .get(format!("{am}/api/v2/alerts?active=true&silenced=false&inhibited=false"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == "closed-port")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_alerts_appear_in_alertmanager() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let am = pantau_testkit::Alertmanager::start(AM_CONFIG)
        .await
        .expect("prometheus-alertmanager starts");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.alert_engine.alertmanager_url = Some(am.url());
    cfg.validate().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::new(cfg), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_alert_engine::run(ctx.clone(), grpc));
    ready(&ctx, addr).await;
    let http = reqwest::Client::new();

    let subj = subject::check_result("jkt", "closed");
    publish_proto(bus.as_ref(), &subj, &check("closed", false))
        .await
        .unwrap();
    let listed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let a = active(&http, &am.url()).await;
            if !a.is_empty() {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("Alertmanager lists the alert; its log:\n{}", am.log_tail()));
    let a = &listed[0];
    assert_eq!(a["labels"]["target"], "closed");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["annotations"]["summary"], "closed is down from jkt");
    assert_eq!(a["status"]["state"], "active");

    // The check recovers: the resolve (with endsAt) ends it in Alertmanager.
    publish_proto(bus.as_ref(), &subj, &check("closed", true))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), async {
        while !active(&http, &am.url()).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the resolved alert is no longer active in Alertmanager");

    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
