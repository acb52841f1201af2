//! The services behind the gateway, as seen by `grpc.health.v1`: a backend
//! that does not answer makes the gateway degraded, not unhealthy.

use std::time::Duration;

use pantau_core::grpc::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Each backend's name and channel.
#[derive(Clone, Debug)]
pub struct Backends(pub Vec<(&'static str, Channel)>);

impl Backends {
    pub fn from_context(ctx: &pantau_core::service::Context) -> Self {
        let (c, g) = (&ctx.config, &ctx.config.gateway);
        let mut list = vec![
            ("collector", ctx.channel(&g.collector_url)),
            ("alert-engine", ctx.channel(&g.alert_engine_url)),
            ("notifier", ctx.channel(&g.notifier_url)),
            ("wan-detector", ctx.channel(&g.wan_detector_url)),
        ];
        // A standalone instance runs no sync-api.
        if c.sync.active() {
            list.push(("sync-api", ctx.channel(&g.sync_url)));
        }
        Self(list)
    }
}

const DEADLINE: Duration = Duration::from_secs(2);

/// Each backend's name and, when it is not serving, why.
pub async fn check_all(b: &Backends) -> Vec<(&'static str, Option<String>)> {
    futures::future::join_all(b.0.iter().map(|(name, ch)| async move {
        let mut client = HealthClient::new(ch.clone());
        let answer = tokio::time::timeout(DEADLINE, client.check(HealthCheckRequest { service: String::new() })).await;
        let error = match answer {
            Err(_) => Some(format!("no answer within {}s", DEADLINE.as_secs())),
            Ok(Err(status)) => Some(format!("unreachable: {}", status.message())),
            Ok(Ok(r)) => match ServingStatus::try_from(r.into_inner().status) {
                Ok(ServingStatus::Serving) => None,
                Ok(s) => Some(format!("reports {}", s.as_str_name())),
                Err(_) => Some("reports an unknown status".to_owned()),
            },
        };
        (*name, error)
    }))
    .await
}
