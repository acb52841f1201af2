//! The worker pool: due checks are spread over `workers.count` workers by the
//! configured strategy; each worker runs up to its share of
//! `workers.concurrency` checks at once.
//!
//! A worker is one task, and its checks run inside it, polled together: a
//! task spawned per check cost, at saturation on new connections, a sixth of
//! the checks per second (`make bench-collector`, see the README); keep-alive
//! checks at saturation lose 5–10 % this way, measured there too. The runtime's threads
//! share the workers, so `workers.count` (default 4) should be at least the
//! cores the checks are to use. A panic that escapes a check is caught here,
//! so a worker is never lost.
//!
//! Strategies (`WORKER_LOAD_BALANCING_STRATEGY`):
//! - `round_robin`: each worker in turn;
//! - `least_connections`: the worker with the fewest checks in flight;
//! - `random`;
//! - `weighted_round_robin`: smooth weighted round robin (as nginx does),
//!   weights from each worker's observed check latency (an EWMA), so a worker
//!   whose checks are slow gets fewer new ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use pantau_config::LoadBalancingStrategy;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics as m;

/// Picks a worker for each job.
pub struct Balancer {
    strategy: LoadBalancingStrategy,
    in_flight: Vec<AtomicUsize>,
    next: AtomicUsize,
    /// EWMA of check latency per worker, in microseconds (f64 bits).
    latency_us: Vec<AtomicU64>,
    /// Smooth weighted round robin's current weights.
    current: Mutex<Vec<i64>>,
}

const EWMA_ALPHA: f64 = 0.2;
const DEFAULT_LATENCY_US: f64 = 10_000.0;

impl Balancer {
    pub fn new(strategy: LoadBalancingStrategy, workers: usize) -> Self {
        let n = workers.max(1);
        Self {
            strategy,
            in_flight: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            next: AtomicUsize::new(0),
            latency_us: (0..n).map(|_| AtomicU64::new(DEFAULT_LATENCY_US.to_bits())).collect(),
            current: Mutex::new(vec![0; n]),
        }
    }

    pub fn workers(&self) -> usize {
        self.in_flight.len()
    }

    /// The worker for the next job.
    pub fn pick(&self) -> usize {
        let n = self.workers();
        match self.strategy {
            LoadBalancingStrategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            LoadBalancingStrategy::Random => rand::random_range(0..n),
            LoadBalancingStrategy::LeastConnections => {
                // Ties go round robin, so idle workers share the load.
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed))
                    .unwrap_or(0)
            }
            LoadBalancingStrategy::WeightedRoundRobin => {
                let weights: Vec<i64> = self.weights();
                let total: i64 = weights.iter().sum();
                let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for (c, w) in current.iter_mut().zip(&weights) {
                    *c += w;
                }
                let best = (0..n).max_by_key(|&i| (current[i], std::cmp::Reverse(i))).unwrap_or(0);
                current[best] -= total;
                best
            }
        }
    }

    /// Weights: inverse of each worker's latency EWMA, scaled to 1..=1000.
    pub fn weights(&self) -> Vec<i64> {
        let lat: Vec<f64> = self
            .latency_us
            .iter()
            .map(|a| f64::from_bits(a.load(Ordering::Relaxed)))
            .collect();
        let fastest = lat.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
        lat.iter()
            .map(|l| ((fastest / l.max(1.0)) * 1000.0).round().clamp(1.0, 1000.0) as i64)
            .collect()
    }

    pub fn started(&self, worker: usize) {
        self.in_flight[worker].fetch_add(1, Ordering::Relaxed);
    }

    pub fn finished(&self, worker: usize, latency: Duration) {
        self.in_flight[worker].fetch_sub(1, Ordering::Relaxed);
        let cell = &self.latency_us[worker];
        let sample = latency.as_secs_f64() * 1e6;
        let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            let old = f64::from_bits(bits);
            Some((old + EWMA_ALPHA * (sample - old)).to_bits())
        });
    }

    pub fn in_flight(&self, worker: usize) -> usize {
        self.in_flight[worker].load(Ordering::Relaxed)
    }
}

