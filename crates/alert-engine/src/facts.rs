//! Facts from the bus: each message becomes named, labelled samples.
//!
//! | message | facts |
//! |---|---|
//! | `CheckResult` | `check_up{target,location,kind}` 1/0, `check_duration_ms{…}` (plus the result's labels) |
//! | `CheckResult` of a kafka_consumer group_lag check | `kafka_consumer_lag{…,group,topic}` (worst partition), `kafka_consumer_lag_over{…}` 1/0 |
//! | `MetricSample` | its name and labels (`source` added when set) |
//! | `InterfaceSample` | `interface_up{router,interface,admin}` 1/0, `interface_went_down{router,interface}` 1/0, `interface_in_bps`, `interface_out_bps` |
//! | `RouterEvent` interface_up/down | `interface_up{router,interface,admin}` 1/0; `interface_went_down` 1 (down, attribute `went_down=true`) / 0 (up) |
//! | `RouterEvent` reboot / counter_reset / wan_detected | `router_reboot{router}`, `counter_reset{router,interface}`, `wan_detected{router,interface}` = 1; interface facts of the WAN set learnt from `wan_detected` also get `role="wan"` |
//! | `ConsensusResult` (`pantau.consensus.<target>`) | `consensus_up{target}` 1 / 0.5 (partial) / 0 (down by quorum), `consensus_locations_down{target}` |
//! | `RouterEvent` cert_expiring | `cert_expiry_days{target}` from the attribute `days` |
//! | any `RouterEvent` with attributes `fact` and `value` | `<fact>{source,…other attributes}` = the value (a number when it parses, else a state such as `"unhealthy"`) |
//! | the dependencies' view of the check results of a location some target depends on | `location_up{location}` 1 / 0 (see [`crate::deps`]) |

use std::collections::BTreeMap;
use std::time::SystemTime;

use pantau_core::time::from_timestamp;
use pantau_proto::v1::{
    CheckResult, CheckStatus, ConsensusResult, ConsensusStatus, EventKind, InterfaceSample, MetricSample, RouterEvent,
};

use crate::series::{Labels, Value};

/// One sample of a named series.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub name: String,
    pub labels: Labels,
    pub value: Value,
    pub at: SystemTime,
}

/// A metric or label name the language can select: `[A-Za-z_:][A-Za-z0-9_:]*`.
pub fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        && s.len() <= 200
}

pub(crate) fn when(ts: Option<&prost_types::Timestamp>, now: SystemTime) -> SystemTime {
    // A sender's clock ahead of ours must not make a sample current forever.
    ts.and_then(from_timestamp).map_or(now, |t| t.min(now))
}

fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    pairs
        .into_iter()
        .filter(|(k, v)| is_name(k) && !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn fact(name: &str, labels: Labels, value: Value, at: SystemTime) -> Fact {
    Fact {
        name: name.to_owned(),
        labels,
        value,
        at,
    }
}

/// `check_up` and `check_duration_ms` of one check result.
pub fn from_check(r: &CheckResult, now: SystemTime) -> Vec<Fact> {
    let at = when(r.checked_at.as_ref(), now);
    let kind = kind_token(r.kind());
    let mut l = labels(r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    l.extend(labels([
        ("target", r.target_id.as_str()),
        ("location", r.location.as_str()),
        ("kind", kind),
    ]));
    let up = r.status() == CheckStatus::Up;
    let mut named = vec![("check_up", Value::Num(if up { 1.0 } else { 0.0 }))];
    if let Some(ms) = r.latency.as_ref().and_then(pantau_core::time::from_duration) {
        named.push(("check_duration_ms", Value::Num(ms.as_secs_f64() * 1000.0)));
    }
    let lag = match &r.detail {
        Some(pantau_proto::v1::check_result::Detail::Kafka(k)) if !k.group.is_empty() => kafka_lag(k, l.clone(), at),
        _ => Vec::new(),
    };
    // The last fact takes the label set, the others a copy: a result is
    // turned into facts at every check.
    let last = named.len() - 1;
    let mut set = Some(l);
    let mut out: Vec<Fact> = named
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let l = if i == last { set.take() } else { set.clone() };
            fact(name, l.unwrap_or_default(), value, at)
        })
        .collect();
    out.extend(lag);
    out
}

/// `http`, `tcp`, … of a check kind, as the `kind` label says it (built
/// once per kind, not at every result).
fn kind_token(kind: pantau_proto::v1::CheckKind) -> &'static str {
    static NAMES: std::sync::OnceLock<std::collections::HashMap<i32, String>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (0..256)
            .filter_map(|i| pantau_proto::v1::CheckKind::try_from(i).ok())
            .map(|k| {
                let name = k.as_str_name().trim_start_matches("CHECK_KIND_").to_ascii_lowercase();
                (k as i32, name)
            })
            .collect()
    });
    names.get(&(kind as i32)).map_or("unspecified", String::as_str)
}

