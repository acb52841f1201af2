//! `GET /console/channels`: the notification channels (kind, name, where
//! they send, settings) with every secret masked by the notifier itself —
//! the same list as `GET /api/v1/channels` — and the routes; a channel no
//! route names is shown as receiving nothing. Editors may send a test
//! through `POST /api/v1/channels/{name}/test` (`assets/admin.js` shows
//! its outcome in the row). The "Add a channel" form offers every channel
//! type with its fields (`ChannelType::fields`) and writes the YAML to paste
//! into `notifier.channels` (in the page, by `assets/admin.js`).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::Console;
use super::page::{SignedIn, fail, render};
use crate::notify::{ChannelView, RouteView, channel_list, channel_type_views};

pub fn router() -> Router<Console> {
    Router::new().route("/console/channels", get(list))
}

/// A channel and the routes that send to it (their positions, from 1).
#[derive(Debug, Serialize)]
pub struct ChannelRow {
    pub channel: ChannelView,
    pub routes: Vec<usize>,
}

/// Each channel with the routes naming it.
fn rows(channels: Vec<ChannelView>, routes: &[RouteView]) -> Vec<ChannelRow> {
    channels
        .into_iter()
        .map(|channel| {
            let routes = routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.channels.contains(&channel.name))
                .map(|(i, _)| i + 1)
                .collect();
            ChannelRow { channel, routes }
        })
        .collect()
}

async fn list(State(c): State<Console>, SignedIn(user): SignedIn) -> Response {
    match channel_list(&mut c.notifier.clone()).await {
        Ok(list) => {
            let channels = rows(list.channels, &list.routes);
            let routes = list.routes;
            let types = channel_type_views();
            render("channels.html", minijinja::context! { user, channels, routes, types })
        }
        Err(e) => fail(e.status, e.message, Some(&user)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelView {
        ChannelView {
            name: name.into(),
            kind: "webhook".into(),
            target: "https://hooks.example/***".into(),
            settings: std::collections::BTreeMap::new(),
            rate_limit: 0,
            rate_limit_period_seconds: None,
        }
    }

    #[test]
    fn each_channel_lists_the_routes_naming_it() {
        let route = |chs: &[&str]| RouteView {
            severities: Vec::new(),
            labels: std::collections::BTreeMap::new(),
            channels: chs.iter().map(|c| (*c).to_owned()).collect(),
        };
        let routes = [route(&["ops"]), route(&["ops", "chat"])];
        let r = rows(vec![channel("ops"), channel("chat"), channel("idle")], &routes);
        assert_eq!(r[0].routes, [1, 2]);
        assert_eq!(r[1].routes, [2]);
        assert!(r[2].routes.is_empty());
    }
}
