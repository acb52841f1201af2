//! `GET /console/routers` and `GET /console/routers/{id}`: every router the
//! WAN detector has seen (reachability, uptime, last poll, the driver that
//! polls it), and one router's interfaces (status, rates, which are WAN and
//! which ISP, with the methods and confidence behind the judgement), a live
//! traffic chart per interface (the page's script, `assets/net.js`, follows
//! the hub's `traffic` events of the router) and its timeline (reboots,
//! counter resets, interface changes: [`crate::timeline`]), and each
//! interface's last 24 hours with its 95th percentile, drawn on the server
//! ([`traffic_chart`]).
//!
//! Read-only: the same WAN detector calls the router REST routes make
//! (`crate::routers`); there is nothing to write.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pantau_config::types::quote;
use pantau_proto::v1 as pb;
use serde::Serialize;

use super::page::{SignedIn, User, fail, render};
use super::{Console, traffic_chart};
use crate::routers::{InterfaceView, RouterView, WanInterfaceView};
use crate::view::RouterEventView;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/console/routers", get(list))
        .route("/console/routers/{id}", get(one))
}

/// A router as its row shows it.
#[derive(Debug, Serialize)]
struct RouterRow {
    #[serde(flatten)]
    r: RouterView,
    /// `snmp`, `routeros` or `routeros_rest`; empty when this process's
    /// configuration does not hold the router (the collector runs elsewhere).
    driver: &'static str,
    /// The uptime in words (`3d4h12m`), or empty.
    uptime: String,
}

impl RouterRow {
    fn new(c: &Console, r: RouterView) -> Self {
        let driver = c
            .app
            .ctx
            .config
            .collector
            .routers
            .iter()
            .find(|x| x.id == r.id)
            .map_or("", |x| x.driver.as_str());
        let uptime = r
            .uptime_seconds
            .map(|s| pantau_config::duration::format(Duration::from_secs(s)))
            .unwrap_or_default();
        Self { r, driver, uptime }
    }
}

/// One interface: its state, rates in words and its WAN judgement.
#[derive(Debug, Serialize)]
struct InterfaceRow {
    #[serde(flatten)]
    i: InterfaceView,
    in_rate: String,
    out_rate: String,
    wan: Option<WanInterfaceView>,
}

/// `bits` per second in words: `12.3 Mbit/s`.
pub fn rate(bits: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")];
    UNITS.iter().find(|(scale, _)| bits >= *scale).map_or_else(
        || format!("{bits:.0} bit/s"),
        |(scale, unit)| format!("{:.1} {unit}", bits / scale),
    )
}

fn backend(s: &tonic::Status, user: &User) -> Response {
    let e = crate::grpc_error(s, "wan detector");
    fail(e.status, e.message, Some(user))
}

async fn list(State(c): State<Console>, SignedIn(user): SignedIn) -> Response {
    let routers = match c.wan.clone().list_routers(pb::ListRoutersRequest {}).await {
        Ok(r) => r.into_inner().routers,
        Err(s) => return backend(&s, &user),
    };
    let mut rows: Vec<RouterRow> = routers
        .into_iter()
        .map(|r| RouterRow::new(&c, RouterView::from(r)))
        .collect();
    rows.sort_by(|a, b| a.r.name.cmp(&b.r.name).then_with(|| a.r.id.cmp(&b.r.id)));
    render("routers.html", minijinja::context! { user, routers => rows })
}

