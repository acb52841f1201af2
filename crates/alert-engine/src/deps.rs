//! Dependencies between the things Pantau watches: a target depends on
//! another target, a router, one interface of a router, or a location
//! (`collector.targets[].depends_on`). Each check result names its target's
//! parents, so the engine learns them from the results it reads.
//!
//! A location is down when every result it sends is down (two targets or
//! more) or it has sent nothing for `alert_engine.staleness`; the engine
//! states it as the fact `location_up{location}` (1/0), so a rule such as
//! `location_up == 0` gives the root cause's alert.
//!
//! Derived dependencies (`alert_engine.dependencies.derive_from_wan`): a
//! target whose site label (`site_label`) names a router's site (the same
//! label in the router's `RouterInfo.labels`) is held by that router while
//! every WAN link of the router (the WAN detector's `wan_detected`) is down.
//!
//! While a parent is down, a child's firing alert notifies no one: it is
//! stored with its cause (`depends:<parent alert id>`, or
//! `depends:target:<id>` while the parent is down but its own alert is not
//! open yet) and the parent's notification says how many children it
//! affects. A child waits for its parent's verdict in two places, each at
//! most [`MAX_HOLD`]: when it fails before its parent was checked again,
//! and when its parent recovers before the child was checked again. Only a
//! child still down after both notifies on its own.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use pantau_config::Dependency;

use crate::lifecycle::{Alert, State};

#[path = "deps_signal.rs"]
mod signal;
use signal::MAX_SITE;
#[cfg(test)]
use signal::MAX_WAN_LINKS;
pub use signal::{Observed, Polled, Signal};

/// Longest a child's alert waits for its parent's next check, or for its
/// own after the parent recovered.
pub const MAX_HOLD: Duration = Duration::from_secs(300);
/// Children named in a parent's summary at most.
const NAMED: usize = 5;

/// A parent as alerts and results name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Target(String),
    Router(String),
    Interface(String, String),
    Location(String),
}

impl From<&Dependency> for Key {
    fn from(d: &Dependency) -> Self {
        match d {
            Dependency::Target(t) => Self::Target(t.clone()),
            Dependency::Router(r) => Self::Router(r.clone()),
            Dependency::Interface { router, interface } => Self::Interface(router.clone(), interface.clone()),
            Dependency::Location(l) => Self::Location(l.clone()),
        }
    }
}

impl std::fmt::Display for Key {
    /// The text of the [`Dependency`] naming it (`target:uplink`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Target(t) => write!(f, "target:{t}"),
            Self::Router(r) => write!(f, "router:{r}"),
            Self::Interface(r, i) => write!(f, "interface:{r}/{i}"),
            Self::Location(l) => write!(f, "location:{l}"),
        }
    }
}

/// The fact the engine states about each location a target depends on.
pub const LOCATION_UP: &str = "location_up";

/// Families whose alerts mean a thing is down.
const DOWN_SOURCES: [&str; 4] = ["check_up", "consensus_up", "interface_up", "interface_went_down"];

impl Key {
    /// What a "down" alert is about, with its location ("" for none).
    fn of_alert(a: &Alert) -> Option<(Self, String)> {
        if a.source == LOCATION_UP {
            // About a whole location: it holds its children everywhere.
            let l = a.labels.get("location")?;
            return Some((Self::Location(l.clone()), String::new()));
        }
        let loc = a.labels.get("location").cloned().unwrap_or_default();
        if let Some(t) = a.labels.get("target") {
            return ["check_up", "consensus_up"]
                .contains(&a.source.as_str())
                .then(|| (Self::Target(t.clone()), loc));
        }
        let router = a.labels.get("router")?;
        match a.labels.get("interface") {
            Some(i) if DOWN_SOURCES.contains(&a.source.as_str()) => {
                Some((Self::Interface(router.clone(), i.clone()), loc))
            }
            Some(_) => None,
            None => Some((Self::Router(router.clone()), loc)),
        }
    }
}

/// What is known of one location: its targets' latest results.
#[derive(Debug, Default)]
struct Place {
    /// Each target's latest result there: up or not.
    latest: HashMap<String, bool>,
    /// How many of them are up.
    ups: usize,
    /// The newest result's time.
    newest: Option<SystemTime>,
    /// Down as last stated (`location_up`), and since when.
    down: bool,
    since: Option<SystemTime>,
}

