//! The tower layer in front of every Pantau gRPC server: takes the bearer
//! token from the `authorization` metadata, checks it against the keys of
//! `gateway.auth`, requires the method's permission ([`super::access`]),
//! puts the [`Caller`] in the request's extensions and audits writes.
//!
//! Refusals are UNAUTHENTICATED (no token, or one that is malformed,
//! forged, expired, of another algorithm or issuer) or PERMISSION_DENIED
//! (the token lacks the permission), each saying why; secrets are never
//! quoted.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::{Code, Status};

use super::access::{self, Access};
use crate::audit::{Audit, NewEntry};
use crate::auth::{Caller, Grants, Keys, Permission};

/// The metadata key a `service` caller names the user it acts for in.
pub const ON_BEHALF_OF: &str = "x-pantau-on-behalf-of";

/// What the layer checks with.
#[derive(Debug)]
pub struct Guard {
    /// `grpc.auth`; off, everyone is `anonymous` with every permission.
    pub enabled: bool,
    pub keys: Option<Arc<Keys>>,
    pub audit: Option<Audit>,
}

impl Guard {
    /// The caller of `req` under `access`, or why not (with the token's
    /// subject when the token was valid but lacks the permission).
    pub fn check<B>(&self, req: &Request<B>, access: Access) -> Result<Option<Caller>, (Status, Option<String>)> {
        let anon = |s: Status| (s, None);
        if !self.enabled {
            return Ok(Some(Caller {
                subject: "anonymous".to_owned(),
                grants: Grants::of(&Permission::ALL),
                on_behalf_of: None,
            }));
        }
        match access {
            Access::Open | Access::OwnCredential => return Ok(None),
            Access::Token | Access::Need(_) => {}
        }
        let Some(token) = bearer(req).map_err(anon)? else {
            return Err(anon(Status::unauthenticated(
                "a bearer token is required: send `authorization: Bearer <token>` metadata (`pantau token create` makes one)",
            )));
        };
        let keys = self.keys.as_ref().ok_or_else(|| {
            anon(Status::unavailable(
                "this server cannot check tokens: its signing keys did not load",
            ))
        })?;
        let claims = keys.verify(token).map_err(|e| anon(Status::unauthenticated(why(&e))))?;
        let grants = Grants::parse(&claims.scope);
        let on_behalf_of = grants
            .allows(Permission::Service)
            .then(|| {
                req.headers()
                    .get(ON_BEHALF_OF)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.chars().take(128).collect::<String>())
            })
            .flatten();
        let caller = Caller {
            subject: claims.sub,
            grants,
            on_behalf_of,
        };
        if let Access::Need(p) = access
            && !grants.allows(p)
        {
            return Err((
                Status::permission_denied(format!(
                    "this method needs the `{}` scope; the token of `{}` has `{grants}`",
                    p.as_str(),
                    crate::error::quote(&caller.subject)
                )),
                Some(caller.actor()),
            ));
        }
        Ok(Some(caller))
    }
}

/// The bearer token, if any; a malformed `authorization` is UNAUTHENTICATED.
fn bearer<B>(req: &Request<B>) -> Result<Option<&str>, Status> {
    let Some(v) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization metadata is not text"))?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(Status::unauthenticated(
            "the authorization metadata must be `Bearer <token>`",
        )),
    }
}

fn why(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::InvalidSignature => "the token's signature is not valid (forged, or signed with other keys)",
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted",
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
        _ => "the token is malformed (API keys are for the REST API; gRPC takes JWTs)",
    }
}

/// The stable name of a gRPC code, as in the gRPC specification.
pub fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct GuardLayer(pub Arc<Guard>);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            guard: Arc::clone(&self.0),
        }
    }
}

/// A service behind the [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: Arc<Guard>,
}

fn remote<B>(req: &Request<B>) -> String {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|t| t.get_ref().remote_addr())
        })
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
}

impl<S> tower::Service<Request<Body>> for Guarded<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
{
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, tower::BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let rule = access::rule(&path);
            let remote = remote(&req);
            let checked = guard.check(&req, rule.access);
            let (actor, outcome, detail, response) = match checked {
                Err((status, who)) => {
                    metrics::counter!(crate::grpc::AUTH_REFUSALS, "code" => code_name(status.code())).increment(1);
                    let detail = status.message().to_owned();
                    (
                        who.unwrap_or_else(|| "anonymous".to_owned()),
                        status.code(),
                        detail,
                        status.into_http::<Body>(),
                    )
                }
                Ok(caller) => {
                    let actor = caller.as_ref().map_or_else(
                        || {
                            if rule.access == Access::OwnCredential {
                                "instance (join token)".to_owned()
                            } else {
                                "anonymous".to_owned()
                            }
                        },
                        Caller::actor,
                    );
                    if let Some(c) = caller {
                        req.extensions_mut().insert(c);
                    }
                    let response = inner.call(req).await.map_err(Into::into)?;
                    // A unary call that failed answers its status in the
                    // headers (trailers-only); a successful one in trailers.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
                        .map_or(Code::Ok, Code::from_i32);
                    let detail = if code == Code::Ok {
                        String::new()
                    } else {
                        response
                            .headers()
                            .get("grpc-message")
                            .and_then(|v| v.to_str().ok())
                            .map(|m| percent_decode(m).chars().take(300).collect())
                            .unwrap_or_default()
                    };
                    (actor, code, detail, response)
                }
            };
            if rule.audited
                && let Some(audit) = &guard.audit
            {
                let entry = NewEntry {
                    actor: &actor,
                    method: path.trim_start_matches('/'),
                    outcome: code_name(outcome),
                    remote: &remote,
                    detail: &detail,
                };
                if let Err(e) = audit.record(&entry).await {
                    metrics::counter!(crate::grpc::AUDIT_FAILURES).increment(1);
                    tracing::error!(error = %e, actor, method = entry.method, "cannot write the gRPC audit entry");
                }
            }
            Ok(response)
        })
    }
}

/// `grpc-message` is percent-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
