//! A lifecycle per service: supervised background tasks and what their
//! failures do.
//!
//! Each service runs on its own [`Context`](crate::service::Context) (see
//! [`Context::service`](crate::service::Context::service)): a child
//! shutdown token, its own task tracker, and a [`Lifecycle`] that records
//! its tasks. A background task is spawned one of two ways:
//!
//! - [`Context::spawn_supervised`](crate::service::Context::spawn_supervised):
//!   a loop made again by a factory. If it panics, returns an error or ends
//!   before shutdown, the cause is logged, `pantau_task_restarts_total` is
//!   counted, and it is started again after a bounded backoff (100 ms
//!   doubling to 30 s, back to 100 ms after a minute of health). While it
//!   waits, the service is not ready.
//! - [`Context::spawn_critical`](crate::service::Context::spawn_critical):
//!   a task that cannot be made again (it owns a subscription or a channel).
//!   If it fails, the service is cancelled, `/readyz` answers 503 naming the
//!   service and the task, and the service's `run` returns the failure
//!   ([`Lifecycle::result`]).
//!
//! Either way a task never fails silently: every failure is logged with its
//! cause and counted in `pantau_task_failures_total{service,task}`.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::time::Instant;

use crate::health::{Level, ReadinessCheck};

/// Supervised tasks restarted after a failure, by service and task.
pub const TASK_RESTARTS: &str = "pantau_task_restarts_total";
/// Background task failures (panic, error, or an end before shutdown), by service and task.
pub const TASK_FAILURES: &str = "pantau_task_failures_total";
/// The fact each failure is published as (`pantau.metric.task_failures`).
pub const TASK_FAILURES_FACT: &str = "task_failures";

/// The first wait before a failed supervised task is started again.
pub const RESTART_INITIAL: Duration = Duration::from_millis(100);
/// The longest wait between restarts.
pub const RESTART_MAX: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts again after [`RESTART_INITIAL`].
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long after a restart the service reports itself `degraded`.
const DEGRADED_FOR: Duration = Duration::from_secs(300);
/// Longest cause kept from a panic or error message, in characters.
const MAX_CAUSE: usize = 512;

/// Describes the lifecycle metrics once.
pub fn describe_metrics() {
    metrics::describe_counter!(
        TASK_RESTARTS,
        metrics::Unit::Count,
        "Supervised background tasks started again after a failure, by service and task"
    );
    metrics::describe_counter!(
        TASK_FAILURES,
        metrics::Unit::Count,
        "Background tasks that panicked, failed or ended before shutdown, by service and task"
    );
}

/// What a background task's future gives back: `()` or a `Result`.
pub trait TaskOutcome {
    fn into_result(self) -> Result<(), String>;
}

impl TaskOutcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> TaskOutcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// A critical task of a service failed; the service stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task `{task}` failed: {cause}")]
pub struct TaskFailed {
    pub service: String,
    pub task: &'static str,
    pub cause: String,
}

/// One service's record of its background tasks; cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    state: Mutex<State>,
    /// Where each failure is also published as `task_failures{service,task}`
    /// (`pantau.metric.task_failures`), for the alert engine's default
    /// `task-failures` rule.
    bus: Option<Arc<dyn crate::bus::Bus>>,
}

#[derive(Default)]
struct State {
    tasks: BTreeMap<&'static str, TaskState>,
    failed: Option<TaskFailed>,
    last_restart: Option<Instant>,
}

#[derive(Default)]
struct TaskState {
    /// `Some(cause)` while a supervised task waits to start again.
    waiting: Option<String>,
    restarts: u64,
}

