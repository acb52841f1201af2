//! The OpenAPI 3.1 document of the REST API, served at `/api/v1/openapi.json`.
//!
//! Paths, parameters, bodies and answers come from the handlers'
//! `#[utoipa::path]` annotations and the `ToSchema` of the very types they
//! answer with; bounds of ids, times and spans from [`crate::input`], enum
//! labels from [`crate::labels`]. What every route shares is added here, from
//! the same rules the gateway applies ([`Contract`]): the security of each
//! route (from [`crate::auth::access`]), and its error answers — 400 for bad
//! input, 401/403 from the auth guard, 404 for an unknown id, 413/415 for a
//! bad body, 429 from the rate limit, 409/502/503 from a backend — each with
//! the one error body, [`ErrorBody`].

use axum::Json;
use axum::Router;
use axum::http::Method;
use axum::routing::get;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi as Document, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::auth::{Access, access};
use crate::input;
use pantau_core::error::ErrorCode;

pub fn router() -> Router {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API key")
                    .description(Some(
                        "A JWT from POST /api/v1/auth/login or `pantau token create`, or an API key `pk_…`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "query_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The same token as a query parameter, for browsers' WebSockets.",
            ))),
        );
    }
}

/// The body of every error answer, 4xx and 5xx: `{"error": {"code", "reason"?, "message"}}`
/// (what `pantau_core::error::ApiError` writes).
#[derive(Debug, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The error's kind, the same word gRPC callers get as a status:
    /// `invalid_argument`, `not_found`, `unauthenticated`, `unavailable`, …
    #[schema(schema_with = code_schema)]
    pub code: String,
    /// Where there is one, a finer stable reason within the code:
    /// `invalid_body`, `invalid_query`, `rate_limited`, `body_too_large`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to do about it, naming the field.
    pub message: String,
}

fn code_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    crate::input::schema(crate::input::enum_schema(&codes))
}

#[derive(OpenApi)]
#[openapi(modifiers(&Security), security(("bearer" = [])), components(schemas(ErrorBody, ErrorDetail)))]
struct Root;

/// The instance-to-instance sync calls: public at the gateway, their bearer
/// (a join or instance token) checked by the sync-api.
const INSTANCE_CALLS: [&str; 3] = ["/sync/api/register", "/sync/api/heartbeat", "/sync/api/config"];

/// Prefixes of the routes answered by a backend over gRPC, or the gateway's
/// own store: they can answer 409 (the backend refused in its state), 502
/// (it failed) and 503 (it is unavailable).
const BACKED: [&str; 14] = [
    "/api/v1/monitoring/alerts",
    "/api/v1/maintenance",
    "/api/v1/escalations",
    "/api/v1/monitoring/silences",
    "/api/v1/monitoring/performance",
    "/api/v1/targets",
    "/api/v1/channels",
    "/api/v1/deliveries",
    "/api/v1/routers",
    "/api/v1/push/",
    "/sync/api/",
    "/api/v1/auth/",
    "/api/v1/users",
    "/api/v1/audit",
];

/// What every route shares, from the rules the gateway applies; see the module documentation.
struct Contract;

