//! The gateway's metric names and descriptions.

use metrics::{Unit, describe_counter, describe_gauge};

pub const WS_CONNECTIONS: &str = "pantau_gateway_ws_connections";
pub const WS_SENT: &str = "pantau_gateway_ws_messages_sent_total";
pub const WS_DROPPED: &str = "pantau_gateway_ws_messages_dropped_total";
pub const WS_REJECTED: &str = "pantau_gateway_ws_rejected_total";
pub const EVENTS: &str = "pantau_gateway_events_received_total";

/// Describes every gateway metric once.
pub fn describe() {
    describe_gauge!(WS_CONNECTIONS, Unit::Count, "WebSocket clients connected");
    describe_counter!(WS_SENT, Unit::Count, "Messages sent to WebSocket clients");
    describe_counter!(WS_DROPPED, Unit::Count, "Messages slow WebSocket clients missed");
    describe_counter!(
        WS_REJECTED,
        Unit::Count,
        "WebSocket connections refused at the connection limit"
    );
    describe_counter!(EVENTS, Unit::Count, "Bus events received, by type");
}
