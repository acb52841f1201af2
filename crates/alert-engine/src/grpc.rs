//! `pantau.v1.AlertEngineService` over the [`Engine`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use futures::{Stream, StreamExt};
use pantau_config::{AlertRuleConfig, AlertSeverity};
use pantau_core::error::quote;
use pantau_core::time::{from_duration, from_timestamp, to_duration, to_timestamp};
use pantau_proto::v1 as pb;
use pantau_proto::v1::alert_engine_service_server::{AlertEngineService, AlertEngineServiceServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::engine::{Engine, EngineError, proto_severity};
use crate::incident::{self, store::IncidentFilter};
use crate::lifecycle::{Alert, State, Transition};
use crate::rule::Rule;
use crate::silence::{Silence, SilenceMatcher};
use crate::store::{Filter, MAX_PAGE};

/// The gRPC face of the engine.
pub struct Service {
    engine: Arc<Engine>,
    shutdown: CancellationToken,
}

/// Serves `AlertEngineService` with health and reflection until `shutdown`.
/// Callers need a token (see `pantau_core::grpc::access`); writes are
/// audited in `store`.
pub async fn serve(
    ctx: &pantau_core::service::Context,
    engine: Arc<Engine>,
    listener: TcpListener,
    store: &pantau_core::store::Store,
) -> Result<(), pantau_core::grpc::GrpcError> {
    let svc = Service {
        engine,
        shutdown: ctx.shutdown.clone(),
    };
    let routes = tonic::service::Routes::new(AlertEngineServiceServer::new(svc));
    pantau_core::grpc::serve(
        ctx,
        listener,
        routes,
        &[<AlertEngineServiceServer<Service> as NamedService>::NAME],
        Some(store),
    )
    .await
}

/// Runs a change on a task of its own: a client that gives up (or whose
/// deadline passes) does not cancel it half-way, applied in memory but
/// neither stored nor undone.
async fn detached<T: Send + 'static>(
    change: impl Future<Output = Result<T, EngineError>> + Send + 'static,
) -> Result<T, Status> {
    // The change keeps the call's span: what it publishes continues the caller's trace.
    tokio::spawn(pantau_core::telemetry::in_current_service(
        tracing::Instrument::in_current_span(change),
    ))
    .await
    .map_err(|e| Status::internal(format!("the change failed: {e}")))?
    .map_err(status)
}

/// Who changes a maintenance window: the user the gateway acts for, else
/// the request's `actor`, else the token's subject.
fn window_actor<T>(req: &Request<T>, actor: impl Fn(&T) -> &String) -> String {
    let caller = req.extensions().get::<pantau_core::auth::Caller>();
    caller
        .and_then(|c| c.on_behalf_of.clone())
        .or_else(|| Some(actor(req.get_ref()).clone()).filter(|a| !a.trim().is_empty()))
        .or_else(|| caller.map(|c| c.subject.clone()))
        .unwrap_or_else(|| "anonymous".to_owned())
}

/// Each engine error as a gRPC status; storage details stay in the log.
pub fn status(e: impl Into<EngineError>) -> Status {
    pantau_core::error::status(&e.into())
}

fn proto_state(s: State) -> i32 {
    match s {
        State::Firing => pb::AlertState::Firing,
        State::Acknowledged => pb::AlertState::Acknowledged,
        State::Resolved => pb::AlertState::Resolved,
    }
    .into()
}

/// The protobuf view of an alert.
pub fn to_proto(a: &Alert, transitions: &[Transition]) -> pb::Alert {
    pb::Alert {
        id: a.id.clone(),
        fingerprint: a.fingerprint.clone(),
        rule_id: a.rule_id.clone(),
        rule_name: a.rule_name.clone(),
        state: proto_state(a.state),
        severity: proto_severity(&a.severity).into(),
        summary: a.summary.clone(),
        labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        source: a.source.clone(),
        resource: a.resource.clone(),
        value: a.value.clone(),
        started_at: Some(to_timestamp(a.started_at)),
        updated_at: Some(to_timestamp(a.updated_at)),
        acknowledged_at: a.acknowledged_at.map(to_timestamp),
        acknowledged_by: a.acknowledged_by.clone(),
        acknowledge_comment: a.acknowledge_comment.clone(),
        resolved_at: a.resolved_at.map(to_timestamp),
        resolved_by: a.resolved_by.clone(),
        suppressed_by: a.suppressed_by.clone(),
        transitions: transitions
            .iter()
            .map(|t| pb::AlertTransition {
                state: proto_state(t.state),
                at: Some(to_timestamp(t.at)),
                actor: t.actor.clone(),
                comment: t.comment.clone(),
            })
            .collect(),
    }
}

