use std::time::{Duration, SystemTime};

use super::*;
use crate::lifecycle::{Alert, Change, State, Transition};

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
}

fn alert(id: &str, target: &str, suppressed_by: &str, severity: &str) -> Alert {
    Alert {
        id: id.into(),
        fingerprint: format!("fp-{id}"),
        rule_id: "target_down".into(),
        rule_name: "target down".into(),
        state: State::Firing,
        severity: severity.into(),
        summary: format!("{target} is down"),
        labels: [("target".to_owned(), target.to_owned())].into_iter().collect(),
        source: "check_up".into(),
        resource: target.into(),
        value: "0".into(),
        started_at: t(0),
        updated_at: t(0),
        acknowledged_at: None,
        acknowledged_by: String::new(),
        acknowledge_comment: String::new(),
        resolved_at: None,
        resolved_by: String::new(),
        suppressed_by: suppressed_by.into(),
        notified: suppressed_by.is_empty(),
        restored: false,
    }
}

fn change(a: &Alert, state: State, at: SystemTime) -> Change {
    let mut alert = a.clone();
    alert.state = state;
    Change {
        transition: Transition {
            alert_id: a.id.clone(),
            state,
            at,
            actor: String::new(),
            comment: String::new(),
        },
        alert,
    }
}

fn cfg(group_by: &[&str], window: u64) -> IncidentsConfig {
    IncidentsConfig {
        group_by: group_by.iter().map(|s| (*s).to_owned()).collect(),
        window: Duration::from_secs(window),
    }
}

/// Groups as the engine does, with the dependency `uplink` as the parent.
fn group(a: &Alert, incs: &Incidents) -> Grouping {
    if let Some(cause) = a.suppressed_by.strip_prefix("depends:") {
        if cause.starts_with("target:") {
            return Grouping::by_cause(cause);
        }
        if let Some(p) = incs.of_alert(cause) {
            return Grouping {
                key: p.group_key.clone(),
                root_cause: p.root_cause.clone(),
            };
        }
    }
    if a.resource == "uplink" {
        return Grouping::by_cause("target:uplink");
    }
    Grouping::by_labels(a, incs.group_by())
}

fn fire(incs: &mut Incidents, a: &Alert, at: SystemTime) -> Write {
    let c = change(a, State::Firing, at);
    incs.follow(&c, |i| group(&c.alert, i))
        .expect("a firing alert joins an incident")
}

fn resolve(incs: &mut Incidents, a: &Alert, at: SystemTime) -> Option<Write> {
    let c = change(a, State::Resolved, at);
    incs.follow(&c, |i| group(&c.alert, i))
}

#[test]
fn a_parent_and_its_fifty_children_are_one_incident_resolved_by_its_last_alert() {
    let mut incs = Incidents::new(cfg(&["alertname"], 300));
    // Children first, held while the parent's own alert is not open yet.
    let first = alert("c0", "child-0", "depends:target:uplink", "warning");
    let w = fire(&mut incs, &first, t(0));
    let id = w.incident.id.clone();
    assert_eq!(w.incident.group_key, "depends:target:uplink");
    assert_eq!(w.incident.root_cause, "target:uplink");
    assert_eq!(w.incident.title, "target:uplink is down");
    assert_eq!(
        w.entries.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EntryKind::Opened, EntryKind::Joined],
        "a held alert notifies no one"
    );
    // The parent fires: it joins, names the incident and raises its severity.
    let parent = alert("p", "uplink", "", "critical");
    let w = fire(&mut incs, &parent, t(1));
    assert_eq!(w.incident.id, id);
    assert_eq!(w.incident.title, "uplink is down");
    assert_eq!(w.incident.severity, "critical");
    assert_eq!(
        w.entries.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EntryKind::Joined, EntryKind::Notified]
    );
    // The other children are held by the parent's alert, long after the window.
    let children: Vec<Alert> = (1..50)
        .map(|i| alert(&format!("c{i}"), &format!("child-{i}"), "depends:p", "warning"))
        .collect();
    for c in &children {
        assert_eq!(
            fire(&mut incs, c, t(1_000)).incident.id,
            id,
            "a root cause ignores the window"
        );
    }
    let now = incs.get(&id).unwrap();
    assert_eq!((now.alerts, now.open_alerts), (51, 51));
    assert_eq!(incs.open_members(&id).len(), 51);
    assert_eq!(incs.open_count(), 1);
    // Firing again (a release) does not join twice.
    assert!(
        incs.follow(&change(&parent, State::Firing, t(2)), |i| group(&parent, i))
            .is_none()
    );
    // The parent recovers, then the children: resolved with the last one only.
    let w = resolve(&mut incs, &parent, t(2_000)).unwrap();
    assert_eq!(w.incident.state, IncidentState::Open);
    assert_eq!(
        w.member,
        Some(Member::Leave {
            alert_id: "p".into(),
            at: t(2_000)
        })
    );
    for c in children.iter().chain([&first]).skip(1) {
        let w = resolve(&mut incs, c, t(2_001)).unwrap();
        assert_eq!(w.incident.state, IncidentState::Open);
    }
    let w = resolve(&mut incs, &children[0], t(2_002)).unwrap();
    assert_eq!(w.incident.state, IncidentState::Resolved);
    assert_eq!(w.incident.resolved_at, Some(t(2_002)));
    assert_eq!((w.incident.alerts, w.incident.open_alerts), (51, 0));
    assert_eq!(w.entries.last().unwrap().kind, EntryKind::Resolved);
    assert_eq!(incs.open_count(), 0);
    assert!(
        resolve(&mut incs, &children[0], t(2_003)).is_none(),
        "a second resolve changes nothing"
    );
}

