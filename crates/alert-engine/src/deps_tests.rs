use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use pantau_proto::v1::CheckResult;

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_900_000_000 + s)
}

fn seen(target: &str, up: bool, at: SystemTime, parents: &[&str]) -> Observed {
    Observed {
        target: target.into(),
        location: "jkt".into(),
        up,
        at,
        fresh: true,
        parents: parents.iter().map(|p| p.parse().unwrap()).collect(),
        labels: BTreeMap::new(),
    }
}

fn at_site(target: &str, site: &str, up: bool, at: SystemTime) -> Observed {
    Observed {
        labels: [("site".to_owned(), site.to_owned())].into(),
        ..seen(target, up, at, &[])
    }
}

fn somewhere(target: &str, location: &str, up: bool, at: SystemTime, parents: &[&str]) -> Observed {
    Observed {
        location: location.into(),
        ..seen(target, up, at, parents)
    }
}

fn alert(id: &str, source: &str, labels: &[(&str, &str)], state: State) -> Alert {
    Alert {
        id: id.into(),
        fingerprint: id.into(),
        rule_id: "r".into(),
        rule_name: "r".into(),
        state,
        severity: "critical".into(),
        summary: "down".into(),
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        source: source.into(),
        resource: String::new(),
        value: String::new(),
        started_at: t(0),
        updated_at: t(0),
        acknowledged_at: None,
        acknowledged_by: String::new(),
        acknowledge_comment: String::new(),
        resolved_at: None,
        resolved_by: String::new(),
        suppressed_by: String::new(),
        notified: false,
        restored: false,
    }
}

fn child_alert(target: &str) -> Alert {
    alert(
        &format!("a-{target}"),
        "check_up",
        &[("target", target), ("location", "jkt")],
        State::Firing,
    )
}

#[test]
fn a_child_is_held_while_its_parent_target_is_down_and_by_its_alert_once_open() {
    let mut d = Deps::default();
    d.observe(seen("uplink", true, t(0), &[]));
    d.observe(seen("web", true, t(0), &["uplink"]));
    assert!(d.active());
    d.observe(seen("uplink", false, t(10), &[]));
    d.observe(seen("web", false, t(11), &["uplink"]));
    assert_eq!(
        d.cause(&child_alert("web"), t(12)).as_deref(),
        Some("depends:target:uplink")
    );
    let parent = alert(
        "p1",
        "check_up",
        &[("target", "uplink"), ("location", "jkt")],
        State::Firing,
    );
    d.note_alert(&parent, t(12));
    assert_eq!(d.cause(&child_alert("web"), t(13)).as_deref(), Some("depends:p1"));
    assert_eq!(d.affected(&parent), ["web"]);
    // Another location's parent alert does not hold this location's child.
    let mut other = child_alert("web");
    other.labels.insert("location".into(), "sby".into());
    assert_eq!(d.cause(&other, t(13)), None);
}

#[test]
fn after_the_parent_recovers_a_child_waits_for_its_own_next_check() {
    let mut d = Deps::default();
    d.observe(seen("uplink", false, t(10), &[]));
    d.observe(seen("web", false, t(11), &["uplink"]));
    d.observe(seen("uplink", true, t(20), &[]));
    assert!(
        d.cause(&child_alert("web"), t(20)).is_some(),
        "not checked since the recovery"
    );
    // An open breaker's DOWN is no check: the child still waits.
    let mut unchecked = seen("web", false, t(21), &["uplink"]);
    unchecked.fresh = false;
    d.observe(unchecked);
    assert!(
        d.cause(&child_alert("web"), t(21)).is_some(),
        "a breaker's result is not a check"
    );
    d.observe(seen("web", false, t(22), &["uplink"]));
    assert_eq!(
        d.cause(&child_alert("web"), t(22)),
        None,
        "still down on its own: it notifies"
    );
    // The wait is bounded.
    let mut d = Deps::default();
    d.observe(seen("uplink", false, t(10), &[]));
    d.observe(seen("web", false, t(11), &["uplink"]));
    d.observe(seen("uplink", true, t(20), &[]));
    assert_eq!(d.cause(&child_alert("web"), t(20) + MAX_HOLD), None);
}

