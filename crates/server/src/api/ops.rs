//! Operations: `GET /metrics` (Prometheus text, on the admin listener behind the
//! operator token), and `GET /healthz` and `GET /readyz` (public: they say
//! nothing but whether the process answers and is ready to serve).
//!
//! A scrape reads the server's atomics into a fresh `prometheus-client` registry
//! and encodes it, so nothing on the media path knows about Prometheus.

use super::admin::AdminAuth;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// `GET /metrics` (operator token).
pub async fn metrics(State(st): State<AppState>, _: AdminAuth) -> Response {
    let mut r = render(&st).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the access decisions are loaded and the database answers.
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, &'static str) {
    let db = st.db(|s| s.generation()).await;
    if st.access.is_loaded() && db.is_ok() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Everything `/metrics` shows, in the Prometheus text format.
fn render(st: &AppState) -> String {
    use hearth_access::limits::SecretKind;
    let m = &st.metrics;
    let mut r = Registry::with_prefix("hearth");
    let counter = |r: &mut Registry, name: &str, help: &str, v: u64| {
        r.register(name, help, ConstCounter::new(v));
    };
    let gauge = |r: &mut Registry, name: &str, help: &str, v: i64| {
        r.register(name, help, ConstGauge::new(v));
    };
    counter(
        &mut r,
        "media_bytes_out",
        "Media bytes the door let out",
        m.door.media_bytes_out.get(),
    );
    counter(
        &mut r,
        "isolation_violations",
        "Objects and frames refused because their provenance is not the grant's",
        m.door.isolation_violations.get(),
    );
    let refusals = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for (reason, v) in [
        ("not_holder", m.door.grant_replays_refused.get()),
        ("forbidden", m.door.grants_refused.get()),
        ("isolation_violation", m.door.isolation_violations.get()),
    ] {
        refusals
            .get_or_create(&vec![("reason", reason)])
            .set(v as i64);
    }
    r.register(
        "door_refusals",
        "Media requests the door refused, by reason",
        refusals,
    );
    counter(
        &mut r,
        "segments_produced",
        "HLS segments produced",
        m.segments_produced.get(),
    );
    counter(
        &mut r,
        "bytes_sent_zero_copy",
        "Bytes of sealed segments sent from their memfd with sendfile (no copy per viewer)",
        m.bytes_sent_zero_copy.get(),
    );
    gauge(
        &mut r,
        "rtmp_connections",
        "Open RTMP ingest connections",
        m.rtmp_connections.get(),
    );
    counter(
        &mut r,
        "rtmp_connections_refused",
        "RTMP connections closed for cause",
        m.rtmp_connections_refused.get(),
    );
    counter(
        &mut r,
        "rtmp_parser_panics",
        "Panics of the RTMP protocol code (bugs)",
        m.rtmp_parser_panics.get(),
    );
    gauge(
        &mut r,
        "cameras_live",
        "Cameras publishing now",
        st.hubs.live_count() as i64,
    );
    let viewers = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for (integration, n) in st.audit.open_sessions() {
        viewers
            .get_or_create(&vec![("integration", integration)])
            .set(n as i64);
    }
    viewers
        .get_or_create(&vec![("way_out", "rtsp")])
        .set(m.rtsp_sessions.get());
    viewers
        .get_or_create(&vec![("way_out", "webrtc")])
        .set(m.webrtc_sessions.get());
    r.register(
        "viewers",
        "Open view sessions, by integration, and RTSP and WebRTC viewers",
        viewers,
    );
    let failures = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    let limited = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for kind in [
        SecretKind::Login,
        SecretKind::OAuthToken,
        SecretKind::AdminToken,
        SecretKind::ViewerKey,
        SecretKind::Agent,
    ] {
        failures
            .get_or_create(&vec![("kind", kind.as_str())])
            .set(st.failures.count(kind) as i64);
        limited
            .get_or_create(&vec![("kind", kind.as_str())])
            .set(st.limits.hits(kind) as i64);
    }
    r.register(
        "secret_failures",
        "Failed secret checks (login, OAuth client, operator token)",
        failures,
    );
    r.register("rate_limited", "Attempts refused by a rate limit", limited);
    gauge(
        &mut r,
        "audit_queue_depth",
        "Audit events waiting to be written",
        st.audit.queue_depth() as i64,
    );
    counter(
        &mut r,
        "audit_dropped",
        "Audit events dropped because the queue was full",
        st.audit.dropped.get(),
    );
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &r) {
        tracing::error!(error = %e, "encoding metrics");
    }
    out
}
