//! A scheduled target: its compiled definition, breaker, latest result and
//! up/down state, shared by the schedule, the workers and the APIs.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8};
use std::sync::{Arc, Mutex};

use pantau_config::CircuitBreakerConfig;
use pantau_proto::v1::check_result::Detail;
use pantau_proto::v1::{BreakerState, FailureReason};

use crate::breaker::Breaker;
use crate::state::StateCell;
use crate::target::Target;

/// A scheduled target and its breaker.
pub struct Entry {
    pub target: Target,
    pub breaker: Mutex<Breaker>,
    /// The breaker state last exported as a metric (a `BreakerState` as
    /// `i32`): the gauge is set on changes only, so a target whose breaker
    /// never left `closed` has no series (absent means closed; a hundred
    /// thousand targets, no cost).
    pub(super) exported: AtomicI32,
    /// Its latest result, and what the last checks that really ran left to
    /// quote while the breaker is open (one lock: a hundred thousand entries).
    pub(crate) last: Mutex<Last>,
    /// Its up/down state and since when (see [`States`]).
    pub(crate) state: StateCell,
    /// What its `pantau_collector_check_up` series says: [`UP_UNKNOWN`]
    /// until its first check (no series: reading 0 would say it is down),
    /// then [`UP`] or [`DOWN`]. Written at scrape time by
    /// [`Collector`]'s [`GaugeSource`], not registered: a registered series
    /// cost 200 bytes per target.
    pub(super) up: AtomicU8,
    /// Set once the entry has left the entries map (its target deleted, or
    /// replaced by a new entry): the schedule's queue holds entries, and
    /// looks up a retired one's successor by id when it comes due.
    pub(super) retired: AtomicBool,
    /// Set while a check of it waits in a worker's queue or runs: the
    /// schedule does not queue a second one behind it (see
    /// [`Entry::queue_one`]).
    queued: AtomicBool,
}

/// An [`Entry`]'s latest result, and the last failure and certificate of
/// its real checks.
#[derive(Debug, Default)]
pub(crate) struct Last {
    /// The latest result, encoded: the bytes published on the bus, which its
    /// in-process subscribers share (the gateway's latest results among them).
    pub(crate) result: Option<bytes::Bytes>,
    /// Boxed together: most targets never fail nor read a certificate.
    pub(crate) rare: Option<Box<Rare>>,
}

/// What few targets have: a real failure, a certificate.
#[derive(Debug, Default, Clone)]
pub(crate) struct Rare {
    /// The reason and message of the last check that really ran and failed
    /// (never a message that itself quotes an earlier one).
    pub(crate) failure: Option<(FailureReason, String)>,
    /// The certificate part of the last check that read one.
    pub(crate) certificate: Option<Detail>,
}

pub(super) const UP_UNKNOWN: u8 = 0;
pub(super) const UP: u8 = 1;
pub(super) const DOWN: u8 = 2;

impl Entry {
    /// `breaker` is the configuration's, shared by every target.
    pub(super) fn new(target: Target, breaker: &Arc<CircuitBreakerConfig>) -> Arc<Self> {
        Arc::new(Self {
            target,
            breaker: Mutex::new(Breaker::new(Arc::clone(breaker))),
            exported: AtomicI32::new(BreakerState::Closed as i32),
            last: Mutex::default(),
            state: StateCell::default(),
            up: AtomicU8::new(UP_UNKNOWN),
            retired: AtomicBool::new(false),
            queued: AtomicBool::new(false),
        })
    }

    /// Marks a check of this entry as queued; `None` when one already
    /// waits or runs. The mark is cleared when the returned guard drops
    /// (the check done, or never run).
    pub(super) fn queue_one(self: &Arc<Self>) -> Option<Queued> {
        (!self.queued.swap(true, Relaxed)).then(|| Queued(Arc::clone(self)))
    }

    /// Marks the entry as out of the entries map (see [`Entry::retired`]).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Relaxed);
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .state()
    }
}

/// A queued check of an entry: the entry is free for the next when this
/// drops, whether the check ran, panicked or was dropped unrun.
pub(super) struct Queued(Arc<Entry>);

impl Queued {
    pub(super) fn entry(&self) -> &Arc<Entry> {
        &self.0
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.queued.store(false, Relaxed);
    }
}