/// What a worker does with a job; returns how long the check took.
pub type Run<J> = Arc<dyn Fn(J) -> Pin<Box<dyn Future<Output = Duration> + Send>> + Send + Sync>;

/// Workers with bounded queues.
pub struct Pool<J> {
    senders: Vec<mpsc::Sender<J>>,
    balancer: Arc<Balancer>,
    depth: metrics::Gauge,
}

/// One worker: takes jobs from its queue while it runs fewer than
/// its `share` of the concurrency, and runs them within its own task.
struct Worker<J> {
    index: usize,
    share: usize,
    run: Run<J>,
    balancer: Arc<Balancer>,
    depth: metrics::Gauge,
    busy: metrics::Gauge,
}

impl<J: Send + 'static> Worker<J> {
    async fn work(self, mut rx: mpsc::Receiver<J>, stop: CancellationToken) {
        let mut running = futures::stream::FuturesUnordered::new();
        // Made once: a new `cancelled()` at each turn would register with
        // the token (a lock shared with every other task of the service)
        // and leave it again, twice per check.
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                () = &mut stopped => break,
                Some(latency) = running.next(), if !running.is_empty() => self.finished(latency),
                job = rx.recv(), if running.len() < self.share => {
                    let Some(job) = job else { break };
                    self.depth.decrement(1.0);
                    self.balancer.started(self.index);
                    self.busy.increment(1.0);
                    running.push(std::panic::AssertUnwindSafe((self.run)(job)).catch_unwind());
                }
            }
        }
        // The checks in hand end; the queued ones are dropped.
        while let Some(latency) = running.next().await {
            self.finished(latency);
        }
    }

    fn finished(&self, latency: std::thread::Result<Duration>) {
        let latency = latency.unwrap_or_else(|payload| {
            let cause = pantau_core::lifecycle::panic_message(payload.as_ref());
            tracing::error!(worker = self.index, cause = %cause, "a check's job panicked outside its check");
            Duration::ZERO
        });
        self.balancer.finished(self.index, latency);
        self.busy.decrement(1.0);
    }
}

/// Jobs a worker may hold queued before the pool tries another.
const QUEUE: usize = 65_536;

