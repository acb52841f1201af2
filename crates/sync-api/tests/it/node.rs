use std::sync::Arc;
use std::time::Duration;

use pantau_config::{Config, InstanceRole};
use pantau_proto::v1::SyncRole;
use pantau_sync_api::lease::Lease;
use pantau_sync_api::node::{Command, Node};
use pantau_testkit::Nats;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client;

const HB: Duration = Duration::from_millis(1000);

fn config(name: &str, role: InstanceRole) -> Arc<Config> {
    let mut c = Config::default();
    c.instance.name = name.into();
    c.instance.location = format!("loc-{name}");
    c.sync.role = role;
    c.sync.heartbeat_interval = HB;
    c.sync.failover_order = vec!["a".into(), "b".into(), "c".into()];
    c.sync.public_url = Some(format!("http://127.0.0.1:1/{name}"));
    if role == InstanceRole::Dependent {
        c.sync.primary_url = Some("http://127.0.0.1:1/a".into());
    }
    Arc::new(c)
}

struct Running {
    node: Arc<Node>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(nats: &Nats, bucket: &str, name: &str, role: InstanceRole) -> Running {
    let lease = Lease::open(client(nats).await, bucket, HB).await.unwrap();
    let (node, commands) = Node::new(config(name, role), Some(lease));
    let stop = CancellationToken::new();
    let task = tokio::spawn(Arc::clone(&node).run(commands, stop.clone()));
    Running { node, stop, task }
}

fn primaries(nodes: &[&Running]) -> Vec<String> {
    nodes
        .iter()
        .filter(|r| r.node.is_primary())
        .map(|r| r.node.id.clone())
        .collect()
}

async fn wait_until(within: Duration, what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if ok() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_primary_failover_by_order_and_the_old_primary_steps_down() {
    let nats = Nats::start().await.unwrap();
    let a = start(&nats, "n1", "a", InstanceRole::Primary).await;
    wait_until(HB * 3, "a primary", || a.node.is_primary()).await;
    let b = start(&nats, "n1", "b", InstanceRole::Dependent).await;
    let c = start(&nats, "n1", "c", InstanceRole::Dependent).await;
    wait_until(HB * 3, "dependents follow a", || {
        b.node.state().primary_id == "a" && c.node.state().primary_id == "a"
    })
    .await;
    let epoch_a = a.node.state().epoch;
    assert_eq!(b.node.state().epoch, epoch_a);
    // Stay with one primary across several renewals.
    for _ in 0..20 {
        assert_eq!(primaries(&[&a, &b, &c]), ["a"]);
        tokio::time::sleep(HB / 10).await;
    }

    // Kill a (no release: the task is aborted, like a crash).
    a.task.abort();
    let took = wait_until(HB * 2, "a dependent promoted", || !primaries(&[&b, &c]).is_empty()).await;
    assert!(took <= HB * 2, "promotion took {took:?}");
    // The first in the failover order wins, and only it.
    assert_eq!(primaries(&[&b, &c]), ["b"]);
    let epoch_b = b.node.state().epoch;
    assert!(epoch_b > epoch_a);
    wait_until(HB * 2, "c follows b", || c.node.state().primary_id == "b").await;
    for _ in 0..20 {
        assert_eq!(primaries(&[&b, &c]), ["b"]);
        tokio::time::sleep(HB / 10).await;
    }

    // The old primary comes back: it sees the newer epoch and follows.
    let a2 = start(&nats, "n1", "a", InstanceRole::Primary).await;
    wait_until(HB * 3, "a follows b", || a2.node.state().primary_id == "b").await;
    assert_eq!(a2.node.state().role, SyncRole::Dependent);
    assert_eq!(a2.node.state().epoch, epoch_b);
    assert_eq!(primaries(&[&a2, &b, &c]), ["b"]);

    // Manual promotion of c and demotion.
    c.node.command(Command::Promote).await.unwrap();
    assert!(c.node.is_primary());
    wait_until(HB * 2, "b steps down", || !b.node.is_primary()).await;
    assert!(c.node.state().epoch > epoch_b);
    let err = b.node.command(|r| Command::Demote("b".into(), r)).await.unwrap_err();
    assert!(err.to_string().contains("not the primary"), "{err}");
    c.node.command(|r| Command::Demote("c".into(), r)).await.unwrap();
    assert!(!c.node.is_primary());
    // c is held off for a while; the first eligible of the others takes over.
    wait_until(HB * 3, "a new primary after the demotion", || {
        primaries(&[&a2, &b, &c]).len() == 1
    })
    .await;
    assert_ne!(primaries(&[&a2, &b, &c]), ["c"]);

    for r in [&a2, &b, &c] {
        r.stop.cancel();
    }
    drop(a);
}
