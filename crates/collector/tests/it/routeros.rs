//! Router polling over the MikroTik RouterOS API and the RouterOS v7 REST
//! API against pantau-testkit's protocol-faithful simulator: interfaces and
//! the default route, a counter reset, a reboot, interface down/up, a
//! refused login, `!fatal`, and an unreachable router behind the breaker,
//! each seen arriving on the in-process bus.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_collector::routers::RouterPoller;
use pantau_config::{CollectorConfig, RouterConfig, RouterDriver};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{self, Bus, Message, MessageStream, Subscription};
use pantau_proto::v1::{EventKind, InterfaceSample, RouterEvent, RouterInfo};
use pantau_testkit::{ROUTEROS_PASSWORD, ROUTEROS_USER, RouterOsSim};

const ID: &str = "mt";

async fn sim(driver: RouterDriver) -> RouterOsSim {
    match driver {
        RouterDriver::RouterosRest => RouterOsSim::start_with_rest().await,
        _ => RouterOsSim::start().await,
    }
    .unwrap_or_else(|e| panic!("{e}"))
}

fn router(driver: RouterDriver, sim: &RouterOsSim, password: &str) -> RouterConfig {
    let addr = match driver {
        RouterDriver::RouterosRest => sim.rest_addr().expect("REST is served"),
        _ => sim.api_addr(),
    };
    let mut r = RouterConfig::routeros(ID, addr.to_string(), driver, ROUTEROS_USER, password);
    r.interval = Some(Duration::from_secs(5));
    r.timeout = Some(Duration::from_secs(2));
    r
}

struct Rig {
    sim: RouterOsSim,
    poller: RouterPoller,
    stream: MessageStream,
}

async fn rig(driver: RouterDriver) -> Rig {
    rig_with(driver, ROUTEROS_PASSWORD, CollectorConfig::default()).await
}

async fn rig_with(driver: RouterDriver, password: &str, col: CollectorConfig) -> Rig {
    let sim = sim(driver).await;
    let bus = Arc::new(MemoryBus::new());
    let stream = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    let poller = RouterPoller::new(&router(driver, &sim, password), &col, bus);
    Rig { sim, poller, stream }
}

/// Every message published so far (the bus is in-process: publishing is done).
async fn drain(stream: &mut MessageStream) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
        out.push(m);
    }
    out
}

/// The change events (not the `traffic` measurements).
fn events(got: &[Message]) -> Vec<(String, RouterEvent)> {
    got.iter()
        .filter(|m| m.subject.starts_with("pantau.event.") && !m.subject.starts_with("pantau.event.traffic."))
        .map(|m| (m.subject.clone(), bus::decode(m).unwrap()))
        .collect()
}

impl Rig {
    async fn poll_up(&mut self) {
        let (o, _) = self.poller.poll_once().await;
        assert!(o.up, "the poll failed: {:?}", o.events);
    }
}