impl Lifecycle {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: service.into(),
                state: Mutex::new(State::default()),
                bus: None,
            }),
        }
    }

    /// Like [`Lifecycle::new`], and every failure is also published on the bus
    /// as the fact `task_failures{service,task}` = 1.
    pub fn with_bus(service: impl Into<String>, bus: Arc<dyn crate::bus::Bus>) -> Self {
        Self {
            inner: Arc::new(Inner {
                service: service.into(),
                state: Mutex::new(State::default()),
                bus: Some(bus),
            }),
        }
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The first critical failure, if any.
    pub fn failure(&self) -> Option<TaskFailed> {
        self.state().failed.clone()
    }

    /// `Err` with the first critical failure: what a service's `run` returns
    /// after draining.
    pub fn result(&self) -> Result<(), TaskFailed> {
        self.failure().map_or(Ok(()), Err)
    }

    /// How often supervised `task` was started again.
    pub fn restarts(&self, task: &str) -> u64 {
        self.state().tasks.get(task).map_or(0, |t| t.restarts)
    }

    /// The readiness component of this service's tasks.
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(self.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, task: &'static str) {
        self.state().tasks.entry(task).or_default();
    }

    /// Logs and counts a failure of `task`.
    fn failed(&self, task: &'static str, cause: &str) {
        let service = self.inner.service.clone();
        tracing::error!(service = %service, task, cause, "background task failed");
        metrics::counter!(TASK_FAILURES, "service" => service.clone(), "task" => task).increment(1);
        if let (Some(bus), Ok(rt)) = (&self.inner.bus, tokio::runtime::Handle::try_current()) {
            let bus = Arc::clone(bus);
            let sample = pantau_proto::v1::MetricSample {
                name: TASK_FAILURES_FACT.to_owned(),
                value: 1.0,
                labels: [
                    ("service".to_owned(), service.clone()),
                    ("task".to_owned(), task.to_owned()),
                ]
                .into(),
                observed_at: Some(crate::time::to_timestamp(std::time::SystemTime::now())),
                source: service,
            };
            rt.spawn(async move {
                let subject = crate::bus::subject::metric(TASK_FAILURES_FACT);
                if let Err(e) = crate::bus::publish_proto(bus.as_ref(), &subject, &sample).await {
                    tracing::warn!(error = %e, "cannot publish a task failure on the bus");
                }
            });
        }
    }

    fn waiting(&self, task: &'static str, cause: Option<String>) {
        let mut s = self.state();
        let restarting = cause.is_none();
        let t = s.tasks.entry(task).or_default();
        let was_waiting = t.waiting.is_some();
        t.waiting = cause;
        if restarting && was_waiting {
            t.restarts += 1;
            s.last_restart = Some(Instant::now());
            let service = self.inner.service.clone();
            drop(s);
            tracing::info!(service = %service, task, "restarting background task");
            metrics::counter!(TASK_RESTARTS, "service" => service, "task" => task).increment(1);
        }
    }

    fn critical_failed(&self, task: &'static str, cause: String) {
        let mut s = self.state();
        if s.failed.is_none() {
            s.failed = Some(TaskFailed {
                service: self.inner.service.clone(),
                task,
                cause,
            });
        }
    }
}

#[async_trait]
impl ReadinessCheck for Lifecycle {
    async fn check(&self) -> Result<(), String> {
        let s = self.state();
        if let Some(f) = &s.failed {
            return Err(format!("{}: {f}", f.service));
        }
        let waiting: Vec<String> = s
            .tasks
            .iter()
            .filter_map(|(name, t)| {
                t.waiting
                    .as_ref()
                    .map(|c| format!("task `{name}` is restarting after: {c}"))
            })
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.inner.service, waiting.join("; ")))
        }
    }

    async fn detail(&self) -> Option<String> {
        let s = self.state();
        let restarted: Vec<String> = s
            .tasks
            .iter()
            .filter(|(_, t)| t.restarts > 0)
            .map(|(name, t)| format!("{name}={}", t.restarts))
            .collect();
        Some(if restarted.is_empty() {
            format!("{} tasks", s.tasks.len())
        } else {
            format!("{} tasks; restarts: {}", s.tasks.len(), restarted.join(", "))
        })
    }

    async fn level(&self) -> Level {
        match self.state().last_restart {
            Some(at) if at.elapsed() < DEGRADED_FOR => Level::Degraded,
            _ => Level::Ok,
        }
    }
}

/// The cause of a panic, from its payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    bounded(&text)
}

fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_CAUSE) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Runs `fut` to its end; `Err` says why it failed: a panic, an error, or
/// an end while `stop` was not cancelled.
pub(crate) async fn run_once<F>(fut: F, stop: &tokio_util::sync::CancellationToken) -> Result<(), String>
where
    F: Future,
    F::Output: TaskOutcome,
{
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Err(payload) => Err(format!("panicked: {}", panic_message(payload.as_ref()))),
        Ok(out) => match out.into_result() {
            Err(e) => Err(bounded(&e)),
            Ok(()) if stop.is_cancelled() => Ok(()),
            Ok(()) => Err("ended before shutdown".to_owned()),
        },
    }
}

