//! The channels of issue #20 (ntfy, Gotify, Pushover, Matrix, Mattermost,
//! Google Chat, Opsgenie, Rocket.Chat, Signal, SMS gateways) at a local
//! sink that checks each service's documented request: method, path,
//! query, headers, auth and body, for a firing and its resolve; a failing
//! service is retried; secrets never leave the API.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::bus::memory::MemoryBus;
use pantau_proto::v1::{AlertState, ListChannelsRequest, Severity, TestChannelRequest};
use serde_json::json;

use crate::harness::{Recorded, Running, Sink, config, event, publish};

const PUSHOVER_TOKEN: &str = "PUSHOVERAPP9aaaaaaaaaaaaaaaaaa";
const PUSHOVER_USER: &str = "PUSHOVERUSER9uuuuuuuuuuuuuuuuu";

const SECRETS: [&str; 13] = [
    "NTFYTOKEN9",
    "ntfysecrettopic9",
    "GOTIFYTOKEN9",
    "PUSHOVERAPP9",
    "PUSHOVERUSER9",
    "MATRIXTOKEN9",
    "MMKEY9",
    "GCHATKEY9",
    "OPSGENIEKEY9",
    "ROCKETKEY9",
    "SMSKEY9",
    "SMSAUTH9",
    "SMSBODYKEY9",
];

const NAMES: [&str; 12] = [
    "ntfy", "gotify", "pushover", "matrix", "mm", "gchat", "opsgenie", "rocket", "signal", "sms", "smsget", "smsjson",
];

fn channels(sink: &str) -> serde_json::Value {
    json!({
        "channels": [
            {"name": "ntfy", "type": "ntfy", "url": format!("{sink}/ntfy"), "topic": "ntfysecrettopic9",
             "token": "tk_NTFYTOKEN9"},
            {"name": "gotify", "type": "gotify", "url": format!("{sink}/gotify"), "token": "GOTIFYTOKEN9",
             "priorities": {"critical": 9}},
            {"name": "pushover", "type": "pushover", "url": format!("{sink}/pushover"), "token": PUSHOVER_TOKEN,
             "user_key": PUSHOVER_USER},
            {"name": "matrix", "type": "matrix", "url": format!("{sink}/matrix"), "room_id": "!ops:example.org",
             "token": "MATRIXTOKEN9"},
            {"name": "mm", "type": "mattermost", "url": format!("{sink}/mm/hooks/MMKEY9"), "channel": "ops-alerts"},
            {"name": "gchat", "type": "google_chat",
             "url": format!("{sink}/gchat/v1/spaces/AAA/messages?key=GCHATKEY9&token=GCHATTOK9")},
            {"name": "opsgenie", "type": "opsgenie", "url": format!("{sink}/og"), "token": "OPSGENIEKEY9"},
            {"name": "rocket", "type": "rocketchat", "url": format!("{sink}/rocket/hooks/ROCKETKEY9"), "channel": "#ops"},
            {"name": "signal", "type": "signal", "url": format!("{sink}/signal"), "sender": "+628111234560",
             "to": ["+628111234561", "group.c2lnbmFsZ3JvdXA="]},
            {"name": "sms", "type": "sms", "url": format!("{sink}/sms/send?api_key=SMSKEY9"), "to": ["+628111234562"],
             "body_format": "form", "auth_header": "Authorization: Basic SMSAUTH9",
             "body": {"dest": "{{ to }}", "text": "{{ message }}", "key": "SMSBODYKEY9"}},
            {"name": "smsget", "type": "sms", "url": format!("{sink}/smsget"), "to": ["628111234563"], "method": "get",
             "body": {"to": "{{ to }}", "msg": "{{ title }} ({{ severity }}, {{ status }})"}},
            {"name": "smsjson", "type": "sms", "url": format!("{sink}/smsjson"), "to": ["+628111234564"]},
        ],
        "routes": [{"channels": NAMES}],
    })
}