async fn interfaces_and_default_route(driver: RouterDriver) {
    let mut r = rig(driver).await;
    r.poll_up().await;
    r.sim.add_traffic("ether1", 3_000_000, 500_000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.poll_up().await;
    let got = drain(&mut r.stream).await;
    assert!(events(&got).is_empty(), "{:?}", events(&got));
    // The second poll's rates as `traffic` events, one per interface, the
    // same as the samples'.
    let traffic: Vec<RouterEvent> = got
        .iter()
        .filter(|m| m.subject == format!("pantau.event.traffic.{ID}"))
        .map(|m| bus::decode(m).unwrap())
        .collect();
    let e1 = traffic
        .iter()
        .find(|e| e.attributes["interface"] == "ether1")
        .unwrap_or_else(|| panic!("{traffic:?}"));
    let s1: InterfaceSample = got
        .iter()
        .filter(|m| m.subject == format!("pantau.iface.sample.{ID}.1"))
        .map(|m| bus::decode(m).unwrap())
        .next_back()
        .unwrap();
    assert!(s1.rates_valid && s1.in_bits_per_second > 0.0, "{s1:?}");
    assert_eq!(e1.attributes["in_bits_per_second"], s1.in_bits_per_second.to_string());
    assert_eq!(e1.attributes["out_bits_per_second"], s1.out_bits_per_second.to_string());
    let infos: Vec<RouterInfo> = got
        .iter()
        .filter(|m| m.subject == format!("pantau.router.info.{ID}"))
        .map(|m| bus::decode(m).unwrap())
        .collect();
    assert_eq!(infos.len(), 2);
    let info = &infos[1];
    assert_eq!(info.sys_name, "edge-jkt");
    assert_eq!(info.sys_descr, "RouterOS 7.16.1 (stable) RB5009UG+S+");
    assert!(info.uptime.is_some_and(|u| u.seconds >= 3 * 86_400));
    assert_eq!(
        info.default_route_if_indexes,
        [1],
        "the active default route is via ether1"
    );
    assert_eq!(info.route_table, "routeros /ip/route");
    let names: Vec<&str> = info.interfaces.iter().map(|i| i.if_name.as_str()).collect();
    assert_eq!(names, ["ether1", "ether2", "bridge1", "pppoe-out1"], "by ifIndex (.id)");
    let e1 = &info.interfaces[0];
    assert_eq!((e1.if_index, e1.if_type, e1.oper_up, e1.admin_up), (1, 6, true, true));
    assert_eq!(e1.comment, "WAN Telkom");
    assert_eq!(e1.addresses, ["192.0.2.2/24"]);
    let pppoe = &info.interfaces[3];
    assert_eq!((pppoe.if_index, pppoe.if_type), (0x1A, 23));
    assert_eq!(pppoe.pppoe_user, "acct@biznet");
    let samples: Vec<InterfaceSample> = got
        .iter()
        .filter(|m| m.subject == format!("pantau.iface.sample.{ID}.1"))
        .map(|m| bus::decode(m).unwrap())
        .collect();
    assert_eq!(samples.len(), 2);
    assert!(!samples[0].rates_valid, "no rate on the first poll");
    let s = &samples[1];
    assert!(s.rates_valid, "{s:?}");
    assert_eq!(s.counter_bits, 64);
    assert_eq!((s.in_octets, s.out_octets), (9_003_000_000, 1_000_500_000));
    // 3 MB in about 0.3 s: tens of Mbit/s, never negative.
    assert!(
        s.in_bits_per_second > 1e6 && s.in_bits_per_second < 1e9,
        "{}",
        s.in_bits_per_second
    );
    assert!(s.in_bits_per_second > s.out_bits_per_second);
    assert!(s.in_packets_per_second > 0.0);
}

async fn counter_reset(driver: RouterDriver) {
    let mut r = rig(driver).await;
    r.poll_up().await;
    r.sim.reset_counters("ether1");
    r.sim.add_traffic("ether1", 4000, 2000);
    r.poll_up().await;
    let ev = events(&drain(&mut r.stream).await);
    let resets: Vec<&RouterEvent> = ev
        .iter()
        .filter(|(s, _)| *s == format!("pantau.event.counter_reset.{ID}"))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(resets.len(), 2, "in and out octets: {ev:?}");
    let rx = resets.iter().find(|e| e.attributes["counter"] == "in_octets").unwrap();
    assert_eq!(rx.kind(), EventKind::CounterReset);
    assert_eq!(rx.attributes["interface"], "ether1");
    assert_eq!(rx.attributes["before"], "9000000000");
    assert_eq!(rx.attributes["after"], "4000");
    assert!(!ev.iter().any(|(s, _)| s.contains("reboot")), "{ev:?}");
}

async fn reboot(driver: RouterDriver) {
    let mut r = rig(driver).await;
    r.poll_up().await;
    r.sim.reboot(Duration::from_secs(20));
    r.poll_up().await;
    let ev = events(&drain(&mut r.stream).await);
    assert_eq!(ev.len(), 1, "one reboot, no counter_reset: {ev:?}");
    let (subject, e) = &ev[0];
    assert_eq!(subject, &format!("pantau.event.reboot.{ID}"));
    assert_eq!(e.kind(), EventKind::Reboot);
    assert_eq!(e.attributes["uptime_after_seconds"], "20");
    assert!(e.attributes["uptime_before_seconds"].parse::<u64>().unwrap() >= 3 * 86_400);
}

async fn interface_down_and_up(driver: RouterDriver) {
    let mut r = rig(driver).await;
    r.poll_up().await;
    r.sim.set_running("ether1", false);
    r.poll_up().await;
    r.sim.set_running("ether1", true);
    r.poll_up().await;
    let ev = events(&drain(&mut r.stream).await);
    let subjects: Vec<&str> = ev.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            format!("pantau.event.interface_down.{ID}"),
            format!("pantau.event.interface_up.{ID}")
        ]
    );
    assert_eq!(ev[0].1.attributes["interface"], "ether1");
    assert_eq!(ev[0].1.kind(), EventKind::InterfaceDown);
    assert_eq!(ev[1].1.kind(), EventKind::InterfaceUp);
}

async fn login_failure(driver: RouterDriver, want: &str) {
    let mut r = rig_with(driver, "wrong-password", CollectorConfig::default()).await;
    let (o, _) = r.poller.poll_once().await;
    assert!(!o.up && o.samples.is_empty() && o.info.is_none());
    let ev = events(&drain(&mut r.stream).await);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = &ev[0].1;
    assert_eq!(e.kind(), EventKind::TargetDown);
    assert!(
        e.message.contains(&format!("login as `{ROUTEROS_USER}` refused")) && e.message.contains(want),
        "{}",
        e.message
    );
    assert!(
        !e.message.contains("wrong-password"),
        "the password leaked: {}",
        e.message
    );
    assert_eq!(e.attributes["kind"], "router");
    assert_eq!(e.attributes["reason"], driver.as_str());
}

