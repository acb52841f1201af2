//! `GET /console/locations`: every target's state from every location (the
//! overview's rows, `model::page`: the feed's latest results per location,
//! the same filters and pages) as a matrix, and the instances of the
//! cluster as the local sync API knows them (role, last heartbeat, version,
//! failover order, health). A standalone instance says so.
//!
//! Admins get register, remove, promote and demote: the `/sync/api/…`
//! routes themselves, called by the page's script (`assets/console.js`;
//! registering, which presents a join token, by `assets/net.js`).

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pantau_proto::v1 as pb;
use pantau_proto::v1::sync_service_client::SyncServiceClient;
use serde::Serialize;

use super::Console;
use super::model::{self, FilterQuery, Loc, Row};
use super::page::{SignedIn, fail, render};
use crate::labels::SyncRole;
use crate::sync::InstanceView;

pub fn router() -> Router<Console> {
    Router::new().route("/console/locations", get(locations))
}

/// One target's row of the matrix: a cell per location, in the header's order.
#[derive(Debug, Serialize)]
struct MatrixRow {
    #[serde(flatten)]
    row: Row,
    cells: Vec<Option<Loc>>,
}

/// This instance and the cluster, or why they are not shown.
#[derive(Debug, Default, Serialize)]
struct Cluster {
    /// `standalone`, `primary` or `dependent`.
    role: String,
    name: String,
    location: String,
    primary_id: String,
    primary_reachable: bool,
    epoch: u64,
    last_error: String,
    instances: Vec<InstanceRow>,
    /// Why the instances are not listed (the sync API's answer), if so.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct InstanceRow {
    #[serde(flatten)]
    i: InstanceView,
    primary: bool,
    /// This instance (it cannot remove itself).
    me: bool,
}

/// The matrix: the page's rows with their cells aligned to `locations`.
fn matrix(rows: Vec<Row>, locations: &[String]) -> Vec<MatrixRow> {
    rows.into_iter()
        .map(|row| {
            let by: HashMap<&str, &Loc> = row.locations.iter().map(|l| (l.location.as_str(), l)).collect();
            let cells = locations
                .iter()
                .map(|l| by.get(l.as_str()).map(|x| (*x).clone()))
                .collect();
            MatrixRow { row, cells }
        })
        .collect()
}

async fn cluster(c: &Console) -> Cluster {
    let cfg = &c.app.ctx.config;
    if !cfg.sync.active() {
        return Cluster {
            role: SyncRole::Standalone.as_str().to_owned(),
            name: cfg.instance.name.clone(),
            location: cfg.instance.location.clone(),
            ..Cluster::default()
        };
    }
    let mut sync = SyncServiceClient::new(c.app.ctx.channel(&cfg.gateway.sync_url));
    let (mut s2, mut s3) = (sync.clone(), sync.clone());
    let (status, instances, order) = tokio::join!(
        sync.get_status(pb::GetStatusRequest {}),
        s2.list_instances(pb::ListInstancesRequest {}),
        s3.get_failover_order(pb::GetFailoverOrderRequest {}),
    );
    let mut out = match status {
        Ok(s) => {
            let s = s.into_inner();
            Cluster {
                role: match SyncRole::from(s.role) {
                    SyncRole::Unspecified => SyncRole::Standalone,
                    r => r,
                }
                .as_str()
                .to_owned(),
                name: s.name,
                location: s.location,
                primary_reachable: s.primary_reachable,
                primary_id: s.primary_id,
                epoch: s.epoch,
                last_error: s.last_error,
                ..Cluster::default()
            }
        }
        Err(e) => {
            return Cluster {
                role: "unknown".to_owned(),
                name: cfg.instance.name.clone(),
                location: cfg.instance.location.clone(),
                error: Some(crate::grpc_error(&e, "sync API").message),
                ..Cluster::default()
            };
        }
    };
    let primary = order
        .ok()
        .and_then(|o| o.into_inner().candidates.into_iter().find(|c| c.primary).map(|c| c.id))
        .unwrap_or_else(|| out.primary_id.clone());
    match instances {
        Ok(list) => {
            let mut rows: Vec<InstanceRow> = list
                .into_inner()
                .instances
                .into_iter()
                .map(|i| InstanceRow {
                    primary: i.id == primary,
                    me: i.id == cfg.instance.name,
                    i: InstanceView::from(i),
                })
                .collect();
            rows.sort_by(|a, b| {
                a.i.failover_order
                    .cmp(&b.i.failover_order)
                    .then_with(|| a.i.id.cmp(&b.i.id))
            });
            out.instances = rows;
        }
        Err(e) => out.error = Some(crate::grpc_error(&e, "sync API").message),
    }
    out
}

async fn locations(
    State(c): State<Console>,
    SignedIn(user): SignedIn,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.body_text(), Some(&user)),
    };
    let f = match q.check() {
        Ok(f) => f,
        Err(e) => return fail(e.status, e.message, Some(&user)),
    };
    let (targets, cluster) = tokio::join!(c.model.targets(), cluster(&c));
    let (p, rows, targets_error) = match targets {
        Ok(targets) => {
            let mut p = model::page(&targets, &c.app.feed.latest_by_target(), &f);
            let rows = matrix(std::mem::take(&mut p.rows), &p.locations);
            (Some(p), rows, None)
        }
        Err(e) => (None, Vec::new(), Some(e.message)),
    };
    render(
        "locations.html",
        minijinja::context! { user, p, rows, targets_error, cluster, q },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{BreakerState, CheckKind, CheckStatus};

    fn loc(l: &str) -> Loc {
        Loc {
            location: l.to_owned(),
            status: CheckStatus::Up,
            latency_ms: None,
            reason: String::new(),
            checked_at: None,
        }
    }

    #[test]
    fn cells_follow_the_header_and_leave_gaps() {
        let row = Row {
            id: "web".into(),
            name: "web".into(),
            kind: CheckKind::Http,
            address: String::new(),
            state: model::State::Up,
            locations: vec![loc("sby"), loc("jkt")],
            latency_ms: None,
            labels: Vec::new(),
            breaker: BreakerState::Closed,
            paused: false,
            uptime: model::Uptime::default(),
        };
        let header = ["dps", "jkt", "sby"].map(str::to_owned);
        let m = matrix(vec![row], &header);
        let got: Vec<Option<&str>> = m[0]
            .cells
            .iter()
            .map(|c| c.as_ref().map(|l| l.location.as_str()))
            .collect();
        assert_eq!(got, [None, Some("jkt"), Some("sby")]);
    }
}