#[test]
fn a_child_that_fails_first_waits_for_its_parents_next_check() {
    let mut d = Deps::default();
    d.observe(seen("uplink", true, t(0), &[]));
    d.observe(seen("web", true, t(0), &["uplink"]));
    d.observe(seen("uplink", true, t(5), &[]));
    d.observe(seen("web", false, t(9), &["uplink"]));
    assert!(
        d.cause(&child_alert("web"), t(9)).is_some(),
        "the parent was last checked before"
    );
    d.observe(seen("uplink", true, t(10), &[]));
    assert_eq!(
        d.cause(&child_alert("web"), t(10)),
        None,
        "the parent is up: the child notifies"
    );
    d.observe(seen("uplink", false, t(11), &[]));
    assert!(d.cause(&child_alert("web"), t(11)).is_some());
}

#[test]
fn routers_and_interfaces_hold_through_their_alerts_and_after_their_resolve() {
    let mut d = Deps::default();
    d.observe(seen("site-a", true, t(0), &["interface:core/ether1"]));
    d.observe(seen("site-b", true, t(0), &["router:core"]));
    d.observe(seen("site-a", false, t(5), &["interface:core/ether1"]));
    d.observe(seen("site-b", false, t(5), &["router:core"]));
    let wan = alert(
        "w1",
        "interface_up",
        &[("router", "core"), ("interface", "ether1")],
        State::Firing,
    );
    let api = alert("r1", "router_api_up", &[("router", "core")], State::Firing);
    // An interface alert that is not about its link being down holds nothing.
    let reset = alert(
        "c1",
        "counter_reset",
        &[("router", "core"), ("interface", "ether1")],
        State::Firing,
    );
    d.note_alert(&reset, t(5));
    assert_eq!(d.cause(&child_alert("site-a"), t(6)), None);
    d.note_alert(&wan, t(6));
    d.note_alert(&api, t(6));
    assert_eq!(d.cause(&child_alert("site-a"), t(7)).as_deref(), Some("depends:w1"));
    assert_eq!(d.cause(&child_alert("site-b"), t(7)).as_deref(), Some("depends:r1"));
    assert_eq!(d.affected(&wan), ["site-a"]);
    let mut resolved = wan.clone();
    resolved.state = State::Resolved;
    d.note_alert(&resolved, t(8));
    assert_eq!(
        d.cause(&child_alert("site-a"), t(8)).as_deref(),
        Some("depends:interface:core/ether1"),
        "held until its own next check"
    );
    d.observe(seen("site-a", false, t(9), &["interface:core/ether1"]));
    assert_eq!(d.cause(&child_alert("site-a"), t(9)), None);
}

fn poll(router: &str, interface: &str, up: bool, at: SystemTime) -> Polled {
    Polled {
        router: router.into(),
        interface: interface.into(),
        up,
        at,
    }
}

#[test]
fn a_child_waits_for_the_next_poll_of_its_link_or_router() {
    let mut d = Deps::default();
    d.observe(seen("site-a", true, t(0), &["interface:core/ether1"]));
    d.observe(seen("site-b", true, t(0), &["router:core"]));
    d.take(Signal::Link(poll("core", "ether1", true, t(1))));
    // Another router's link going down holds nobody.
    d.take(Signal::Link(poll("other", "ether1", false, t(1))));
    d.observe(seen("site-a", false, t(5), &["interface:core/ether1"]));
    d.observe(seen("site-b", false, t(5), &["router:core"]));
    // Both failed after the router's last poll: they wait for the next one.
    assert!(d.cause(&child_alert("site-a"), t(6)).is_some());
    assert!(d.cause(&child_alert("site-b"), t(6)).is_some());
    d.take(Signal::Link(poll("core", "ether1", false, t(7))));
    assert_eq!(
        d.cause(&child_alert("site-a"), t(7)).as_deref(),
        Some("depends:interface:core/ether1"),
        "the link is down"
    );
    assert_eq!(
        d.cause(&child_alert("site-b"), t(7)),
        None,
        "the router answered: not its fault"
    );
    d.take(Signal::Link(poll("core", "ether1", true, t(8))));
    assert!(
        d.cause(&child_alert("site-a"), t(8)).is_some(),
        "back before the child's next check"
    );
    d.observe(seen("site-a", false, t(9), &["interface:core/ether1"]));
    assert_eq!(d.cause(&child_alert("site-a"), t(9)), None, "down on its own");
    // The wait for a poll is bounded.
    d.observe(seen("site-a", true, t(10), &["interface:core/ether1"]));
    d.observe(seen("site-a", false, t(11), &["interface:core/ether1"]));
    assert!(d.cause(&child_alert("site-a"), t(12)).is_some());
    assert_eq!(d.cause(&child_alert("site-a"), t(11) + MAX_HOLD), None);
}

