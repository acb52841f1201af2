use serde_json::{Value, json};

use super::*;
use crate::NotifierConfig;

fn sample(kind: ChannelType, field: &str) -> Value {
    match (kind, field) {
        (ChannelType::Pushover, "token") => json!("a".repeat(30)),
        (_, "user_key") => json!("u".repeat(30)),
        (ChannelType::Email, "to") => json!(["ops@example.org"]),
        (_, "to") => json!(["+628111234567"]),
        (_, "smtp") => json!({"host": "127.0.0.1", "from": "p@example.org", "tls": "none"}),
        (_, "topic") => json!("alerts"),
        (_, "room_id") => json!("!room:example.org"),
        (_, "sender") => json!("+628111234560"),
        (_, "url") => json!("http://127.0.0.1:9/x"),
        _ => json!("value-1"),
    }
}

/// A channel of `kind` with every required field and `extra`.
fn minimal(kind: ChannelType, extra: &Value) -> ChannelConfig {
    let mut c = json!({"name": "c", "type": kind.as_str()});
    for f in kind.fields().iter().filter(|f| f.required) {
        c[f.name] = sample(kind, f.name);
    }
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    serde_json::from_value(c).unwrap()
}

fn keys(c: ChannelConfig) -> Vec<String> {
    let n = NotifierConfig {
        channels: vec![c],
        ..NotifierConfig::default()
    };
    crate::notifier::problems(&n).into_iter().map(|i| i.key).collect()
}

#[test]
fn each_type_accepts_its_required_fields_and_names_each_missing_one() {
    for kind in ChannelType::ALL {
        assert_eq!(keys(minimal(kind, &json!({}))), Vec::<String>::new(), "{kind:?}");
        assert_eq!(ChannelType::parse(kind.as_str()), Some(kind));
        for f in kind.fields().iter().filter(|f| f.required) {
            let got = keys(minimal(kind, &json!({ f.name: null })));
            assert_eq!(
                got,
                [format!("notifier.channels[0].{}", f.name)],
                "{kind:?} without {}",
                f.name
            );
        }
    }
}

#[test]
fn fields_of_other_types_are_refused() {
    let got = keys(minimal(
        ChannelType::Gotify,
        &json!({"topic": "t", "user_key": "u", "chat_id": "1"}),
    ));
    assert_eq!(
        got,
        [
            "notifier.channels[0].chat_id",
            "notifier.channels[0].topic",
            "notifier.channels[0].user_key"
        ]
    );
    let got = keys(minimal(ChannelType::Email, &json!({"url": "http://127.0.0.1/x"})));
    assert_eq!(got, ["notifier.channels[0].url"]);
}

