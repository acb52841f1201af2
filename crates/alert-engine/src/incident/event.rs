//! Incidents as protobuf: the bus message of a [`Write`] (`IncidentEvent`
//! on `pantau.incident.<kind>.<incident_id>`) and the gRPC views.

use pantau_core::time::to_timestamp;
use pantau_proto::v1 as pb;

use super::{Entry, EntryKind, Incident, IncidentState, Write};
use crate::engine::proto_severity;
use crate::lifecycle::Alert;

pub fn proto_state(s: IncidentState) -> pb::IncidentState {
    match s {
        IncidentState::Open => pb::IncidentState::Open,
        IncidentState::Acknowledged => pb::IncidentState::Acknowledged,
        IncidentState::Resolved => pb::IncidentState::Resolved,
    }
}

/// The state a request names; `None` for unspecified or unknown values.
pub fn state_from_proto(v: i32) -> Option<IncidentState> {
    match pb::IncidentState::try_from(v) {
        Ok(pb::IncidentState::Open) => Some(IncidentState::Open),
        Ok(pb::IncidentState::Acknowledged) => Some(IncidentState::Acknowledged),
        Ok(pb::IncidentState::Resolved) => Some(IncidentState::Resolved),
        _ => None,
    }
}

pub fn proto_kind(k: EntryKind) -> pb::IncidentEntryKind {
    match k {
        EntryKind::Opened => pb::IncidentEntryKind::Opened,
        EntryKind::Joined => pb::IncidentEntryKind::Joined,
        EntryKind::Left => pb::IncidentEntryKind::Left,
        EntryKind::Acknowledged => pb::IncidentEntryKind::Acknowledged,
        EntryKind::Commented => pb::IncidentEntryKind::Commented,
        EntryKind::Notified => pb::IncidentEntryKind::Notified,
        EntryKind::Resolved => pb::IncidentEntryKind::Resolved,
        EntryKind::Delivered => pb::IncidentEntryKind::Delivered,
        EntryKind::DeliveryFailed => pb::IncidentEntryKind::DeliveryFailed,
    }
}

pub fn entry_to_proto(e: &Entry) -> pb::IncidentEntry {
    pb::IncidentEntry {
        kind: proto_kind(e.kind).into(),
        at: Some(to_timestamp(e.at)),
        actor: e.actor.clone(),
        alert_id: e.alert_id.clone(),
        text: e.text.clone(),
    }
}

/// The protobuf view of an incident, with its members and timeline when given.
pub fn to_proto(i: &Incident, members: &[Alert], timeline: &[Entry]) -> pb::Incident {
    pb::Incident {
        id: i.id.clone(),
        title: i.title.clone(),
        state: proto_state(i.state).into(),
        severity: proto_severity(&i.severity).into(),
        group_key: i.group_key.clone(),
        root_cause: i.root_cause.clone(),
        opened_at: Some(to_timestamp(i.opened_at)),
        updated_at: Some(to_timestamp(i.updated_at)),
        acknowledged_at: i.acknowledged_at.map(to_timestamp),
        acknowledged_by: i.acknowledged_by.clone(),
        resolved_at: i.resolved_at.map(to_timestamp),
        alerts: i.alerts,
        open_alerts: i.open_alerts,
        members: members.iter().map(|a| crate::grpc::to_proto(a, &[])).collect(),
        timeline: timeline.iter().map(entry_to_proto).collect(),
    }
}

/// The bus messages of a write: one per timeline entry, each with the
/// incident as it is after the write. (subject, message)
pub fn to_events(w: &Write, instance: &str) -> Vec<(String, pb::IncidentEvent)> {
    let i = &w.incident;
    w.entries
        .iter()
        .map(|e| {
            let subject = pantau_core::bus::subject::incident(e.kind.as_str(), &i.id);
            let ev = pb::IncidentEvent {
                incident_id: i.id.clone(),
                state: proto_state(i.state).into(),
                title: i.title.clone(),
                severity: proto_severity(&i.severity).into(),
                group_key: i.group_key.clone(),
                root_cause: i.root_cause.clone(),
                entry: Some(entry_to_proto(e)),
                alerts: i.alerts,
                open_alerts: i.open_alerts,
                opened_at: Some(to_timestamp(i.opened_at)),
                instance: instance.to_owned(),
            };
            (subject, ev)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pantau_core::bus::BusEvent;
    use prost::Message;

    #[test]
    fn every_entry_kind_has_its_subject_token_and_decodes_back() {
        for k in EntryKind::ALL {
            assert_eq!(
                pantau_core::bus::event::incident_kind_token(proto_kind(k)),
                k.as_str(),
                "the bus token is the stored kind"
            );
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10);
        let w = Write {
            incident: Incident {
                id: "inc-a1".into(),
                group_key: "depends:target:uplink".into(),
                root_cause: "target:uplink".into(),
                title: "uplink is down".into(),
                state: IncidentState::Open,
                severity: "critical".into(),
                opened_at: at,
                updated_at: at,
                joined_at: at,
                acknowledged_at: None,
                acknowledged_by: String::new(),
                resolved_at: None,
                alerts: 2,
                open_alerts: 2,
            },
            member: None,
            entries: vec![Entry {
                kind: EntryKind::Joined,
                at,
                actor: String::new(),
                alert_id: "a2".into(),
                text: String::new(),
            }],
        };
        let (subject, ev) = to_events(&w, "jkt").remove(0);
        assert_eq!(subject, "pantau.incident.joined.inc-a1");
        let BusEvent::Incident { kind, incident } = BusEvent::decode_parts(&subject, &ev.encode_to_vec()).unwrap()
        else {
            panic!("not an incident")
        };
        assert_eq!(kind, pb::IncidentEntryKind::Joined);
        assert_eq!(incident, ev);
    }
}
