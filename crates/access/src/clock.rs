//! Wall-clock reads for the I/O layer. The media crate never reads a clock; the
//! drivers here read it once and pass the time in.

use hearth_model::UnixMillis;

pub fn now() -> UnixMillis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UnixMillis(d.as_millis() as i64)
}

/// RFC 3339 rendering for API responses.
pub fn rfc3339(t: UnixMillis) -> String {
    jiff::Timestamp::from_millisecond(t.0)
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}
