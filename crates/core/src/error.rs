//! One error vocabulary for every service (quickwit's `ServiceErrorCode` is
//! the model): each [`ErrorCode`] maps once to a gRPC [`tonic::Code`], an HTTP
//! status and a stable string, so a store failure is `unavailable`/503 in
//! every service and through every API.
//!
//! A service's error enum implements [`ServiceError`]; [`status`] turns it into
//! a gRPC `Status` whose message is bounded, and [`enum_arg`] refuses an
//! enum value this version does not know instead of defaulting it.

use axum::http::StatusCode;

pub use pantau_config::types::{QUOTE_MAX, quote};

/// What kind of failure an error is, for callers on every API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is wrong: a field is missing, malformed or out of range.
    InvalidArgument,
    /// The caller did not prove who it is.
    Unauthenticated,
    /// The caller may not do this.
    PermissionDenied,
    /// The thing named does not exist.
    NotFound,
    /// The thing already exists, or belongs to someone else (a configured target).
    Conflict,
    /// The system is not in a state that allows this (e.g. no NATS lease).
    FailedPrecondition,
    /// Too many requests, or a size limit.
    ResourceExhausted,
    /// A dependency (store, bus, another service) is down; try again.
    Unavailable,
    /// The work did not finish in time.
    Timeout,
    /// A fault of ours; the message says what, the log says more.
    Internal,
}

impl ErrorCode {
    /// Every code, for documents that list them.
    pub const ALL: [Self; 10] = [
        Self::InvalidArgument,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::NotFound,
        Self::Conflict,
        Self::FailedPrecondition,
        Self::ResourceExhausted,
        Self::Unavailable,
        Self::Timeout,
        Self::Internal,
    ];

    /// The stable string of the JSON error body (`{"error": {"code": …}}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::FailedPrecondition => "failed_precondition",
            Self::ResourceExhausted => "resource_exhausted",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    /// The gRPC code.
    pub fn grpc(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::NotFound => tonic::Code::NotFound,
            Self::Conflict => tonic::Code::AlreadyExists,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// The HTTP status.
    pub fn http(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict | Self::FailedPrecondition => StatusCode::CONFLICT,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code a gRPC status from another service stands for.
    pub fn from_grpc(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::InvalidArgument | C::OutOfRange => Self::InvalidArgument,
            C::Unauthenticated => Self::Unauthenticated,
            C::PermissionDenied => Self::PermissionDenied,
            C::NotFound => Self::NotFound,
            C::AlreadyExists | C::Aborted => Self::Conflict,
            C::FailedPrecondition => Self::FailedPrecondition,
            C::ResourceExhausted => Self::ResourceExhausted,
            C::Unavailable | C::Cancelled => Self::Unavailable,
            C::DeadlineExceeded => Self::Timeout,
            C::Ok | C::Unknown | C::Internal | C::Unimplemented | C::DataLoss => Self::Internal,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error answer of every HTTP API:
/// `{"error": {"code", "reason"?, "message"}}`. `code` is the [`ErrorCode`]
/// (the same word gRPC callers get as a status); `reason`, where there is
/// one, says more precisely what was wrong within it (`invalid_body`,
/// `invalid_query`, `rate_limited`, `body_too_large`, …); both are stable.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    /// `code`'s HTTP status, unless HTTP has a more precise one (413, 415,
    /// 426, or 502 for a backend that failed to answer).
    pub status: StatusCode,
    pub reason: Option<&'static str>,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.http(),
            reason: None,
            message: message.into(),
        }
    }

    /// The same error with a finer, stable reason.
    #[must_use]
    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The same error answered with a more precise HTTP status.
    #[must_use]
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A service error as an HTTP answer.
    pub fn of(e: &impl ServiceError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl serde::Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ApiError", 3)?;
        st.serialize_field("code", self.code.as_str())?;
        if let Some(r) = self.reason {
            st.serialize_field("reason", r)?;
        }
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        (self.status, axum::Json(serde_json::json!({ "error": self }))).into_response()
    }
}

/// A service's error: what kind it is; its `Display` is the message a caller sees.
pub trait ServiceError: std::fmt::Display {
    fn code(&self) -> ErrorCode;

