//! Every provider's request shape, checked at a local sink; resolved
//! notifications follow their firing ones; secrets never leave the API.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use pantau_notifier::channels::webhook::sign;
use pantau_proto::v1::{AlertState, ListChannelsRequest, Severity};
use serde_json::json;

use crate::harness::{Recorded, Running, Sink, config, event, publish};

const SECRETS: [&str; 7] = [
    "hook-secret-1",
    "SLACKKEY9",
    "DISCORDTOK9",
    "123456:TGTOKEN9",
    "WA-ACCESS-TOKEN9",
    "GW-TOKEN9",
    "PDROUTINGKEY9",
];

fn channels(sink: &str) -> serde_json::Value {
    json!({
        "channels": [
            {"name": "hook", "type": "webhook", "url": format!("{sink}/hook"), "secret": "hook-secret-1"},
            {"name": "slack", "type": "slack", "url": format!("{sink}/slack/services/T0/B0/SLACKKEY9")},
            {"name": "discord", "type": "discord", "url": format!("{sink}/discord/api/webhooks/42/DISCORDTOK9")},
            {"name": "teams", "type": "teams", "url": format!("{sink}/teams/workflows/run")},
            {"name": "tg", "type": "telegram", "url": format!("{sink}/tg"), "token": "123456:TGTOKEN9", "chat_id": "-100200"},
            {"name": "wa", "type": "whatsapp", "url": format!("{sink}/wa"), "token": "WA-ACCESS-TOKEN9",
             "phone_number_id": "105500", "to": ["6281100000001", "6281100000002"]},
            {"name": "gw", "type": "whatsapp_gateway", "url": format!("{sink}/gw/send"), "token": "GW-TOKEN9", "to": ["6281100000003"]},
            {"name": "pd", "type": "pagerduty", "url": format!("{sink}/pd"), "routing_key": "PDROUTINGKEY9"},
        ],
        "routes": [{"channels": ["hook", "slack", "discord", "teams", "tg", "wa", "gw", "pd"]}],
    })
}