impl Place {
    /// Down: two targets or more and none up, or silent for `stale`.
    fn is_down(&self, stale: Duration, now: SystemTime) -> bool {
        let Some(newest) = self.newest else { return false };
        now.duration_since(newest).unwrap_or_default() >= stale || (self.latest.len() >= 2 && self.ups == 0)
    }

    fn take(&mut self, target: &str, up: bool, at: SystemTime) {
        if self.latest.insert(target.to_owned(), up) == Some(true) {
            self.ups -= 1;
        }
        if up {
            self.ups += 1;
        }
        self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
    }
}

/// What derived dependencies know: which label names a site, each router's
/// site and WAN links, and the targets of each site.
#[derive(Debug, Default)]
struct Derived {
    /// `alert_engine.dependencies.site_label` while `derive_from_wan` is on.
    label: Option<String>,
    /// Router → its site.
    router_site: HashMap<String, String>,
    /// Router → its WAN links.
    wan: HashMap<String, Vec<String>>,
    /// Target → its site; site → its targets.
    target_site: HashMap<String, String>,
    site_targets: HashMap<String, Vec<String>>,
}

impl Derived {
    /// The routers whose site is `site` and whose WAN links are known.
    fn routers_of<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.router_site
            .iter()
            .filter(move |(r, s)| s.as_str() == site && self.wan.get(*r).is_some_and(|w| !w.is_empty()))
            .map(|(r, _)| r.as_str())
    }
}

/// A target's latest check at one location.
#[derive(Debug, Clone, Copy)]
struct Seen {
    up: bool,
    at: SystemTime,
    /// When `up` last changed.
    since: SystemTime,
}

/// What the engine knows of dependencies.
#[derive(Debug)]
pub struct Deps {
    /// Child target → its parents, from its latest result.
    parents: HashMap<String, Vec<Dependency>>,
    /// Parent → its children.
    children: HashMap<Key, Vec<String>>,
    /// Latest check of parents and children, by target then location.
    checks: HashMap<String, HashMap<String, Seen>>,
    /// Open "down" alerts by what they are about: (location, alert id).
    open: HashMap<Key, Vec<(String, String)>>,
    /// Latest sample of every router interface.
    links: HashMap<(String, String), Seen>,
    /// Latest poll of every router.
    polled: HashMap<String, SystemTime>,
    /// When a router's or an interface's last down alert resolved.
    recovered: HashMap<Key, SystemTime>,
    /// This process's start: a restored `depends:` suppression is kept
    /// until its target reports again, or [`MAX_HOLD`] after it.
    started: SystemTime,
    /// The locations some target depends on.
    places: HashMap<String, Place>,
    /// A location that sent nothing for this long is down.
    stale: Duration,
    /// Dependencies derived from the WAN detector's verdicts.
    derived: Derived,
    /// At most this many children, links and routers are tracked
    /// (`alert_engine.max_series`): what arrives on the bus is not trusted
    /// to stay small.
    limit: usize,
    /// Whether the limit was hit (logged once).
    full: bool,
}

impl Default for Deps {
    fn default() -> Self {
        Self::with_limit(DEFAULT_LIMIT)
    }
}

/// The limit of [`Deps::default`].
const DEFAULT_LIMIT: usize = 1_000_000;

fn within(since: SystemTime, now: SystemTime) -> bool {
    now.duration_since(since).unwrap_or_default() < MAX_HOLD
}

