//! `CollectorService` against real local targets.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pantau_config::{CheckType, Config, RawTarget};
use pantau_core::bus::memory::MemoryBus;
use pantau_core::bus::{Bus, Subscription, decode};
use pantau_core::service::Context;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use pantau_proto::v1::{
    CheckResult, CheckStatus, FailureReason, ListLatestResultsRequest, ListTargetsRequest, RunCheckRequest,
    StreamResultsRequest,
};
use tonic::Code;

fn target(id: &str, check: CheckType, url: Option<String>, address: Option<String>) -> RawTarget {
    let mut t = RawTarget::new(id, check);
    t.url = url;
    t.address = address;
    t.labels = [("team".to_owned(), "ops".to_owned())].into();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_service_and_bus_results() {
    // A live HTTP target and a closed TCP port.
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }));
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_addr = web.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(web, app).await });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.data_dir = dir.path().to_owned();
    config.instance.location = "jkt".into();
    config.collector.interval = Duration::from_secs(1);
    config.collector.timeout = Duration::from_millis(500);
    config.collector.targets = vec![
        target("web", CheckType::Http, Some(format!("http://{web_addr}/ok")), None)
            .parse("t")
            .unwrap()
            .into(),
        target("closed", CheckType::Tcp, None, Some(closed_addr.to_string()))
            .parse("t")
            .unwrap()
            .into(),
    ];
    config.validate().unwrap();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let mut on_bus = bus
        .subscribe(Subscription::live("pantau.check.result.jkt.*"))
        .await
        .unwrap();
    let ctx = Context::new(Arc::new(config), Arc::clone(&bus));
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let run = tokio::spawn(pantau_collector::run(ctx.clone(), grpc));

    // Results arrive on the bus under the documented subject.
    let msg = tokio::time::timeout(Duration::from_secs(5), on_bus.next())
        .await
        .unwrap()
        .unwrap();
    let r: CheckResult = decode(&msg).expect("a CheckResult");
    assert_eq!(msg.subject, format!("pantau.check.result.jkt.{}", r.target_id));
    assert_eq!(r.labels["team"], "ops");

    let channel = ctx
        .security
        .channel_as(&format!("http://{grpc_addr}"), "test", "admin")
        .unwrap();
    let mut client = CollectorServiceClient::new(channel);
    let targets = client
        .list_targets(ListTargetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(
        targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["closed", "web"]
    );

    let down = client
        .run_check(RunCheckRequest {
            target_id: "closed".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(down.status(), CheckStatus::Down);
    assert_eq!(down.reason(), FailureReason::Refused, "{down:?}");
    assert!(down.message.contains("connection refused"), "{}", down.message);

    let up = client
        .run_check(RunCheckRequest {
            target_id: "web".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(up.status(), CheckStatus::Up, "{up:?}");

    let missing = client
        .run_check(RunCheckRequest {
            target_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("nope"));
    let empty = client
        .run_check(RunCheckRequest {
            target_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    let latest = client
        .list_latest_results(ListLatestResultsRequest { target_ids: vec![] })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(latest.len(), 2);

    let mut stream = client
        .stream_results(StreamResultsRequest {
            target_ids: vec!["web".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let streamed = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(streamed.target_id, "web");

    ctx.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