#[test]
fn labels_group_within_the_window_and_open_a_new_incident_after_it() {
    let mut incs = Incidents::new(cfg(&["alertname", "site"], 300));
    let mut a = alert("a", "web", "", "warning");
    a.labels.insert("site".into(), "jkt".into());
    let mut b = alert("b", "db", "", "critical");
    b.labels.insert("site".into(), "jkt".into());
    let mut other_site = alert("c", "mail", "", "warning");
    other_site.labels.insert("site".into(), "sby".into());
    let w = fire(&mut incs, &a, t(0));
    assert_eq!(w.incident.group_key, "group:alertname=target_down,site=jkt");
    assert_eq!(w.incident.root_cause, "");
    assert_eq!(w.incident.title, "web is down");
    let first = w.incident.id;
    assert_eq!(fire(&mut incs, &b, t(299)).incident.id, first, "within the window");
    assert_ne!(fire(&mut incs, &other_site, t(10)).incident.id, first, "another site");
    // The window counts from the latest alert that joined.
    let mut late = alert("d", "dns", "", "info");
    late.labels.insert("site".into(), "jkt".into());
    let w = fire(&mut incs, &late, t(299 + 300));
    assert_ne!(w.incident.id, first, "after the window: a new incident");
    assert_eq!(w.incident.severity, "info");
    // An empty group_by groups everything; a missing label is an empty value.
    let mut all = Incidents::new(cfg(&[], 60));
    let x = fire(&mut all, &a, t(0)).incident.id;
    assert_eq!(fire(&mut all, &other_site, t(1)).incident.id, x);
    assert_eq!(Grouping::by_labels(&a, &["nope".into()]).key, "group:nope=");
}

#[test]
fn acknowledging_and_restoring_keep_the_incident_open_until_its_alerts_resolve() {
    let mut incs = Incidents::new(cfg(&["alertname"], 300));
    let a = alert("a", "web", "", "warning");
    let b = alert("b", "db", "", "warning");
    let id = fire(&mut incs, &a, t(0)).incident.id;
    fire(&mut incs, &b, t(1));
    let w = incs.acknowledge(&id, "dina", "on it", t(2)).unwrap();
    assert_eq!(w.incident.state, IncidentState::Acknowledged);
    assert_eq!(w.incident.acknowledged_by, "dina");
    assert_eq!(w.entries[0].kind, EntryKind::Acknowledged);
    assert_eq!(
        (w.entries[0].actor.as_str(), w.entries[0].text.as_str()),
        ("dina", "on it")
    );
    assert!(incs.acknowledge("nope", "dina", "", t(2)).is_none());
    // A restart: the store gives back the open incident and its open members.
    let stored = incs.get(&id).unwrap().clone();
    let mut again = Incidents::new(cfg(&["alertname"], 300));
    again.restore(
        vec![stored],
        vec![
            (id.clone(), "a".into()),
            (id.clone(), "b".into()),
            ("gone".into(), "x".into()),
        ],
    );
    assert_eq!(again.open_members(&id), ["a", "b"]);
    assert!(
        again.of_alert("x").is_none(),
        "a member of an unknown incident is dropped"
    );
    assert_eq!(
        resolve(&mut again, &a, t(3)).unwrap().incident.state,
        IncidentState::Acknowledged
    );
    assert_eq!(
        resolve(&mut again, &b, t(4)).unwrap().incident.state,
        IncidentState::Resolved
    );
    // An alert acknowledged on its own is on the timeline, naming who.
    let mut incs = Incidents::new(cfg(&["alertname"], 300));
    fire(&mut incs, &a, t(0));
    let mut ack = change(&a, State::Acknowledged, t(5));
    ack.transition.actor = "budi".into();
    let w = incs.follow(&ack, |i| group(&a, i)).unwrap();
    assert_eq!(
        (w.entries[0].kind, w.entries[0].actor.as_str()),
        (EntryKind::Acknowledged, "budi")
    );
    // Undo puts back what a failed store took away.
    let before = incs.of_alert("a").unwrap().clone();
    resolve(&mut incs, &a, t(6));
    assert_eq!(incs.open_count(), 0);
    incs.undo(before, "a");
    assert_eq!(incs.of_alert("a").map(|i| i.open_alerts), Some(1));
}

#[test]
fn hostile_comments_are_refused_naming_the_field() {
    assert!(check_comment("looking at the router").is_ok());
    assert!(check_comment("line one\nline two\ttabbed").is_ok());
    assert!(check_comment(&"é".repeat(MAX_COMMENT)).is_ok(), "characters, not bytes");
    for bad in [
        String::new(),
        "   \n ".to_owned(),
        "x".repeat(MAX_COMMENT + 1),
        "a\u{0}b".to_owned(),
        "bell\u{7}".to_owned(),
        "x".repeat(10 << 20),
    ] {
        let e = check_comment(&bad).unwrap_err();
        assert!(e.contains("`text`"), "{e}");
        assert!(e.len() < 200, "{e}");
    }
}

#[test]
fn states_and_kinds_round_trip_and_refuse_unknown_text() {
    for s in [
        IncidentState::Open,
        IncidentState::Acknowledged,
        IncidentState::Resolved,
    ] {
        assert_eq!(IncidentState::parse(s.as_str()), Some(s));
    }
    for bad in ["", "OPEN", "closed", "open ", "\u{0}"] {
        assert_eq!(IncidentState::parse(bad), None);
        assert_eq!(EntryKind::parse(bad), None);
    }
    let long = "x".repeat(1_000);
    let a = alert("a", &long, "", "warning");
    let mut incs = Incidents::new(cfg(&["alertname"], 300));
    let w = fire(&mut incs, &a, t(0));
    assert!(w.incident.title.chars().count() <= MAX_TITLE + 1, "a title is clipped");
}