/// `kafka_consumer_lag{…,group,topic}` (the worst partition's records
/// behind) and `kafka_consumer_lag_over` (1 when it is above the check's
/// `max_lag`) of a group_lag result.
fn kafka_lag(k: &pantau_proto::v1::KafkaDetail, mut l: Labels, at: SystemTime) -> Vec<Fact> {
    l.extend(labels([("group", k.group.as_str()), ("topic", k.topic.as_str())]));
    let worst = k.lag_by_partition.values().copied().max().unwrap_or(0);
    let over = if worst > k.max_lag { 1.0 } else { 0.0 };
    vec![
        fact("kafka_consumer_lag", l.clone(), Value::Num(worst as f64), at),
        fact("kafka_consumer_lag_over", l, Value::Num(over), at),
    ]
}

/// A custom or system metric; `None` when its name cannot be selected.
pub fn from_metric(m: &MetricSample, now: SystemTime) -> Option<Fact> {
    if !is_name(&m.name) {
        return None;
    }
    let mut l = labels(m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !m.source.is_empty() {
        l.entry("source".to_owned()).or_insert_with(|| m.source.clone());
    }
    Some(fact(&m.name, l, Value::Num(m.value), when(m.observed_at.as_ref(), now)))
}

/// Link state and rates of one interface poll.
pub fn from_iface(s: &InterfaceSample, now: SystemTime) -> Vec<Fact> {
    let at = when(s.sampled_at.as_ref(), now);
    let name = if s.if_name.is_empty() {
        s.if_index.to_string()
    } else {
        s.if_name.clone()
    };
    let l = labels([("router", s.router_id.as_str()), ("interface", name.as_str())]);
    // `admin` says whether an operator disabled the port: the default
    // `interface-down` rule watches only enabled ones.
    let mut up = l.clone();
    up.insert("admin".to_owned(), admin_label(s.admin_up).to_owned());
    // Down after a poll saw it up while enabled, and still down: what the
    // default `interface-down` rule reads (the collector keeps it across its
    // restarts, so "always down" never looks like a change).
    let went_down = if s.went_down { 1.0 } else { 0.0 };
    vec![
        fact("interface_up", up, Value::Num(if s.oper_up { 1.0 } else { 0.0 }), at),
        fact("interface_went_down", l.clone(), Value::Num(went_down), at),
        fact("interface_in_bps", l.clone(), Value::Num(s.in_bits_per_second), at),
        fact("interface_out_bps", l, Value::Num(s.out_bits_per_second), at),
    ]
}

/// The facts of a cross-location consensus (`pantau.consensus.<target>`):
/// `consensus_up{target}` is 1 (UP), 0.5 (PARTIAL) or 0 (DOWN, the quorum
/// agrees), and `consensus_locations_down{target}` how many saw it down.
pub fn from_consensus(c: &ConsensusResult, now: SystemTime) -> Vec<Fact> {
    let at = when(c.window_start.as_ref(), now);
    let value = match c.status() {
        ConsensusStatus::Up => 1.0,
        ConsensusStatus::Partial => 0.5,
        ConsensusStatus::Down => 0.0,
        ConsensusStatus::Unspecified => return Vec::new(),
    };
    vec![
        fact(
            "consensus_up",
            labels([("target", c.target_id.as_str())]),
            Value::Num(value),
            at,
        ),
        fact(
            "consensus_locations_down",
            labels([("target", c.target_id.as_str())]),
            Value::Num(f64::from(c.locations_total.saturating_sub(c.locations_successful))),
            at,
        ),
    ]
}

/// `location_up{location}`: 1 while a location some target depends on
/// sends results that are not all down, 0 once it is down (see
/// [`crate::deps`]).
pub fn location_up(location: &str, up: bool, at: SystemTime) -> Fact {
    fact(
        crate::deps::LOCATION_UP,
        labels([("location", location)]),
        Value::Num(if up { 1.0 } else { 0.0 }),
        at,
    )
}

/// Which interfaces the WAN detector judged WAN, per router, learnt from
/// `wan_detected` events (their `wan_interfaces` attribute), so that
/// interface facts carry `role="wan"` and the `wan-down` rule can fire. Kept
/// in memory: after a restart it is learnt again from the next change.
#[derive(Debug, Default)]
pub struct WanRoles(std::sync::RwLock<std::collections::HashMap<String, std::collections::HashSet<String>>>);

impl WanRoles {
    /// Learns a router's WAN set from a `wan_detected` event.
    pub fn learn(&self, e: &RouterEvent) {
        if e.kind() != EventKind::WanDetected {
            return;
        }
        let Some(list) = e.attributes.get("wan_interfaces") else {
            return;
        };
        let set = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(e.source.clone(), set);
    }

    /// Adds `role="wan"` to the interface facts of WAN interfaces.
    pub fn label(&self, facts: &mut [Fact]) {
        let map = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.is_empty() {
            return;
        }
        for f in facts.iter_mut().filter(|f| f.name.starts_with("interface_")) {
            let wan = match (f.labels.get("router"), f.labels.get("interface")) {
                (Some(r), Some(i)) => map.get(r).is_some_and(|set| set.contains(i)),
                _ => false,
            };
            if wan {
                f.labels.insert("role".to_owned(), "wan".to_owned());
            }
        }
    }
}

fn admin_label(admin_up: bool) -> &'static str {
    if admin_up { "up" } else { "down" }
}

