//! `examples/alerts.yaml` loads, validates, and routes every alert to the
//! generic webhook at http://127.0.0.1:9999/hook; its escalation policy loads.

use pantau_config::{ChannelType, Config, LoadOptions};
use pantau_notifier::notification::Notification;
use pantau_notifier::routing::Routes;

#[test]
fn alerts_example_routes_everything_to_the_local_webhook() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/alerts.yaml");
    let c = Config::load(&LoadOptions {
        file: Some(file.into()),
        env: vec![],
    })
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    let hook = c
        .notifier
        .channels
        .iter()
        .find(|ch| ch.url.as_deref() == Some("http://127.0.0.1:9999/hook"))
        .expect("a channel posting to http://127.0.0.1:9999/hook");
    assert_eq!(hook.kind, ChannelType::Webhook);
    let routes = Routes::new(c.notifier.routes.clone());
    for severity in ["info", "warning", "critical"] {
        let mut n = Notification::test("x");
        n.severity = severity.into();
        assert!(
            routes.channels(&n).contains(&hook.name),
            "{severity} does not reach {}",
            hook.name
        );
    }
    let oncall = &c.notifier.escalations[0];
    assert_eq!(oncall.name, "oncall");
    assert_eq!(oncall.repeat_every.map(|d| d.get().as_secs()), Some(600));
    assert!(
        !c.to_masked_yaml().contains("change-me"),
        "the webhook secret is printed"
    );
}
