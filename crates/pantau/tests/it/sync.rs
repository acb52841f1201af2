//! Multi-location, end to end: a primary and dependents as separate `pantau
//! all` processes on loopback sharing a real nats-server. Configuration flows
//! down, results flow up into consensus, a killed primary is replaced by
//! exactly one dependent within two heartbeat intervals, the old primary
//! steps down when it returns, and a cut-off dependent backfills without
//! loss or duplicates.

use std::time::Duration;

use futures::StreamExt;
use pantau_proto::prost::Message;
use pantau_proto::v1 as pb;
use pantau_testkit::{Nats, free_port};
use tokio::time::Instant;

use crate::cluster::{HB, Instance, consensus, listening_port, status, targets};
use crate::support::{Pantau, http, wait_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_and_two_dependents_consensus_failover_and_step_down() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let (up, down) = (listening_port(), free_port());
    let order = "jkt-1,bdg-1,sby-1";
    let p = Instance::new(
        root.path(),
        "jkt-1",
        "jkt",
        &nats.url(),
        None,
        order,
        &targets(up, down),
    );
    let a = Instance::new(root.path(), "bdg-1", "bdg", &nats.url(), Some(&p.sync_url()), order, "");
    let b = Instance::new(root.path(), "sby-1", "sby", &nats.url(), Some(&p.sync_url()), order, "");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client.subscribe("pantau.consensus.>").await.unwrap();

    let mut pp = p.start();
    let first = wait_status(&p.status_url(), &mut pp, |v| v["role"] == "primary").await;
    let epoch1 = first["epoch"].as_u64().unwrap();
    assert!(epoch1 > 0);
    let mut pa = a.start();
    let mut pb_ = b.start();

    // Configuration flows down: both dependents hold the primary's hash and
    // their collectors check the primary's targets.
    let hash = wait_status(&p.status_url(), &mut pp, |v| {
        !v["config_hash"].as_str().unwrap_or("").is_empty()
    })
    .await["config_hash"]
        .clone();
    for (i, proc_) in [(&a, &mut pa), (&b, &mut pb_)] {
        let v = wait_json(
            &i.status_url(),
            Duration::from_secs(20),
            |v| v["config_hash"] == hash,
            proc_,
        )
        .await;
        assert_eq!(v["role"], "dependent");
        assert_eq!(v["primary_id"], "jkt-1");
        assert_eq!(v["location"], i.location);
        let latest = format!("http://127.0.0.1:{}/api/v1/targets", i.gateway);
        let listed = http().get(&latest).send().await.unwrap().text().await.unwrap();
        assert!(listed.contains("web-up") && listed.contains("web-down"), "{listed}");
    }

    // Results flow up: all three locations agree web-up is UP; web-down is
    // DOWN from all three (quorum 2 met).
    let c = consensus(&mut sub, "web-up", Duration::from_secs(30), |c| c.locations_total == 3).await;
    assert_eq!(c.status, pb::ConsensusStatus::Up as i32, "{c:?}");
    assert_eq!(c.locations_successful, 3);
    assert_eq!(c.epoch, epoch1);
    assert_eq!(c.instance, "jkt-1");
    let c = consensus(&mut sub, "web-down", Duration::from_secs(30), |c| {
        c.locations_total == 3
    })
    .await;
    assert_eq!(c.status, pb::ConsensusStatus::Down as i32, "{c:?}");
    assert_eq!(c.quorum, 2);
    assert_eq!(c.down_locations, ["bdg", "jkt", "sby"]);
    let metrics = http()
        .get(format!("http://127.0.0.1:{}/metrics", p.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pantau_sync_location_up") && l.contains("location=\"sby\"")),
        "{metrics}"
    );

    // Kill the primary: exactly one dependent (the next in the failover
    // order) is primary within two heartbeat intervals.
    drop(pp);
    let killed = Instant::now();
    let mut promoted = None;
    while killed.elapsed() < HB * 4 {
        let (sa, sb) = tokio::join!(status(&a), status(&b));
        let roles = [sa, sb].map(|s| s.is_some_and(|v| v["role"] == "primary"));
        assert!(!(roles[0] && roles[1]), "two primaries at once");
        if roles[0] || roles[1] {
            promoted.get_or_insert((killed.elapsed(), roles));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (took, roles) = promoted.expect("a dependent was promoted");
    assert!(took <= HB * 2, "promotion took {took:?}");
    assert_eq!(roles, [true, false], "bdg-1 comes first in the failover order");
    let now_a = status(&a).await.unwrap();
    let epoch2 = now_a["epoch"].as_u64().unwrap();
    assert!(epoch2 > epoch1);
    wait_json(
        &b.status_url(),
        Duration::from_secs(10),
        |v| v["primary_id"] == "bdg-1",
        &mut pb_,
    )
    .await;

    // The old primary returns, sees the newer epoch and follows.
    let mut pp = p.start();
    let back = wait_status(&p.status_url(), &mut pp, |v| {
        v["role"] == "dependent" && v["primary_id"] == "bdg-1"
    })
    .await;
    assert_eq!(back["epoch"].as_u64(), Some(epoch2));
    for _ in 0..20 {
        let (sp, sa, sb) = tokio::join!(status(&p), status(&a), status(&b));
        let primaries: Vec<_> = [sp, sa, sb]
            .into_iter()
            .flatten()
            .filter(|v| v["role"] == "primary")
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(primaries, ["bdg-1"]);
        tokio::time::sleep(HB / 10).await;
    }
    // The new primary computes consensus over all three again.
    let c = consensus(&mut sub, "web-up", Duration::from_secs(30), |c| {
        c.epoch == epoch2 && c.locations_total == 3
    })
    .await;
    assert_eq!(c.instance, "bdg-1");
    pa.assert_running();
    pb_.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_dependent_keeps_checking_and_backfills_without_loss_or_duplicates() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let up = listening_port();
    // Only the primary may lead, so the dependent stays cut off.
    let p = Instance::new(
        root.path(),
        "jkt-1",
        "jkt",
        &nats.url(),
        None,
        "jkt-1",
        &targets(up, free_port()),
    );
    let a = Instance::new(
        root.path(),
        "bdg-1",
        "bdg",
        &nats.url(),
        Some(&p.sync_url()),
        "jkt-1",
        "",
    );
    let mut pp = p.start();
    wait_status(&p.status_url(), &mut pp, |v| v["role"] == "primary").await;
    let mut pa = a.start();
    wait_status(&a.status_url(), &mut pa, |v| {
        v["produced_seq"].as_u64() > Some(2) && v["buffered_results"] == 0 && v["primary_reachable"] == true
    })
    .await;

    drop(pp);
    // Cut off, it keeps checking: results pile up in its buffer.
    let cut = wait_status(&a.status_url(), &mut pa, |v| {
        v["buffered_results"].as_u64() >= Some(8) && v["primary_reachable"] == false
    })
    .await;
    let produced_while_cut = cut["produced_seq"].as_u64().unwrap();

    let mut pp = p.start();
    wait_status(&p.status_url(), &mut pp, |v| v["role"] == "primary").await;
    wait_json(
        &a.status_url(),
        Duration::from_secs(30),
        |v| v["buffered_results"] == 0 && v["primary_reachable"] == true,
        &mut pa,
    )
    .await;
    let list = format!("http://127.0.0.1:{}/sync/api/instances", p.gateway);
    let v = wait_json(
        &list,
        Duration::from_secs(10),
        |v| {
            v["instances"]
                .as_array()
                .and_then(|l| l.iter().find(|i| i["id"] == "bdg-1"))
                .is_some_and(|i| i["acked_seq"].as_u64() >= Some(produced_while_cut) && i["state"] == "active")
        },
        &mut pp,
    )
    .await;
    let dep = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "bdg-1")
        .unwrap();
    // Sequences start at 1 and each accepted one is counted once: received
    // equal to the highest acknowledged means none missing, none twice.
    assert_eq!(dep["results_received"], dep["acked_seq"], "{dep}");
    assert_eq!(dep["state"], "active");
    assert_eq!(dep["location"], "bdg");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::many_single_char_names)] // p and a: the primary and the dependent, as in the other tests
