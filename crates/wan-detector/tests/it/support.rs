//! What the tests share: a configuration, a running detector, and waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pantau_config::Config;
use pantau_core::bus::Bus;
use pantau_core::service::Context;
use pantau_proto::v1::wan_detector_service_client::WanDetectorServiceClient;
use pantau_proto::v1::{InterfaceSample, RouterInfo, RouterInterface};

pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.gateway.auth.enabled = false;
    c.validate().unwrap();
    c
}

/// A detector running with `cfg` on `bus`: its context, gRPC address and task.
pub struct Running {
    pub ctx: Context,
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), pantau_wan_detector::WanError>>,
}

impl Running {
    pub async fn start(cfg: Config, bus: Arc<dyn Bus>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Context::new(Arc::new(cfg), bus);
        let task = tokio::spawn(pantau_wan_detector::run(ctx.clone(), listener));
        ready(addr).await;
        Self { ctx, addr, task }
    }

    /// A reader's client (a token minted with the detector's own keys).
    pub fn client(&self) -> WanDetectorServiceClient<pantau_core::grpc::Channel> {
        let url = format!("http://{}", self.addr);
        WanDetectorServiceClient::new(self.ctx.security.channel_as(&url, "test", "monitoring:read").unwrap())
    }

    pub async fn stop(self) {
        self.ctx.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the detector stops within 10s")
            .unwrap()
            .unwrap();
    }
}

/// Waits until the gRPC health service says SERVING.
pub async fn ready(addr: SocketAddr) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(ch) = tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                && let Ok(r) = HealthClient::new(ch)
                    .check(HealthCheckRequest {
                        service: "pantau.v1.WanDetectorService".into(),
                    })
                    .await
                && r.into_inner().status == 1
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the detector serves gRPC within 10s");
}

/// Retries `f` until it gives `Some`, for at most 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn iface(index: u32, name: &str) -> RouterInterface {
    RouterInterface {
        if_index: index,
        if_name: name.into(),
        if_descr: name.into(),
        if_type: 6,
        oper_up: true,
        admin_up: true,
        ..RouterInterface::default()
    }
}

/// A MikroTik-like router: ether1 to Telkom (default route), a PPPoE uplink
/// to Biznet, and a LAN bridge.
pub fn mikrotik(id: &str) -> RouterInfo {
    let mut pppoe = iface(7, "pppoe-out1");
    pppoe.pppoe_user = "1234567@biznet".into();
    pppoe.if_type = 23;
    let mut ether1 = iface(1, "ether1");
    ether1.comment = "Indihome 100M".into();
    ether1.addresses = vec!["36.70.1.2/24".into()];
    RouterInfo {
        router_id: id.into(),
        router_name: format!("{id} name"),
        sys_name: "MikroTik".into(),
        sys_descr: "RouterOS CCR2004".into(),
        default_route_if_indexes: vec![1],
        route_table: "ipCidrRouteTable".into(),
        interfaces: vec![ether1, iface(2, "bridge-lan"), pppoe],
        polled_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..RouterInfo::default()
    }
}

pub fn sample(router: &str, index: u32, name: &str, rx: f64, tx: f64) -> InterfaceSample {
    InterfaceSample {
        router_id: router.into(),
        if_index: index,
        if_name: name.into(),
        in_bits_per_second: rx,
        out_bits_per_second: tx,
        rates_valid: true,
        oper_up: true,
        admin_up: true,
        sampled_at: Some(pantau_core::time::to_timestamp(std::time::SystemTime::now())),
        ..InterfaceSample::default()
    }
}