impl<J: Send + 'static> Pool<J> {
    /// Starts `workers` workers on `tasks`, sharing `concurrency` evenly;
    /// they stop at `stop` after their running checks.
    #[allow(clippy::needless_pass_by_value)]
    pub fn start(
        strategy: LoadBalancingStrategy,
        workers: usize,
        concurrency: usize,
        run: Run<J>,
        tasks: &TaskTracker,
        stop: &CancellationToken,
    ) -> Self {
        let balancer = Arc::new(Balancer::new(strategy, workers));
        let per_worker = concurrency.div_ceil(balancer.workers()).max(1);
        // Each worker is one task: the number of workers bounds the cores
        // the checks can keep busy.
        tracing::info!(
            workers = balancer.workers(),
            checks_per_worker = per_worker,
            cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            "worker pool started; each worker is one task running its checks"
        );
        let depth = metrics::gauge!(m::QUEUE_DEPTH);
        let mut senders = Vec::new();
        for w in 0..balancer.workers() {
            let (tx, rx) = mpsc::channel::<J>(QUEUE);
            senders.push(tx);
            let worker = Worker {
                index: w,
                share: per_worker,
                run: Arc::clone(&run),
                balancer: Arc::clone(&balancer),
                depth: depth.clone(),
                busy: metrics::gauge!(m::CHECKS_IN_FLIGHT),
            };
            // Checks are the collector's spans wherever the pool runs them.
            tasks.spawn(pantau_core::telemetry::in_current_service(
                worker.work(rx, stop.clone()),
            ));
        }
        Self {
            senders,
            balancer,
            depth,
        }
    }

    /// Queues `job` on the strategy's worker (or, if its queue is full, the
    /// next one with room); gives the job back if every queue is full.
    pub fn dispatch(&self, job: J) -> Result<(), J> {
        let n = self.senders.len();
        let first = self.balancer.pick();
        let mut job = job;
        for k in 0..n {
            match self.senders[(first + k) % n].try_send(job) {
                Ok(()) => {
                    self.depth.increment(1.0);
                    return Ok(());
                }
                Err(mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j)) => job = j,
            }
        }
        Err(job)
    }

    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles() {
        let b = Balancer::new(LoadBalancingStrategy::RoundRobin, 3);
        let picks: Vec<usize> = (0..6).map(|_| b.pick()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_connections_avoids_busy_workers() {
        let b = Balancer::new(LoadBalancingStrategy::LeastConnections, 3);
        b.started(0);
        b.started(0);
        b.started(1);
        for _ in 0..5 {
            assert_eq!(b.pick(), 2);
        }
        b.started(2);
        b.started(2);
        assert_eq!(b.pick(), 1);
    }

    #[test]
    fn random_covers_every_worker() {
        let b = Balancer::new(LoadBalancingStrategy::Random, 4);
        let mut seen = [0usize; 4];
        for _ in 0..400 {
            seen[b.pick()] += 1;
        }
        assert!(seen.iter().all(|&c| c > 40), "{seen:?}");
    }

    #[test]
    fn weighted_round_robin_favours_fast_workers() {
        let b = Balancer::new(LoadBalancingStrategy::WeightedRoundRobin, 2);
        // Worker 0's checks take 10 ms, worker 1's 40 ms.
        for _ in 0..50 {
            b.started(0);
            b.finished(0, Duration::from_millis(10));
            b.started(1);
            b.finished(1, Duration::from_millis(40));
        }
        let w = b.weights();
        assert!(w[0] > 3 * w[1] - 50 && w[0] == 1000, "{w:?}");
        let mut counts = [0usize; 2];
        for _ in 0..500 {
            counts[b.pick()] += 1;
        }
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((3.5..4.5).contains(&ratio), "{counts:?}");
    }

    /// Waits until `cond` holds, 5 s at most.
    async fn within_5s(cond: impl Fn() -> bool) -> Result<(), tokio::time::error::Elapsed> {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !cond() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_job_that_panics_does_not_lose_its_worker() {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let done = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&done);
        let run: Run<u32> = Arc::new(move |job| {
            let d = Arc::clone(&d);
            Box::pin(async move {
                tokio::task::yield_now().await;
                assert_ne!(job % 3, 0, "job {job} panics");
                d.fetch_add(1, Ordering::SeqCst);
                Duration::from_millis(1)
            })
        });
        // One worker running two at a time: the panics happen beside the
        // jobs that must still end, and before the ones queued after them.
        let pool = Pool::start(LoadBalancingStrategy::RoundRobin, 1, 2, run, &tasks, &stop);
        for j in 0..30 {
            pool.dispatch(j).unwrap();
        }
        within_5s(|| done.load(Ordering::SeqCst) >= 20 && pool.balancer().in_flight(0) == 0)
            .await
            .expect("the twenty jobs that do not panic all end");
        stop.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("the worker stops");
    }

    #[tokio::test]
    async fn pool_runs_every_job_within_its_concurrency() {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (r, p, d) = (Arc::clone(&running), Arc::clone(&peak), Arc::clone(&done));
        let run: Run<u32> = Arc::new(move |_job| {
            let (r, p, d) = (Arc::clone(&r), Arc::clone(&p), Arc::clone(&d));
            Box::pin(async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                d.fetch_add(1, Ordering::SeqCst);
                Duration::from_millis(5)
            })
        });
        let pool = Pool::start(LoadBalancingStrategy::LeastConnections, 2, 4, run, &tasks, &stop);
        for j in 0..40 {
            pool.dispatch(j).unwrap();
        }
        within_5s(|| done.load(Ordering::SeqCst) >= 40).await.unwrap();
        assert!(peak.load(Ordering::SeqCst) <= 4, "peak {}", peak.load(Ordering::SeqCst));
        stop.cancel();
    }
}