async fn rest_contract_instance_tokens_revocation_and_manual_failover() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let order = "jkt-1,bdg-1";
    let targets = targets(listening_port(), free_port());
    let p = Instance::new(root.path(), "jkt-1", "jkt", &nats.url(), None, order, &targets);
    let a = Instance::new(root.path(), "bdg-1", "bdg", &nats.url(), Some(&p.sync_url()), order, "");
    let mut pp = p.start();
    wait_status(&p.status_url(), &mut pp, |v| v["role"] == "primary").await;
    let mut pa = a.start();
    wait_status(&a.status_url(), &mut pa, |v| v["primary_reachable"] == true).await;
    let api = |path: &str| format!("http://127.0.0.1:{}/sync/api/{path}", p.gateway);
    let c = http();

    let order = wait_json(&api("failover-order"), Duration::from_secs(5), |_| true, &mut pp).await;
    assert_eq!(order["candidates"][0]["id"], "jkt-1");
    assert_eq!(order["candidates"][0]["primary"], true);
    assert_eq!(order["candidates"][1]["id"], "bdg-1");

    // Registration needs the join token; the instance token comes back once.
    let body = serde_json::json!({"instance_id": "zz-1", "location": "zz", "platform": "linux", "cpu_count": 2});
    let r = post(&c, api("register"), "wrong-token-wrong", &body).await;
    assert_eq!(r.status(), 401);
    let r = post(&c, api("register"), "join-token-for-the-tests", &body).await;
    assert_eq!(r.status(), 200);
    let reg: serde_json::Value = r.json().await.unwrap();
    let token = reg["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert!(
        reg["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "results:push")
    );

    let beat =
        serde_json::json!({"instance_id": "zz-1", "status": "healthy", "uptime_seconds": 3.5, "active_endpoints": 2});
    let r = post(&c, api("heartbeat"), &token, &beat).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["primary_id"], "jkt-1");
    let hash = v["config_hash"].as_str().unwrap().to_owned();
    // Bad input names the field.
    let bad = serde_json::json!({"instance_id": "zz-1", "status": "sleepy"});
    let r = post(&c, api("heartbeat"), &token, &bad).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("status `sleepy`"));
    let bad = serde_json::json!({"instance_id": "zz-1", "status": "healthy", "colour": 1});
    let r = post(&c, api("heartbeat"), &token, &bad).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("colour"));
    // An uptime no duration can hold, or a negative one: refused by name, not a panic.
    for uptime in [1e300, -1.0] {
        let bad = serde_json::json!({"instance_id": "zz-1", "status": "healthy", "uptime_seconds": uptime});
        let r = post(&c, api("heartbeat"), &token, &bad).await;
        assert_eq!(r.status(), 400, "{uptime}");
        assert!(r.text().await.unwrap().contains("uptime_seconds"), "{uptime}");
    }
    // The same door over gRPC: an InstanceHealth this version does not know
    // is INVALID_ARGUMENT naming `status`, not stored as UNSPECIFIED.
    let mut grpc = pb::sync_service_client::SyncServiceClient::connect(p.sync_url())
        .await
        .unwrap();
    for status in [99, -1] {
        let mut req = tonic::Request::new(pb::HeartbeatRequest {
            instance_id: "zz-1".into(),
            status,
            ..Default::default()
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let refused = grpc.heartbeat(req).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{status}: {refused:?}");
        assert!(
            refused.message().contains("`status`"),
            "{status}: {}",
            refused.message()
        );
    }

    // Config: sent, then not resent while the hash holds.
    let v: serde_json::Value = c
        .get(api("config?instance_id=zz-1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["hash"], hash.as_str());
    assert_eq!(v["unchanged"], false);
    let ids: Vec<_> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, ["web-down", "web-up"]);
    let v: serde_json::Value = c
        .get(api(&format!("config?instance_id=zz-1&if_none_match={hash}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["unchanged"], true);
    assert_eq!(v["targets"].as_array().unwrap().len(), 0);

    // Removing the instance revokes its token: refused, and it cannot re-register.
    let r = c.delete(api("instances/zz-1")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = post(&c, api("heartbeat"), &token, &beat).await;
    assert_eq!(r.status(), 401);
    let r = post(&c, api("register"), "join-token-for-the-tests", &body).await;
    assert_eq!(r.status(), 403);
    let v = wait_json(&api("instances"), Duration::from_secs(5), |_| true, &mut pp).await;
    let zz = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "zz-1")
        .unwrap()
        .clone();
    assert_eq!(zz["revoked"], true);
    let dep = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "bdg-1")
        .unwrap()
        .clone();
    assert_eq!(dep["platform"], std::env::consts::OS);
    assert_eq!(dep["config_hash"], hash.as_str());

    // An instance that stops sending heartbeats turns inactive: an event.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut events = client.subscribe("pantau.event.instance.zz-2").await.unwrap();
    let body2 = serde_json::json!({"instance_id": "zz-2", "location": "zz"});
    let r = post(&c, api("register"), "join-token-for-the-tests", &body2).await;
    let token2 = r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let beat2 = serde_json::json!({"instance_id": "zz-2", "status": "degraded"});
    let r = post(&c, api("heartbeat"), &token2, &beat2).await;
    assert_eq!(r.status(), 200);
    let msg = tokio::time::timeout(Duration::from_secs(15), events.next())
        .await
        .expect("an instance event in time")
        .unwrap();
    let e = pb::RouterEvent::decode(msg.payload.as_ref()).unwrap();
    assert_eq!(e.kind, pb::EventKind::Instance as i32);
    assert_eq!(e.attributes["state"], "inactive");
    assert_eq!(e.severity, pb::Severity::Warning as i32);

    // By hand: promote the dependent, then demote it; the primary returns.
    let epoch1 = status(&p).await.unwrap()["epoch"].as_u64().unwrap();
    let promote = format!("http://127.0.0.1:{}/sync/api/promote", a.gateway);
    let r = c.post(&promote).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["role"], "primary");
    assert!(v["epoch"].as_u64().unwrap() > epoch1);
    wait_json(
        &p.status_url(),
        Duration::from_secs(5),
        |v| v["primary_id"] == "bdg-1",
        &mut pp,
    )
    .await;
    let r = c.post(api("demote/jkt-1")).send().await.unwrap();
    assert_eq!(r.status(), 409, "jkt-1 is not the primary now");
    let demote = format!("http://127.0.0.1:{}/sync/api/demote/bdg-1", a.gateway);
    let r = c.post(&demote).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_json(
        &p.status_url(),
        Duration::from_secs(5),
        |v| v["role"] == "primary",
        &mut pp,
    )
    .await;
    wait_json(
        &a.status_url(),
        Duration::from_secs(5),
        |v| v["primary_id"] == "jkt-1",
        &mut pa,
    )
    .await;
}

#[test]
fn the_multi_location_examples_pass_config_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multi-location");
    for f in ["primary.yaml", "dependent-a.yaml", "dependent-b.yaml"] {
        let out = std::process::Command::new(crate::support::BIN)
            .args(["config", "check"])
            .arg(dir.join(f))
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn sync_api_alone_refuses_a_standalone_instance() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("standalone.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen_host: 127.0.0.1\ndata_dir: {}\nsync:\n  admin_port: {}\n",
            dir.path().join("data").display(),
            free_port()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("sync-api")
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sync is not enabled"), "{err}");
}

/// POSTs `body` as JSON with a bearer token.
/// TLS on both sides (a CA and certificate made here): a dependent
/// registers with an `https://` primary, takes its configuration, and takes
/// over when the primary is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_dependent_registers_syncs_and_fails_over() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let tls = pantau_testkit::TlsFiles::generate(&root.path().join("tls")).unwrap();
    let (up, down) = (listening_port(), free_port());
    let order = "jkt-1,bdg-1";
    let p = Instance::new(
        root.path(),
        "jkt-1",
        "jkt",
        &nats.url(),
        None,
        order,
        &targets(up, down),
    )
    .with_tls(&tls);
    let a = Instance::new(root.path(), "bdg-1", "bdg", &nats.url(), Some(&p.sync_url()), order, "").with_tls(&tls);
    let mut pp = p.start();
    let first = wait_status(&p.status_url(), &mut pp, |v| v["role"] == "primary").await;
    let epoch1 = first["epoch"].as_u64().unwrap();
    let hash = wait_status(&p.status_url(), &mut pp, |v| {
        !v["config_hash"].as_str().unwrap_or("").is_empty()
    })
    .await["config_hash"]
        .clone();
    let mut pa = a.start();
    let v = wait_json(
        &a.status_url(),
        Duration::from_secs(30),
        |v| v["config_hash"] == hash && v["primary_reachable"] == true,
        &mut pa,
    )
    .await;
    assert_eq!(v["role"], "dependent");
    assert_eq!(v["primary_id"], "jkt-1");
    assert_eq!(v["last_error"], "", "{v}");
    // The synced targets reached the dependent's collector (over TLS too).
    let listed = http()
        .get(format!("http://127.0.0.1:{}/api/v1/targets", a.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains("web-up") && listed.contains("web-down"), "{listed}");
    // The primary registered it.
    let instances = http()
        .get(format!("http://127.0.0.1:{}/sync/api/instances", p.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(instances.contains("bdg-1"), "{instances}");

    drop(pp);
    let v = wait_json(
        &a.status_url(),
        Duration::from_secs(20),
        |v| v["role"] == "primary",
        &mut pa,
    )
    .await;
    assert!(v["epoch"].as_u64().unwrap() > epoch1, "{v}");
    assert!(p.sync_url_tls().starts_with("https://"));
}

/// A dependent told its primary is `https://` while the primary speaks
/// plaintext never registers; its status names the URL and the TLS failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_primary_that_speaks_plaintext_is_a_clear_tls_error() {
    let nats = Nats::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let tls = pantau_testkit::TlsFiles::generate(&root.path().join("tls")).unwrap();
    let order = "jkt-1,bdg-1";
    let p = Instance::new(root.path(), "jkt-1", "jkt", &nats.url(), None, order, "");
    // It advertises itself as https:// too (the dependent follows the
    // endpoint the lease names), but serves plaintext.
    let yaml = std::fs::read_to_string(&p.cfg).unwrap();
    std::fs::write(&p.cfg, yaml.replace("public_url: http://", "public_url: https://")).unwrap();
    let a = Instance::new(
        root.path(),
        "bdg-1",
        "bdg",
        &nats.url(),
        Some(&p.sync_url_tls()),
        order,
        "",
    )
    .trusting(&tls.ca);
    let mut pp = p.start();
    wait_status(&p.status_url(), &mut pp, |v| v["role"] == "primary").await;
    let mut pa = a.start();
    let url = p.sync_url_tls();
    let v = wait_json(
        &a.status_url(),
        Duration::from_secs(20),
        |v| !v["last_error"].as_str().unwrap_or("").is_empty(),
        &mut pa,
    )
    .await;
    let err = v["last_error"].as_str().unwrap();
    assert!(err.contains(&url), "the error names the URL: {err}");
    let lower = err.to_lowercase();
    assert!(
        lower.contains("corrupt message") || lower.contains("tls") || lower.contains("handshake"),
        "the error says TLS failed: {err}"
    );
    assert_eq!(v["primary_reachable"], false, "{v}");
    let instances = http()
        .get(format!("http://127.0.0.1:{}/sync/api/instances", p.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!instances.contains("bdg-1"), "it never registered: {instances}");
    pa.assert_running();
}

async fn post(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    c.post(url).bearer_auth(token).json(body).send().await.unwrap()
}

/// Waits (20 s at most) until an instance's `/sync/api/status` satisfies `ok`.
async fn wait_status(url: &str, p: &mut Pantau, ok: impl FnMut(&serde_json::Value) -> bool) -> serde_json::Value {
    wait_json(url, Duration::from_secs(20), ok, p).await
}