/// The protobuf view of a rule.
pub fn rule_to_proto(r: &Rule) -> pb::AlertRule {
    let c = &r.config;
    pb::AlertRule {
        id: c.id.clone(),
        name: r.name().to_owned(),
        expr: c.expr.clone(),
        severity: match c.severity {
            AlertSeverity::Info => pb::Severity::Info,
            AlertSeverity::Warning => pb::Severity::Warning,
            AlertSeverity::Critical => pb::Severity::Critical,
        }
        .into(),
        message: c.message.clone(),
        labels: c.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        r#for: (!r.hold.is_zero()).then(|| to_duration(r.hold)),
        cooldown: Some(to_duration(r.cooldown)),
        enabled: Some(c.enabled),
        origin: r.origin.as_str().to_owned(),
        depends_on: c.depends_on.clone(),
    }
}

/// A rule as the API sends it; severity unset means warning.
pub fn rule_from_proto(r: pb::AlertRule) -> Result<AlertRuleConfig, Status> {
    let severity = match pantau_core::error::enum_arg("rule.severity", r.severity)? {
        pb::Severity::Unspecified | pb::Severity::Warning => AlertSeverity::Warning,
        pb::Severity::Info => AlertSeverity::Info,
        pb::Severity::Critical => AlertSeverity::Critical,
    };
    let duration = |d: Option<prost_types::Duration>, field: &str| -> Result<Option<std::time::Duration>, Status> {
        match d {
            None => Ok(None),
            Some(d) => pantau_config::proto::duration_field(&format!("rule.{field}"), Some(&d))
                .map_err(|e| pantau_core::error::status_of(pantau_core::error::ErrorCode::InvalidArgument, e)),
        }
    };
    let for_ = duration(r.r#for, "for")?.filter(|d| !d.is_zero());
    let cooldown = duration(r.cooldown, "cooldown")?;
    Ok(AlertRuleConfig {
        name: (!r.name.is_empty()).then_some(r.name),
        id: r.id,
        expr: r.expr,
        severity,
        message: r.message,
        labels: r.labels.into_iter().collect(),
        for_,
        cooldown,
        enabled: r.enabled.unwrap_or(true),
        depends_on: r.depends_on,
    })
}

/// An alert raised by hand as `CreateAlert` sends it, checked field by field
/// (INVALID_ARGUMENT naming the field); an unknown or unset severity is refused.
pub fn manual_from_proto(
    severity: i32,
    source: String,
    title: String,
    message: String,
    resource: String,
    labels: impl IntoIterator<Item = (String, String)>,
) -> Result<pantau_config::ManualAlert, Status> {
    let severity = match pantau_core::error::enum_arg("severity", severity)? {
        pb::Severity::Unspecified => None,
        pb::Severity::Info => Some("info"),
        pb::Severity::Warning => Some("warning"),
        pb::Severity::Critical => Some("critical"),
    };
    pantau_config::RawManualAlert {
        severity: severity.map(str::to_owned),
        source,
        title,
        message,
        resource,
        labels: labels.into_iter().collect(),
    }
    .parse()
    .map_err(|e| pantau_core::error::status_of(pantau_core::error::ErrorCode::InvalidArgument, e.to_string()))
}

/// The protobuf view of a silence.
pub fn silence_to_proto(s: &Silence) -> pb::Silence {
    pb::Silence {
        id: s.id.clone(),
        matchers: s
            .matchers
            .iter()
            .map(|m| pb::SilenceMatcher {
                label: m.label.clone(),
                value: m.value.clone(),
                negate: m.negate,
            })
            .collect(),
        starts_at: Some(to_timestamp(s.starts_at)),
        ends_at: Some(to_timestamp(s.ends_at)),
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        created_at: Some(to_timestamp(s.created_at)),
        repeat_every: s.repeat_every.map(to_duration),
        repeat_until: s.repeat_until.map(to_timestamp),
    }
}

fn filter_from(req: pb::ListAlertsRequest) -> Result<Filter, Status> {
    let mut states = Vec::new();
    for s in &req.states {
        states.push(match pb::AlertState::try_from(*s) {
            Ok(pb::AlertState::Firing) => State::Firing,
            Ok(pb::AlertState::Acknowledged) => State::Acknowledged,
            Ok(pb::AlertState::Resolved) => State::Resolved,
            _ => {
                return Err(pantau_core::error::status_of(
                    pantau_core::error::ErrorCode::InvalidArgument,
                    format!("`states`: {s} is not an alert state (firing, acknowledged, resolved)"),
                ));
            }
        });
    }
    let mut severities = Vec::new();
    for s in &req.severities {
        severities.push(
            match pb::Severity::try_from(*s) {
                Ok(pb::Severity::Info) => "info",
                Ok(pb::Severity::Warning) => "warning",
                Ok(pb::Severity::Critical) => "critical",
                _ => {
                    return Err(pantau_core::error::status_of(
                        pantau_core::error::ErrorCode::InvalidArgument,
                        format!("`severities`: {s} is not a severity (info, warning, critical)"),
                    ));
                }
            }
            .to_owned(),
        );
    }
    let offset = if req.page_token.is_empty() {
        0
    } else {
        req.page_token
            .parse::<u64>()
            .map_err(|_| Status::invalid_argument("page_token is not one this server handed out"))?
    };
    if req.page_size > MAX_PAGE {
        return Err(Status::invalid_argument(format!(
            "page_size must be at most {MAX_PAGE}"
        )));
    }
    let time = |t: Option<prost_types::Timestamp>, field: &str| -> Result<Option<SystemTime>, Status> {
        t.map(|t| from_timestamp(&t).ok_or_else(|| Status::invalid_argument(format!("{field} is not a valid time"))))
            .transpose()
    };
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Filter {
        states,
        severities,
        source: nonempty(req.source),
        resource: nonempty(req.resource),
        rule_id: nonempty(req.rule_id),
        acknowledged: req.acknowledged,
        since: time(req.since, "since")?,
        until: time(req.until, "until")?,
        limit: req.page_size,
        offset,
    })
}

