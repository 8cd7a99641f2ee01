//! The OpenAPI document is served by the binary and made from the route tables
//! the routers are made from; a route added any other way fails here.

mod common;
use common::*;
use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_route_goes_through_a_documented_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for f in files {
        if f.ends_with("routes.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for needle in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !text.contains(needle),
                "{} adds a route with {needle} outside a route table (crate::routes), so the \
                 OpenAPI document would miss it",
                f.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_its_openapi_document() {
    let s = Server::serve();
    let (st, body) = get(&format!("{}/api/v1/openapi.json", s.base)).await;
    assert_eq!(st, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/login", "post"),
        ("/api/v1/cameras", "get"),
        ("/api/v1/cameras/{id}/streams", "post"),
        ("/api/v1/cameras/{id}/shares", "get"),
        ("/api/v1/cameras/{id}/shares", "post"),
        ("/api/v1/invitations/{camera}/accept", "post"),
        ("/api/v1/sessions", "get"),
        ("/api/v1/sessions/{id}", "delete"),
        ("/api/v1/password", "post"),
        ("/oauth/token", "post"),
        ("/integrations/google/fulfillment", "post"),
        ("/media/{grant}/index.m3u8", "get"),
        ("/api/v1/admin/suspensions", "post"),
        ("/metrics", "get"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    let streams = &paths["/api/v1/cameras/{id}/streams"]["post"];
    assert_eq!(streams["parameters"][0]["name"], "id");
    assert_eq!(streams["security"][0]["session"], serde_json::json!([]));
    assert_eq!(paths["/metrics"]["get"]["tags"][0], "admin");
}
