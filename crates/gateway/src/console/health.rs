//! `GET /console/health`: what `/health` says, read-only: the overall
//! status, why, and each component (services, stores, consumers, tasks)
//! with its level.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::Console;
use super::page::{SignedIn, render};

pub fn router() -> Router<Console> {
    Router::new().route("/console/health", get(health))
}

async fn health(State(c): State<Console>, SignedIn(user): SignedIn) -> Response {
    let (_, h) = crate::api::health_view(&c.app).await;
    render("health.html", minijinja::context! { user, h })
}