impl Deps {
    /// Tracks at most `limit` children, links and routers each.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            parents: HashMap::new(),
            children: HashMap::new(),
            checks: HashMap::new(),
            open: HashMap::new(),
            links: HashMap::new(),
            polled: HashMap::new(),
            recovered: HashMap::new(),
            started: SystemTime::now(),
            places: HashMap::new(),
            stale: MAX_HOLD,
            derived: Derived::default(),
            limit,
            full: false,
        }
    }

    /// A location that sent nothing for `stale` is down
    /// (`alert_engine.staleness`; [`MAX_HOLD`] by default).
    #[must_use]
    pub fn with_staleness(mut self, stale: Duration) -> Self {
        self.stale = stale;
        self
    }

    /// Derives dependencies from the WAN detector's verdicts, with the
    /// site named by `site_label` (`alert_engine.dependencies`).
    #[must_use]
    pub fn deriving(mut self, site_label: Option<String>) -> Self {
        self.derived.label = site_label;
        self
    }

    /// Counts and logs (once) what the limit turned away.
    fn refuse(&mut self, what: &str, name: &str) {
        metrics::counter!(crate::metrics::SERIES_DROPPED_TOTAL).increment(1);
        if !self.full {
            self.full = true;
            tracing::warn!(
                limit = self.limit,
                what,
                name = %name.chars().take(64).collect::<String>(),
                "dependency tracking is full (alert_engine.max_series): new {what}s are not tracked"
            );
        }
    }

    /// Whether any target has a dependency, explicit or derived.
    pub fn active(&self) -> bool {
        !self.parents.is_empty() || !self.derived.target_site.is_empty()
    }

    /// Takes in what a message says.
    pub fn take(&mut self, s: Signal) {
        match s {
            Signal::Check(o) => self.observe(o),
            Signal::Link(p) => self.observe_link(p),
            Signal::Wan { router, interfaces } => self.observe_wan(router, interfaces),
            Signal::Router { router, labels } => self.observe_router(&router, &labels),
        }
    }

    /// A router's WAN links (kept for every router, up to the limit).
    pub fn observe_wan(&mut self, router: String, interfaces: Vec<String>) {
        if !self.derived.wan.contains_key(&router) && self.derived.wan.len() >= self.limit {
            self.refuse("router", &router);
            return;
        }
        self.derived.wan.insert(router, interfaces);
    }

    /// A router's site, from its labels (only while deriving).
    pub fn observe_router(&mut self, router: &str, labels: &BTreeMap<String, String>) {
        let Some(label) = &self.derived.label else { return };
        match labels.get(label).filter(|s| s.len() <= MAX_SITE) {
            Some(site) if self.derived.router_site.get(router) != Some(site) => {
                if !self.derived.router_site.contains_key(router) && self.derived.router_site.len() >= self.limit {
                    self.refuse("router", router);
                    return;
                }
                self.derived.router_site.insert(router.to_owned(), site.clone());
            }
            Some(_) => {}
            None => {
                self.derived.router_site.remove(router);
            }
        }
    }

    /// Moves `target` to the site `site` (none: out of every site).
    fn set_site(&mut self, target: &str, site: Option<&String>) {
        let d = &mut self.derived;
        if d.target_site.get(target) == site {
            return;
        }
        if site.is_some() && !d.target_site.contains_key(target) && d.target_site.len() >= self.limit {
            self.refuse("child", target);
            return;
        }
        if let Some(old) = d.target_site.remove(target)
            && let Some(list) = d.site_targets.get_mut(&old)
        {
            list.retain(|t| t != target);
            if list.is_empty() {
                d.site_targets.remove(&old);
            }
        }
        if let Some(site) = site {
            d.target_site.insert(target.to_owned(), site.clone());
            d.site_targets.entry(site.clone()).or_default().push(target.to_owned());
        }
    }

    /// The locations whose state changed since the last call, as
    /// `(location, up)`: a result came, or a location fell silent.
    pub fn location_changes(&mut self, now: SystemTime) -> Vec<(String, bool)> {
        let stale = self.stale;
        let mut out = Vec::new();
        for (l, p) in self.places.iter_mut().filter(|(_, p)| p.newest.is_some()) {
            let down = p.is_down(stale, now);
            if p.since.is_none() || down != p.down {
                p.down = down;
                p.since = Some(now);
                out.push((l.clone(), !down));
            }
        }
        out
    }

    /// Takes in one result: its target's parents, and its state when it
    /// is a parent or a child. Two look-ups for a target that is neither.
    pub fn observe(&mut self, o: Observed) {
        if let Some(place) = self.places.get_mut(&o.location) {
            place.take(&o.target, o.up, o.at);
        }
        if let Some(label) = &self.derived.label {
            let site = o.labels.get(label).filter(|s| s.len() <= MAX_SITE).cloned();
            self.set_site(&o.target, site.as_ref());
        }
        let known = self.parents.get(&o.target);
        if known.map(Vec::as_slice) != Some(o.parents.as_slice()) && (known.is_some() || !o.parents.is_empty()) {
            if known.is_none() && self.parents.len() >= self.limit {
                self.refuse("child", &o.target);
                return;
            }
            self.set_parents(&o.target, o.parents);
        }
        let tracked = self.parents.contains_key(&o.target)
            || self.children.contains_key(&Key::Target(o.target.clone()))
            || self.derived.target_site.contains_key(&o.target);
        if !tracked {
            return;
        }
        let by_loc = self.checks.entry(o.target).or_default();
        let prev = by_loc.get(&o.location).copied();
        let at = match prev {
            Some(p) if !o.fresh => p.at,
            _ => o.at,
        };
        let since = match prev {
            Some(p) if p.up == o.up => p.since,
            _ => at,
        };
        by_loc.insert(o.location, Seen { up: o.up, at, since });
    }

    /// Takes in one interface sample. Every link is kept (routers have few)
    /// up to the limit, so a child that names one later already knows its
    /// last poll.
    pub fn observe_link(&mut self, p: Polled) {
        let key = (p.router, p.interface);
        if !self.links.contains_key(&key) && self.links.len() >= self.limit {
            // A link not sampled for a hold is no longer anyone's evidence.
            self.links.retain(|_, s| within(s.at, p.at));
            let routers: std::collections::HashSet<&String> = self.links.keys().map(|(r, _)| r).collect();
            self.polled.retain(|r, _| routers.contains(r));
            if self.links.len() >= self.limit {
                self.refuse("link", &key.1);
                return;
            }
        }
        let polled = self.polled.entry(key.0.clone()).or_insert(p.at);
        *polled = (*polled).max(p.at);
        let since = match self.links.get(&key) {
            Some(s) if s.up == p.up => s.since,
            _ => p.at,
        };
        self.links.insert(
            key,
            Seen {
                up: p.up,
                at: p.at,
                since,
            },
        );
    }

    fn set_parents(&mut self, child: &str, parents: Vec<Dependency>) {
        if let Some(old) = self.parents.remove(child) {
            for d in &old {
                if let Some(c) = self.children.get_mut(&Key::from(d)) {
                    c.retain(|x| x != child);
                }
            }
        }
        self.children.retain(|_, c| !c.is_empty());
        if parents.is_empty() {
            let children = &self.children;
            self.places
                .retain(|l, _| children.contains_key(&Key::Location(l.clone())));
            return;
        }
        for d in &parents {
            self.children.entry(Key::from(d)).or_default().push(child.to_owned());
            if let Dependency::Location(l) = d {
                self.places.entry(l.clone()).or_default();
            }
        }
        self.parents.insert(child.to_owned(), parents);
        let children = &self.children;
        self.places
            .retain(|l, _| children.contains_key(&Key::Location(l.clone())));
    }

    /// Follows an alert's change: open "down" alerts are indexed by what
    /// they are about; a router's or an interface's resolve is remembered.
    pub fn note_alert(&mut self, a: &Alert, now: SystemTime) {
        let Some((key, loc)) = Key::of_alert(a) else { return };
        let list = self.open.entry(key.clone()).or_default();
        list.retain(|(_, id)| *id != a.id);
        if a.state == State::Resolved {
            if list.is_empty() {
                self.open.remove(&key);
            }
            if !matches!(key, Key::Target(_)) {
                self.recovered.insert(key, now);
            }
        } else {
            list.push((loc, a.id.clone()));
        }
    }

    /// Indexes the open alerts anew (after a restore or an adoption).
    pub fn rebuild<'a>(&mut self, open: impl Iterator<Item = &'a Alert>) {
        self.open.clear();
        let now = SystemTime::now();
        for a in open {
            self.note_alert(a, now);
        }
    }

    /// Why `a` notifies no one because of a parent; `None` when no parent
    /// holds it.
    pub fn cause(&self, a: &Alert, now: SystemTime) -> Option<String> {
        let target = a.labels.get("target")?;
        let site = self.site_of(a);
        let Some(parents) = self.parents.get(target) else {
            let child = self.latest(target, a.labels.get("location").map(String::as_str));
            if let Some(why) = site.and_then(|s| self.derived_cause(s, child, now)) {
                return Some(why);
            }
            // Restored as caused by a parent, and not heard of since start.
            return (a.suppressed_by.starts_with("depends:") && within(self.started, now))
                .then(|| a.suppressed_by.clone());
        };
        let loc = a.labels.get("location").map(String::as_str);
        let child = self.latest(target, loc);
        if let Some(why) = self.explicit_cause(parents, loc, child, now) {
            return Some(why);
        }
        site.and_then(|s| self.derived_cause(s, child, now))
    }

    /// The site of what `a` is about, while deriving: its site label.
    fn site_of<'a>(&self, a: &'a Alert) -> Option<&'a str> {
        let label = self.derived.label.as_ref()?;
        a.labels.get(label).map(String::as_str)
    }

    /// The first open "down" alert about `key` where `loc` is.
    fn open_alert(&self, key: &Key, loc: Option<&str>) -> Option<&str> {
        self.open.get(key).and_then(|v| {
            v.iter()
                .find(|(l, _)| l.is_empty() || loc.is_none_or(|x| x == l))
                .map(|(_, id)| id.as_str())
        })
    }

    /// Why a site's router holds a child: all its WAN links are down, or
    /// one came back after the child's latest check, or the child failed
    /// after the router's latest poll.
    fn derived_cause(&self, site: &str, child: Option<Seen>, now: SystemTime) -> Option<String> {
        for r in self.derived.routers_of(site) {
            let wan = &self.derived.wan[r];
            let links: Vec<Seen> = wan
                .iter()
                .filter_map(|i| self.links.get(&(r.to_owned(), i.clone())).copied())
                .collect();
            let all_down = links.len() == wan.len() && links.iter().all(|s| !s.up);
            let recovered = wan.iter().any(|i| {
                self.recovered
                    .get(&Key::Interface(r.to_owned(), i.clone()))
                    .is_some_and(|at| within(*at, now) && child.is_none_or(|c| c.at <= *at))
            }) || links
                .iter()
                .any(|s| s.up && child.is_some_and(|c| s.since >= c.at) && within(s.since, now));
            let waiting = self
                .polled
                .get(r)
                .is_some_and(|at| child.is_some_and(|c| !c.up && within(c.since, now) && *at < c.since));
            if all_down || recovered || waiting {
                let open = wan
                    .iter()
                    .find_map(|i| self.open_alert(&Key::Interface(r.to_owned(), i.clone()), None))
                    .or_else(|| self.open_alert(&Key::Router(r.to_owned()), None));
                return Some(match open {
                    Some(id) if all_down => format!("depends:{id}"),
                    _ => format!("depends:router:{r}"),
                });
            }
        }
        None
    }

    /// Why one of `parents` holds a child whose latest check is `child`.
    fn explicit_cause(
        &self,
        parents: &[Dependency],
        loc: Option<&str>,
        child: Option<Seen>,
        now: SystemTime,
    ) -> Option<String> {
        for d in parents {
            let key = Key::from(d);
            if let Some(id) = self.open.get(&key).and_then(|v| {
                v.iter()
                    .find(|(l, _)| l.is_empty() || loc.is_none_or(|x| x == l))
                    .map(|(_, id)| id)
            }) {
                return Some(format!("depends:{id}"));
            }
            let recovered = self
                .recovered
                .get(&key)
                .is_some_and(|r| within(*r, now) && child.is_none_or(|c| c.at <= *r));
            let held = recovered
                || match &key {
                    Key::Target(p) => self.target_holds(p, loc, child, now),
                    Key::Interface(r, i) => {
                        let link = self.links.get(&(r.clone(), i.clone())).copied();
                        holds(&link.into_iter().collect::<Vec<_>>(), child, now)
                    }
                    // Not polled since the child failed: wait for the poll.
                    Key::Router(r) => self
                        .polled
                        .get(r)
                        .is_some_and(|at| child.is_some_and(|c| !c.up && within(c.since, now) && *at < c.since)),
                    Key::Location(l) => self.places.get(l).is_some_and(|p| {
                        let state = Seen {
                            up: !p.is_down(self.stale, now),
                            at: p.newest.unwrap_or(now),
                            since: p.since.unwrap_or(now),
                        };
                        p.newest.is_some() && holds(&[state], child, now)
                    }),
                };
            if held {
                return Some(format!("depends:{d}"));
            }
        }
        None
    }

    /// The latest check of `target` at `loc`, or its latest anywhere.
    fn latest(&self, target: &str, loc: Option<&str>) -> Option<Seen> {
        let by_loc = self.checks.get(target)?;
        match loc {
            Some(l) => by_loc.get(l).copied(),
            None => by_loc.values().max_by_key(|s| s.at).copied(),
        }
    }

    /// Whether the parent target `p` holds a child whose latest check is
    /// `child`: it is down; or it came back after the child's latest check;
    /// or the child failed after the parent's latest check.
    fn target_holds(&self, p: &str, loc: Option<&str>, child: Option<Seen>, now: SystemTime) -> bool {
        let states: Vec<Seen> = match (self.checks.get(p), loc) {
            (Some(m), Some(l)) => m.get(l).copied().into_iter().collect(),
            (Some(m), None) => m.values().copied().collect(),
            (None, _) => Vec::new(),
        };
        holds(&states, child, now)
    }

    /// The dependency `a` is a "down" alert about (`target:uplink`), when
    /// some target depends on it: the root cause its children's alerts share.
    pub fn as_parent(&self, a: &Alert) -> Option<String> {
        let (key, _) = Key::of_alert(a)?;
        if self.children.contains_key(&key) {
            return Some(key.to_string());
        }
        let r = self.derived_router(&key)?;
        Some(format!("router:{r}"))
    }

    /// The router `key` is about (itself or one of its WAN links) when
    /// targets of its site are held by it (derived dependencies).
    fn derived_router<'a>(&'a self, key: &'a Key) -> Option<&'a str> {
        let d = &self.derived;
        d.label.as_ref()?;
        let (r, link) = match key {
            Key::Router(r) => (r, None),
            Key::Interface(r, i) => (r, Some(i)),
            Key::Target(_) | Key::Location(_) => return None,
        };
        let wan = d.wan.get(r)?;
        if link.is_some_and(|i| !wan.contains(i)) {
            return None;
        }
        let site = d.router_site.get(r)?;
        d.site_targets.contains_key(site).then_some(r.as_str())
    }

    /// The children of what `a` is about that are down now (where `a` is,
    /// when it has a location), for the parent's notification.
    pub fn affected(&self, a: &Alert) -> Vec<&str> {
        let Some((key, loc)) = Key::of_alert(a) else {
            return Vec::new();
        };
        let loc = (!loc.is_empty()).then_some(loc.as_str());
        let down = |c: &&String| {
            self.checks
                .get(c.as_str())
                .is_some_and(|m| m.iter().any(|(l, s)| !s.up && loc.is_none_or(|x| x == l.as_str())))
        };
        let mut out: Vec<&str> = self
            .children
            .get(&key)
            .into_iter()
            .flatten()
            .filter(down)
            .map(String::as_str)
            .collect();
        if let Some(r) = self.derived_router(&key)
            && let Some(site) = self.derived.router_site.get(r)
        {
            for t in self.derived.site_targets.get(site).into_iter().flatten().filter(down) {
                if !out.contains(&t.as_str()) {
                    out.push(t);
                }
            }
        }
        out
    }
}