#[test]
fn hostile_values_are_refused_naming_the_field() {
    let huge = "x".repeat(100_000);
    let cases: Vec<(ChannelType, Value, &str)> = vec![
        (ChannelType::Gotify, json!({"url": "ftp://example.org"}), "url"),
        (ChannelType::Gotify, json!({"url": "not a url"}), "url"),
        (ChannelType::Gotify, json!({"url": format!("http://h/{huge}")}), "url"),
        (ChannelType::Gotify, json!({"token": huge}), "token"),
        (ChannelType::Gotify, json!({"token": "  "}), "token"),
        (
            ChannelType::Gotify,
            json!({"priorities": {"critical": 11}}),
            "priorities.critical",
        ),
        (
            ChannelType::Gotify,
            json!({"priorities": {"info": "high"}}),
            "priorities.info",
        ),
        (
            ChannelType::Ntfy,
            json!({"priorities": {"warning": "loud"}}),
            "priorities.warning",
        ),
        (
            ChannelType::Ntfy,
            json!({"priorities": {"warning": 0}}),
            "priorities.warning",
        ),
        (ChannelType::Ntfy, json!({"topic": "a/b"}), "topic"),
        (ChannelType::Ntfy, json!({"topic": "t".repeat(65)}), "topic"),
        (
            ChannelType::Pushover,
            json!({"priorities": {"critical": 3}}),
            "priorities.critical",
        ),
        (ChannelType::Pushover, json!({"token": "short"}), "token"),
        (
            ChannelType::Pushover,
            json!({"user_key": "u".repeat(29) + "!"}),
            "user_key",
        ),
        (
            ChannelType::Opsgenie,
            json!({"priorities": {"critical": "P0"}}),
            "priorities.critical",
        ),
        (
            ChannelType::Opsgenie,
            json!({"priorities": {"critical": 1}}),
            "priorities.critical",
        ),
        (
            ChannelType::Opsgenie,
            json!({"priorities": {"resolved": "P5"}}),
            "priorities.resolved",
        ),
        (ChannelType::Opsgenie, json!({"group": true}), "group"),
        (ChannelType::Matrix, json!({"room_id": "#alias:example.org"}), "room_id"),
        (ChannelType::Matrix, json!({"room_id": "!a b"}), "room_id"),
        (ChannelType::Matrix, json!({"priorities": {"info": 1}}), "priorities"),
        (ChannelType::Mattermost, json!({"channel": "two words"}), "channel"),
        (ChannelType::Rocketchat, json!({"channel": huge}), "channel"),
        (ChannelType::Signal, json!({"sender": "0811"}), "sender"),
        (ChannelType::Signal, json!({"to": ["+62811", "x"]}), "to"),
        (ChannelType::Signal, json!({"to": vec!["+628111234567"; 101]}), "to"),
        (ChannelType::Sms, json!({"to": ["call me"]}), "to"),
        (
            ChannelType::Sms,
            json!({"method": "get", "body_format": "json"}),
            "body_format",
        ),
        (ChannelType::Sms, json!({"body": {}}), "body"),
        (ChannelType::Sms, json!({"body": {"to": "{{ to }}"}}), "body"),
        (ChannelType::Sms, json!({"body": {"text": "{{ message }}"}}), "body"),
        (
            ChannelType::Sms,
            json!({"body": {"to": "{{ to }}", "sev": "{{ severity }}"}}),
            "body",
        ),
        (
            ChannelType::Sms,
            json!({"body_format": "form", "body": {"to": "{{ to }}", "m": {"x": "{{ message }}"}}}),
            "body.m",
        ),
        (
            ChannelType::Sms,
            json!({"body": {"to": "{{ to }}", "m": format!("{{{{ message }}}}{huge}")}}),
            "body",
        ),
        (ChannelType::Sms, json!({"auth_header": "no colon"}), "auth_header"),
        (ChannelType::Sms, json!({"auth_header": "Bad Name: v"}), "auth_header"),
        (ChannelType::Sms, json!({"auth_header": "X-Key: é"}), "auth_header"),
        (ChannelType::Sms, json!({"auth_header": "X-Key:   "}), "auth_header"),
    ];
    for (kind, extra, field) in cases {
        let got = keys(minimal(kind, &extra));
        assert_eq!(
            got,
            [format!("notifier.channels[0].{field}")],
            "{kind:?} {:.200}",
            extra.to_string()
        );
    }
}