/// The answers each service documents for a success.
fn answer_like_the_services(sink: &Sink) {
    sink.answer(
        "/ntfy",
        200,
        r#"{"id":"sPs71M8A2T","time":1700000000,"event":"message","topic":"t"}"#,
    );
    sink.answer(
        "/gotify",
        200,
        r#"{"id":25,"appid":5,"message":"m","title":"t","priority":9}"#,
    );
    sink.answer(
        "/pushover/1/messages.json",
        200,
        r#"{"status":1,"request":"647d2300-702c-4b38"}"#,
    );
    sink.answer(
        "/pushover/1/receipts",
        200,
        r#"{"status":1,"canceled":1,"request":"r2"}"#,
    );
    sink.answer("/matrix", 200, r#"{"event_id":"$YUwRidLecu:example.org"}"#);
    sink.answer(
        "/og",
        202,
        r#"{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c"}"#,
    );
    sink.answer("/signal", 201, r#"{"timestamp":"1700000000123"}"#);
}

fn by_prefix<'a>(all: &'a [Recorded], prefix: &str) -> Vec<&'a Recorded> {
    all.iter().filter(|r| r.path.starts_with(prefix)).collect()
}

async fn fire_and_resolve(sink: &Sink, bus: &MemoryBus) -> Vec<Recorded> {
    publish(bus, &event("db-down", AlertState::Firing, Severity::Critical)).await;
    // 13 firings: Signal has two recipients.
    sink.wait_for(13, Duration::from_secs(20)).await;
    publish(bus, &event("db-down", AlertState::Resolved, Severity::Critical)).await;
    // 14 resolves: Pushover cancels its emergency first.
    sink.wait_for(27, Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_channel_sends_its_documented_shape() {
    let sink = Sink::start().await;
    answer_like_the_services(&sink);
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let cfg = config(dir.path(), channels(&sink.url));
    let yaml = cfg.to_masked_yaml();
    for s in SECRETS {
        assert!(!yaml.contains(s), "config print leaks {s}:\n{yaml}");
    }
    let running = Running::start(cfg, bus.clone()).await;
    let all = fire_and_resolve(&sink, &bus).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = if sink.requests().len() > all.len() {
        sink.requests()
    } else {
        all
    };
    assert_eq!(all.len(), 27, "{:?}", all.iter().map(|r| &r.path).collect::<Vec<_>>());

    // ntfy: JSON to the server root, topic, priority 5 then 2, tags, bearer token.
    let ntfy = by_prefix(&all, "/ntfy");
    assert_eq!(ntfy.len(), 2);
    for r in &ntfy {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/ntfy/"));
        assert_eq!(r.header("authorization"), "Bearer tk_NTFYTOKEN9");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.json()["topic"], "ntfysecrettopic9");
        assert_eq!(r.json()["title"], "db-down is down");
    }
    let (f, res) = (ntfy[0].json(), ntfy[1].json());
    assert_eq!(f["priority"], 5);
    assert_eq!(f["tags"], json!(["rotating_light", "pantau"]));
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("🔴 CRITICAL db-down is down")
    );
    assert_eq!(res["priority"], 2);
    assert_eq!(res["tags"], json!(["white_check_mark", "pantau"]));
    assert!(res["message"].as_str().unwrap().starts_with("✅ RESOLVED"));

    // Gotify: POST /message?token=, title, message, the configured priority 9, then 1.
    let gotify = by_prefix(&all, "/gotify");
    assert_eq!(gotify.len(), 2);
    for r in &gotify {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/gotify/message"));
        assert_eq!(r.query_param("token"), "GOTIFYTOKEN9");
        assert_eq!(r.json()["title"], "db-down is down");
        assert_eq!(r.json()["extras"]["client::display"]["contentType"], "text/plain");
    }
    assert_eq!(gotify[0].json()["priority"], 9);
    assert_eq!(gotify[1].json()["priority"], 1);

    // Pushover: a form; the critical firing is an emergency with retry,
    // expire and a tag; the resolve cancels it by tag, then says so at -1.
    let po = by_prefix(&all, "/pushover");
    assert_eq!(po.len(), 3);
    let paths: Vec<&str> = po.iter().map(|r| r.path.as_str()).collect();
    let tag = po[0].form()["tags"].clone();
    assert!(tag.starts_with("pantau-"), "{tag}");
    assert_eq!(
        paths,
        [
            "/pushover/1/messages.json".to_owned(),
            format!("/pushover/1/receipts/cancel_by_tag/{tag}.json"),
            "/pushover/1/messages.json".to_owned()
        ]
    );
    let fire = po[0].form();
    assert_eq!(po[0].header("content-type"), "application/x-www-form-urlencoded");
    assert_eq!(fire["token"], PUSHOVER_TOKEN);
    assert_eq!(fire["user"], PUSHOVER_USER);
    assert_eq!(fire["title"], "db-down is down");
    assert_eq!(fire["priority"], "2");
    assert_eq!(fire["retry"], "60");
    assert_eq!(fire["expire"], "3600");
    assert!(fire["message"].starts_with("🔴 CRITICAL"));
    assert_eq!(po[1].form()["token"], PUSHOVER_TOKEN);
    let resolve = po[2].form();
    assert_eq!(resolve["priority"], "-1");
    assert!(!resolve.contains_key("retry") && !resolve.contains_key("tags"));
    assert!(resolve["message"].starts_with("✅ RESOLVED"));

    // Matrix: PUT with the room id encoded and the idempotency key as txnId.
    let mx = by_prefix(&all, "/matrix");
    assert_eq!(mx.len(), 2);
    for r in &mx {
        assert_eq!(r.method.as_str(), "PUT");
        let txn = r
            .path
            .strip_prefix("/matrix/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/")
            .unwrap_or_else(|| panic!("matrix path {}", r.path));
        assert_eq!(txn.len(), 32);
        assert_eq!(r.header("authorization"), "Bearer MATRIXTOKEN9");
        assert_eq!(r.json()["format"], "org.matrix.custom.html");
    }
    assert_ne!(mx[0].path, mx[1].path, "firing and resolve are distinct transactions");
    assert_eq!(mx[0].json()["msgtype"], "m.text");
    assert!(
        mx[0].json()["body"]
            .as_str()
            .unwrap()
            .starts_with("🔴 CRITICAL db-down")
    );
    assert!(
        mx[0].json()["formatted_body"]
            .as_str()
            .unwrap()
            .starts_with("<b>🔴 CRITICAL db-down is down</b><br>")
    );
    assert_eq!(mx[1].json()["msgtype"], "m.notice");

    // Mattermost: {"text", "channel"} in Markdown.
    let mm = by_prefix(&all, "/mm/hooks/MMKEY9");
    assert_eq!(mm.len(), 2);
    assert_eq!(mm[0].method.as_str(), "POST");
    assert_eq!(mm[0].json()["channel"], "ops-alerts");
    assert!(
        mm[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("🔴 **CRITICAL** db-down")
    );
    assert!(mm[1].json()["text"].as_str().unwrap().starts_with("✅ **RESOLVED**"));

    // Google Chat: {"text"}, the webhook's key and token kept, one thread per alert.
    let gc = by_prefix(&all, "/gchat/v1/spaces/AAA/messages");
    assert_eq!(gc.len(), 2);
    for r in &gc {
        assert_eq!(r.query_param("key"), "GCHATKEY9");
        assert_eq!(r.query_param("token"), "GCHATTOK9");
        assert_eq!(
            r.query_param("messageReplyOption"),
            "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        );
    }
    assert!(gc[0].query_param("threadKey").starts_with("pantau-"));
    assert_eq!(gc[0].query_param("threadKey"), gc[1].query_param("threadKey"));
    assert!(
        gc[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("🔴 *CRITICAL* db-down")
    );

    // Opsgenie: create with the fingerprint as alias, then close by alias.
    let og = by_prefix(&all, "/og");
    assert_eq!(og.len(), 2);
    for r in &og {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(r.header("authorization"), "GenieKey OPSGENIEKEY9");
    }
    assert_eq!(og[0].path, "/og/v2/alerts");
    let create = og[0].json();
    assert_eq!(create["message"], "db-down is down");
    assert_eq!(create["alias"], "fp-db-down");
    assert_eq!(create["priority"], "P1");
    assert_eq!(create["source"], "Pantau");
    assert_eq!(create["entity"], "api.example.org");
    assert_eq!(create["details"]["instance"], "api.example.org");
    assert_eq!(create["tags"], json!(["pantau", "critical"]));
    assert!(create["description"].as_str().unwrap().contains("HTTP 503"));
    assert_eq!(og[1].path, "/og/v2/alerts/fp-db-down/close");
    assert_eq!(og[1].query, "identifierType=alias");
    assert_eq!(og[1].json()["source"], "Pantau");
    assert!(og[1].json()["note"].as_str().unwrap().starts_with("✅ RESOLVED"));

    // Rocket.Chat: text, alias, channel, a coloured attachment.
    let rc = by_prefix(&all, "/rocket/hooks/ROCKETKEY9");
    assert_eq!(rc.len(), 2);
    let m = rc[0].json();
    assert_eq!(m["alias"], "Pantau");
    assert_eq!(m["channel"], "#ops");
    assert!(m["text"].as_str().unwrap().starts_with("🔴 *CRITICAL* db-down"));
    assert_eq!(m["attachments"][0]["title"], "db-down is down");
    assert_eq!(m["attachments"][0]["color"], "#d00000");
    assert_eq!(rc[1].json()["attachments"][0]["color"], "#2eb886");

    // Signal: /v2/send, one message per recipient, number and recipients.
    let sig = by_prefix(&all, "/signal");
    assert_eq!(sig.len(), 4);
    let mut to: Vec<String> = sig
        .iter()
        .map(|r| {
            assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/signal/v2/send"));
            let b = r.json();
            assert_eq!(b["number"], "+628111234560");
            assert!(b["message"].as_str().unwrap().contains("db-down is down"));
            assert_eq!(b["recipients"].as_array().unwrap().len(), 1);
            b["recipients"][0].as_str().unwrap().to_owned()
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "+628111234561",
            "+628111234561",
            "group.c2lnbmFsZ3JvdXA=",
            "group.c2lnbmFsZ3JvdXA="
        ]
    );

    // SMS gateway (form): the templated body, the auth header, the URL's key, an idempotency key.
    let sms = by_prefix(&all, "/sms/send");
    assert_eq!(sms.len(), 2);
    let form = sms[0].form();
    assert_eq!(sms[0].method.as_str(), "POST");
    assert_eq!(sms[0].query_param("api_key"), "SMSKEY9");
    assert_eq!(sms[0].header("authorization"), "Basic SMSAUTH9");
    assert_eq!(sms[0].header("content-type"), "application/x-www-form-urlencoded");
    assert_eq!(sms[0].header("idempotency-key").len(), 32);
    assert_eq!(form["dest"], "+628111234562");
    assert_eq!(form["key"], "SMSBODYKEY9");
    assert!(form["text"].starts_with("🔴 CRITICAL db-down is down"));
    assert!(sms[1].form()["text"].starts_with("✅ RESOLVED"));

    // SMS gateway (GET): the fields in the query string.
    let get = by_prefix(&all, "/smsget");
    assert_eq!(get.len(), 2);
    assert_eq!(get[0].method.as_str(), "GET");
    assert!(get[0].body.is_empty());
    assert_eq!(get[0].query_param("to"), "628111234563");
    assert_eq!(get[0].query_param("msg"), "db-down is down (critical, firing)");
    assert_eq!(get[1].query_param("msg"), "db-down is down (critical, resolved)");

    // SMS gateway (default body): {"to", "message"} as JSON, like the WhatsApp gateway.
    let js = by_prefix(&all, "/smsjson");
    assert_eq!(js.len(), 2);
    assert_eq!(js[0].method.as_str(), "POST");
    assert_eq!(js[0].header("content-type"), "application/json");
    let b = js[0].json();
    assert_eq!(b.as_object().unwrap().len(), 2, "{b}");
    assert_eq!(b["to"], "+628111234564");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("🔴 CRITICAL db-down is down")
    );

    // The API shows every new channel with its secrets masked.
    let list = running
        .client()
        .list_channels(ListChannelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.channels.len(), 12);
    let shown = format!("{list:?}");
    for s in SECRETS {
        assert!(!shown.contains(s), "ListChannels leaks {s}: {shown}");
    }
    let get_ch = |n: &str| list.channels.iter().find(|c| c.name == n).unwrap();
    assert_eq!(get_ch("ntfy").settings["topic"], "***");
    assert_eq!(get_ch("pushover").settings["user_key"], "***");
    assert_eq!(get_ch("pushover").target, format!("{}/pushover", sink.url));
    assert_eq!(get_ch("matrix").settings["room_id"], "!ops:example.org");
    assert_eq!(get_ch("gotify").settings["priorities.critical"], "9");
    assert_eq!(get_ch("signal").settings["sender"], "+628111234560");
    assert_eq!(get_ch("sms").settings["auth_header"], "***");
    assert_eq!(get_ch("sms").settings["body_format"], "form");
    assert!(get_ch("sms").settings["body"].contains("{{ message }}"));
    assert_eq!(get_ch("gchat").target, format!("{}/***", sink.url));
    assert_eq!(get_ch("opsgenie").r#type, "opsgenie");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_channel_retries_a_failing_service() {
    let sink = Sink::start().await;
    answer_like_the_services(&sink);
    // Each service fails its first request with a 500, then works.
    let prefixes = [
        "/ntfy",
        "/gotify",
        "/pushover",
        "/matrix",
        "/mm",
        "/gchat",
        "/og",
        "/rocket",
        "/signal",
        "/sms/",
        "/smsget",
        "/smsjson",
    ];
    for p in prefixes {
        sink.fail_path(p, 1, 500);
    }
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(MemoryBus::new());
    let running = Running::start(config(dir.path(), channels(&sink.url)), bus.clone()).await;
    publish(bus.as_ref(), &event("disk-full", AlertState::Firing, Severity::Warning)).await;
    // 13 firings plus one failed attempt per service.
    let all = sink.wait_for(25, Duration::from_secs(30)).await;
    for p in prefixes {
        let got = by_prefix(&all, p);
        assert!(
            got.len() >= 2,
            "{p}: {:?}",
            got.iter().map(|r| r.answered).collect::<Vec<_>>()
        );
        assert_eq!(got[0].answered, 500, "{p}");
        // The retry is the same request: the same path (Matrix: the same
        // transaction id) and, where the service has one, the same body.
        let retry = got
            .iter()
            .skip(1)
            .find(|r| r.path == got[0].path && r.query == got[0].query && r.body == got[0].body)
            .unwrap_or_else(|| panic!("{p} was not retried with the same request"));
        assert!((200..300).contains(&retry.answered), "{p}: {}", retry.answered);
    }
    // A warning is sent at each service's warning priority.
    assert_eq!(by_prefix(&all, "/ntfy")[1].json()["priority"], 4);
    assert_eq!(by_prefix(&all, "/gotify")[1].json()["priority"], 5);
    assert_eq!(by_prefix(&all, "/pushover")[1].form()["priority"], "1");
    assert_eq!(by_prefix(&all, "/og")[1].json()["priority"], "P3");
    // The delivery log shows the failed attempt and the success (stored
    // just after the sink answered).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let d = loop {
        let log = running
            .client()
            .list_deliveries(pantau_proto::v1::ListDeliveriesRequest {
                channel: "matrix".into(),
                status: pantau_proto::v1::DeliveryStatus::Delivered.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if let Some(d) = log.deliveries.into_iter().next() {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the matrix delivery is not delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(d.attempts, 2);
    assert_eq!(d.attempt_log[0].status_code, 500);
    assert_eq!(d.attempt_log[1].status_code, 200);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answering_an_error_inside_success_fails_the_send() {
    let sink = Sink::start().await;
    // Pushover and Matrix answer 200 without their success fields.
    sink.answer("/pushover", 200, r#"{"status":0,"errors":["user key is invalid"]}"#);
    sink.answer("/matrix", 200, "{}");
    sink.answer(
        "/og",
        422,
        r#"{"message":"Request body is not processable","took":0.0}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(config(dir.path(), channels(&sink.url)), Arc::new(MemoryBus::new())).await;
    let mut client = running.client();
    for (channel, error) in [
        ("pushover", "pushover answered without \"status\": 1"),
        ("matrix", "matrix answered without an event_id"),
        ("opsgenie", "HTTP 422"),
    ] {
        let r = client
            .test_channel(TestChannelRequest {
                channel: channel.into(),
                recipient: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!r.ok, "{channel}: {r:?}");
        assert!(r.error.starts_with(error), "{channel}: {}", r.error);
    }
    // The test action works for every new type, to the first recipient.
    sink.answer("/matrix", 200, r#"{"event_id":"$e"}"#);
    let signal = client
        .test_channel(TestChannelRequest {
            channel: "signal".into(),
            recipient: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(signal.ok, "{signal:?}");
    let sent = sink.requests();
    let last = sent.last().unwrap();
    assert_eq!(last.path, "/signal/v2/send");
    assert_eq!(last.json()["recipients"], json!(["+628111234561"]));
    assert!(
        last.json()["message"]
            .as_str()
            .unwrap()
            .contains("Test notification for channel signal")
    );
    for name in NAMES {
        let r = client
            .test_channel(TestChannelRequest {
                channel: name.into(),
                recipient: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        if !["pushover", "matrix", "opsgenie"].contains(&name) {
            assert!(r.ok, "{name}: {r:?}");
        }
    }
    running.stop().await;
}