/// The facts a router or system event states.
pub fn from_event(e: &RouterEvent, now: SystemTime) -> Vec<Fact> {
    let at = when(e.occurred_at.as_ref(), now);
    let attr = |k: &str| e.attributes.get(k).map_or("", String::as_str);
    let iface = if attr("interface").is_empty() {
        attr("if_name")
    } else {
        attr("interface")
    };
    let router_iface = labels([("router", e.source.as_str()), ("interface", iface)]);
    // The same series as the interface's samples: with its admin status.
    let with_admin = || {
        let mut l = router_iface.clone();
        if let Ok(admin_up) = attr("admin_up").parse::<bool>() {
            l.insert("admin".to_owned(), admin_label(admin_up).to_owned());
        }
        l
    };
    let mut out = Vec::new();
    match e.kind() {
        EventKind::InterfaceUp => {
            out.push(fact("interface_up", with_admin(), Value::Num(1.0), at));
            out.push(fact("interface_went_down", router_iface.clone(), Value::Num(0.0), at));
        }
        EventKind::InterfaceDown => {
            out.push(fact("interface_up", with_admin(), Value::Num(0.0), at));
            if let Ok(went_down) = attr("went_down").parse::<bool>() {
                let v = if went_down { 1.0 } else { 0.0 };
                out.push(fact("interface_went_down", router_iface.clone(), Value::Num(v), at));
            }
        }
        EventKind::Reboot => out.push(fact(
            "router_reboot",
            labels([("router", e.source.as_str())]),
            Value::Num(1.0),
            at,
        )),
        EventKind::CounterReset => out.push(fact("counter_reset", router_iface, Value::Num(1.0), at)),
        EventKind::WanDetected => out.push(fact("wan_detected", router_iface, Value::Num(1.0), at)),
        EventKind::CertExpiring => {
            if let Ok(days) = attr("days").trim().parse::<f64>() {
                out.push(fact(
                    "cert_expiry_days",
                    labels([("target", e.source.as_str())]),
                    Value::Num(days),
                    at,
                ));
            }
        }
        _ => {}
    }
    let name = attr("fact");
    if is_name(name) && e.attributes.contains_key("value") {
        let raw = attr("value");
        let value = raw
            .trim()
            .parse::<f64>()
            .map_or_else(|_| Value::Str(raw.to_owned()), Value::Num);
        let others: BTreeMap<&str, &str> = e
            .attributes
            .iter()
            .filter(|(k, _)| k.as_str() != "fact" && k.as_str() != "value")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut l = labels(others);
        l.entry("source".to_owned()).or_insert_with(|| e.source.clone());
        l.retain(|_, v| !v.is_empty());
        out.push(fact(name, l, value, at));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pantau_proto::v1::CheckKind;

    use super::*;

    #[test]
    fn check_results_become_check_up_and_duration() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let r = CheckResult {
            target_id: "api".into(),
            location: "jkt".into(),
            kind: CheckKind::Http.into(),
            status: CheckStatus::Down.into(),
            latency: Some(pantau_core::time::to_duration(Duration::from_millis(1500))),
            checked_at: Some(pantau_core::time::to_timestamp(now + Duration::from_secs(60))),
            labels: [
                ("env".to_owned(), "prod".to_owned()),
                ("bad label".to_owned(), "x".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let f = from_check(&r, now);
        assert_eq!(f[0].name, "check_up");
        assert_eq!(f[0].value, Value::Num(0.0));
        assert_eq!(f[0].at, now, "a future timestamp is clamped");
        let keys: Vec<_> = f[0].labels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["env", "kind", "location", "target"]);
        assert_eq!(f[0].labels["kind"], "http");
        assert_eq!(f[1].name, "check_duration_ms");
        assert_eq!(f[1].value, Value::Num(1500.0));
    }

    #[test]
    fn an_interface_sample_says_whether_the_port_is_enabled() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let disabled = InterfaceSample {
            router_id: "sw1".into(),
            if_name: "ge-0/0/7".into(),
            oper_up: false,
            admin_up: false,
            ..Default::default()
        };
        let f = from_iface(&disabled, now);
        assert_eq!(f[0].name, "interface_up");
        assert_eq!(f[0].labels["admin"], "down");
        assert_eq!(
            (f[1].name.as_str(), &f[1].value),
            ("interface_went_down", &Value::Num(0.0))
        );
        let went = InterfaceSample {
            router_id: "sw1".into(),
            if_name: "ge-0/0/1".into(),
            admin_up: true,
            went_down: true,
            ..Default::default()
        };
        let f = from_iface(&went, now);
        assert_eq!(
            (f[1].name.as_str(), &f[1].value),
            ("interface_went_down", &Value::Num(1.0))
        );
        assert_eq!(f[1].labels.keys().collect::<Vec<_>>(), ["interface", "router"]);
        // The default rule reads the change, not the state.
        let rule = crate::rule::defaults()
            .into_iter()
            .find(|r| r.id == "interface-down")
            .unwrap();
        assert_eq!(rule.expr, "interface_went_down == 1");
    }

    #[test]
    fn events_become_facts() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let down = RouterEvent {
            kind: EventKind::InterfaceDown.into(),
            source: "core1".into(),
            attributes: [
                ("interface".to_owned(), "ether1".to_owned()),
                ("admin_up".to_owned(), "true".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let f = from_event(&down, now);
        assert_eq!(f.len(), 1, "no went_down attribute, no went_down fact");
        assert_eq!((f[0].name.as_str(), &f[0].value), ("interface_up", &Value::Num(0.0)));
        assert_eq!(f[0].labels["interface"], "ether1");
        assert_eq!(f[0].labels["admin"], "up", "the same series as the samples'");
        let health = RouterEvent {
            kind: EventKind::MetricsUpdate.into(),
            source: "pantau-1".into(),
            attributes: [
                ("fact".to_owned(), "health".to_owned()),
                ("value".to_owned(), "unhealthy".to_owned()),
                ("component".to_owned(), "database".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let f = from_event(&health, now);
        assert_eq!(f[0].name, "health");
        assert_eq!(f[0].value, Value::Str("unhealthy".into()));
        assert_eq!(f[0].labels["component"], "database");
        assert_eq!(f[0].labels["source"], "pantau-1");
        assert!(
            from_metric(
                &MetricSample {
                    name: "bad name".into(),
                    ..Default::default()
                },
                now
            )
            .is_none()
        );
    }

    #[test]
    fn wan_interfaces_get_the_wan_role() {
        let roles = WanRoles::default();
        let mut wan = RouterEvent {
            source: "r1".into(),
            kind: EventKind::WanDetected.into(),
            ..RouterEvent::default()
        };
        wan.attributes
            .insert("wan_interfaces".into(), "ether1,pppoe-out1".into());
        roles.learn(&wan);
        let down = |iface: &str| RouterEvent {
            source: "r1".into(),
            kind: EventKind::InterfaceDown.into(),
            attributes: [("interface".to_owned(), iface.to_owned())].into_iter().collect(),
            ..RouterEvent::default()
        };
        let mut f = from_event(&down("ether1"), SystemTime::now());
        f.extend(from_event(&down("ether5"), SystemTime::now()));
        roles.label(&mut f);
        assert_eq!(f[0].labels.get("role").map(String::as_str), Some("wan"));
        assert_eq!(f[1].labels.get("role"), None, "a LAN port stays unlabelled");
    }

    #[test]
    fn a_consensus_becomes_consensus_up() {
        let mut c = ConsensusResult {
            target_id: "web".into(),
            locations_total: 3,
            locations_successful: 1,
            down_locations: vec!["jkt".into(), "sby".into()],
            ..ConsensusResult::default()
        };
        c.set_status(ConsensusStatus::Down);
        let f = from_consensus(&c, SystemTime::now());
        assert_eq!((f[0].name.as_str(), &f[0].value), ("consensus_up", &Value::Num(0.0)));
        assert_eq!(f[0].labels.get("target").map(String::as_str), Some("web"));
        assert_eq!(f[1].value, Value::Num(2.0));
        c.set_status(ConsensusStatus::Partial);
        assert_eq!(from_consensus(&c, SystemTime::now())[0].value, Value::Num(0.5));
    }
}
