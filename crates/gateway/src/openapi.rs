//! The OpenAPI 3 document of the REST API, generated from the handlers'
//! annotations and served at `/api/v1/openapi.json`.

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi as Document};
use utoipa::{Modify, OpenApi};

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

#[derive(OpenApi)]
#[openapi(modifiers(&Security), security(("bearer" = [])))]
struct Root;

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
        crate::auth::routes::Doc::openapi(),
        crate::push::Doc::openapi(),
        crate::ws::Doc::openapi(),
        crate::targets::Doc::openapi(),
        crate::monitoring::Doc::openapi(),
        crate::notify::Doc::openapi(),
        crate::routers::Doc::openapi(),
        crate::sync::Doc::openapi(),
    ] {
        doc.merge(part);
    }
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
}