fn incident_filter_from(req: &pb::ListIncidentsRequest) -> Result<IncidentFilter, Status> {
    let mut states = Vec::new();
    for s in &req.states {
        states.push(incident::event::state_from_proto(*s).ok_or_else(|| {
            Status::invalid_argument(format!(
                "`states`: {s} is not an incident state (open, acknowledged, resolved)"
            ))
        })?);
    }
    let offset = if req.page_token.is_empty() {
        0
    } else {
        req.page_token
            .parse::<u64>()
            .map_err(|_| Status::invalid_argument("`page_token` is not one this server handed out"))?
    };
    if req.page_size > MAX_PAGE {
        return Err(Status::invalid_argument(format!(
            "`page_size` must be at most {MAX_PAGE}"
        )));
    }
    let since = req
        .since
        .map(|t| from_timestamp(&t).ok_or_else(|| Status::invalid_argument("`since` is not a valid time")))
        .transpose()?;
    Ok(IncidentFilter {
        states,
        since,
        limit: req.page_size,
        offset,
    })
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::AlertEvent, Status>> + Send>>;

fn required<'a>(v: &'a str, field: &str) -> Result<&'a str, Status> {
    if v.trim().is_empty() {
        Err(Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(v)
    }
}

/// What the engine's parser says of `expr`, storing nothing: the column and
/// reason of a fault, or the metrics a valid expression reads.
pub fn validate(expr: &str) -> pb::ValidateRuleResponse {
    match crate::lang::parse(expr) {
        Ok(parsed) => {
            let mut metrics = parsed.metric_names();
            metrics.sort();
            metrics.dedup();
            pb::ValidateRuleResponse {
                valid: true,
                column: 0,
                reason: String::new(),
                metrics,
                hold: parsed.hold.map(to_duration),
            }
        }
        Err(e) => pb::ValidateRuleResponse {
            valid: false,
            column: u32::try_from(e.column).unwrap_or(u32::MAX),
            reason: e.reason,
            metrics: Vec::new(),
            hold: None,
        },
    }
}