#[test]
fn a_restored_suppression_is_kept_until_its_target_reports_or_the_hold_ends() {
    let d = Deps::default();
    let mut a = child_alert("web");
    a.suppressed_by = "depends:p1".into();
    let now = SystemTime::now();
    assert_eq!(d.cause(&a, now).as_deref(), Some("depends:p1"));
    assert_eq!(d.cause(&a, now + MAX_HOLD + Duration::from_secs(1)), None);
    a.suppressed_by = "silence:s1".into();
    assert_eq!(d.cause(&a, now), None, "only a parent's cause is kept");
}

#[test]
fn targets_without_dependencies_cost_no_state() {
    let mut d = Deps::default();
    for i in 0..1000 {
        d.observe(seen(&format!("t{i}"), i % 2 == 0, t(1), &[]));
    }
    assert!(!d.active());
    assert!(d.checks.is_empty() && d.parents.is_empty());
    // Dropping the last dependency forgets the child.
    d.observe(seen("web", true, t(1), &["uplink"]));
    d.observe(seen("web", true, t(2), &[]));
    assert!(!d.active() && d.children.is_empty());
}

#[test]
fn hostile_dependencies_in_a_result_are_skipped() {
    let r = CheckResult {
        target_id: "web".into(),
        depends_on: vec![
            "uplink".into(),
            "bogus:kind".into(),
            String::new(),
            "x".repeat(10_000),
            "interface:r/".into(),
        ],
        ..CheckResult::default()
    };
    let o = Observed::of(&r, t(0));
    assert_eq!(o.parents, [Dependency::Target("uplink".into())]);
    let many = CheckResult {
        depends_on: (0..10_000).map(|i| format!("t{i}")).collect(),
        ..CheckResult::default()
    };
    assert_eq!(Observed::of(&many, t(0)).parents.len(), pantau_config::MAX_DEPENDENCIES);
}