/// The body of a supervised task: run, and on failure wait and run again.
pub(crate) async fn supervise<F, Fut>(
    lifecycle: Lifecycle,
    task: &'static str,
    stop: tokio_util::sync::CancellationToken,
    mut make: F,
) where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: TaskOutcome,
{
    lifecycle.register(task);
    let mut wait = RESTART_INITIAL;
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let fut = make();
        let outcome = run_once(hook::wrap(&lifecycle, task, attempt, fut), &stop).await;
        attempt = attempt.saturating_add(1);
        let Err(cause) = outcome else { return };
        if stop.is_cancelled() {
            // Failing while the service stops: seen, but not started again.
            lifecycle.failed(task, &cause);
            return;
        }
        lifecycle.failed(task, &cause);
        if started.elapsed() >= HEALTHY_AFTER {
            wait = RESTART_INITIAL;
        }
        lifecycle.waiting(task, Some(cause));
        tracing::warn!(service = %lifecycle.service(), task, wait_ms = wait.as_millis() as u64, "background task starts again after a pause");
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RESTART_MAX);
        lifecycle.waiting(task, None);
    }
}

/// The body of a critical task: run once; a failure cancels the service.
pub(crate) async fn critical<Fut>(
    lifecycle: Lifecycle,
    task: &'static str,
    stop: tokio_util::sync::CancellationToken,
    fut: Fut,
) where
    Fut: Future,
    Fut::Output: TaskOutcome,
{
    lifecycle.register(task);
    if let Err(cause) = run_once(hook::wrap(&lifecycle, task, 0, fut), &stop).await {
        lifecycle.failed(task, &cause);
        if !stop.is_cancelled() {
            tracing::error!(service = %lifecycle.service(), task, "a critical task failed; stopping the service");
            lifecycle.critical_failed(task, cause);
            stop.cancel();
        }
    }
}

/// A failure injected by the tests of the assembled binary: with the
/// `test-hooks` feature, `TEST_PANTAU_FAIL_TASK=<service>/<task>` makes that
/// task's first run fail at once (not `PANTAU_…`: that prefix is the
/// configuration's). Absent from other builds.
mod hook {
    use super::{Lifecycle, TaskOutcome};

