//! The gateway's metric names and descriptions.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const WS_CONNECTIONS: &str = "pantau_gateway_ws_connections";
pub const WS_SENT: &str = "pantau_gateway_ws_messages_sent_total";
pub const WS_DROPPED: &str = "pantau_gateway_ws_messages_dropped_total";
pub const WS_REJECTED: &str = "pantau_gateway_ws_rejected_total";
pub const EVENTS: &str = "pantau_gateway_events_received_total";
pub const WS_LATENCY: &str = "pantau_gateway_ws_delivery_latency_seconds";
pub const AUTH_FAILURES: &str = "pantau_gateway_auth_failures_total";
pub const RATE_LIMITED: &str = "pantau_gateway_rate_limited_total";
pub const AUDIT_FAILURES: &str = "pantau_gateway_audit_failures_total";
pub const CUSTOM_METRICS: &str = "pantau_gateway_custom_metrics_total";
/// Prometheus' conventional HTTP server names, by method, route template
/// (`/api/v1/targets/{id}`; `unmatched` for a path no route has) and status.
pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";

/// Describes every gateway metric once.
pub fn describe() {
    // On /metrics from the first scrape (0 until it happens), so a panel reads 0, not "No data".
    ::metrics::counter!(WS_DROPPED).increment(0);
    ::metrics::gauge!(WS_CONNECTIONS).increment(0.0);
    ::metrics::counter!(WS_SENT).increment(0);
    ::metrics::counter!(WS_REJECTED).increment(0);
    // The most common type, so the events panel has a series before the
    // first result arrives (a loaded machine may scrape first).
    ::metrics::counter!(EVENTS, "type" => "check_result").increment(0);
    ::metrics::counter!(HTTP_REQUESTS, "method" => "GET", "route" => "/metrics", "status" => "200").increment(0);
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests the gateway answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (to its response head), by method, route template and status class"
    );
    describe_gauge!(WS_CONNECTIONS, Unit::Count, "WebSocket clients connected");
    describe_counter!(WS_SENT, Unit::Count, "Messages sent to WebSocket clients");
    describe_counter!(WS_DROPPED, Unit::Count, "Messages slow WebSocket clients missed");
    describe_counter!(
        WS_REJECTED,
        Unit::Count,
        "WebSocket connections refused at the connection limit"
    );
    describe_counter!(EVENTS, Unit::Count, "Bus events received, by type");
    describe_histogram!(
        WS_LATENCY,
        Unit::Seconds,
        "From an event's arrival from the bus to its send to a WebSocket client"
    );
    describe_counter!(
        AUTH_FAILURES,
        Unit::Count,
        "Requests refused for their token, by reason"
    );
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused by the per-client rate limit"
    );
    describe_counter!(
        AUDIT_FAILURES,
        Unit::Count,
        "Writes whose audit entry could not be stored"
    );
    describe_counter!(
        CUSTOM_METRICS,
        Unit::Count,
        "Custom metric samples accepted and published"
    );
}

/// Counts and times each request by its route template, never its path (a
/// path holds ids and push tokens; a route template is bounded).
pub async fn http(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let class = format!("{}xx", status / 100);
    ::metrics::histogram!(HTTP_DURATION, "method" => method.clone(), "route" => route.clone(), "status" => class)
        .record(started.elapsed().as_secs_f64());
    ::metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status.to_string())
        .increment(1);
    res
}