#[test]
fn the_summary_names_the_affected_children() {
    assert_eq!(with_affected("uplink is down", &[]), "uplink is down");
    assert_eq!(
        with_affected("uplink is down", &["b", "a"]),
        "uplink is down (2 dependent targets affected: a, b)"
    );
    let many: Vec<String> = (0..20).map(|i| format!("t{i:02}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let s = with_affected("x", &refs);
    assert!(
        s.starts_with("x (20 dependent targets affected: t00, t01, t02, t03, t04 and 15 more)"),
        "{s}"
    );
}

#[test]
fn what_the_bus_sends_is_tracked_only_up_to_the_limit() {
    let mut d = Deps::with_limit(100);
    // A publisher inventing children and links without end.
    for i in 0..1000 {
        d.observe(seen(&format!("child-{i}"), true, t(1), &["uplink"]));
        d.take(Signal::Link(poll(&format!("r{i}"), "ether1", true, t(1))));
    }
    assert_eq!(d.parents.len(), 100);
    assert_eq!(d.links.len(), 100);
    assert!(d.polled.len() <= 100);
    // Known ones still update.
    d.take(Signal::Link(poll("r0", "ether1", false, t(2))));
    assert!(!d.links[&("r0".to_owned(), "ether1".to_owned())].up);
    // Links not sampled for a hold make room for new ones.
    let later = t(3) + MAX_HOLD;
    d.take(Signal::Link(poll("core", "ether1", false, later)));
    assert!(d.links.contains_key(&("core".to_owned(), "ether1".to_owned())));
    assert_eq!(d.links.len(), 1);
    assert_eq!(d.polled.len(), 1);
}

#[test]
fn a_location_is_down_when_all_its_results_are_down_or_it_falls_silent() {
    let mut d = Deps::default().with_staleness(Duration::from_secs(60));
    // `branch-printer` is checked from `jkt` and depends on `bdg`.
    d.observe(seen("branch-printer", true, t(0), &["location:bdg"]));
    assert!(d.location_changes(t(0)).is_empty(), "nothing heard from bdg yet");
    d.observe(somewhere("bdg-a", "bdg", true, t(1), &[]));
    d.observe(somewhere("bdg-b", "bdg", true, t(1), &[]));
    assert_eq!(d.location_changes(t(1)), [("bdg".to_owned(), true)]);
    assert!(d.location_changes(t(2)).is_empty(), "said once");
    // One of two down: the location is fine.
    d.observe(somewhere("bdg-a", "bdg", false, t(3), &[]));
    d.observe(seen("branch-printer", false, t(3), &["location:bdg"]));
    assert!(d.location_changes(t(3)).is_empty());
    // Both down: the location is down, and holds its children.
    d.observe(somewhere("bdg-b", "bdg", false, t(4), &[]));
    assert_eq!(d.location_changes(t(4)), [("bdg".to_owned(), false)]);
    assert_eq!(
        d.cause(&child_alert("branch-printer"), t(5)).as_deref(),
        Some("depends:location:bdg")
    );
    // Its alert (`location_up == 0`) is the root cause from then on.
    let root = alert("loc1", LOCATION_UP, &[("location", "bdg")], State::Firing);
    d.note_alert(&root, t(5));
    assert_eq!(
        d.cause(&child_alert("branch-printer"), t(5)).as_deref(),
        Some("depends:loc1")
    );
    assert_eq!(d.as_parent(&root).as_deref(), Some("location:bdg"));
    assert_eq!(d.affected(&root), ["branch-printer"]);
    let mut resolved = root.clone();
    resolved.state = State::Resolved;
    d.note_alert(&resolved, t(6));
    // Back up: released once the child is checked again.
    d.observe(somewhere("bdg-a", "bdg", true, t(7), &[]));
    assert_eq!(d.location_changes(t(7)), [("bdg".to_owned(), true)]);
    d.observe(seen("branch-printer", false, t(8), &["location:bdg"]));
    assert_eq!(d.cause(&child_alert("branch-printer"), t(8)), None, "down on its own");
    // Silent for the staleness: down again, with no message saying so.
    assert_eq!(d.location_changes(t(70)), [("bdg".to_owned(), false)]);
    assert!(d.cause(&child_alert("branch-printer"), t(70)).is_some());
}

#[test]
fn a_location_nobody_depends_on_costs_nothing() {
    let mut d = Deps::default();
    for i in 0..100 {
        d.observe(somewhere(&format!("t{i}"), "sby", false, t(1), &[]));
    }
    assert!(d.places.is_empty() && d.location_changes(t(2)).is_empty());
    d.observe(seen("web", true, t(3), &["location:sby"]));
    assert_eq!(d.places.len(), 1);
    d.observe(seen("web", true, t(4), &[]));
    assert!(d.places.is_empty(), "forgotten with its last child");
}

fn wan_down(router: &str) -> Alert {
    alert(
        &format!("wan-{router}"),
        "interface_up",
        &[("router", router), ("interface", "ether1"), ("role", "wan")],
        State::Firing,
    )
}

#[test]
fn derived_a_sites_targets_are_held_while_all_its_routers_wan_links_are_down() {
    let mut d = Deps::default().deriving(Some("site".into()));
    d.take(Signal::Router {
        router: "core".into(),
        labels: [("site".to_owned(), "jkt".to_owned())].into(),
    });
    d.take(Signal::Wan {
        router: "core".into(),
        interfaces: vec!["ether1".into(), "pppoe-out1".into()],
    });
    d.take(Signal::Link(poll("core", "ether1", true, t(0))));
    d.take(Signal::Link(poll("core", "pppoe-out1", true, t(0))));
    d.observe(at_site("pos", "jkt", true, t(0)));
    d.observe(at_site("elsewhere", "sby", true, t(0)));
    assert!(d.active());
    let mut pos = child_alert("pos");
    pos.labels.insert("site".into(), "jkt".into());
    // One link down: the site still has its other uplink.
    d.take(Signal::Link(poll("core", "ether1", false, t(2))));
    d.observe(at_site("pos", "jkt", false, t(3)));
    d.take(Signal::Link(poll("core", "pppoe-out1", true, t(4))));
    assert_eq!(d.cause(&pos, t(4)), None);
    // Both down: held by the router, then by the WAN alert once open.
    d.take(Signal::Link(poll("core", "pppoe-out1", false, t(5))));
    assert_eq!(d.cause(&pos, t(5)).as_deref(), Some("depends:router:core"));
    let root = wan_down("core");
    d.note_alert(&root, t(6));
    assert_eq!(d.cause(&pos, t(6)).as_deref(), Some("depends:wan-core"));
    assert_eq!(d.as_parent(&root).as_deref(), Some("router:core"));
    assert_eq!(d.affected(&root), ["pos"]);
    // Another site's target is not held, nor one without a site.
    let mut other = child_alert("elsewhere");
    other.labels.insert("site".into(), "sby".into());
    assert_eq!(d.cause(&other, t(6)), None);
    assert_eq!(d.cause(&child_alert("nosite"), t(6)), None);
    // A LAN port is no root cause.
    let mut lan = wan_down("core");
    lan.labels.insert("interface".into(), "bridge".into());
    assert_eq!(d.as_parent(&lan), None);
}

#[test]
fn derived_dependencies_are_off_unless_asked_for() {
    let mut d = Deps::default();
    d.take(Signal::Router {
        router: "core".into(),
        labels: [("site".to_owned(), "jkt".to_owned())].into(),
    });
    d.take(Signal::Wan {
        router: "core".into(),
        interfaces: vec!["ether1".into()],
    });
    d.take(Signal::Link(poll("core", "ether1", false, t(1))));
    d.observe(at_site("pos", "jkt", false, t(2)));
    let mut pos = child_alert("pos");
    pos.labels.insert("site".into(), "jkt".into());
    assert!(!d.active());
    assert_eq!(d.cause(&pos, t(3)), None);
    assert_eq!(d.as_parent(&wan_down("core")), None);
}

#[test]
fn hostile_wan_and_router_messages_are_bounded() {
    use pantau_proto::v1::{EventKind, RouterEvent, RouterInfo};
    let list = (0..10_000).map(|i| format!("if{i}")).collect::<Vec<_>>().join(",");
    let e = RouterEvent {
        kind: EventKind::WanDetected as i32,
        source: "core".into(),
        attributes: [("wan_interfaces".to_owned(), format!(" ,,{list}"))].into(),
        ..RouterEvent::default()
    };
    let Some(Signal::Wan { interfaces, .. }) = Signal::wan(&e) else {
        panic!("a wan_detected event is a signal")
    };
    assert_eq!(interfaces.len(), MAX_WAN_LINKS);
    assert_eq!(interfaces[0], "if0");
    let reboot = RouterEvent {
        kind: EventKind::Reboot as i32,
        ..e
    };
    assert!(
        Signal::wan(&reboot).is_none(),
        "only wan_detected says which links are WAN"
    );
    let mut d = Deps::with_limit(10).deriving(Some("site".into()));
    for i in 0..1000 {
        let info = RouterInfo {
            router_id: format!("r{i}"),
            labels: [("site".to_owned(), format!("s{i}"))].into(),
            ..RouterInfo::default()
        };
        d.take(Signal::router(&info));
        d.take(Signal::Wan {
            router: format!("r{i}"),
            interfaces: vec!["ether1".into()],
        });
        d.observe(at_site(&format!("t{i}"), &format!("s{i}"), true, t(1)));
    }
    assert_eq!(d.derived.router_site.len(), 10);
    assert_eq!(d.derived.wan.len(), 10);
    assert_eq!(d.derived.target_site.len(), 10);
    // A site name past a label value's bound names no site.
    let mut d2 = Deps::default().deriving(Some("site".into()));
    d2.observe(at_site("t", &"s".repeat(100_000), true, t(1)));
    d2.observe_router("r", &[("site".to_owned(), "s".repeat(100_000))].into());
    assert!(d2.derived.target_site.is_empty() && d2.derived.router_site.is_empty());
    // A router that loses its site label leaves its site.
    d.take(Signal::Router {
        router: "r0".into(),
        labels: BTreeMap::new(),
    });
    assert!(!d.derived.router_site.contains_key("r0"));
}
