//! The fan-out of events to WebSocket clients, indexed by what each client
//! watches: an event is offered only to the clients of its resource (and to
//! those that watch every resource), so 10,000 dashboards each watching a few
//! targets cost per event what the few interested ones cost, not 10,000 wake-ups.
//!
//! Each client has an outbox ([`crate::outbox::Queue`]): its socket, written
//! to at once when it has room, and a bounded queue
//! (`gateway.dashboard.client_buffer`) for when it has not.
//!
//! An event is a [`HubEvent`] (serialised once, shared by every client); a
//! client's choice is a [`Filter`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::labels::Severity;
pub use crate::outbox::Queue;

/// Event types a WebSocket client can subscribe to.
pub const TYPES: &[&str] = &[
    "check_result",
    "alert",
    "incident",
    "traffic",
    "counter_reset",
    "reboot",
    "wan_detected",
    "interface_up",
    "interface_down",
    "metrics_update",
    "cert_expiring",
    "instance",
    "target_up",
    "target_down",
    "consensus",
];

/// One event on its way to clients: what filters look at, and the JSON.
#[derive(Debug)]
pub struct HubEvent {
    /// One of [`TYPES`].
    pub kind: String,
    /// The target, router or instance it is about.
    pub resource: String,
    /// `info`, `warning`, `critical`, or empty.
    pub severity: String,
    /// The JSON text, shared by every client's frame (no copy per client).
    pub json: axum::extract::ws::Utf8Bytes,
    /// When the gateway took it from the bus, for the delivery latency.
    pub received: std::time::Instant,
}

/// What a client receives; `None` means everything.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    pub types: Option<HashSet<String>>,
    pub resources: Option<HashSet<String>>,
    pub severities: Option<HashSet<String>>,
}

impl Filter {
    pub fn matches(&self, e: &HubEvent) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&e.kind))
            && self.resources.as_ref().is_none_or(|r| r.contains(&e.resource))
            && self.severities.as_ref().is_none_or(|s| s.contains(&e.severity))
    }

    pub fn build(
        types: Option<Vec<String>>,
        resources: Option<Vec<String>>,
        severities: Option<Vec<String>>,
    ) -> Result<Self, String> {
        if let Some(unknown) = types.iter().flatten().find(|t| !TYPES.contains(&t.as_str())) {
            return Err(format!(
                "unknown event type `{unknown}`; known types: {}",
                TYPES.join(", ")
            ));
        }
        if let Some(bad) = severities.iter().flatten().find(|s| Severity::parse(s).is_none()) {
            return Err(format!("unknown severity `{bad}`; use {}", Severity::choices()));
        }
        let set = |v: Option<Vec<String>>| v.filter(|v| !v.is_empty()).map(|v| v.into_iter().collect());
        Ok(Self {
            types: set(types),
            resources: set(resources),
            severities: set(severities),
        })
    }
}

struct Slot {
    filter: Filter,
    /// The filter's types as bits of [`TYPES`] (every bit: every type).
    types: u32,
    queue: Arc<Queue>,
}

impl Slot {
    fn new(filter: Filter, queue: Arc<Queue>) -> Arc<Self> {
        let types = filter
            .types
            .as_ref()
            .map_or(u32::MAX, |set| set.iter().fold(0, |bits, t| bits | type_bit(t)));
        Arc::new(Self { filter, types, queue })
    }

    /// Whether the client takes an event of type bit `kind` and `severity`;
    /// its resource was matched by the index the slot was found in.
    fn wants(&self, kind: u32, severity: &str) -> bool {
        self.types & kind != 0 && self.filter.severities.as_ref().is_none_or(|s| s.contains(severity))
    }
}

/// `kind`'s bit among [`TYPES`]; a kind outside them has the last bit, which
/// no filter's types contain.
fn type_bit(kind: &str) -> u32 {
    TYPES.iter().position(|t| *t == kind).map_or(1 << 31, |i| 1 << i)
}

/// The clients by what they watch. A client is under each resource it names,
/// or under `every_resource`; the slots are shared, so offering an event costs
/// no lookup per client.
#[derive(Default)]
struct Index {
    clients: HashMap<u64, Arc<Slot>>,
    by_resource: HashMap<String, HashMap<u64, Arc<Slot>>>,
    every_resource: HashMap<u64, Arc<Slot>>,
}

impl Index {
    fn link(&mut self, id: u64, slot: &Arc<Slot>) {
        match &slot.filter.resources {
            None => {
                self.every_resource.insert(id, Arc::clone(slot));
            }
            Some(set) => {
                for r in set {
                    self.by_resource
                        .entry(r.clone())
                        .or_default()
                        .insert(id, Arc::clone(slot));
                }
            }
        }
        self.clients.insert(id, Arc::clone(slot));
    }

    fn unlink(&mut self, id: u64) {
        let Some(slot) = self.clients.remove(&id) else {
            return;
        };
        match &slot.filter.resources {
            None => {
                self.every_resource.remove(&id);
            }
            Some(set) => {
                for r in set {
                    if let Some(ids) = self.by_resource.get_mut(r) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            self.by_resource.remove(r);
                        }
                    }
                }
            }
        }
    }

    /// The clients that take an event of `kind`, `resource` and `severity`.
    fn interested<'a>(&'a self, kind: &str, resource: &str, severity: &'a str) -> impl Iterator<Item = &'a Arc<Slot>> {
        let bit = type_bit(kind);
        self.by_resource
            .get(resource)
            .into_iter()
            .flat_map(HashMap::values)
            .chain(self.every_resource.values())
            .filter(move |slot| slot.wants(bit, severity))
    }
}

