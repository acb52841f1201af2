//! What bus messages say about dependencies ([`Signal`]): a check result
//! ([`Observed`]), a router's interface sample ([`Polled`]), a WAN verdict
//! or a router's site. Part of [`crate::deps`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use pantau_config::Dependency;
use pantau_proto::v1::{BreakerState, CheckResult, CheckStatus, EventKind, InterfaceSample, RouterEvent, RouterInfo};

/// What one check result says about dependencies.
#[derive(Debug, Clone)]
pub struct Observed {
    pub target: String,
    pub location: String,
    pub up: bool,
    pub at: SystemTime,
    /// A check really ran: not the DOWN an open breaker reports without
    /// checking, which says nothing new about when it was last checked.
    pub fresh: bool,
    pub parents: Vec<Dependency>,
    /// The target's labels (its site, for derived dependencies).
    pub labels: BTreeMap<String, String>,
}

impl Observed {
    /// From a result received at `now`; dependencies that do not parse
    /// are skipped (the collector parsed them; a hostile publisher gains
    /// nothing).
    pub fn of(r: &CheckResult, now: SystemTime) -> Self {
        Self {
            target: r.target_id.clone(),
            location: r.location.clone(),
            up: r.status() == CheckStatus::Up,
            at: crate::facts::when(r.checked_at.as_ref(), now),
            // The collector's open breaker reports DOWN without checking,
            // saying so (`circuit_open` in its scheduler); the check that
            // opened it also says `open`, but ran.
            fresh: !(r.breaker() == BreakerState::Open && r.message.starts_with("circuit open")),
            parents: r
                .depends_on
                .iter()
                .take(pantau_config::MAX_DEPENDENCIES)
                .filter_map(|d| d.parse().ok())
                .collect(),
            labels: r.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// What one interface sample says: a router was polled, and the state of
/// one of its links.
#[derive(Debug, Clone)]
pub struct Polled {
    pub router: String,
    pub interface: String,
    pub up: bool,
    pub at: SystemTime,
}

impl Polled {
    pub fn of(s: &InterfaceSample, now: SystemTime) -> Self {
        Self {
            router: s.router_id.clone(),
            interface: if s.if_name.is_empty() {
                s.if_index.to_string()
            } else {
                s.if_name.clone()
            },
            up: s.oper_up,
            at: crate::facts::when(s.sampled_at.as_ref(), now),
        }
    }
}

/// What a bus message tells the dependencies.
#[derive(Debug, Clone)]
pub enum Signal {
    Check(Observed),
    Link(Polled),
    /// A router's WAN links, as the WAN detector judged them.
    Wan {
        router: String,
        interfaces: Vec<String>,
    },
    /// A router's labels (its site), from its `RouterInfo`.
    Router {
        router: String,
        labels: BTreeMap<String, String>,
    },
}

/// Longest site name kept (a label value's bound); a longer one names no site.
pub(super) const MAX_SITE: usize = 256;

/// Most WAN links taken from one `wan_detected` event.
pub(super) const MAX_WAN_LINKS: usize = 64;

impl Signal {
    /// The signal of a message, if it carries one.
    pub fn of(event: &pantau_core::bus::BusEvent, now: SystemTime) -> Option<Self> {
        use pantau_core::bus::BusEvent;
        match event {
            BusEvent::CheckResult(r) => Some(Self::Check(Observed::of(r, now))),
            BusEvent::InterfaceSample(s) => Some(Self::Link(Polled::of(s, now))),
            BusEvent::Event { event, .. } => Self::wan(event),
            BusEvent::RouterInfo(i) => Some(Self::router(i)),
            _ => None,
        }
    }

    /// The WAN links a `wan_detected` event names (its `wan_interfaces`).
    pub(super) fn wan(e: &RouterEvent) -> Option<Self> {
        if e.kind() != EventKind::WanDetected {
            return None;
        }
        let list = e.attributes.get("wan_interfaces")?;
        Some(Self::Wan {
            router: e.source.clone(),
            interfaces: list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .take(MAX_WAN_LINKS)
                .map(str::to_owned)
                .collect(),
        })
    }

    pub(super) fn router(i: &RouterInfo) -> Self {
        Self::Router {
            router: i.router_id.clone(),
            labels: i.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}