async fn one(State(c): State<Console>, SignedIn(user): SignedIn, Path(id): Path<String>) -> Response {
    if !pantau_config::is_token(&id) {
        return fail(
            StatusCode::BAD_REQUEST,
            format!(
                "router id `{}` is not valid: use 1–128 letters, digits, `-` or `_`",
                quote(&id)
            ),
            Some(&user),
        );
    }
    let mut wan = c.wan.clone();
    let (mut w1, mut w2) = (wan.clone(), wan.clone());
    let (routers, interfaces, judged) = tokio::join!(
        w1.list_routers(pb::ListRoutersRequest {}),
        w2.list_interfaces(pb::ListInterfacesRequest { router_id: id.clone() }),
        wan.detect_wan(pb::DetectWanRequest {
            router_id: id.clone(),
            force_refresh: false,
        }),
    );
    let summary = match routers {
        Ok(r) => r.into_inner().routers.into_iter().find(|r| r.router_id == id),
        Err(s) => return backend(&s, &user),
    };
    let Some(summary) = summary else {
        return fail(
            StatusCode::NOT_FOUND,
            format!("router `{id}` has not been seen: no poll of it reached the WAN detector"),
            Some(&user),
        );
    };
    let interfaces = match interfaces {
        Ok(r) => r.into_inner().interfaces,
        Err(s) => return backend(&s, &user),
    };
    // The judgement may be missing (not polled long enough): the page says why.
    let (mut judged, wan_error, detected_at) = match judged {
        Ok(r) => {
            let r = r.into_inner();
            let at = r.detected_at.as_ref().and_then(pantau_core::time::from_timestamp);
            let by_index: HashMap<u32, WanInterfaceView> = r
                .interfaces
                .into_iter()
                .map(|w| (w.if_index, WanInterfaceView::from(w)))
                .collect();
            (by_index, None, at.map(pantau_core::time::rfc3339))
        }
        Err(s) => (
            HashMap::new(),
            Some(crate::grpc_error(&s, "wan detector").message),
            None,
        ),
    };
    let rows: Vec<InterfaceRow> = interfaces
        .into_iter()
        .map(|i| {
            let i = InterfaceView::from(i);
            InterfaceRow {
                in_rate: rate(i.in_bits_per_second),
                out_rate: rate(i.out_bits_per_second),
                wan: judged.remove(&i.if_index),
                i,
            }
        })
        .collect();
    let wans = rows.iter().filter(|r| r.wan.as_ref().is_some_and(|w| w.is_wan)).count();
    let history = history(&c, &id, &rows).await;
    let timeline: Vec<RouterEventView> = c.app.feed.timeline().of(&id);
    render(
        "router.html",
        minijinja::context! {
            user,
            r => RouterRow::new(&c, RouterView::from(summary)),
            interfaces => rows,
            wans,
            wan_error,
            detected_at,
            timeline,
            history,
        },
    )
}

/// The last 24 hours of each interface (the first [`traffic_chart::MOST`]),
/// asked of the collector at once.
async fn history(c: &Console, id: &str, rows: &[InterfaceRow]) -> Vec<traffic_chart::Chart> {
    let to = std::time::SystemTime::now();
    let asks = rows.iter().take(traffic_chart::MOST).map(|row| {
        let mut collector = c.collector.clone();
        let name = row.i.name.clone();
        let req = pb::GetInterfaceTrafficRequest {
            router_id: id.to_owned(),
            interface: name.clone(),
            from: Some(pantau_core::time::to_timestamp(to - traffic_chart::SPAN)),
            to: Some(pantau_core::time::to_timestamp(to)),
            resolution: pb::Resolution::Minute.into(),
        };
        async move {
            if name.is_empty() || name.len() > crate::traffic::MAX_NAME_BYTES {
                return traffic_chart::missing(name, "the interface has no usable name".to_owned());
            }
            match collector.get_interface_traffic(req).await {
                Ok(r) => traffic_chart::chart(name, &r.into_inner(), to),
                Err(s) => traffic_chart::missing(name, crate::grpc_error(&s, "collector").message),
            }
        }
    });
    futures::future::join_all(asks).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_words() {
        assert_eq!(rate(0.0), "0 bit/s");
        assert_eq!(rate(999.0), "999 bit/s");
        assert_eq!(rate(1_500.0), "1.5 kbit/s");
        assert_eq!(rate(12_340_000.0), "12.3 Mbit/s");
        assert_eq!(rate(2e9), "2.0 Gbit/s");
    }
}
