//! Why a change to the collector's targets was refused.

use pantau_config::Invalid;
use pantau_core::error::ErrorCode;

/// Why a target change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("invalid target: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Invalid>),
    #[error("target `{0}` comes from the configuration file; change it there")]
    FromConfig(String),
    #[error("another target already uses this push token")]
    TokenTaken,
    #[error("no target with id `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Reason(#[from] crate::pause::ReasonTooLong),
    #[error(transparent)]
    Store(#[from] pantau_core::store::StoreError),
}

impl pantau_core::error::ServiceError for ChangeError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::TokenTaken | Self::Reason(_) => ErrorCode::InvalidArgument,
            Self::FromConfig(_) => ErrorCode::FailedPrecondition,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Store(_) => ErrorCode::Unavailable,
        }
    }

    fn store_failure(&self) -> Option<&pantau_core::store::StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}
