//! A pulled camera's source: where its streams are and how to sign in. Sealed at
//! rest (`hearth_access::sealed`), never returned by the API and never logged:
//! its `Debug` and [`RtspSource::describe`] show only the host.

use serde::{Deserialize, Serialize};

/// How RTP travels: interleaved on the RTSP connection (works through NAT and
/// firewalls, the default) or over UDP (some cameras only offer that).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpTransport {
    #[default]
    Tcp,
    Udp,
}

/// What an owner gives to add an RTSP camera.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtspSource {
    /// The main stream, `rtsp://host[:port]/path`, without credentials.
    pub main_url: String,
    /// The sub stream (a camera's smaller picture), if it has one.
    #[serde(default)]
    pub sub_url: Option<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub transport: RtpTransport,
    /// For a camera a home agent pulls: the stream key the agent publishes it
    /// with (the server keeps only its hash beside the camera; it is sealed
    /// here so that the agent can be handed it again after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_key: Option<String>,
}

impl std::fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RtspSource({})", self.describe())
    }
}

/// Why a source was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("{what} is not a URL: {reason}")]
    NotAUrl { what: &'static str, reason: String },
    #[error("{what} must be an rtsp:// URL")]
    Scheme { what: &'static str },
    #[error("{what} has no host")]
    NoHost { what: &'static str },
    #[error("{what} names credentials twice (in the URL and as fields)")]
    TwoCredentials { what: &'static str },
    #[error("{what} is too long (at most {max} characters)")]
    TooLong { what: &'static str, max: usize },
}

const MAX_URL: usize = 1024;
const MAX_CREDENTIAL: usize = 256;

impl RtspSource {
    /// A source from an owner's input. Credentials written into a URL
    /// (`rtsp://user:pass@host/...`, as cameras' manuals show them) move to the
    /// user name and password, so the stored URLs carry none.
    pub fn new(
        main_url: &str,
        sub_url: Option<&str>,
        username: &str,
        password: &str,
        transport: RtpTransport,
    ) -> Result<Self, SourceError> {
        for (what, value, max) in [
            ("the user name", username, MAX_CREDENTIAL),
            ("the password", password, MAX_CREDENTIAL),
        ] {
            if value.chars().count() > max {
                return Err(SourceError::TooLong { what, max });
            }
        }
        let mut src = Self {
            main_url: String::new(),
            sub_url: None,
            username: username.to_owned(),
            password: password.to_owned(),
            transport,
            push_key: None,
        };
        src.main_url = src.take_url("the main URL", main_url)?;
        if let Some(sub) = sub_url.map(str::trim).filter(|s| !s.is_empty()) {
            src.sub_url = Some(src.take_url("the sub URL", sub)?);
        }
        Ok(src)
    }

    /// Checks `raw`, moves any credentials it carries into `self`, and returns
    /// it without them.
    fn take_url(&mut self, what: &'static str, raw: &str) -> Result<String, SourceError> {
        let raw = raw.trim();
        if raw.len() > MAX_URL {
            return Err(SourceError::TooLong { what, max: MAX_URL });
        }
        let mut url = url::Url::parse(raw).map_err(|e| SourceError::NotAUrl {
            what,
            reason: e.to_string(),
        })?;
        if url.scheme() != "rtsp" {
            return Err(SourceError::Scheme { what });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SourceError::NoHost { what });
        }
        if !url.username().is_empty() || url.password().is_some() {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or(""));
            let same = (self.username.is_empty() || self.username == user)
                && (self.password.is_empty() || self.password == pass);
            if !same {
                return Err(SourceError::TwoCredentials { what });
            }
            self.username = user;
            self.password = pass;
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        Ok(url.into())
    }

    /// The main stream's `host:port`: what the API and logs show of a source.
    pub fn describe(&self) -> String {
        host_of(&self.main_url)
    }

    /// The URL of `rendition`'s stream, if the camera has one.
    pub fn url(&self, rendition: hearth_model::Rendition) -> Option<&str> {
        match rendition {
            hearth_model::Rendition::Main => Some(&self.main_url),
            hearth_model::Rendition::Sub => self.sub_url.as_deref(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a source serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// `host:port` of an RTSP URL (554 when it names none).
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(format!("{host}:{}", u.port().unwrap_or(554)))
        })
        .unwrap_or_else(|| "(invalid)".into())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::Rendition;

    #[test]
    fn credentials_in_urls_move_out_of_them() {
        let s = RtspSource::new(
            "rtsp://admin:p%40ss@192.168.1.20:554/h264Preview_01_main",
            Some("rtsp://admin:p%40ss@192.168.1.20/h264Preview_01_sub"),
            "",
            "",
            RtpTransport::Tcp,
        )
        .unwrap();
        assert_eq!(s.username, "admin");
        assert_eq!(s.password, "p@ss");
        assert_eq!(s.main_url, "rtsp://192.168.1.20:554/h264Preview_01_main");
        assert_eq!(
            s.url(Rendition::Sub),
            Some("rtsp://192.168.1.20/h264Preview_01_sub")
        );
        assert_eq!(s.describe(), "192.168.1.20:554");
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("p@ss") && !debug.contains("admin"),
            "{debug}"
        );
        assert_eq!(RtspSource::from_bytes(&s.to_bytes()), Some(s));
    }

    #[test]
    fn bad_sources_are_refused_with_a_reason() {
        let new = |u: &str| RtspSource::new(u, None, "", "", RtpTransport::Tcp);
        assert!(matches!(new("not a url"), Err(SourceError::NotAUrl { .. })));
        assert!(matches!(
            new("http://cam/x"),
            Err(SourceError::Scheme { .. })
        ));
        assert!(matches!(
            new("rtsp:///x"),
            Err(SourceError::NoHost { .. }) | Err(SourceError::NotAUrl { .. })
        ));
        assert!(matches!(
            new(&format!("rtsp://cam/{}", "a".repeat(2000))),
            Err(SourceError::TooLong { .. })
        ));
        assert!(matches!(
            RtspSource::new("rtsp://u:p@cam/x", None, "other", "", RtpTransport::Tcp),
            Err(SourceError::TwoCredentials { .. })
        ));
        let s = RtspSource::new("rtsp://cam/x", Some("  "), "u", "p", RtpTransport::Udp).unwrap();
        assert_eq!((s.sub_url, s.transport), (None, RtpTransport::Udp));
        assert_eq!(host_of("rtsp://cam/x"), "cam:554");
    }
}
