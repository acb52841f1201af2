//! One trace across locations: a check on a dependent (its own target, a
//! closed port only it watches), the result on its way to the primary
//! (the sync outbox, then `PushResults` over gRPC), the primary's consensus
//! (DOWN from the one location that reports it) and the page it fires,
//! delivered to a webhook: two `pantau all` processes on one real
//! nats-server, spans received by a local OTLP receiver with the parent
//! links and the service and instance of each.

use std::net::SocketAddr;
use std::time::Duration;

use pantau_testkit::{Nats, free_port};

use crate::cluster::Instance;
use crate::support::wait_json;
use crate::traces::{Got, Receiver, Sink, ids};

/// Exports `i`'s spans to `otlp` and pages `sink` when `dep-only` is DOWN by consensus.
fn traced(i: &Instance, otlp: SocketAddr, sink: SocketAddr) {
    let yaml = std::fs::read_to_string(&i.cfg).unwrap();
    let yaml = format!("telemetry:\n  otlp_endpoint: http://{otlp}\n{yaml}")
        .replace(
            "\nalert_engine:\n",
            "\nalert_engine:\n  default_rules: false\n  rules:\n    - { id: dep-down, name: Dep down, expr: 'consensus_up{target=\"dep-only\"} == 0', severity: critical, message: down }\n",
        )
        .replace(
            "\nnotifier:\n",
            &format!(
                "\nnotifier:\n  channels:\n    - {{ name: sink, type: webhook, url: \"http://{sink}/hook\" }}\n  routes:\n    - {{ channels: [sink] }}\n"
            ),
        );
    std::fs::write(&i.cfg, yaml).unwrap();
}

fn find<'a>(chain: &'a [Got], name: &str) -> &'a Got {
    chain
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no {name} in {chain:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_on_a_dependent_its_consensus_on_the_primary_and_the_page_share_one_trace() {
    let nats = Nats::start().await.unwrap();
    let (receiver, otlp) = Receiver::start().await;
    let (sink, sink_addr) = Sink::start().await;
    let root = tempfile::tempdir().unwrap();
    let order = "jkt-1,bdg-1";
    let own = format!(
        "  targets:\n    - {{ id: dep-only, type: tcp, address: \"127.0.0.1:{}\" }}\n",
        free_port()
    );
    let p = Instance::new(root.path(), "jkt-1", "jkt", &nats.url(), None, order, "");
    let d = Instance::new(
        root.path(),
        "bdg-1",
        "bdg",
        &nats.url(),
        Some(&p.sync_url()),
        order,
        &own,
    );
    traced(&p, otlp, sink_addr);
    traced(&d, otlp, sink_addr);

    let mut pp = p.start();
    wait_json(
        &p.status_url(),
        Duration::from_secs(20),
        |v| v["role"] == "primary",
        &mut pp,
    )
    .await;
    let mut pd = d.start();
    let page = sink
        .wait(
            Duration::from_secs(60),
            |h| h.body["status"] == "firing" && h.body.to_string().contains("dep-only"),
            &mut pd,
        )
        .await;
    pp.assert_running();
    let (trace, deliver) = ids(&page.traceparent);
    let names = [
        "notifier.deliver",
        "sync.consensus.publish",
        "sync.consensus",
        "sync.receive",
        "bus.consume",
        "collector.check",
    ];
    let log = || format!("primary:\n{}\ndependent:\n{}", pp.log(), pd.log());
    let chain = receiver
        .wait_chain(&deliver, &names, Duration::from_secs(40), log)
        .await;
    let shown: Vec<(&str, &str, &str)> = chain
        .iter()
        .map(|g| (g.name.as_str(), g.service.as_str(), g.instance.as_str()))
        .collect();
    assert!(chain.iter().all(|g| g.trace == trace), "one trace: {shown:?}");

    // The check ran on the dependent and starts the trace…
    let check = chain.last().unwrap();
    assert_eq!(
        (check.name.as_str(), check.service.as_str(), check.instance.as_str()),
        ("collector.check", "pantau-collector", "bdg-1"),
        "{shown:?}"
    );
    // …its result left the dependent's bus in the sync outbox…
    let outbox = &chain[chain.len() - 2];
    assert_eq!(outbox.name, "bus.consume", "{shown:?}");
    assert_eq!(
        (outbox.service.as_str(), outbox.instance.as_str()),
        ("pantau-sync-api", "bdg-1")
    );
    // …the primary received it and computed and published the consensus…
    let received = find(&chain, "sync.receive");
    assert_eq!(received.parent, outbox.id, "{shown:?}");
    assert_eq!(
        (received.service.as_str(), received.instance.as_str()),
        ("pantau-sync-api", "jkt-1")
    );
    let consensus = find(&chain, "sync.consensus");
    assert_eq!(
        consensus.parent, received.id,
        "the consensus is the result's child: {shown:?}"
    );
    assert_eq!(
        (consensus.service.as_str(), consensus.instance.as_str()),
        ("pantau-sync-api", "jkt-1")
    );
    let publish = find(&chain, "sync.consensus.publish");
    assert_eq!(publish.parent, consensus.id);
    let compute = receiver
        .spans()
        .into_iter()
        .find(|g| g.name == "sync.consensus.compute" && g.parent == consensus.id);
    assert!(compute.is_some(), "the computation is the consensus span's child");
    // …and an alert engine paged through a notifier, each under its own name.
    let delivered = &chain[0];
    assert_eq!(
        (delivered.name.as_str(), delivered.service.as_str()),
        ("notifier.deliver", "pantau-notifier")
    );
    assert!(
        chain.iter().any(|g| g.service == "pantau-alert-engine"),
        "the alert engine's spans are in the trace: {shown:?}"
    );
    assert!(pp.terminate().success(), "{}", pp.log());
    assert!(pd.terminate().success(), "{}", pd.log());
}
