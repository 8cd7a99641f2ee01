//! Identifier newtypes.
//!
//! Ids are random UUIDs rendered in their 32-hex-digit simple form, which is what
//! appears in URLs and in the database. One macro defines them all so they behave
//! identically.

use std::fmt;
use std::str::FromStr;

/// An id string that is not a valid identifier.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind} id")]
pub struct IdParseError {
    kind: &'static str,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Uuid::from_bytes(bytes))
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.simple(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, ":{}"), self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Only the 32-hex-digit simple form is accepted, so one id has one spelling.
                if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(IdParseError { kind: $kind });
                }
                uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| IdParseError { kind: $kind })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A camera. Every media object carries one from ingest onward.
    CameraId,
    "camera"
);
uuid_id!(
    /// A user account (a viewer principal).
    UserId,
    "user"
);
uuid_id!(
    /// A household: the tenant that owns cameras.
    HouseholdId,
    "household"
);
uuid_id!(
    /// One issued grant; names the viewing session in logs and audit.
    GrantId,
    "grant"
);

uuid_id!(
    /// An account link: one user's authorization of one smart-display integration
    /// (Google Home, Alexa) for the cameras they consented to.
    LinkId,
    "link"
);

uuid_id!(
    /// A viewer key: a named, revocable credential for players and recorders that
    /// cannot send headers (VLC, Home Assistant, NVRs), for a set of cameras.
    ViewerKeyId,
    "viewerkey"
);

uuid_id!(
    /// A home agent: a Hearth on a LAN that pulls a household's cameras and
    /// pushes them to this server over TLS.
    AgentId,
    "agent"
);

uuid_id!(
    /// One WebRTC (WHEP) viewing session: the last segment of its `Location`.
    WhepSessionId,
    "whep"
);

uuid_id!(
    /// A login session's public name: random, unrelated to its token, so listing
    /// sessions or naming one to end it hands out nothing that signs in.
    SessionId,
    "session"
);

/// The binding epoch of a camera: incremented whenever the camera changes hands or
/// is reset, so that every grant, key and session of an older epoch stops working.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct BindingEpoch(pub u64);

impl fmt::Display for BindingEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_simple_form() {
        let id = CameraId::random();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<CameraId>().unwrap(), id);
    }

    #[test]
    fn rejects_other_spellings() {
        let id = CameraId::random();
        let hyphenated = uuid::Uuid::from_bytes(*id.as_bytes())
            .hyphenated()
            .to_string();
        assert!(hyphenated.parse::<CameraId>().is_err());
        assert!("".parse::<CameraId>().is_err());
        assert!("zz".repeat(16).parse::<CameraId>().is_err());
    }

    #[test]
    fn serde_uses_the_simple_form() {
        let id = UserId::random();
        let json = serde_json_like(&id);
        assert_eq!(json, format!("{id}"));
    }

    fn serde_json_like(id: &UserId) -> String {
        // Serialize through a tiny string collector to avoid a serde_json dependency.
        struct Collect(String);
        impl std::fmt::Write for Collect {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                self.0.push_str(s);
                Ok(())
            }
        }
        let mut c = Collect(String::new());
        std::fmt::Write::write_fmt(&mut c, format_args!("{id}")).unwrap();
        c.0
    }
}
