//! Subjects: validation, wildcard matching, the subject families, and the
//! builders of every subject Pantau publishes on.

use super::BusError;

/// Checks a subject to publish on: dot-separated, non-empty tokens, no
/// whitespace, no wildcards.
pub fn validate_publish(subject: &str) -> Result<(), BusError> {
    validate(subject, false)
}

/// Checks a subscription pattern: like a subject, with `*` as a whole token
/// anywhere and `>` as the last token.
pub fn validate_pattern(pattern: &str) -> Result<(), BusError> {
    validate(pattern, true)
}

fn validate(s: &str, wildcards: bool) -> Result<(), BusError> {
    let bad = |reason| BusError::InvalidSubject {
        subject: s.to_owned(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    // No allocation: every result published is validated.
    let mut tokens = s.split('.').peekable();
    while let Some(t) = tokens.next() {
        if t.is_empty() {
            return Err(bad("it has an empty token"));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace"));
        }
        let wild = t == "*" || t == ">";
        if !wild && (t.contains('*') || t.contains('>')) {
            return Err(bad("a wildcard must be a whole token"));
        }
        if wild && !wildcards {
            return Err(bad("wildcards are only for subscriptions"));
        }
        if t == ">" && tokens.peek().is_some() {
            return Err(bad("`>` must be the last token"));
        }
    }
    Ok(())
}

/// Whether `subject` matches `pattern` (`*` one token, `>` one or more trailing).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) | (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The bounded "family" of a subject for metric labels: its first three
/// tokens (`pantau.check.result`), never the ids after them. The families
/// published at every check are borrowed, not built: this runs per message.
pub fn family(subject: &str) -> std::borrow::Cow<'static, str> {
    const STATIC: [&str; 6] = [
        "pantau.check.result",
        "pantau.iface.sample",
        "pantau.router.info",
        "pantau.alert.firing",
        "pantau.alert.acknowledged",
        "pantau.alert.resolved",
    ];
    if let Some(f) = STATIC.iter().find(|f| {
        subject
            .strip_prefix(**f)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }) {
        return std::borrow::Cow::Borrowed(f);
    }
    let tokens: Vec<&str> = subject.split('.').take(3).collect();
    let joined = match tokens.as_slice() {
        // The third token of these is a target or a consumer: unbounded.
        [root, kind @ ("consensus" | "deadletter"), ..] => format!("{root}.{kind}"),
        _ => tokens.join("."),
    };
    std::borrow::Cow::Owned(joined)
}

/// `pantau.check.result.<location>.<target_id>`
pub fn check_result(location: &str, target_id: &str) -> String {
    format!("pantau.check.result.{location}.{target_id}")
}

/// Every check result, from every location.
pub const ALL_CHECK_RESULTS: &str = "pantau.check.result.>";

/// `pantau.iface.sample.<router_id>.<if_index>`
pub fn iface_sample(router_id: &str, if_index: u32) -> String {
    format!("pantau.iface.sample.{router_id}.{if_index}")
}

/// `pantau.router.info.<router_id>`: a router's identity, uptime, default
/// routes and interfaces after each poll (`RouterInfo`).
pub fn router_info(router_id: &str) -> String {
    format!("pantau.router.info.{router_id}")
}

/// `pantau.event.<kind>.<source>`
pub fn event(kind: &str, source: &str) -> String {
    format!("pantau.event.{kind}.{source}")
}

/// `pantau.metric.<name>`
pub fn metric(name: &str) -> String {
    format!("pantau.metric.{name}")
}

/// `pantau.alert.<state>.<alert_id>`
pub fn alert(state: &str, alert_id: &str) -> String {
    format!("pantau.alert.{state}.{alert_id}")
}

/// `pantau.incident.<kind>.<incident_id>`: a change of an incident
/// (`IncidentEvent`); `kind` is its timeline entry's kind (`opened`,
/// `joined`, `left`, `acknowledged`, `commented`, `notified`, `resolved`).
pub fn incident(kind: &str, incident_id: &str) -> String {
    format!("pantau.incident.{kind}.{incident_id}")
}

/// `pantau.delivery.<outcome>.<alert_id>`: what became of one delivery of an
/// alert's notification (`DeliveryEvent`); `outcome` is `delivered` or `failed`.
pub fn delivery(outcome: &str, alert_id: &str) -> String {
    format!("pantau.delivery.{outcome}.{alert_id}")
}

/// `pantau.consensus.<target_id>`: a target's cross-location consensus
/// (`ConsensusResult`), on a subject of its own so that `pantau.event.>`
/// carries `RouterEvent`s only.
pub fn consensus(target_id: &str) -> String {
    format!("pantau.consensus.{target_id}")
}

/// A subject token for an instance name: letters, digits, `-` and `_` kept,
/// anything else `_`, at most 128 characters; `local` when empty.
pub fn instance_token(instance: &str) -> String {
    let t: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if t.is_empty() { "local".to_owned() } else { t }
}

/// `pantau.maintenance.<kind>.<token>`: the maintenance windows made through
/// the API, as a whole `MaintenanceSnapshot`: `changed.<window_id>` and
/// `deleted.<window_id>` after a change, `snapshot.<instance>` from the
/// alert engine at its start, every 30 s and when asked; `wanted.<instance>`
/// (empty payload) is a collector asking for one.
pub fn maintenance(kind: &str, token: &str) -> String {
    format!("{MAINTENANCE_PREFIX}{kind}.{token}")
}

/// `pantau.deadletter.<consumer>`: what the consumer `consumer` could not
/// decode or handle, with the original subject in the
/// [`ORIGINAL_SUBJECT`](crate::bus::consume::header::ORIGINAL_SUBJECT) header.
pub fn dead_letter(consumer: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}{consumer}")
}

