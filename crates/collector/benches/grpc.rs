//! `make bench-grpc`: what authentication and TLS cost a gRPC call.
//!
//! A real collector (in-process bus, SQLite, 10 TCP targets that are never
//! due within the run) serves `GetTarget` on loopback; 16 concurrent
//! clients over one HTTP/2 connection call it for a bounded time and count,
//! in four set-ups: plaintext without auth (`grpc.auth: false`), plaintext
//! with a bearer JWT checked on every call, TLS (a CA and certificate made
//! here with rcgen) without auth, and TLS with auth; then plaintext with
//! auth again, traced: a global subscriber exports every span (the client's
//! and the server's of each call, through `telemetry::ByService` as in the
//! binary) to a batch processor whose exporter counts and drops them, so
//! the figure is the cost of tracing without the network. Prints calls/s and
//! latency p50/p99 for each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pantau_config::{CheckType, Config, RawTarget};
use pantau_core::bus::Bus;
use pantau_core::bus::memory::MemoryBus;
use pantau_core::grpc::{Credentials, Security};
use pantau_core::service::Context;
use pantau_proto::v1::GetTargetRequest;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;

/// The `pantau` binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const CLIENTS: usize = 16;
const MAX_CALLS: usize = 200_000;
const WINDOW: Duration = Duration::from_secs(8);
const WARMUP: Duration = Duration::from_secs(1);

struct Setup {
    name: &'static str,
    tls: bool,
    auth: bool,
}

async fn run(setup: &Setup, tls: &pantau_testkit::TlsFiles) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    cfg.metrics.enabled = false;
    cfg.collector.interval = Duration::from_secs(3600);
    cfg.collector.targets = (0..10)
        .map(|i| {
            let mut t = RawTarget::new(format!("t{i}"), CheckType::Tcp);
            t.address = Some("127.0.0.1:9".into());
            Arc::new(t.parse("bench").expect("a bench target is valid"))
        })
        .collect();
    cfg.grpc.auth = setup.auth;
    if setup.tls {
        cfg.grpc.tls_cert_file = Some(tls.cert.clone());
        cfg.grpc.tls_key_file = Some(tls.key.clone());
        cfg.grpc.ca_file = Some(tls.ca.clone());
    }
    cfg.validate()?;
    let cfg = Arc::new(cfg);
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let ctx = Context::new(Arc::clone(&cfg), bus);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(pantau_collector::run(ctx.clone(), listener));
    let scheme = if setup.tls { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{}", addr.port());
    let security = Security::new(Arc::clone(&cfg));
    let credentials = if setup.auth {
        Credentials::Token(
            security
                .token_for("bench", "monitoring:read", Duration::from_secs(600))?
                .into(),
        )
    } else {
        Credentials::None
    };
    let channel = security.channel_with(&url, credentials)?;
    let client = CollectorServiceClient::new(channel);
    // Up once it answers.
    let up = Instant::now();
    while client
        .clone()
        .get_target(GetTargetRequest { id: "t0".into() })
        .await
        .is_err()
    {
        anyhow::ensure!(up.elapsed() < Duration::from_secs(20), "the collector never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (mut client, calls) = (client.clone(), Arc::clone(&calls));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let elapsed = start.elapsed();
                if elapsed > WARMUP + WINDOW || calls.load(std::sync::atomic::Ordering::Relaxed) >= MAX_CALLS {
                    break;
                }
                let t = Instant::now();
                let ok = client
                    .get_target(GetTargetRequest {
                        id: format!("t{}", c % 10),
                    })
                    .await
                    .is_ok();
                if elapsed >= WARMUP {
                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if ok {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let measured = (start.elapsed().saturating_sub(WARMUP)).min(WINDOW).as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{:<22} {:>8.0} calls/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} calls, {} errors, {CLIENTS} clients, {:.1} s)",
        setup.name,
        lat.len() as f64 / measured,
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        lat.len(),
        errors,
        measured
    );
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tls = pantau_testkit::TlsFiles::generate(dir.path())?;
    println!(
        "gRPC GetTarget on loopback, {CLIENTS} concurrent clients on one HTTP/2 connection, {}s after {}s warm-up (at most {MAX_CALLS} calls)",
        WINDOW.as_secs(),
        WARMUP.as_secs()
    );
    let plain = [
        Setup {
            name: "plaintext, no auth",
            tls: false,
            auth: false,
        },
        Setup {
            name: "plaintext, JWT auth",
            tls: false,
            auth: true,
        },
        Setup {
            name: "TLS, no auth",
            tls: true,
            auth: false,
        },
        Setup {
            name: "TLS, JWT auth",
            tls: true,
            auth: true,
        },
    ];
    for setup in plain {
        run(&setup, &tls).await?;
    }
    let exported = traced();
    let setup = Setup {
        name: "plaintext, JWT, traced",
        tls: false,
        auth: true,
    };
    run(&setup, &tls).await?;
    println!(
        "traced: {} spans exported (each call makes a client and a server span)",
        exported.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

/// Counts the spans it is given and drops them.
#[derive(Debug)]
struct Discard(Arc<std::sync::atomic::AtomicUsize>);

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Installs the global subscriber the traced set-up runs under: spans of
/// the `collector` service (and of the process, `bench`) go to [`Discard`].
fn traced() -> Arc<std::sync::atomic::AtomicUsize> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanProcessor};
    use tracing_subscriber::layer::SubscriberExt as _;
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let processors = ["bench", "collector"]
        .into_iter()
        .map(|name| {
            let batch = BatchSpanProcessor::builder(Discard(Arc::clone(&count)))
                .with_batch_config(BatchConfigBuilder::default().with_max_queue_size(1 << 18).build())
                .build();
            (name.to_owned(), Box::new(batch) as Box<dyn SpanProcessor>)
        })
        .collect();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(pantau_core::telemetry::ByService::new("bench", processors, Vec::new()))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::set_global_default(subscriber).expect("no subscriber was installed before");
    count
}
