//! `mqtt`: connect to an MQTT broker (3.1.1), optionally with a user name
//! and password, and optionally subscribe to `topic`, publish a canary to it
//! and wait for it to come back.

use super::parse::{Problems, tls_files};
use super::redis::MAX_CREDENTIAL;
use super::udp::address;
use super::{CheckType, HostPort, RawTarget, TargetSpec, TlsFiles};

/// Longest topic a check publishes to (MQTT allows 65,535 bytes).
pub const MAX_TOPIC: usize = 256;

/// An MQTT check. Its `Debug` masks the password.
#[derive(Clone, PartialEq)]
pub struct MqttTarget {
    pub address: HostPort,
    pub username: Option<String>,
    /// Secret: masked in every answer and log. Only with `username`.
    pub password: Option<String>,
    /// The round trip's topic: no wildcards, not a `$` topic.
    pub topic: Option<String>,
    /// Speak TLS (MQTT over TLS, usually port 8883); plain when unset. The
    /// certificate must be for the address's host.
    pub use_tls: Option<bool>,
    /// TLS only: verify the chain and name; true when unset.
    pub verify_tls: Option<bool>,
    /// TLS only.
    pub tls: TlsFiles,
}

impl std::fmt::Debug for MqttTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttTarget")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("topic", &self.topic)
            .field("use_tls", &self.use_tls)
            .field("verify_tls", &self.verify_tls)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Fields an `mqtt` target takes.
pub(super) const FIELDS: &[&str] = &[
    "address",
    "username",
    "password",
    "topic",
    "use_tls",
    "verify_tls",
    "ca_file",
    "client_cert",
    "client_key",
];

/// Why `topic` cannot be published to and subscribed to as it is.
fn topic_problem(t: &str) -> Option<String> {
    if t.is_empty() || t.len() > MAX_TOPIC {
        Some(format!("must be 1–{MAX_TOPIC} bytes, e.g. pantau/canary"))
    } else if t.contains(['+', '#']) {
        Some("must be one topic, without the wildcards + and #".into())
    } else if t.starts_with('$') {
        Some("must not be a $ topic (those are the broker's own, e.g. $SYS)".into())
    } else if t.chars().any(char::is_control) {
        Some("must not hold control characters".into())
    } else {
        None
    }
}

/// The typed spec of an `mqtt` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    if let Some(u) = &r.username
        && (u.is_empty() || u.len() > MAX_CREDENTIAL || u.chars().any(char::is_control))
    {
        p.add(
            "username",
            u,
            format!("must be 1–{MAX_CREDENTIAL} bytes without control characters"),
        );
    }
    if let Some(pw) = &r.password {
        if pw.len() > MAX_CREDENTIAL {
            // A password is never quoted.
            p.add("password", "***", format!("must be at most {MAX_CREDENTIAL} bytes"));
        } else if r.username.is_none() {
            p.add(
                "password",
                "***",
                "needs a username: MQTT 3.1.1 sends no password alone",
            );
        }
    }
    if let Some(t) = &r.topic
        && let Some(why) = topic_problem(t)
    {
        p.add("topic", t, why);
    }
    if r.use_tls != Some(true) {
        for (field, set) in [
            ("verify_tls", r.verify_tls.is_some()),
            ("ca_file", r.ca_file.is_some()),
            ("client_cert", r.client_cert.is_some()),
        ] {
            if set {
                p.add(field, "", "applies only with use_tls: true");
            }
        }
    }
    let address = address(CheckType::Mqtt, r, p);
    let tls = tls_files(r, p)?;
    Some(TargetSpec::Mqtt(Box::new(MqttTarget {
        address: address?,
        username: r.username.clone(),
        password: r.password.clone(),
        topic: r.topic.clone(),
        use_tls: r.use_tls,
        verify_tls: r.verify_tls,
        tls,
    })))
}

/// Sets the raw fields of `x`.
pub(super) fn to_raw(x: MqttTarget, r: &mut RawTarget) {
    r.address = Some(x.address.to_string());
    r.username = x.username;
    r.password = x.password;
    r.topic = x.topic;
    r.use_tls = x.use_tls;
    r.verify_tls = x.verify_tls;
    r.set_tls(x.tls);
}

#[cfg(test)]
mod tests {
    use crate::{CheckType, CollectorConfig, RawTarget, TargetSpec};

    fn mqtt() -> RawTarget {
        let mut r = RawTarget::new("m", CheckType::Mqtt);
        r.address = Some("127.0.0.1:1883".into());
        r
    }

    #[test]
    fn an_mqtt_target_parses_round_trips_and_masks_its_password() {
        let mut r = mqtt();
        r.username = Some("probe".into());
        r.password = Some("s3cret".into());
        r.topic = Some("pantau/canary".into());
        r.use_tls = Some(true);
        let t = r.clone().parse("t").unwrap();
        assert_eq!(RawTarget::from(t.clone()), r);
        assert!(!format!("{t:?}").contains("s3cret"));
        let mut c = CollectorConfig {
            targets: vec![t.into()],
            ..CollectorConfig::default()
        };
        c.mask();
        let TargetSpec::Mqtt(x) = &c.targets[0].spec else {
            panic!()
        };
        assert_eq!(x.password.as_deref(), Some("***"));
    }

    #[test]
    fn a_bad_mqtt_target_is_refused_naming_the_field() {
        let cases: [(fn(&mut RawTarget), &str); 13] = [
            (|r| r.address = None, "t.address"),
            (|r| r.address = Some("h:99999".into()), "t.address"),
            (|r| r.topic = Some(String::new()), "t.topic"),
            (|r| r.topic = Some("a/+/b".into()), "t.topic"),
            (|r| r.topic = Some("a/#".into()), "t.topic"),
            (|r| r.topic = Some("$SYS/x".into()), "t.topic"),
            (|r| r.topic = Some("t".repeat(300)), "t.topic"),
            (|r| r.topic = Some("a\u{0}b".into()), "t.topic"),
            (|r| r.password = Some("pppppp".into()), "t.password"),
            (|r| r.username = Some(String::new()), "t.username"),
            (|r| r.verify_tls = Some(false), "t.verify_tls"),
            (|r| r.query = Some("x".into()), "t.query"),
            (
                |r| {
                    r.use_tls = Some(true);
                    r.server_name = Some("x".into());
                },
                "t.server_name",
            ),
        ];
        for (edit, key) in cases {
            let mut r = mqtt();
            edit(&mut r);
            let e = r
                .parse("t")
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            assert!(e.contains(key), "{key}: {e}");
            assert!(!e.contains("pppppp"), "a password is never quoted: {e}");
        }
    }
}