#[test]
fn unknown_priority_keys_and_methods_do_not_decode() {
    for bad in [
        json!({"name": "c", "type": "ntfy", "topic": "t", "priorities": {"fatal": 5}}),
        json!({"name": "c", "type": "sms", "url": "http://h/x", "to": ["123"], "method": "patch"}),
        json!({"name": "c", "type": "sms", "url": "http://h/x", "to": ["123"], "body_format": "xml"}),
        json!({"name": "c", "type": "sms", "url": "http://h/x", "to": ["123"], "body": "text"}),
        json!({"name": "c", "type": "ntfy", "topic": "t", "priorities": {"info": [1]}}),
        json!({"name": "c", "type": "carrier_pigeon"}),
    ] {
        assert!(serde_json::from_value::<ChannelConfig>(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn priorities_default_per_service_and_can_be_replaced() {
    let ntfy = minimal(ChannelType::Ntfy, &json!({}));
    assert_eq!(ntfy.priority("firing", "critical"), Some(5));
    assert_eq!(ntfy.priority("firing", "warning"), Some(4));
    assert_eq!(ntfy.priority("firing", "info"), Some(3));
    assert_eq!(ntfy.priority("resolved", "critical"), Some(2));
    let ntfy = minimal(
        ChannelType::Ntfy,
        &json!({"priorities": {"critical": "urgent", "resolved": "min"}}),
    );
    assert_eq!(ntfy.priority("firing", "critical"), Some(5));
    assert_eq!(ntfy.priority("acknowledged", "critical"), Some(1));
    let po = minimal(ChannelType::Pushover, &json!({"priorities": {"critical": "high"}}));
    assert_eq!(po.priority("firing", "critical"), Some(1));
    assert_eq!(po.priority("resolved", "info"), Some(-1));
    let og = minimal(ChannelType::Opsgenie, &json!({"priorities": {"warning": "p2"}}));
    assert_eq!(og.priority("firing", "warning"), Some(2));
    assert_eq!(og.priority("firing", "critical"), Some(1));
    assert_eq!(og.priority("resolved", "critical"), None);
    let gotify = minimal(ChannelType::Gotify, &json!({"priorities": {"warning": "7"}}));
    assert_eq!(gotify.priority("firing", "warning"), Some(7));
    assert_eq!(
        minimal(ChannelType::Slack, &json!({})).priority("firing", "critical"),
        None
    );
}

#[test]
fn masking_hides_the_new_secrets() {
    let mut c = minimal(
        ChannelType::Sms,
        &json!({"auth_header": "X-Api-Key: SMSKEY9", "body": {"to": "{{ to }}", "text": "{{ message }}", "key": "SMSKEY8", "n": [{"k": "SMSKEY7"}, "SMSKEY6"]}}),
    );
    c.url = Some("https://sms.example.org/api/SMSKEY5?key=SMSKEY4".into());
    c.mask();
    let shown = serde_json::to_string(&c).unwrap();
    for s in ["SMSKEY9", "SMSKEY8", "SMSKEY7", "SMSKEY6", "SMSKEY5", "SMSKEY4"] {
        assert!(!shown.contains(s), "{s} in {shown}");
    }
    assert!(shown.contains("{{ message }}"), "{shown}");
    let mut n = minimal(ChannelType::Ntfy, &json!({"topic": "secret-topic", "token": "tk_x"}));
    n.mask();
    assert_eq!((n.topic.as_deref(), n.token.as_deref()), (Some("***"), Some("***")));
    let mut p = minimal(ChannelType::Pushover, &json!({}));
    p.mask();
    assert_eq!(p.user_key.as_deref(), Some("***"));
    let mut g = minimal(
        ChannelType::GoogleChat,
        &json!({"url": "https://chat.googleapis.com/v1/spaces/S/messages?key=K&token=T"}),
    );
    g.mask();
    assert_eq!(g.url.as_deref(), Some("https://chat.googleapis.com/***"));
}

fn load(yaml: &str) -> Result<crate::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantau.yaml");
    std::fs::write(&path, yaml).unwrap();
    crate::Config::load(&crate::LoadOptions {
        file: Some(path),
        env: vec![],
    })
    .map_err(|e| e.to_string())
}

#[test]
fn yaml_with_hostile_channels_is_refused_naming_each_key_without_secrets() {
    let err = load(
        "notifier:\n  channels:\n    - {name: a, type: ntfy, topic: ok-topic, priorities: {critical: 9}}\n    - {name: b, type: gotify, url: 'http://127.0.0.1:1'}\n    - {name: c, type: pushover, token: GOTIFYSECRET7, user_key: x}\n    - {name: d, type: sms, url: 'gopher://x', to: ['+62811'], auth_header: 'SMSSECRET7'}\n",
    )
    .unwrap_err();
    for key in [
        "notifier.channels[0].priorities.critical",
        "notifier.channels[1].token",
        "notifier.channels[2].token",
        "notifier.channels[2].user_key",
        "notifier.channels[3].url",
        "notifier.channels[3].auth_header",
    ] {
        assert!(err.contains(key), "{key} not named: {err}");
    }
    assert!(!err.contains("GOTIFYSECRET7") && !err.contains("SMSSECRET7"), "{err}");
    for (yaml, key) in [
        (
            "    - {name: a, type: ntfy, topic: t, priorities: {critical: [1]}}\n",
            "notifier.channels.0.priorities.critical`: invalid type: found sequence, expected a priority",
        ),
        (
            "    - {name: a, type: ntfy, topic: t, priorities: {fatal: 1}}\n",
            "notifier.channels.0.priorities.fatal`: unknown variant: found `fatal`",
        ),
        (
            "    - {name: a, type: sms, url: 'http://h', to: 5}\n",
            "notifier.channels.0.to",
        ),
        (
            "    - {name: a, type: sms, url: 'http://h', to: ['1234'], method: patch}\n",
            "notifier.channels.0.method",
        ),
        (
            "    - {name: a, type: signal, url: 'http://h', sender: '+62811111', to: ['+62811112'], colour: red}\n",
            "found `colour`",
        ),
        ("    - {name: a, type: pigeon}\n", "found `pigeon`"),
    ] {
        let err = load(&format!("notifier:\n  channels:\n{yaml}")).unwrap_err();
        assert!(err.contains(key), "{yaml}: {err}");
    }
}