/// Every connected client, indexed by resource.
pub struct Hub {
    index: RwLock<Index>,
    next: AtomicU64,
    capacity: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A client's membership; leaving the hub on drop.
pub struct Member {
    id: u64,
    hub: Arc<Hub>,
    pub queue: Arc<Queue>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Member {
    /// Replaces what the client receives from now on.
    pub fn set_filter(&self, filter: Filter) {
        let mut ix = self
            .hub
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !ix.clients.contains_key(&self.id) {
            return;
        }
        ix.unlink(self.id);
        ix.link(self.id, &Slot::new(filter, Arc::clone(&self.queue)));
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.hub
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unlink(self.id);
    }
}

impl Hub {
    /// A hub whose clients each buffer `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            index: RwLock::default(),
            next: AtomicU64::new(1),
            capacity,
        }
    }

    /// Adds a client receiving what `filter` matches.
    pub fn join(self: &Arc<Self>, filter: Filter) -> Member {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(Queue::new(self.capacity));
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .link(id, &Slot::new(filter, Arc::clone(&queue)));
        Member {
            id,
            hub: Arc::clone(self),
            queue,
        }
    }

    /// Whether any client takes an event of `kind`, `resource` and
    /// `severity`: when none does, the event need not be serialised.
    pub fn wants(&self, kind: &str, resource: &str, severity: &str) -> bool {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .interested(kind, resource, severity)
            .next()
            .is_some()
    }

    /// Offers `e` to the clients of its resource and of every resource.
    pub fn publish(&self, e: &Arc<HubEvent>) {
        let ix = self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        for slot in ix.interested(&e.kind, &e.resource, &e.severity) {
            slot.queue.push(Arc::clone(e));
        }
    }

    /// Clients connected.
    pub fn len(&self) -> usize {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clients
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::EventKind;

    fn ev(kind: &str, resource: &str) -> Arc<HubEvent> {
        Arc::new(HubEvent {
            kind: kind.into(),
            resource: resource.into(),
            severity: String::new(),
            json: "{}".into(),
            received: std::time::Instant::now(),
        })
    }

    fn only(resources: &[&str]) -> Filter {
        Filter {
            resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
            ..Filter::default()
        }
    }

    #[test]
    fn every_event_kind_is_a_type_clients_can_choose() {
        for k in EventKind::ALL.iter().filter(|k| **k != EventKind::Unspecified) {
            assert!(TYPES.contains(&k.as_str()), "{k} is missing from TYPES");
        }
        assert_eq!(
            TYPES.len(),
            EventKind::ALL.len() - 1 + 4,
            "check_result, alert, incident, consensus and the event kinds"
        );
    }

    #[test]
    fn events_reach_only_interested_clients() {
        let hub = Arc::new(Hub::new(8));
        let web = hub.join(only(&["web"]));
        let all = hub.join(Filter::default());
        hub.publish(&ev("check_result", "web"));
        hub.publish(&ev("check_result", "db"));
        assert_eq!((web.queue.len(), all.queue.len()), (1, 2));
        web.set_filter(only(&["db"]));
        hub.publish(&ev("check_result", "web"));
        hub.publish(&ev("check_result", "db"));
        assert_eq!(web.queue.len(), 2);
        drop(all);
        assert_eq!(hub.len(), 1);
        drop(web);
        assert!(hub.is_empty());
        assert!(
            hub.index.read().unwrap().by_resource.is_empty(),
            "the index forgets departed clients"
        );
    }

    #[test]
    fn a_full_queue_loses_its_oldest_and_counts_them() {
        let hub = Arc::new(Hub::new(2));
        let m = hub.join(Filter::default());
        for r in ["a", "b", "c", "d"] {
            hub.publish(&ev("check_result", r));
        }
        let mut got = Vec::new();
        m.queue.drain(&mut got);
        let kept: Vec<_> = got.iter().map(|e| e.resource.as_str()).collect();
        assert_eq!(kept, ["c", "d"]);
        assert_eq!(m.queue.take_dropped(), 2);
        assert_eq!(m.queue.take_dropped(), 0);
    }

    #[test]
    fn types_and_severities_filter_what_the_index_offers() {
        assert!(TYPES.len() < 31, "a type's bit must not be the unknown kinds' bit 31");
        let hub = Arc::new(Hub::new(8));
        let alerts = hub.join(Filter::build(Some(vec!["alert".into()]), None, Some(vec!["critical".into()])).unwrap());
        let web = hub.join(Filter::build(Some(vec!["check_result".into()]), Some(vec!["web".into()]), None).unwrap());
        let sev = |kind: &str, resource: &str, severity: &str| {
            Arc::new(HubEvent {
                kind: kind.into(),
                resource: resource.into(),
                severity: severity.into(),
                json: "{}".into(),
                received: std::time::Instant::now(),
            })
        };
        assert!(hub.wants("alert", "db", "critical"));
        assert!(!hub.wants("alert", "db", "warning"));
        assert!(hub.wants("check_result", "web", ""));
        assert!(!hub.wants("check_result", "db", ""));
        assert!(
            !hub.wants("no_such_kind", "web", ""),
            "an unknown kind is nobody's type"
        );
        hub.publish(&sev("alert", "db", "warning"));
        hub.publish(&sev("alert", "db", "critical"));
        hub.publish(&sev("check_result", "web", ""));
        hub.publish(&sev("check_result", "db", ""));
        hub.publish(&sev("reboot", "web", "critical"));
        assert_eq!((alerts.queue.len(), web.queue.len()), (1, 1));
        // A new filter takes effect at once, on the same queue.
        web.set_filter(Filter::build(Some(vec!["reboot".into()]), Some(vec!["web".into()]), None).unwrap());
        hub.publish(&sev("reboot", "web", "critical"));
        hub.publish(&sev("check_result", "web", ""));
        assert_eq!(web.queue.len(), 2);
    }
}