fn by_prefix<'a>(all: &'a [Recorded], prefix: &str) -> Vec<&'a Recorded> {
    all.iter().filter(|r| r.path.starts_with(prefix)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_gets_its_documented_shape() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(dir.path(), channels(&sink.url));
    let yaml = cfg.to_masked_yaml();
    for s in SECRETS {
        assert!(!yaml.contains(s), "config print leaks {s}:\n{yaml}");
    }
    let running = Running::start(cfg, bus.clone()).await;

    publish(bus.as_ref(), &event("api-down", AlertState::Firing, Severity::Critical)).await;
    sink.wait_for(9, Duration::from_secs(15)).await;
    publish(
        bus.as_ref(),
        &event("api-down", AlertState::Resolved, Severity::Critical),
    )
    .await;
    let all = sink.wait_for(18, Duration::from_secs(15)).await;
    assert_eq!(all.len(), 18);

    // Generic webhook: signed body, idempotency key, the notification.
    let hook = by_prefix(&all, "/hook");
    assert_eq!(hook.len(), 2);
    for r in &hook {
        assert_eq!(r.header("x-pantau-signature"), sign(b"hook-secret-1", &r.body));
        let key = r.header("idempotency-key");
        assert_eq!(key.len(), 32);
        assert_eq!(r.json()["idempotency_key"], key);
        assert_eq!(r.header("content-type"), "application/json");
    }
    assert_ne!(hook[0].header("idempotency-key"), hook[1].header("idempotency-key"));
    let first = hook[0].json();
    assert_eq!(first["status"], "firing");
    assert_eq!(first["severity"], "critical");
    assert_eq!(
        first["notification"]["alerts"][0]["labels"]["instance"],
        "api.example.org"
    );
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("🔴 CRITICAL api-down is down")
    );
    assert_eq!(hook[1].json()["status"], "resolved");

    // Slack incoming webhook: {"text"} in mrkdwn.
    let slack = by_prefix(&all, "/slack/services/T0/B0/SLACKKEY9");
    assert_eq!(slack.len(), 2);
    assert!(
        slack[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("🔴 *CRITICAL* api-down is down")
    );
    assert!(slack[1].json()["text"].as_str().unwrap().starts_with("✅ *RESOLVED*"));

    // Discord: {"content", "username"}, no mentions parsed.
    let discord = by_prefix(&all, "/discord/api/webhooks/42/DISCORDTOK9");
    assert_eq!(discord.len(), 2);
    let d = discord[0].json();
    assert!(d["content"].as_str().unwrap().starts_with("🔴 **CRITICAL**"));
    assert!(d["content"].as_str().unwrap().chars().count() <= 2000);
    assert_eq!(d["allowed_mentions"]["parse"], json!([]));

    // Teams: a message with one Adaptive Card.
    let teams = by_prefix(&all, "/teams/workflows/run");
    assert_eq!(teams.len(), 2);
    let t = teams[0].json();
    assert_eq!(t["type"], "message");
    assert_eq!(
        t["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &t["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["body"][0]["text"], "api-down is down");
    assert_eq!(card["body"][0]["color"], "Attention");
    assert_eq!(teams[1].json()["attachments"][0]["content"]["body"][0]["color"], "Good");

    // Telegram: /bot<token>/sendMessage with chat_id and text.
    let tg = by_prefix(&all, "/tg/bot123456:TGTOKEN9/sendMessage");
    assert_eq!(tg.len(), 2);
    let m = tg[0].json();
    assert_eq!(m["chat_id"], "-100200");
    assert!(m["text"].as_str().unwrap().contains("api-down is down"));
    assert_eq!(m["disable_web_page_preview"], true);

    // WhatsApp Cloud API: one message per recipient, bearer token.
    let wa = by_prefix(&all, "/wa/105500/messages");
    assert_eq!(wa.len(), 4);
    let mut to: Vec<String> = wa.iter().map(|r| r.json()["to"].as_str().unwrap().to_owned()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to, ["6281100000001", "6281100000002"]);
    for r in &wa {
        assert_eq!(r.header("authorization"), "Bearer WA-ACCESS-TOKEN9");
        let b = r.json();
        assert_eq!(b["messaging_product"], "whatsapp");
        assert_eq!(b["recipient_type"], "individual");
        assert_eq!(b["type"], "text");
        assert_eq!(b["text"]["preview_url"], false);
        assert!(b["text"]["body"].as_str().unwrap().contains("api-down is down"));
    }

    // WhatsApp gateway: {"to", "message"}.
    let gw = by_prefix(&all, "/gw/send");
    assert_eq!(gw.len(), 2);
    assert_eq!(gw[0].json()["to"], "6281100000003");
    assert!(gw[0].json()["message"].as_str().unwrap().contains("api-down is down"));
    assert_eq!(gw[0].header("authorization"), "Bearer GW-TOKEN9");

    // PagerDuty Events v2: trigger, then resolve with the same dedup_key.
    let pd = by_prefix(&all, "/pd/v2/enqueue");
    assert_eq!(pd.len(), 2);
    let (trigger, resolve) = (pd[0].json(), pd[1].json());
    assert_eq!(trigger["routing_key"], "PDROUTINGKEY9");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "api.example.org");
    assert_eq!(trigger["payload"]["summary"], "api-down is down");
    assert_eq!(trigger["payload"]["timestamp"], "2027-01-15T08:00:00.000Z");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert!(resolve.get("payload").is_none());

    // The API shows channels with every secret masked.
    let channels = running
        .client()
        .list_channels(ListChannelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(channels.channels.len(), 8);
    let shown = format!("{channels:?}");
    for s in SECRETS {
        assert!(!shown.contains(s), "ListChannels leaks {s}: {shown}");
    }
    let tg = channels.channels.iter().find(|c| c.name == "tg").unwrap();
    assert_eq!(tg.settings["token"], "***");
    assert_eq!(tg.settings["chat_id"], "-100200");
    // And the routes, as configured.
    assert_eq!(channels.routes.len(), 1);
    assert!(channels.routes[0].severities.is_empty() && channels.routes[0].labels.is_empty());
    assert_eq!(
        channels.routes[0].channels,
        ["hook", "slack", "discord", "teams", "tg", "wa", "gw", "pd"]
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_waits_for_its_firing() {
    let sink = Sink::start().await;
    // The firing fails twice first; the resolved must not overtake it.
    sink.fail_next(2, 503);
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(
        dir.path(),
        crate::harness::one_webhook(&format!("{}/hook", sink.url), json!({})),
    );
    let n = Running::start(cfg, bus.clone()).await;
    publish(bus.as_ref(), &event("a1", AlertState::Firing, Severity::Warning)).await;
    publish(bus.as_ref(), &event("a1", AlertState::Resolved, Severity::Warning)).await;
    let all = sink.wait_for(4, Duration::from_secs(15)).await;
    let statuses: Vec<(String, u16)> = all
        .iter()
        .map(|r| (r.json()["status"].as_str().unwrap().to_owned(), r.answered))
        .collect();
    assert_eq!(
        statuses,
        [
            ("firing".to_owned(), 503),
            ("firing".to_owned(), 503),
            ("firing".to_owned(), 200),
            ("resolved".to_owned(), 200)
        ]
    );
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_channel_sends_now_and_reports() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), channels(&sink.url));
    let running = Running::start(cfg, Arc::new(MemoryBus::new())).await;
    let mut client = running.client();
    let ok = client
        .test_channel(pantau_proto::v1::TestChannelRequest {
            channel: "wa".into(),
            recipient: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.status_code, 200);
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/wa/105500/messages");
    assert_eq!(got[0].json()["to"], "6281100000001", "the first recipient by default");
    assert!(
        got[0].json()["text"]["body"]
            .as_str()
            .unwrap()
            .contains("Test notification for channel wa")
    );

    sink.fail_next(1, 401);
    let failed = client
        .test_channel(pantau_proto::v1::TestChannelRequest {
            channel: "hook".into(),
            recipient: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!failed.ok);
    assert_eq!(failed.status_code, 401);
    assert!(failed.error.starts_with("HTTP 401"), "{}", failed.error);

    let missing = client
        .test_channel(pantau_proto::v1::TestChannelRequest {
            channel: "nope".into(),
            recipient: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let too_many = client
        .list_deliveries(pantau_proto::v1::ListDeliveriesRequest {
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    // A test send is not a delivery: the log stays empty.
    let log = client
        .list_deliveries(pantau_proto::v1::ListDeliveriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(log.deliveries.is_empty());
    running.stop().await;
}
