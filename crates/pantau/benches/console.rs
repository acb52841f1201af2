//! `make bench-console`: the web console with 10,000 targets.
//!
//! Runs the release `pantau all` over a real nats-server (pantau-testkit)
//! with `BENCH_TARGETS` (10,000) TCP targets checked every 60 s against one
//! local listener, waits until most have a result, then measures:
//! 1. the overview's first page (`GET /console`, signed in): time to the last
//!    byte on loopback and bytes, `BENCH_REQUESTS` (30) times, p50/p99/max;
//!    the same for the htmx table alone (a filter change);
//! 2. the delay from a check result published on the bus (NATS) to the
//!    changed row in a headless Chromium's DOM (chromedriver from
//!    pantau-testkit), `BENCH_SAMPLES` (100) results, p50/p99/max: the
//!    browser records `Date.now()` when the row's latency cell shows the
//!    published value; the bench records the time just before publishing
//!    (one machine, one clock).
//!
//! Goals (issue #17): first page < 100 ms and < 300 KB; DOM < 1 s p99.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::{ClientBuilder, Locator};
use pantau_testkit::{ChromeDriver, Nats, free_port};
use prost::Message as _;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pantau_bin() -> PathBuf {
    // This bench runs from <target>/release/deps/; the binary is <target>/release/pantau.
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("pantau")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/pantau"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(dir: &std::path::Path, nats: &str, n: usize, listener: u16) -> (String, u16, u16) {
    let [gw, admin, cg, ca, aeg, aea, ng, na, wg, wa, sg] = std::array::from_fn(|_| free_port());
    let mut y = format!(
        "listen_host: 127.0.0.1
data_dir: {data}
admin_port: {admin}
shutdown_grace: 5s
nats:
  url: {nats}
log:
  format: json
  level: warn
gateway:
  port: {gw}
  collector_url: http://127.0.0.1:{cg}
  alert_engine_url: http://127.0.0.1:{aeg}
  notifier_url: http://127.0.0.1:{ng}
  wan_detector_url: http://127.0.0.1:{wg}
  sync_url: http://127.0.0.1:{sg}
  rate_limit:
    requests_per_second: 0
sync:
  grpc_port: {sg}
wan_detector:
  grpc_port: {wg}
  admin_port: {wa}
alert_engine:
  grpc_port: {aeg}
  admin_port: {aea}
notifier:
  grpc_port: {ng}
  admin_port: {na}
collector:
  grpc_port: {cg}
  admin_port: {ca}
  interval: 60s
  timeout: 5s
  workers:
    concurrency: 512
  targets:
    - {{id: a-bench-dom, type: tcp, address: \"127.0.0.1:{listener}\", interval: 30d}}
",
        data = dir.display()
    );
    for i in 0..n.saturating_sub(1) {
        let _ = writeln!(
            y,
            r#"    - {{id: t{i:05}, type: tcp, address: "127.0.0.1:{listener}", labels: {{bench: "yes", shard: "s{}"}}}}"#,
            i % 10
        );
    }
    (y, gw, admin)
}

fn quantiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
        q(0.5),
        q(0.99),
        q(1.0),
        v.len()
    )
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

async fn bench() -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = env_usize("BENCH_TARGETS", 10_000);
    let requests = env_usize("BENCH_REQUESTS", 30);
    let samples = env_usize("BENCH_SAMPLES", 100);
    let bin = pantau_bin();
    if !bin.is_file() {
        return Err(format!(
            "no {}: run `cargo build --release --bin pantau` first",
            bin.display()
        ));
    }
    let nats = Nats::start().await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let lport = listener.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (yaml, gw, _admin) = config(dir.path(), &nats.url(), n, lport);
    let cfg = dir.path().join("pantau.yaml");
    std::fs::write(&cfg, yaml).map_err(|e| e.to_string())?;
    let log = dir.path().join("pantau.log");
    let child = Command::new(&bin)
        .arg("--config")
        .arg(&cfg)
        .arg("all")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let _child = Killed(child);
    let base = format!("http://127.0.0.1:{gw}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;

    // The first admin's password, printed once; a session cookie.
    let started = Instant::now();
    let password = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let marker = "user is `admin` with password `";
        if let Some(at) = text.find(marker) {
            break text[at + marker.len()..]
                .split('`')
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("pantau printed no first admin:\n{text}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let r = http
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={password}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();

    // Most targets have a result.
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let page = http
            .get(format!("{base}/console?state=pending"))
            .header("cookie", &cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let pending = page
            .split("id=\"count-pending\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(n);
        if pending <= n / 20 || Instant::now() > deadline {
            println!("targets: {n}, pending (no result yet) when measuring: {pending}");
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // 1. The overview's first page and the htmx table.
    for (what, path, htmx) in [
        ("overview first page (GET /console)", "/console", false),
        ("htmx table, filter label=shard=s3", "/console?label=shard%3Ds3", true),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..requests {
            let t = Instant::now();
            let mut req = http.get(format!("{base}{path}")).header("cookie", &cookie);
            if htmx {
                req = req.header("hx-request", "true");
            }
            let body = req
                .send()
                .await
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
        }
        println!(
            "{what}: {}; {bytes} bytes ({:.1} KB)",
            quantiles(times),
            bytes as f64 / 1024.0
        );
    }

    // 2. A result on the bus to the browser's DOM.
    let driver = ChromeDriver::start().await.map_err(|e| e.to_string())?;
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(driver.capabilities(1280, 900))
        .connect(&driver.url())
        .await
        .map_err(|e| format!("{e}\n{}", driver.log_tail()))?;
    c.goto(&format!("{base}/console/login?next=/console%3Fq%3Da-bench-dom"))
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Css("input[name=username]"))
        .await
        .map_err(|e| e.to_string())?
        .send_keys("admin")
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Css("input[name=password]"))
        .await
        .map_err(|e| e.to_string())?
        .send_keys(&password)
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Css("#login button"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("tr[data-target=a-bench-dom]"))
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_secs(2)).await; // the page's WebSocket subscribes
    let bus = async_nats::connect(nats.url()).await.map_err(|e| e.to_string())?;
    let wait_js = "const [want, done] = [arguments[0], arguments[arguments.length - 1]];
        const cell = document.querySelector('tr[data-target=a-bench-dom] [data-latency]');
        const seen = () => { if (cell.textContent === want) { obs.disconnect(); done(Date.now()); return true; } return false; };
        const obs = new MutationObserver(seen); obs.observe(cell, {childList: true, characterData: true, subtree: true});
        seen();";
    let mut delays = Vec::new();
    for i in 0..samples {
        let latency_ms = 1000 + i as u64;
        let want = format!("{latency_ms}.0 ms");
        let result = pantau_proto::v1::CheckResult {
            target_id: "a-bench-dom".to_owned(),
            location: "local".to_owned(),
            status: if i % 2 == 0 {
                pantau_proto::v1::CheckStatus::Down
            } else {
                pantau_proto::v1::CheckStatus::Up
            } as i32,
            latency: Some(prost_types::Duration {
                seconds: 1,
                nanos: (latency_ms as i32 - 1000) * 1_000_000,
            }),
            checked_at: Some(pantau_core::time::to_timestamp(SystemTime::now())),
            ..Default::default()
        };
        let subject = "pantau.check.result.local.a-bench-dom";
        let watch = c.execute_async(wait_js, vec![json!(want)]);
        let publish = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t0 = now_ms();
            bus.publish(subject, result.encode_to_vec().into())
                .await
                .map_err(|e| e.to_string())?;
            bus.flush().await.map_err(|e| e.to_string())?;
            Ok::<f64, String>(t0)
        };
        let (seen, t0) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(watch, publish) })
            .await
            .map_err(|_| format!("sample {i}: the DOM did not show {want} within 10 s"))?;
        let seen = seen
            .map_err(|e| e.to_string())?
            .as_f64()
            .ok_or("no time from the browser")?;
        delays.push(seen - t0?);
    }
    println!(
        "result on the bus → DOM changed (headless Chromium 156): {}",
        quantiles(delays)
    );
    let _ = c.close().await;
    let profile = if bin.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug (unoptimised: not the figures to judge by)"
    };
    println!(
        "ran beside: pantau all ({profile}: {}) with {n} TCP targets every 60 s, nats-server, chromedriver; the machine's other load not controlled",
        bin.display()
    );
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = rt.block_on(bench()) {
        eprintln!("bench-console failed: {e}");
        std::process::exit(1);
    }
}