/// Unreachable: one `target_down`, nothing per interface, the breaker opens
/// and, once the router is back, `target_up` and samples again.
async fn unreachable(driver: RouterDriver) {
    let mut col = CollectorConfig::default();
    col.circuit_breaker.failure_threshold = 2;
    col.circuit_breaker.recovery_timeout = Duration::from_secs(1);
    let mut r = rig_with(driver, ROUTEROS_PASSWORD, col).await;
    r.poll_up().await;
    drain(&mut r.stream).await;
    r.sim.stop();
    for _ in 0..3 {
        let (o, next) = r.poller.poll_once().await;
        assert!(!o.up);
        assert!(next <= Duration::from_secs(5));
    }
    let got = drain(&mut r.stream).await;
    let ev = events(&got);
    assert_eq!(ev.len(), 1, "one event for the router: {ev:?}");
    assert_eq!(ev[0].0, format!("pantau.event.target_down.{ID}"));
    assert!(ev[0].1.message.contains("does not answer"), "{}", ev[0].1.message);
    assert!(!got.iter().any(|m| m.subject.starts_with("pantau.iface.sample.")));
    r.sim.restart().await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (o, next) = r.poller.poll_once().await;
            if o.up {
                return o;
            }
            tokio::time::sleep(next.min(Duration::from_millis(200))).await;
        }
    })
    .await
    .expect("the router answers again through the half-open breaker");
    assert_eq!(back.events.len(), 1, "{:?}", back.events);
    assert_eq!(back.events[0].0, "target_up");
    let got = drain(&mut r.stream).await;
    assert!(got.iter().any(|m| m.subject == format!("pantau.event.target_up.{ID}")));
    assert!(got.iter().any(|m| m.subject == format!("pantau.iface.sample.{ID}.1")));
}

macro_rules! both {
    ($name:ident, $api:ident, $rest:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $api() {
            $name(RouterDriver::Routeros).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $rest() {
            $name(RouterDriver::RouterosRest).await;
        }
    };
}

both!(
    interfaces_and_default_route,
    api_publishes_interfaces_and_the_default_route,
    rest_publishes_interfaces_and_the_default_route
);
both!(
    counter_reset,
    api_counter_reset_is_an_event_with_before_and_after,
    rest_counter_reset_is_an_event_with_before_and_after
);
both!(
    reboot,
    api_uptime_going_back_is_a_reboot,
    rest_uptime_going_back_is_a_reboot
);
both!(
    interface_down_and_up,
    api_interface_down_then_up,
    rest_interface_down_then_up
);
both!(
    unreachable,
    api_unreachable_router_is_one_event_and_the_breaker_recovers,
    rest_unreachable_router_is_one_event_and_the_breaker_recovers
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_login_failure_is_a_clear_error() {
    login_failure(RouterDriver::Routeros, "invalid user name or password").await;
}

/// A router that closes the connection right after the `!trap`: the
/// message still names the refused login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_login_failure_then_close_is_still_a_clear_error() {
    let mut r = rig_with(RouterDriver::Routeros, "wrong-password", CollectorConfig::default()).await;
    r.sim.with_state(|s| s.login_failure_closes = true);
    let (o, _) = r.poller.poll_once().await;
    assert!(!o.up);
    let msg = &o.events[0].1.message;
    assert!(
        msg.contains("login as `pantau` refused: invalid user name or password"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_login_failure_is_a_clear_error() {
    login_failure(RouterDriver::RouterosRest, "HTTP 401 Unauthorized").await;
}

/// `!fatal` ends the session: the poll fails naming it, the next one logs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_fatal_closes_the_session_and_the_next_poll_reconnects() {
    let mut r = rig(RouterDriver::Routeros).await;
    r.poll_up().await;
    r.sim.fatal_next("too many commands");
    let (o, _) = r.poller.poll_once().await;
    assert!(!o.up);
    assert!(
        o.events[0].1.message.contains("!fatal") && o.events[0].1.message.contains("too many commands"),
        "{}",
        o.events[0].1.message
    );
    r.poll_up().await;
}

/// A RouterOS router in a config file, run by `routers::start`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routeros_router_from_yaml_polls_through_start() {
    let s = sim(RouterDriver::Routeros).await;
    let yaml = format!(
        "collector:\n  routers:\n    - id: {ID}\n      address: {}\n      driver: routeros\n      username: {ROUTEROS_USER}\n      password: {ROUTEROS_PASSWORD}\n      interval: 1s\n      timeout: 1s\n",
        s.api_addr()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routers.yaml");
    std::fs::write(&file, yaml).unwrap();
    let cfg = pantau_config::Config::load(&pantau_config::LoadOptions {
        file: Some(file),
        env: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!cfg.to_masked_yaml().contains(ROUTEROS_PASSWORD));
    let bus = Arc::new(MemoryBus::new());
    let mut stream = bus.subscribe(Subscription::live("pantau.>")).await.unwrap();
    let ctx = pantau_core::service::Context::new(Arc::new(cfg), bus.clone());
    pantau_collector::routers::start(&ctx, None, None);
    let info = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = stream.next().await.expect("the bus is open");
            if m.subject == format!("pantau.router.info.{ID}") {
                return bus::decode::<RouterInfo>(&m).unwrap();
            }
        }
    })
    .await
    .expect("router info within 10 s");
    assert_eq!(info.default_route_if_indexes, [1]);
    ctx.shutdown.cancel();
    ctx.tasks.close();
    tokio::time::timeout(Duration::from_secs(5), ctx.tasks.wait())
        .await
        .expect("the pollers stop on shutdown");
}

/// API-SSL (8729): with the router's CA as `ca_file`, and with
/// `tls_verify: false`; verification against the web roots refuses the
/// self-signed certificate, naming TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_ssl_polls_with_ca_file_or_without_verification() {
    let s = RouterOsSim::start_tls().await.unwrap_or_else(|e| panic!("{e}"));
    let bus = Arc::new(MemoryBus::new());
    let col = CollectorConfig::default();
    let mut r = router(RouterDriver::Routeros, &s, ROUTEROS_PASSWORD);
    r.tls = true;
    r.ca_file = s.ca_file();
    let (o, _) = RouterPoller::new(&r, &col, bus.clone()).poll_once().await;
    assert!(o.up, "{:?}", o.events);
    assert_eq!(o.info.unwrap().default_route_if_indexes, [1]);
    r.ca_file = None;
    r.tls_verify = false;
    let (o, _) = RouterPoller::new(&r, &col, bus.clone()).poll_once().await;
    assert!(o.up, "{:?}", o.events);
    r.tls_verify = true;
    let (o, _) = RouterPoller::new(&r, &col, bus.clone()).poll_once().await;
    assert!(!o.up);
    assert!(o.events[0].1.message.contains("TLS"), "{}", o.events[0].1.message);
    // Plain API against the API-SSL port: no answer a RouterOS API speaks.
    r.tls = false;
    let (o, _) = RouterPoller::new(&r, &col, bus).poll_once().await;
    assert!(!o.up);
}

