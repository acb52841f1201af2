//! What happened at each router, for the console's router page: reboots,
//! counter resets, interfaces going up or down, the router stopping or
//! starting to answer, and WAN detections, taken from the bus by the feed
//! (`pantau.event.<kind>.<router>`; `traffic` and metric events are not
//! kept). Bounded: the newest [`PER_ROUTER`] events of at most
//! [`MAX_ROUTERS`] routers, in memory: a restarted gateway starts with an
//! empty timeline (the collector does not store these events).

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;

use crate::labels::EventKind;
use crate::view::RouterEventView;

/// Events kept per router (the oldest goes first).
pub const PER_ROUTER: usize = 100;
/// Routers kept; events of further routers are not kept.
pub const MAX_ROUTERS: usize = 10_000;

/// Each router's recent events, oldest first.
#[derive(Debug, Default)]
pub struct Timeline {
    by_router: RwLock<HashMap<String, VecDeque<RouterEventView>>>,
}

/// The router an event belongs to, if it is one the timeline keeps: the
/// collector names it in the `router` attribute; the WAN detector's events
/// are about the router itself.
fn router_of(e: &RouterEventView) -> Option<&str> {
    match e.kind {
        EventKind::Reboot
        | EventKind::CounterReset
        | EventKind::InterfaceUp
        | EventKind::InterfaceDown
        | EventKind::TargetUp
        | EventKind::TargetDown => e.attributes.get("router").map(String::as_str),
        EventKind::WanDetected => Some(e.attributes.get("router").unwrap_or(&e.source).as_str()),
        _ => None,
    }
}

impl Timeline {
    /// Keeps `e` if it is a router's event (see the module's doc).
    pub fn keep(&self, e: &RouterEventView) {
        let Some(router) = router_of(e) else { return };
        let mut map = self
            .by_router
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ROUTERS && !map.contains_key(router) {
            return;
        }
        let events = map.entry(router.to_owned()).or_default();
        if events.len() >= PER_ROUTER {
            events.pop_front();
        }
        events.push_back(e.clone());
    }

    /// `router`'s kept events, newest first.
    pub fn of(&self, router: &str) -> Vec<RouterEventView> {
        let map = self.by_router.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(router)
            .map(|v| v.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Severity;

    fn event(kind: EventKind, router: Option<&str>, n: usize) -> RouterEventView {
        RouterEventView {
            id: format!("e{n}"),
            kind,
            source: "src".into(),
            occurred_at: None,
            severity: Severity::Info,
            message: format!("event {n}"),
            attributes: router
                .map(|r| ("router".to_owned(), r.to_owned()))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn keeps_router_events_newest_first_and_bounded() {
        let t = Timeline::default();
        for n in 0..PER_ROUTER + 5 {
            t.keep(&event(EventKind::CounterReset, Some("r1"), n));
        }
        let kept = t.of("r1");
        assert_eq!(kept.len(), PER_ROUTER);
        assert_eq!(kept[0].id, format!("e{}", PER_ROUTER + 4));
        assert_eq!(kept[PER_ROUTER - 1].id, "e5");
        assert!(t.of("r2").is_empty());
    }

    #[test]
    fn skips_traffic_and_events_of_no_router() {
        let t = Timeline::default();
        t.keep(&event(EventKind::Traffic, Some("r1"), 1));
        t.keep(&event(EventKind::TargetDown, None, 2));
        t.keep(&event(EventKind::MetricsUpdate, Some("r1"), 3));
        assert!(t.of("r1").is_empty());
        t.keep(&event(EventKind::WanDetected, None, 4));
        assert_eq!(t.of("src").len(), 1, "a WAN detection is about its source");
    }

    #[test]
    fn routers_beyond_the_bound_are_not_kept() {
        let t = Timeline::default();
        for n in 0..MAX_ROUTERS {
            t.keep(&event(EventKind::Reboot, Some(&format!("r{n}")), n));
        }
        t.keep(&event(EventKind::Reboot, Some("one-too-many"), 0));
        assert!(t.of("one-too-many").is_empty());
        t.keep(&event(EventKind::Reboot, Some("r0"), 1));
        assert_eq!(t.of("r0").len(), 2, "a known router still gets its events");
    }
}