fn describe(status: u16) -> &'static str {
    match status {
        400 => "bad input: a parameter, the path or the body, named in the message",
        401 => "no valid token",
        403 => "the token lacks the scope this needs",
        404 => "no such resource",
        409 => "refused in the current state",
        413 => "the body is larger than gateway.max_body_bytes",
        415 => "the body is not JSON (Content-Type: application/json)",
        426 => "not a WebSocket upgrade",
        429 => "rate limited; retry after the Retry-After header's seconds",
        502 => "a backend service failed to answer",
        503 => "a backend service or store is unavailable",
        _ => "an error",
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::POST, &mut item.post),
        (Method::PUT, &mut item.put),
        (Method::DELETE, &mut item.delete),
        (Method::PATCH, &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

fn has_json_body(body: Option<&RequestBody>) -> bool {
    body.is_some_and(|b| matches!(b.required, Some(Required::True)))
}

impl Modify for Contract {
    fn modify(&self, doc: &mut Document) {
        for (path, item) in &mut doc.paths.paths {
            for (method, op) in operations(item) {
                let rule = access(&method, path);
                let instance_call = INSTANCE_CALLS.contains(&path.as_str());
                let mut statuses: Vec<u16> = Vec::new();
                match (rule, instance_call) {
                    (_, true) => {
                        op.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
                        statuses.push(401);
                    }
                    (Access::Public, false) => op.security = Some(Vec::new()),
                    (Access::Authenticated, false) => statuses.push(401),
                    (Access::Need(_), false) => statuses.extend([401, 403]),
                }
                let exempt = matches!(path.as_str(), "/health" | "/api/v1/health");
                if !exempt {
                    statuses.push(429);
                }
                let params = op.parameters.as_deref().unwrap_or_default();
                if !params.is_empty() || op.request_body.is_some() {
                    statuses.push(400);
                }
                if path.contains('{') {
                    statuses.push(404);
                }
                if op.request_body.is_some() {
                    statuses.push(413);
                }
                if has_json_body(op.request_body.as_ref()) {
                    statuses.push(415);
                }
                if BACKED.iter().any(|p| path.starts_with(p)) && path != "/sync/api/status" {
                    statuses.extend([409, 502, 503]);
                }
                for s in statuses {
                    op.responses
                        .responses
                        .entry(s.to_string())
                        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(describe(s)).build()));
                }
                for (code, r) in &mut op.responses.responses {
                    let (Ok(status), RefOr::T(r)) = (code.parse::<u16>(), r) else {
                        continue;
                    };
                    if status >= 400 && r.content.is_empty() {
                        r.content.insert(
                            "application/json".to_owned(),
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        );
                    }
                }
                for p in op.parameters.iter_mut().flatten() {
                    if !matches!(p.parameter_in, ParameterIn::Path) {
                        continue;
                    }
                    let schema = match p.name.as_str() {
                        "username" => {
                            input::pattern_schema(input::USERNAME, "1–64 letters, digits, `-`, `_`, `.` or `@`")
                        }
                        "id" => input::token_schema(),
                        _ => continue,
                    };
                    p.schema = Some(input::schema(schema));
                }
            }
        }
    }
}

/// The whole document: every module's paths and schemas.
pub fn document() -> Document {
    let mut doc = Root::openapi();
    doc.info = InfoBuilder::new()
        .title("Pantau API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Pantau's REST API. Errors are `{\"error\": {\"code\", \"message\"}}`. Reads need the \
             `monitoring:read` scope, writes `monitoring:write`, users, keys, tokens and the audit log `admin`.",
        ))
        .build();
    for part in [
        crate::api::Doc::openapi(),
        crate::alerts::Doc::openapi(),
        crate::incidents::Doc::openapi(),
        crate::maintenance::Doc::openapi(),
        crate::auth::routes::Doc::openapi(),
        crate::push::Doc::openapi(),
        crate::ws::Doc::openapi(),
        crate::targets::Doc::openapi(),
        crate::reports::Doc::openapi(),
        crate::monitoring::Doc::openapi(),
        crate::notify::Doc::openapi(),
        crate::routers::Doc::openapi(),
        crate::traffic::Doc::openapi(),
        crate::sync::Doc::openapi(),
        crate::sync_endpoints::Doc::openapi(),
        crate::console::status::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    Contract.modify(&mut doc);
    unique_operation_ids(&mut doc);
    doc
}