/// Whether a parent whose latest states are `states` holds a child whose
/// latest check is `child`: the parent is down; or it came back after the
/// child's latest check; or the child failed after the parent's latest
/// report (then it waits for the next one). Each wait at most [`MAX_HOLD`].
fn holds(states: &[Seen], child: Option<Seen>, now: SystemTime) -> bool {
    if states.iter().any(|s| !s.up) {
        return true;
    }
    let Some(child) = child else { return false };
    let recovered_since = states.iter().any(|s| s.since >= child.at && within(s.since, now));
    // (A parent never heard of holds nothing: nobody knows when it reports.)
    let not_checked_since =
        !child.up && within(child.since, now) && !states.is_empty() && states.iter().all(|s| s.at < child.since);
    recovered_since || not_checked_since
}

/// `summary` with how many dependent targets a root cause affects.
pub fn with_affected(summary: &str, affected: &[&str]) -> String {
    if affected.is_empty() {
        return summary.to_owned();
    }
    let mut names: Vec<&str> = affected.to_vec();
    names.sort_unstable();
    let shown = names.iter().take(NAMED).copied().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(NAMED);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let n = names.len();
    let word = if n == 1 { "target" } else { "targets" };
    format!("{summary} ({n} dependent {word} affected: {shown}{tail})")
}

#[cfg(test)]
#[path = "deps_tests.rs"]
mod tests;