    /// A store failure under this error, whose detail goes to the log and
    /// never to the caller ([`status`] answers "the store is unavailable").
    fn store_failure(&self) -> Option<&crate::store::StoreError> {
        None
    }
}

/// Most bytes of a gRPC status message: far below the 8 KiB metadata limit
/// of common clients, so an error is never turned into RESOURCE_EXHAUSTED.
pub const MESSAGE_MAX: usize = 1024;

/// A gRPC status of `code` whose message is cut to [`MESSAGE_MAX`] bytes.
pub fn status_of(code: ErrorCode, message: impl std::fmt::Display) -> tonic::Status {
    let mut message = message.to_string();
    if message.len() > MESSAGE_MAX {
        let mut end = MESSAGE_MAX - 4;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    tonic::Status::new(code.grpc(), message)
}

/// The gRPC status of a service error.
pub fn status(e: &impl ServiceError) -> tonic::Status {
    match e.store_failure() {
        Some(store) => store_unavailable("store", store),
        None => status_of(e.code(), e),
    }
}

/// `value` of the enum field `field` as this version knows it; an unknown
/// value is INVALID_ARGUMENT naming the field, never a silent default.
pub fn enum_arg<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, tonic::Status> {
    E::try_from(value).map_err(|_| {
        status_of(
            ErrorCode::InvalidArgument,
            format!("`{field}`: {value} is not one of its values"),
        )
    })
}

/// A store that failed under a request: UNAVAILABLE ("try again") in every
/// service, whatever the database said (that goes to the log, never to the
/// caller). Through the gateway this is 503.
pub fn store_unavailable(what: &str, e: &impl std::fmt::Display) -> tonic::Status {
    tracing::error!(store = what, error = %e, "store failed");
    status_of(ErrorCode::Unavailable, format!("the {what} is unavailable; try again"))
}

impl ServiceError for crate::store::StoreError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Unavailable
    }

    fn store_failure(&self) -> Option<&crate::store::StoreError> {
        Some(self)
    }
}

/// Every value of a repeated enum field, or INVALID_ARGUMENT naming the
/// field and the first unknown value.
pub fn enum_args<E: TryFrom<i32>>(field: &str, values: &[i32]) -> Result<Vec<E>, tonic::Status> {
    values.iter().map(|v| enum_arg(field, *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pantau_proto::v1::{AlertState, Resolution};

    #[test]
    fn every_code_maps_once_and_a_store_failure_is_503_everywhere() {
        let all = [
            ErrorCode::InvalidArgument,
            ErrorCode::Unauthenticated,
            ErrorCode::PermissionDenied,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::FailedPrecondition,
            ErrorCode::ResourceExhausted,
            ErrorCode::Unavailable,
            ErrorCode::Timeout,
            ErrorCode::Internal,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), all.len(), "stable strings are distinct");
        for c in all {
            if c != ErrorCode::Conflict {
                assert_eq!(ErrorCode::from_grpc(c.grpc()), c, "{c} survives a gRPC hop");
            }
        }
        assert_eq!(ErrorCode::Unavailable.http(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ErrorCode::Unavailable.grpc(), tonic::Code::Unavailable);
    }

    #[test]
    fn a_store_failure_is_unavailable_and_keeps_its_details_in_the_log() {
        let s = store_unavailable("sync store", &"connection refused to postgres://pantau:secret@db");
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(s.message(), "the sync store is unavailable; try again");
        assert_eq!(ErrorCode::from_grpc(s.code()).http(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_huge_message_is_cut_below_the_metadata_limit() {
        let s = status_of(
            ErrorCode::NotFound,
            format!("no target with id `{}`", "x".repeat(1 << 20)),
        );
        assert!(s.message().len() <= MESSAGE_MAX, "{}", s.message().len());
        assert_eq!(s.code(), tonic::Code::NotFound);
    }

    #[test]
    fn unknown_enum_values_are_refused_naming_the_field() {
        assert_eq!(enum_arg::<Resolution>("resolution", 1).unwrap(), Resolution::Minute);
        let e = enum_arg::<Resolution>("resolution", 99).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().contains("`resolution`") && e.message().contains("99"),
            "{}",
            e.message()
        );
        let e = enum_args::<AlertState>("states", &[1, 99]).unwrap_err();
        assert!(e.message().contains("`states`"), "{}", e.message());
    }
}