    #[cfg(feature = "test-hooks")]
    pub(super) async fn wrap<F>(lifecycle: &Lifecycle, task: &'static str, attempt: u32, fut: F) -> Result<(), String>
    where
        F: Future,
        F::Output: TaskOutcome,
    {
        static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let target = TARGET.get_or_init(|| std::env::var("TEST_PANTAU_FAIL_TASK").ok());
        if attempt == 0 && target.as_deref() == Some(&format!("{}/{task}", lifecycle.service())) {
            return Err("failure injected by TEST_PANTAU_FAIL_TASK".to_owned());
        }
        fut.await.into_result()
    }

    #[cfg(not(feature = "test-hooks"))]
    pub(super) async fn wrap<F>(_: &Lifecycle, _: &'static str, _: u32, fut: F) -> Result<(), String>
    where
        F: Future,
        F::Output: TaskOutcome,
    {
        fut.await.into_result()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::health::Health;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    #[test]
    fn panic_messages_are_read_and_bounded() {
        assert_eq!(panic_message(&"boom"), "boom");
        assert_eq!(panic_message(&String::from("bang")), "bang");
        assert_eq!(panic_message(&7u8), "a panic without a message");
        let long = "x".repeat(MAX_CAUSE * 2);
        assert_eq!(panic_message(&long).chars().count(), MAX_CAUSE + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_supervised_task_that_panics_is_restarted_counted_and_ready_again() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshot = recorder.snapshotter();
        let _guard = metrics::set_default_local_recorder(&recorder);

        let life = Lifecycle::new("svc");
        let health = Health::default();
        health.register("svc.tasks", life.readiness());
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let s = stop.clone();
        tracker.spawn(supervise(life.clone(), "loop", stop.clone(), move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            async move {
                match n {
                    0 => panic!("first run breaks"),
                    1 => Err("second run fails".to_owned()),
                    _ => {
                        s.cancelled().await;
                        Ok(())
                    }
                }
            }
        }));
        // The first failure: the task waits to start again, and says so.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let report = health.report().await;
        let err = report.components["svc.tasks"].error.clone().unwrap_or_default();
        assert!(
            err.contains("svc") && err.contains("task `loop`") && err.contains("first run breaks"),
            "{err}"
        );
        // 100 ms, then 200 ms later it runs for good.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(life.restarts("loop"), 2);
        let report = health.report().await;
        assert!(report.is_ready(), "{report:?}");
        assert_eq!(report.components["svc.tasks"].level, Level::Degraded);
        assert_eq!(
            report.components["svc.tasks"].detail.as_deref(),
            Some("1 tasks; restarts: loop=2")
        );
        assert!(life.failure().is_none());

        let counters: BTreeMap<String, u64> = snapshot
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                metrics_util::debugging::DebugValue::Counter(n) => Some((key.key().name().to_owned(), n)),
                _ => None,
            })
            .collect();
        assert_eq!(counters.get(TASK_RESTARTS), Some(&2), "{counters:?}");
        assert_eq!(counters.get(TASK_FAILURES), Some(&2), "{counters:?}");

        stop.cancel();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(1), tracker.wait())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_failed_critical_task_cancels_the_service_and_names_itself() {
        let life = Lifecycle::new("svc");
        let health = Health::default();
        health.register("svc.tasks", life.readiness());
        let stop = CancellationToken::new();
        let poisoned = async {
            let data: Vec<u8> = Vec::new();
            assert!(!data.is_empty(), "poisoned");
        };
        critical(life.clone(), "consumer", stop.clone(), poisoned).await;
        assert!(stop.is_cancelled());
        let f = life.result().unwrap_err();
        assert_eq!((f.service.as_str(), f.task), ("svc", "consumer"));
        assert_eq!(f.to_string(), "task `consumer` failed: panicked: poisoned");
        let report = health.report().await;
        assert!(!report.is_ready());
        assert_eq!(
            report.components["svc.tasks"].error.as_deref(),
            Some("svc: task `consumer` failed: panicked: poisoned")
        );
    }

    #[tokio::test]
    async fn a_failure_is_published_as_the_task_failures_fact() {
        use futures::StreamExt;
        let bus: Arc<dyn crate::bus::Bus> = Arc::new(crate::bus::memory::MemoryBus::new());
        let mut facts = bus
            .subscribe(crate::bus::Subscription::live("pantau.metric.task_failures"))
            .await
            .unwrap();
        let life = Lifecycle::with_bus("svc", Arc::clone(&bus));
        critical(life.clone(), "pump", CancellationToken::new(), async {
            Err::<(), _>("broken pipe".to_owned())
        })
        .await;
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), facts.next())
            .await
            .expect("published")
            .unwrap();
        let m: pantau_proto::v1::MetricSample = crate::bus::decode(&msg).unwrap();
        assert_eq!((m.name.as_str(), m.value), ("task_failures", 1.0));
        assert_eq!(
            (m.labels["service"].as_str(), m.labels["task"].as_str()),
            ("svc", "pump")
        );
    }

    #[tokio::test]
    async fn a_critical_task_that_ends_early_fails_but_not_at_shutdown() {
        let life = Lifecycle::new("svc");
        let stop = CancellationToken::new();
        critical(life.clone(), "pump", stop.clone(), async {}).await;
        assert_eq!(
            life.failure().map(|f| f.cause),
            Some("ended before shutdown".to_owned())
        );

        let life = Lifecycle::new("svc");
        let stop = CancellationToken::new();
        stop.cancel();
        critical(life.clone(), "pump", stop.clone(), async {}).await;
        critical(life.clone(), "other", stop.clone(), async { Ok::<(), String>(()) }).await;
        assert!(life.result().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_back_off_up_to_the_bound() {
        let life = Lifecycle::new("svc");
        let stop = CancellationToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let handle = tokio::spawn(supervise(life.clone(), "flaky", stop.clone(), move || {
            r.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("down") }
        }));
        // 0.1 + 0.2 + … + 25.6 s is 51.1 s for nine restarts; then every 30 s.
        tokio::time::sleep(Duration::from_millis(51_150)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 10);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 12);
        stop.cancel();
        handle.await.unwrap();
        assert!(life.failure().is_none(), "a supervised task never stops its service");
    }
}
