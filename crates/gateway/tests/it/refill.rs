//! The gateway fills its latest results from the collector's
//! `ListLatestResults` at start, and again when the collector answers after
//! it did not: a restarted gateway does not show an empty dashboard.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_server::{CollectorService, CollectorServiceServer};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

use crate::{get_json, result, start};

/// A collector that answers only `ListLatestResults`, with what the test set.
#[derive(Clone, Default)]
struct Collector {
    latest: Arc<Mutex<Vec<pb::CheckResult>>>,
}

type Stream = Pin<Box<dyn futures::Stream<Item = Result<pb::CheckResult, Status>> + Send>>;

fn no<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in this test"))
}

#[tonic::async_trait]
impl CollectorService for Collector {
    type StreamResultsStream = Stream;

    async fn list_targets(
        &self,
        _: Request<pb::ListTargetsRequest>,
    ) -> Result<Response<pb::ListTargetsResponse>, Status> {
        no()
    }
    async fn get_target(&self, _: Request<pb::GetTargetRequest>) -> Result<Response<pb::Target>, Status> {
        no()
    }
    async fn upsert_target(&self, _: Request<pb::UpsertTargetRequest>) -> Result<Response<pb::Target>, Status> {
        no()
    }
    async fn delete_target(
        &self,
        _: Request<pb::DeleteTargetRequest>,
    ) -> Result<Response<pb::DeleteTargetResponse>, Status> {
        no()
    }
    async fn list_latest_results(
        &self,
        _: Request<pb::ListLatestResultsRequest>,
    ) -> Result<Response<pb::ListLatestResultsResponse>, Status> {
        let results = self.latest.lock().unwrap().clone();
        Ok(Response::new(pb::ListLatestResultsResponse { results }))
    }
    async fn run_check(&self, _: Request<pb::RunCheckRequest>) -> Result<Response<pb::CheckResult>, Status> {
        no()
    }
    async fn pause_target(&self, _: Request<pb::PauseTargetRequest>) -> Result<Response<pb::Target>, Status> {
        no()
    }
    async fn resume_target(&self, _: Request<pb::ResumeTargetRequest>) -> Result<Response<pb::Target>, Status> {
        no()
    }
    async fn stream_results(
        &self,
        _: Request<pb::StreamResultsRequest>,
    ) -> Result<Response<Self::StreamResultsStream>, Status> {
        no()
    }
    async fn get_history(&self, _: Request<pb::GetHistoryRequest>) -> Result<Response<pb::GetHistoryResponse>, Status> {
        no()
    }
    async fn push(&self, _: Request<pb::PushRequest>) -> Result<Response<pb::PushResponse>, Status> {
        no()
    }
    async fn get_interface_traffic(
        &self,
        _: Request<pb::GetInterfaceTrafficRequest>,
    ) -> Result<Response<pb::GetInterfaceTrafficResponse>, Status> {
        no()
    }
}

async fn latest_ids(base: &str) -> Vec<(String, String)> {
    let (_, v) = get_json(&format!("{base}/api/v1/results/latest")).await;
    v["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["target_id"].as_str().unwrap_or_default().to_owned(),
                        r["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn within<F: std::future::Future<Output = bool>>(limit: Duration, mut f: impl FnMut() -> F) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_results_come_from_the_collector_at_start_and_when_it_is_back() {
    let collector = Collector::default();
    collector.latest.lock().unwrap().push(result("web", true));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(CollectorServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let g = start(|c| c.gateway.collector_url = format!("http://{addr}")).await;

    // Nothing was published on the bus: the result is the collector's.
    assert!(
        within(Duration::from_secs(5), || async {
            latest_ids(&g.base).await == [("web".to_owned(), "up".to_owned())]
        })
        .await,
        "the gateway shows the collector's latest results at start: {:?}",
        latest_ids(&g.base).await
    );

    // The collector stops answering, then comes back with newer results.
    reporter.set_service_status("", ServingStatus::NotServing).await;
    {
        let mut latest = collector.latest.lock().unwrap();
        latest.clear();
        latest.push(result("web", false));
        latest.push(result("db", true));
    }
    tokio::time::sleep(gateway_probe() + Duration::from_millis(500)).await;
    reporter.set_service_status("", ServingStatus::Serving).await;
    let want = [
        ("db".to_owned(), "up".to_owned()),
        ("web".to_owned(), "down".to_owned()),
    ];
    assert!(
        within(gateway_probe() * 2, || async { latest_ids(&g.base).await == want }).await,
        "the gateway asks again once the collector is back: {:?}",
        latest_ids(&g.base).await
    );
    server.abort();
}

fn gateway_probe() -> Duration {
    pantau_gateway::refill::PROBE + pantau_gateway::refill::RETRY
}
