//! `pantau.v1.NotifierService`: the delivery log, the channels (secrets
//! masked) and a test send.

use std::sync::Arc;

use pantau_config::ChannelConfig;
use pantau_core::error::quote;
use pantau_core::time::to_duration;
use pantau_proto::v1::notifier_service_server::{NotifierService, NotifierServiceServer};
use pantau_proto::v1::{
    Channel, Delivery, DeliveryAttempt, DeliveryStatus, ListChannelsRequest, ListChannelsResponse,
    ListDeliveriesRequest, ListDeliveriesResponse, TestChannelRequest, TestChannelResponse,
};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::Notifier;
use crate::channels::Outgoing;
use crate::notification::Notification;
use crate::store::{self, Filter};

/// The gRPC face of the notifier.
pub struct Service(Arc<Notifier>);

/// Serves `NotifierService` with health and reflection until `shutdown`.
/// Callers need a token (see `pantau_core::grpc::access`); writes are
/// audited in `store`.
pub async fn serve(
    ctx: &pantau_core::service::Context,
    notifier: Arc<Notifier>,
    listener: TcpListener,
    store: &pantau_core::store::Store,
) -> Result<(), pantau_core::grpc::GrpcError> {
    let routes = tonic::service::Routes::new(NotifierServiceServer::new(Service(notifier)));
    pantau_core::grpc::serve(
        ctx,
        listener,
        routes,
        &[<NotifierServiceServer<Service> as NamedService>::NAME],
        Some(store),
    )
    .await
}

fn ms_to_ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn status_of(s: &str) -> DeliveryStatus {
    match s {
        store::PENDING => DeliveryStatus::Pending,
        store::DELIVERED => DeliveryStatus::Delivered,
        store::FAILED => DeliveryStatus::Failed,
        _ => DeliveryStatus::Unspecified,
    }
}

/// A channel as the API shows it: every secret masked.
pub fn channel_view(c: &ChannelConfig) -> Channel {
    let mut m = c.clone();
    m.mask();
    let mut settings = std::collections::HashMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            settings.insert(k.to_owned(), v);
        }
    };
    put("url", m.url.clone());
    put("secret", m.secret.clone());
    put("token", m.token.clone());
    put("chat_id", m.chat_id.clone());
    put("phone_number_id", m.phone_number_id.clone());
    put("routing_key", m.routing_key.clone());
    put("to", (!m.to.is_empty()).then(|| m.to.join(",")));
    put("topic", m.topic.clone());
    put("user_key", m.user_key.clone());
    put("room_id", m.room_id.clone());
    put("channel", m.channel.clone());
    put("sender", m.sender.clone());
    put("method", m.method.map(|x| format!("{x:?}").to_lowercase()));
    put("body_format", m.body_format.map(|x| format!("{x:?}").to_lowercase()));
    put(
        "body",
        m.body
            .as_ref()
            .map(|b| serde_json::Value::Object(b.clone()).to_string()),
    );
    put("auth_header", m.auth_header.clone());
    for (k, v) in &m.priorities {
        put(&format!("priorities.{}", k.as_str()), Some(v.to_string()));
    }
    put("template", m.template.as_ref().map(|_| "custom".to_owned()));
    if let Some(s) = &m.smtp {
        put("smtp.host", Some(s.host.clone()));
        put("smtp.port", s.port.map(|p| p.to_string()));
        put("smtp.tls", Some(format!("{:?}", s.tls).to_lowercase()));
        put("smtp.username", s.username.clone());
        put("smtp.password", s.password.clone());
        put("smtp.from", Some(s.from.clone()));
        put("smtp.ca_file", s.ca_file.clone());
    }
    let target = match (&m.url, &m.smtp) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => format!("smtp://{}", s.host),
        (None, None) => crate::channels::default_url(m.kind).unwrap_or_default().to_owned(),
    };
    Channel {
        name: m.name.clone(),
        r#type: m.kind.as_str().to_owned(),
        target,
        settings,
        rate_limit: m.rate_limit,
        rate_limit_period: Some(to_duration(m.rate_limit_period)),
    }
}