/// Subject prefixes, one per message family (each ends with a dot).
pub const CHECK_RESULT_PREFIX: &str = "pantau.check.result.";
pub const IFACE_SAMPLE_PREFIX: &str = "pantau.iface.sample.";
pub const ROUTER_INFO_PREFIX: &str = "pantau.router.info.";
pub const EVENT_PREFIX: &str = "pantau.event.";
pub const METRIC_PREFIX: &str = "pantau.metric.";
pub const ALERT_PREFIX: &str = "pantau.alert.";
pub const INCIDENT_PREFIX: &str = "pantau.incident.";
pub const DELIVERY_PREFIX: &str = "pantau.delivery.";
pub const CONSENSUS_PREFIX: &str = "pantau.consensus.";
pub const DEAD_LETTER_PREFIX: &str = "pantau.deadletter.";
pub const MAINTENANCE_PREFIX: &str = "pantau.maintenance.";

/// Every interface sample.
pub const ALL_IFACE_SAMPLES: &str = "pantau.iface.sample.>";
/// Every router's info.
pub const ALL_ROUTER_INFO: &str = "pantau.router.info.>";
/// Every router, target or instance event.
pub const ALL_EVENTS: &str = "pantau.event.>";
/// Every metric sample.
pub const ALL_METRICS: &str = "pantau.metric.>";
/// Every alert lifecycle event.
pub const ALL_ALERTS: &str = "pantau.alert.>";
/// Every incident change.
pub const ALL_INCIDENTS: &str = "pantau.incident.>";
/// Every delivery outcome.
pub const ALL_DELIVERIES: &str = "pantau.delivery.>";
/// Every maintenance snapshot and request.
pub const ALL_MAINTENANCE: &str = "pantau.maintenance.>";
/// Every collector's request for a maintenance snapshot.
pub const MAINTENANCE_WANTED: &str = "pantau.maintenance.wanted.>";
/// Every consensus result.
pub const ALL_CONSENSUS: &str = "pantau.consensus.>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("pantau.check.result.>", "pantau.check.result.jkt.web"));
        assert!(!matches("pantau.check.result.>", "pantau.check.result"));
        assert!(matches("pantau.*.result.*.web", "pantau.check.result.jkt.web"));
        assert!(!matches("pantau.*.result", "pantau.check.result.jkt"));
        assert!(matches("pantau.event.reboot.r1", "pantau.event.reboot.r1"));
        assert!(!matches("pantau.event.reboot.r1", "pantau.event.reboot.r2"));
        assert!(matches(">", "a"));
    }

    #[test]
    fn validation() {
        assert!(validate_publish("pantau.check.result.jkt.web").is_ok());
        assert!(validate_publish("pantau.check.>").is_err());
        assert!(validate_publish("pantau..x").is_err());
        assert!(validate_publish("pantau.a b").is_err());
        assert!(validate_pattern("pantau.>").is_ok());
        assert!(validate_pattern("pantau.>.x").is_err());
        assert!(validate_pattern("pantau.a*").is_err());
        assert!(validate_pattern("").is_err());
    }

    #[test]
    fn family_is_bounded() {
        assert_eq!(family("pantau.check.result.jkt.web-1"), "pantau.check.result");
        assert_eq!(family("pantau.metric.cpu"), "pantau.metric.cpu");
        assert_eq!(
            family("pantau.consensus.web-1"),
            "pantau.consensus",
            "no target id in a label"
        );
        assert_eq!(family("pantau.deadletter.notifier"), "pantau.deadletter");
    }
}