/// Operation ids from method and path (`get_api_v1_targets_id`): handler
/// names repeat across modules, and clients generate method names from these.
fn unique_operation_ids(doc: &mut Document) {
    for (path, item) in &mut doc.paths.paths {
        let slug: String = path
            .trim_start_matches('/')
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .split('_')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        for (method, op) in [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            if let Some(op) = op {
                op.operation_id = Some(format!("{method}_{slug}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_security() {
        let doc = document();
        let json = serde_json::to_value(&doc).unwrap();
        let paths = json["paths"].as_object().unwrap();
        for p in [
            "/api/v1/auth/login",
            "/api/v1/monitoring/alerts",
            "/api/v1/monitoring/alerts/{id}/acknowledge",
            "/api/v1/results/latest",
            "/api/v1/health",
            "/api/v1/users",
            "/api/v1/audit",
        ] {
            assert!(paths.contains_key(p), "{p} is missing from the document");
        }
        assert_eq!(json["openapi"], "3.1.0");
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
        assert_eq!(
            json["paths"]["/api/v1/targets/{id}"]["get"]["operationId"],
            "get_api_v1_targets_id"
        );
    }

    #[test]
    fn the_shared_answers_and_bounds_are_declared() {
        let json = serde_json::to_value(document()).unwrap();
        let op = |method: &str, path: &str| json["paths"][path][method].clone();
        let statuses = |o: &serde_json::Value| o["responses"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        // Public routes need no token; the others say 401 (and 403 with a scope).
        for (m, p) in [
            ("get", "/health"),
            ("get", "/api/v1/push/{token}"),
            ("get", "/sync/api/status"),
        ] {
            assert_eq!(op(m, p)["security"], serde_json::json!([]), "{m} {p}");
        }
        let revoke = op("delete", "/api/v1/auth/keys/{id}");
        for s in ["204", "400", "401", "403", "404", "429", "503"] {
            assert!(statuses(&revoke).contains(&s.to_owned()), "{s}: {revoke}");
        }
        assert_eq!(
            revoke["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert_eq!(revoke["parameters"][0]["schema"]["pattern"], input::TOKEN);
        // Lists are objects holding the list, as the handlers answer.
        for (p, field) in [
            ("/api/v1/targets", "targets"),
            ("/api/v1/users", "users"),
            ("/api/v1/audit", "entries"),
        ] {
            let schema = &op("get", p)["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
            let name = schema.as_str().unwrap().rsplit('/').next().unwrap();
            assert!(
                json["components"]["schemas"][name]["properties"][field].is_object(),
                "{p}"
            );
        }
        let audit = op("get", "/api/v1/audit");
        let limit = audit["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(
            (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
            (&1.into(), &1000.into())
        );
    }

    #[test]
    fn the_error_body_is_what_api_error_writes() {
        use axum::response::IntoResponse;
        let r = pantau_core::error::ApiError::new(ErrorCode::NotFound, "no route").into_response();
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1024)).unwrap();
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (parsed.error.code.as_str(), parsed.error.message.as_str()),
            ("not_found", "no route")
        );
    }

    /// What `make fuzz-api` found (schemathesis, seed 1): each rule the
    /// handlers apply is in the document, so valid input is accepted and
    /// invalid input refused as documented.
    #[test]
    fn the_fuzzers_findings_are_in_the_document() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let re = |v: &serde_json::Value| regex::Regex::new(v.as_str().expect("a pattern")).unwrap();
        // Control characters in a comment (`\u001a`) or an incident comment's text.
        for (schema, field) in [("ActBody", "comment"), ("CommentBody", "text")] {
            let p = re(&schemas[schema]["properties"][field]["pattern"]);
            assert!(!p.is_match("a\u{1a}b") && p.is_match("line\nnext"), "{schema}.{field}");
        }
        assert!(!re(&schemas["CommentBody"]["properties"]["text"]["pattern"]).is_match("   "));
        // A manual alert's label names and one-line texts.
        let alert = &schemas["CreateAlertBody"]["properties"];
        let names = re(&alert["labels"]["propertyNames"]["pattern"]);
        assert!(names.is_match("team") && !names.is_match("") && !names.is_match("1x"));
        assert!(!re(&alert["labels"]["additionalProperties"]["pattern"]).is_match("a\nb"));
        assert_eq!(alert["labels"]["maxProperties"], 32);
        assert!(!re(&alert["title"]["pattern"]).is_match(" "));
        assert!(!re(&alert["source"]["pattern"]).is_match("a\tb"));
        // The SLA report: CSV documented, group_by bounded.
        let sla = &doc["paths"]["/api/v1/reports/sla"]["get"];
        assert!(sla["responses"]["200"]["content"]["text/csv"].is_object(), "{sla}");
        let group_by = sla["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "group_by")
            .unwrap();
        assert_eq!(group_by["schema"]["minLength"], 1, "{group_by}");
        // A target's history takes a location token.
        let history = &doc["paths"]["/api/v1/targets/{id}/history"]["get"]["parameters"];
        let location = history
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "location")
            .unwrap();
        assert!(!re(&location["schema"]["pattern"]).is_match("bad loc"), "{location}");
    }
}
