//! The OpenAPI 3.1 document of the HTTP API, made from the same route tables
//! the routers are made from (`crate::routes`), served at
//! `GET /api/v1/openapi.json`. `tests/openapi.rs` fails if a route is added
//! outside the tables.

use crate::routes::RouteDoc;
use axum::Json;
use serde_json::{Map, Value, json};

crate::routes::route_table! { routes, ROUTES;
    get "/api/v1/openapi.json" => document, "This document", "none";
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(build())
}

/// The document: the public listener's routes, then the admin listener's
/// (tagged `admin`).
pub fn build() -> Value {
    let public = [
        crate::api::ROUTES,
        crate::integrations::ROUTES,
        crate::door::ROUTES,
        ROUTES,
    ];
    let mut paths = Map::new();
    for table in public {
        for r in table {
            add(&mut paths, r, "public");
        }
    }
    for r in crate::api::ADMIN_ROUTES {
        add(&mut paths, r, "admin");
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hearth",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Camera streaming with provenance-checked egress. Routes tagged \
                            `admin` are served only on the admin listener (--admin). \
                            Errors are {\"error\": \"...\"} with a 4xx/5xx status.",
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer", "description": "A session token from POST /api/v1/login"},
                "grant": {"type": "http", "scheme": "bearer", "description": "The grant is in the path; the request also carries the session that asked for it"},
                "operator": {"type": "http", "scheme": "bearer", "description": "The operator token from `hearth admin-token`"},
                "oauth_client": {"type": "http", "scheme": "basic", "description": "An OAuth client's id and secret"},
                "link": {"type": "http", "scheme": "bearer", "description": "An account link's OAuth access token"},
                "agent": {"type": "http", "scheme": "bearer", "description": "A home agent's credential from POST /api/v1/agents/pair"},
            }
        },
        "paths": paths,
    })
}

fn add(paths: &mut Map<String, Value>, r: &RouteDoc, listener: &str) {
    let params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let mut op = json!({
        "summary": r.summary,
        "tags": [listener],
        "responses": {"default": {"description": "See the summary; errors are JSON"}},
    });
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if r.auth != "none" {
        op["security"] = json!([{ r.auth: [] }]);
    }
    let entry = paths
        .entry(r.path.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(obj) = entry.as_object_mut() {
        obj.entry(r.method.to_string()).or_insert(op);
    }
}
