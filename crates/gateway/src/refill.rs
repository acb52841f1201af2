//! The latest results from the collector: at start, and each time the
//! collector answers again after it did not, the gateway asks
//! `CollectorService.ListLatestResults` and keeps what is newer than what
//! the bus brought ([`Feed::fill`]). A restarted gateway, or one started
//! before the collector, so shows every target at once rather than an empty
//! dashboard until each has been checked again.

use std::sync::Arc;
use std::time::Duration;

use pantau_core::grpc::Channel;
use pantau_proto::v1::ListLatestResultsRequest;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::feed::Feed;

/// How often to try while the collector has not answered.
pub const RETRY: Duration = Duration::from_secs(1);
/// How often to ask the collector's health once filled: a collector that
/// stops answering is filled from again when it answers.
pub const PROBE: Duration = Duration::from_secs(5);

/// Asks the collector once; how many results were newer than the feed's.
pub async fn fill(feed: &Feed, collector: &Channel) -> Result<usize, tonic::Status> {
    let results = CollectorServiceClient::new(collector.clone())
        .list_latest_results(ListLatestResultsRequest { target_ids: Vec::new() })
        .await?
        .into_inner()
        .results;
    Ok(feed.fill(&results))
}

async fn serving(collector: &Channel) -> bool {
    let mut client = HealthClient::new(collector.clone());
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        client.check(HealthCheckRequest { service: String::new() }),
    )
    .await;
    matches!(answer, Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32)
}

/// Fills `feed` until `shutdown`; see the module documentation.
pub async fn run(feed: Arc<Feed>, collector: Channel, shutdown: CancellationToken) {
    let mut filled = false;
    loop {
        if filled {
            if !serving(&collector).await {
                tracing::info!("the collector does not answer; its latest results are asked for again when it does");
                filled = false;
            }
        } else {
            match fill(&feed, &collector).await {
                Ok(n) => {
                    tracing::info!(results = n, "latest results filled from the collector");
                    filled = true;
                }
                Err(e) => tracing::debug!(error = %e.message(), "cannot ask the collector for its latest results yet"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(if filled { PROBE } else { RETRY }) => {}
        }
    }
}