#[tonic::async_trait]
impl AlertEngineService for Service {
    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let filter = filter_from(req.into_inner())?;
        let (alerts, more) = self.engine.store().list(&filter).await.map_err(status)?;
        let next = if more {
            (filter.offset + alerts.len() as u64).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.iter().map(|a| to_proto(a, &[])).collect(),
            next_page_token: next,
        }))
    }

    async fn get_alert(&self, req: Request<pb::GetAlertRequest>) -> Result<Response<pb::Alert>, Status> {
        let id = req.into_inner().id;
        required(&id, "id")?;
        let store = self.engine.store();
        let alert = store
            .get(&id)
            .await
            .map_err(status)?
            .ok_or_else(|| Status::not_found(format!("no alert with id `{}`", quote(&id))))?;
        let transitions = store.transitions(&id).await.map_err(status)?;
        Ok(Response::new(to_proto(&alert, &transitions)))
    }

    async fn acknowledge_alert(
        &self,
        req: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        let r = req.into_inner();
        required(&r.id, "id")?;
        required(&r.actor, "actor")?;
        let engine = Arc::clone(&self.engine);
        let a =
            detached(async move { engine.acknowledge(&r.id, &r.actor, &r.comment, SystemTime::now()).await }).await?;
        Ok(Response::new(to_proto(&a, &[])))
    }

    async fn resolve_alert(&self, req: Request<pb::ResolveAlertRequest>) -> Result<Response<pb::Alert>, Status> {
        let r = req.into_inner();
        required(&r.id, "id")?;
        required(&r.actor, "actor")?;
        let engine = Arc::clone(&self.engine);
        let a = detached(async move { engine.resolve(&r.id, &r.actor, &r.comment, SystemTime::now()).await }).await?;
        Ok(Response::new(to_proto(&a, &[])))
    }

    async fn create_alert(
        &self,
        req: Request<pb::CreateAlertRequest>,
    ) -> Result<Response<pb::CreateAlertResponse>, Status> {
        let r = req.into_inner();
        required(&r.actor, "actor")?;
        let manual = manual_from_proto(r.severity, r.source, r.title, r.message, r.resource, r.labels)?;
        let engine = Arc::clone(&self.engine);
        let actor = r.actor;
        let (a, created) = detached(async move { engine.raise(&manual, &actor, SystemTime::now()).await }).await?;
        Ok(Response::new(pb::CreateAlertResponse {
            alert: Some(to_proto(&a, &[])),
            created,
        }))
    }

    async fn list_rules(&self, _: Request<pb::ListRulesRequest>) -> Result<Response<pb::ListRulesResponse>, Status> {
        let rules = self.engine.rules().await;
        Ok(Response::new(pb::ListRulesResponse {
            rules: rules.iter().map(rule_to_proto).collect(),
        }))
    }

    async fn upsert_rule(&self, req: Request<pb::UpsertRuleRequest>) -> Result<Response<pb::AlertRule>, Status> {
        let rule = req
            .into_inner()
            .rule
            .ok_or_else(|| Status::invalid_argument("rule is required"))?;
        let cfg = rule_from_proto(rule)?;
        let engine = Arc::clone(&self.engine);
        let rule = detached(async move { engine.upsert_rule(cfg, SystemTime::now()).await }).await?;
        Ok(Response::new(rule_to_proto(&rule)))
    }

    async fn delete_rule(
        &self,
        req: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let id = req.into_inner().id;
        required(&id, "id")?;
        let engine = Arc::clone(&self.engine);
        detached(async move { engine.delete_rule(&id, SystemTime::now()).await }).await?;
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn validate_rule(
        &self,
        req: Request<pb::ValidateRuleRequest>,
    ) -> Result<Response<pb::ValidateRuleResponse>, Status> {
        Ok(Response::new(validate(&req.into_inner().expr)))
    }

    async fn create_silence(&self, req: Request<pb::CreateSilenceRequest>) -> Result<Response<pb::Silence>, Status> {
        let r = req.into_inner();
        let now = SystemTime::now();
        let starts = match r.starts_at {
            Some(t) => from_timestamp(&t).ok_or_else(|| Status::invalid_argument("starts_at is not a valid time"))?,
            None => now,
        };
        let ends = r
            .ends_at
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| Status::invalid_argument("ends_at is required"))?;
        let matchers = r
            .matchers
            .into_iter()
            .map(|m| SilenceMatcher {
                label: m.label,
                value: m.value,
                negate: m.negate,
            })
            .collect();
        let mut s = Silence::new(matchers, starts, ends, &r.created_by, &r.comment, now).map_err(status)?;
        if let Some(every) = r.repeat_every {
            let every =
                from_duration(&every).ok_or_else(|| Status::invalid_argument("repeat_every must not be negative"))?;
            let until = match r.repeat_until {
                Some(t) => Some(
                    from_timestamp(&t).ok_or_else(|| Status::invalid_argument("repeat_until is not a valid time"))?,
                ),
                None => None,
            };
            s = s.repeating(every, until).map_err(status)?;
        }
        let engine = Arc::clone(&self.engine);
        let s = detached(async move { engine.add_silence(s).await }).await?;
        Ok(Response::new(silence_to_proto(&s)))
    }

    async fn list_silences(
        &self,
        req: Request<pb::ListSilencesRequest>,
    ) -> Result<Response<pb::ListSilencesResponse>, Status> {
        let all = req.into_inner().include_expired;
        let list = self.engine.silences(all, SystemTime::now()).await.map_err(status)?;
        Ok(Response::new(pb::ListSilencesResponse {
            silences: list.iter().map(silence_to_proto).collect(),
        }))
    }

    async fn expire_silence(&self, req: Request<pb::ExpireSilenceRequest>) -> Result<Response<pb::Silence>, Status> {
        let id = req.into_inner().id;
        required(&id, "id")?;
        let engine = Arc::clone(&self.engine);
        let s = detached(async move { engine.expire_silence(&id, SystemTime::now()).await }).await?;
        Ok(Response::new(silence_to_proto(&s)))
    }

    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let filter = incident_filter_from(&req.into_inner())?;
        let (found, more) = self.engine.store().list_incidents(&filter).await.map_err(status)?;
        let next = if more {
            (filter.offset + found.len() as u64).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: found.iter().map(|i| incident::event::to_proto(i, &[], &[])).collect(),
            next_page_token: next,
        }))
    }

    async fn get_incident(&self, req: Request<pb::GetIncidentRequest>) -> Result<Response<pb::Incident>, Status> {
        let id = req.into_inner().id;
        required(&id, "id")?;
        let store = self.engine.store();
        let found = store
            .incident(&id)
            .await
            .map_err(status)?
            .ok_or_else(|| status(EngineError::NoIncident(quote(&id).into_owned())))?;
        let members = store.incident_members(&id).await.map_err(status)?;
        let timeline = store.incident_timeline(&id).await.map_err(status)?;
        Ok(Response::new(incident::event::to_proto(&found, &members, &timeline)))
    }

    async fn acknowledge_incident(
        &self,
        req: Request<pb::AcknowledgeIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let r = req.into_inner();
        required(&r.id, "id")?;
        required(&r.actor, "actor")?;
        if r.comment.chars().count() > incident::MAX_COMMENT {
            return Err(Status::invalid_argument(format!(
                "`comment` is longer than {} characters",
                incident::MAX_COMMENT
            )));
        }
        let engine = Arc::clone(&self.engine);
        let i = detached(async move {
            engine
                .acknowledge_incident(&r.id, &r.actor, &r.comment, SystemTime::now())
                .await
        })
        .await?;
        Ok(Response::new(incident::event::to_proto(&i, &[], &[])))
    }

    async fn comment_incident(
        &self,
        req: Request<pb::CommentIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let r = req.into_inner();
        required(&r.id, "id")?;
        required(&r.actor, "actor")?;
        incident::check_comment(&r.text).map_err(Status::invalid_argument)?;
        let engine = Arc::clone(&self.engine);
        let i = detached(async move {
            engine
                .comment_incident(&r.id, &r.actor, &r.text, SystemTime::now())
                .await
        })
        .await?;
        Ok(Response::new(incident::event::to_proto(&i, &[], &[])))
    }

    async fn list_maintenance_windows(
        &self,
        _req: Request<pb::ListMaintenanceWindowsRequest>,
    ) -> Result<Response<pb::ListMaintenanceWindowsResponse>, Status> {
        let now = SystemTime::now();
        let windows = self.engine.maintenance_windows().await;
        Ok(Response::new(pb::ListMaintenanceWindowsResponse {
            windows: windows.iter().map(|l| l.to_proto(now)).collect(),
        }))
    }

    async fn get_maintenance_window(
        &self,
        req: Request<pb::GetMaintenanceWindowRequest>,
    ) -> Result<Response<pb::MaintenanceWindow>, Status> {
        let r = req.into_inner();
        required(&r.id, "id")?;
        let l = self.engine.maintenance_window(&r.id).await.map_err(status)?;
        Ok(Response::new(l.to_proto(SystemTime::now())))
    }

    async fn put_maintenance_window(
        &self,
        req: Request<pb::PutMaintenanceWindowRequest>,
    ) -> Result<Response<pb::MaintenanceWindow>, Status> {
        let actor = window_actor(&req, |r| &r.actor);
        let r = req.into_inner();
        let Some(w) = r.window.as_ref() else {
            return Err(Status::invalid_argument("`window` is required"));
        };
        let window = pantau_config::maintenance_api::from_proto(w)
            .map_err(|e| Status::invalid_argument(pantau_core::error::quote(&format!("window.{e}"))))?;
        let engine = Arc::clone(&self.engine);
        let create_only = r.create_only;
        let l = detached(async move {
            engine
                .put_maintenance_window(window, create_only, &actor, SystemTime::now())
                .await
        })
        .await?;
        Ok(Response::new(l.to_proto(SystemTime::now())))
    }

    async fn delete_maintenance_window(
        &self,
        req: Request<pb::DeleteMaintenanceWindowRequest>,
    ) -> Result<Response<pb::MaintenanceWindow>, Status> {
        let actor = window_actor(&req, |r| &r.actor);
        let r = req.into_inner();
        required(&r.id, "id")?;
        let engine = Arc::clone(&self.engine);
        let l =
            detached(async move { engine.delete_maintenance_window(&r.id, &actor, SystemTime::now()).await }).await?;
        Ok(Response::new(l.to_proto(SystemTime::now())))
    }

    type StreamAlertsStream = EventStream;

    async fn stream_alerts(&self, req: Request<pb::StreamAlertsRequest>) -> Result<Response<EventStream>, Status> {
        let states = req.into_inner().states;
        for s in pantau_core::error::enum_args::<pb::AlertState>("states", &states)? {
            if s == pb::AlertState::Unspecified {
                return Err(Status::invalid_argument(
                    "`states`: 0 (unspecified) is not an alert state",
                ));
            }
        }
        let feed = BroadcastStream::new(self.engine.subscribe()).filter_map(move |item| {
            let out = match item {
                Ok(ev) if states.is_empty() || states.contains(&ev.state) => Some(Ok(ev)),
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a StreamAlerts client is too slow; it missed alert events");
                    None
                }
            };
            futures::future::ready(out)
        });
        let feed = feed.take_until(self.shutdown.clone().cancelled_owned());
        Ok(Response::new(Box::pin(feed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_column_and_reason_or_the_metrics() {
        let ok = validate("check_up{target=\"api\"} == 0 and check_duration_ms > 500 for 2m");
        assert!(ok.valid && ok.column == 0 && ok.reason.is_empty());
        assert_eq!(ok.metrics, ["check_duration_ms", "check_up"]);
        assert_eq!(ok.hold.map(|d| d.seconds), Some(120));

        let bad = validate("check_up == ");
        assert!(!bad.valid);
        assert_eq!(bad.column, 13, "{}", bad.reason);
        assert!(!bad.reason.is_empty());

        // Columns count characters, not bytes.
        let wide = validate("check_up{target=\"é\"} >> 1");
        assert!(!wide.valid);
        assert_eq!(wide.column, 23, "{}", wide.reason);
    }

    #[test]
    fn hostile_expressions_are_refused_not_panicked_on() {
        let huge = "a".repeat(1 << 20);
        let deep = format!("{}check_up{}", "(".repeat(10_000), ")".repeat(10_000));
        for expr in ["", "\0\u{1}", "{{{{", "check_up{target=", "rate(x[1d]", &huge, &deep] {
            let v = validate(expr);
            assert!(!v.valid, "{}", &expr[..expr.len().min(40)]);
            assert!(v.column >= 1 && !v.reason.is_empty());
            assert!(v.reason.len() < 400, "{}", v.reason);
        }
    }
}
