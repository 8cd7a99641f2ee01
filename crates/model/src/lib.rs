//! Hearth's shared vocabulary.
//!
//! Every identifier is a newtype so that a [`CameraId`] can never be passed where a
//! [`UserId`] is expected, and every secret is split into a [`RawToken`] (held only in
//! memory, redacted in `Debug`) and a [`TokenHash`] (the only form that is stored).
//! [`Provenance`] is the identity that every media object carries from ingest to the
//! egress door; the door compares it with a grant before a single byte is written.
//!
//! This crate does no I/O and knows nothing about the network or the database.

mod ids;
mod provenance;
mod token;

pub use ids::{
    AgentId, BindingEpoch, CameraId, GrantId, HouseholdId, IdParseError, LinkId, SessionId, UserId,
    ViewerKeyId, WhepSessionId,
};
pub use provenance::{Provenance, Rendition, UnixMillis};
pub use token::{RawToken, TokenHash};

/// Through which integration a viewer reaches a camera. Grants name exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Integration {
    /// Hearth's own web app.
    App,
    /// A direct API client.
    Api,
    /// Google Home (Nest Hub, Chromecast) through an account link.
    Google,
    /// Alexa (Echo Show, Fire TV) through an account link.
    Alexa,
    /// A player or recorder with a viewer key (RTSP with Digest auth, or HLS).
    Restream,
}

impl Integration {
    pub fn as_str(self) -> &'static str {
        match self {
            Integration::App => "app",
            Integration::Api => "api",
            Integration::Google => "google",
            Integration::Alexa => "alexa",
            Integration::Restream => "restream",
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Integration::App),
            1 => Some(Integration::Api),
            2 => Some(Integration::Google),
            3 => Some(Integration::Alexa),
            4 => Some(Integration::Restream),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Integration::App => 0,
            Integration::Api => 1,
            Integration::Google => 2,
            Integration::Alexa => 3,
            Integration::Restream => 4,
        }
    }

    /// The integrations reached through an OAuth account link (a smart-display
    /// platform), as opposed to Hearth's own clients.
    pub const LINKED: [Integration; 2] = [Integration::Google, Integration::Alexa];

    pub fn is_linked(self) -> bool {
        Self::LINKED.contains(&self)
    }

    /// Grants fetched by clients that cannot send a session header (a smart
    /// display, VLC): held by an account link or a viewer key, which the access
    /// view checks live instead.
    pub fn is_headerless(self) -> bool {
        self.is_linked() || self == Integration::Restream
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Integration::App,
            Integration::Api,
            Integration::Google,
            Integration::Alexa,
            Integration::Restream,
        ]
        .into_iter()
        .find(|i| i.as_str() == s)
    }
}