/// The API client on its own: a command the router does not know is a
/// `!trap` naming it, and the session goes on with the next command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_trap_names_the_command_and_the_session_goes_on() {
    use pantau_collector::routers::routeros::api::Session;
    let s = sim(RouterDriver::Routeros).await;
    let r = router(RouterDriver::Routeros, &s, ROUTEROS_PASSWORD);
    let mut session = Session::connect(&r, Duration::from_secs(2)).await.unwrap();
    let e = session.command(&["/no/such/print"]).await.unwrap_err().to_string();
    assert_eq!(e, "`/no/such/print` failed (!trap): no such command");
    let rows = session
        .command(&["/interface/print", "?name=ether2", "=.proplist=name,comment"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get("comment").map(String::as_str), Some("LAN"));
    assert_eq!(rows[0].len(), 2, "only the .proplist properties: {:?}", rows[0]);
}

/// REST over HTTPS: with the router's CA as `ca_file`, and with
/// `tls_verify: false`; the web roots refuse the self-signed certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_over_https_with_ca_file_or_without_verification() {
    let s = RouterOsSim::start_tls_with_rest()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bus = Arc::new(MemoryBus::new());
    let col = CollectorConfig::default();
    let mut r = router(RouterDriver::RouterosRest, &s, ROUTEROS_PASSWORD);
    r.tls = true;
    r.ca_file = s.ca_file();
    let (o, _) = RouterPoller::new(&r, &col, bus.clone()).poll_once().await;
    assert!(o.up, "{:?}", o.events);
    assert_eq!(o.info.unwrap().default_route_if_indexes, [1]);
    r.ca_file = None;
    r.tls_verify = false;
    let (o, _) = RouterPoller::new(&r, &col, bus.clone()).poll_once().await;
    assert!(o.up, "{:?}", o.events);
    r.tls_verify = true;
    let (o, _) = RouterPoller::new(&r, &col, bus).poll_once().await;
    assert!(!o.up);
    let msg = &o.events[0].1.message;
    assert!(
        msg.contains("https://127.0.0.1") && msg.to_lowercase().contains("certificate"),
        "{msg}"
    );
}