#[tonic::async_trait]
impl NotifierService for Service {
    async fn list_deliveries(
        &self,
        req: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let r = req.into_inner();
        let status = match pantau_core::error::enum_arg("status", r.status)? {
            DeliveryStatus::Unspecified => None,
            DeliveryStatus::Pending => Some(store::PENDING),
            DeliveryStatus::Delivered => Some(store::DELIVERED),
            DeliveryStatus::Failed => Some(store::FAILED),
        };
        if r.limit > 1000 {
            return Err(Status::invalid_argument("limit must be at most 1000"));
        }
        let filter = Filter {
            channel: (!r.channel.is_empty()).then_some(r.channel),
            status,
            alert_key: (!r.alert_key.is_empty()).then_some(r.alert_key),
            limit: if r.limit == 0 { 100 } else { i64::from(r.limit) },
        };
        let rows = self
            .0
            .store()
            .list(&filter)
            .await
            .map_err(|e| pantau_core::error::store_unavailable("delivery log", &e))?;
        let deliveries = rows
            .into_iter()
            .map(|d| Delivery {
                status: status_of(&d.status).into(),
                id: d.id,
                channel: d.channel,
                channel_type: d.channel_type,
                recipient: d.recipient,
                alert_key: d.alert_key,
                state: d.state,
                source: d.source,
                attempts: d.attempts as u32,
                created_at: Some(ms_to_ts(d.created_at)),
                next_attempt_at: Some(ms_to_ts(d.next_attempt_at)),
                attempt_log: d
                    .log
                    .into_iter()
                    .map(|a| DeliveryAttempt {
                        attempt: a.attempt as u32,
                        at: Some(ms_to_ts(a.at)),
                        status_code: a.status_code as u32,
                        error: a.error,
                        latency: Some(to_duration(std::time::Duration::from_millis(a.latency_ms as u64))),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(ListDeliveriesResponse { deliveries }))
    }

    async fn list_channels(&self, _: Request<ListChannelsRequest>) -> Result<Response<ListChannelsResponse>, Status> {
        let mut channels: Vec<Channel> = self.0.channels().values().map(|c| channel_view(&c.config)).collect();
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        let routes = self
            .0
            .routes()
            .iter()
            .map(|r| pantau_proto::v1::NotificationRoute {
                severities: r.severity.clone(),
                labels: r.labels.clone().into_iter().collect(),
                channels: r.channels.clone(),
            })
            .collect();
        Ok(Response::new(ListChannelsResponse { channels, routes }))
    }

    async fn list_escalations(
        &self,
        _: Request<pantau_proto::v1::ListEscalationsRequest>,
    ) -> Result<Response<pantau_proto::v1::ListEscalationsResponse>, Status> {
        let routes = self.0.routes();
        let mut policies: Vec<_> = self.0.policies().values().map(|p| escalation_view(p, routes)).collect();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pantau_proto::v1::ListEscalationsResponse { policies }))
    }

    async fn test_channel(&self, req: Request<TestChannelRequest>) -> Result<Response<TestChannelResponse>, Status> {
        let r = req.into_inner();
        if r.channel.is_empty() {
            return Err(Status::invalid_argument("channel is required"));
        }
        let ch = self
            .0
            .channels()
            .get(&r.channel)
            .ok_or_else(|| Status::not_found(format!("no channel named `{}`", quote(&r.channel))))?;
        let recipient = if r.recipient.is_empty() {
            ch.recipients().into_iter().next().unwrap_or_default()
        } else {
            r.recipient
        };
        let n = Notification::test(&r.channel);
        let text = self
            .0
            .templates
            .render(&r.channel, ch.kind(), &n)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let key = n.delivery_id(&r.channel, &recipient);
        let started = Instant::now();
        let outcome = ch
            .sender
            .send(Outgoing {
                idempotency_key: &key,
                recipient: &recipient,
                notification: &n,
                text: &text,
            })
            .await;
        Ok(Response::new(TestChannelResponse {
            ok: outcome.result.is_ok(),
            status_code: u32::from(outcome.status_code),
            error: outcome.result.err().map(|e| e.to_string()).unwrap_or_default(),
            latency: Some(to_duration(started.elapsed())),
        }))
    }
}

/// The protobuf view of a parsed escalation policy, with the indexes of the
/// routes naming it. It holds channel names and times only: no secret.
pub fn escalation_view(
    p: &crate::escalation::Policy,
    routes: &[pantau_config::RouteConfig],
) -> pantau_proto::v1::EscalationPolicy {
    let span = |ms: i64| to_duration(std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    pantau_proto::v1::EscalationPolicy {
        name: p.name.clone(),
        repeat_every: p.repeat_every.map(span),
        steps: p
            .steps
            .iter()
            .map(|(after, channels)| pantau_proto::v1::EscalationStep {
                after: Some(span(*after)),
                channels: channels.clone(),
            })
            .collect(),
        remind_every: p.remind_every.map(span),
        routes: routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.escalation.as_deref() == Some(p.name.as_str()))
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escalation_policy_is_listed_as_parsed_with_the_routes_naming_it() {
        let cfg: pantau_config::EscalationConfig = serde_json::from_str(
            r#"{"name": "page", "repeat_every": "10m", "steps": [{"after": "30m", "channels": ["oncall", "lead"]}], "remind_every": "4h"}"#,
        )
        .unwrap();
        let routes: Vec<pantau_config::RouteConfig> = serde_json::from_str(
            r#"[{"channels": ["a"]}, {"channels": ["oncall"], "escalation": "page"}, {"channels": ["b"], "escalation": "other"}, {"channels": ["c"], "escalation": "page"}]"#,
        )
        .unwrap();
        let v = escalation_view(&crate::escalation::Policy::new(&cfg), &routes);
        assert_eq!(v.name, "page");
        assert_eq!(v.repeat_every.map(|d| d.seconds), Some(600));
        assert_eq!(v.remind_every.map(|d| d.seconds), Some(4 * 3600));
        assert_eq!(v.steps.len(), 1);
        assert_eq!(v.steps[0].after.map(|d| d.seconds), Some(1800));
        assert_eq!(v.steps[0].channels, ["oncall", "lead"]);
        assert_eq!(v.routes, [1, 3]);
        let none: pantau_config::EscalationConfig = serde_json::from_str(r#"{"name": "quiet"}"#).unwrap();
        let v = escalation_view(&crate::escalation::Policy::new(&none), &routes);
        assert!(v.repeat_every.is_none() && v.remind_every.is_none() && v.steps.is_empty() && v.routes.is_empty());
    }
}
