//! The STUN and TURN servers handed to WebRTC viewers (the `ice_servers`
//! config): in grant responses, as WHEP `Link` headers (draft-ietf-wish-whep
//! §4.6) and as Google's `cameraStreamIceServers`.
//!
//! Hearth itself is ICE-lite with host candidates, so a viewer behind a NAT
//! needs nothing here; a TURN server helps the viewer whose network lets no UDP
//! out. Its credentials are minted per grant in coturn's `use-auth-secret`
//! scheme (the "TURN REST API" draft): the username is the grant's expiry in
//! Unix seconds and the grant id, the password the base64 HMAC-SHA1 of that
//! username under the shared secret, so a credential dies with its grant and
//! names no user. Ten lines, so written here rather than pulled in.

use crate::config::IceServerConfig;
use axum::http::HeaderValue;
use base64::Engine as _;
use hearth_access::grant::Grant;
use hmac::{Hmac, Mac};
use serde::Serialize;

/// One server as `RTCIceServer` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The configured servers.
#[derive(Clone, Debug, Default)]
pub struct IceServers(Vec<IceServerConfig>);

impl IceServers {
    pub fn new(config: Vec<IceServerConfig>) -> Self {
        Self(config)
    }

    /// The servers for a viewer holding `grant`, TURN credentials minted for it.
    pub fn for_grant(&self, grant: &Grant) -> Vec<IceServer> {
        self.0
            .iter()
            .map(|c| {
                let (username, credential) = match (&c.secret, &c.username, &c.credential) {
                    (Some(secret), _, _) => {
                        let user = format!("{}:{}", grant.expires_at.0.div_euclid(1000), grant.id);
                        let pass = turn_password(secret, &user);
                        (Some(user), Some(pass))
                    }
                    (None, Some(u), Some(p)) => (Some(u.clone()), Some(p.clone())),
                    _ => (None, None),
                };
                IceServer {
                    urls: c.urls.clone(),
                    username,
                    credential,
                }
            })
            .collect()
    }
}

/// coturn's password for `username` under the shared `secret`.
fn turn_password(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// WHEP's `Link: <url>; rel="ice-server"` headers, one per URL.
pub fn link_headers(servers: &[IceServer]) -> Vec<HeaderValue> {
    let quote = |s: &str| s.replace(['"', '\\'], "");
    servers
        .iter()
        .flat_map(|s| {
            s.urls.iter().filter_map(move |u| {
                let mut v = format!("<{}>; rel=\"ice-server\"", quote(u));
                if let (Some(user), Some(pass)) = (&s.username, &s.credential) {
                    v.push_str(&format!(
                        "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                        quote(user),
                        quote(pass)
                    ));
                }
                HeaderValue::from_str(&v).ok()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_access::grant::Holder;
    use hearth_model::{BindingEpoch, CameraId, GrantId, Integration, UnixMillis, UserId};

    fn grant() -> Grant {
        Grant {
            id: GrantId::random(),
            viewer: UserId::random(),
            camera: CameraId::random(),
            epoch: BindingEpoch(1),
            integration: Integration::App,
            expires_at: UnixMillis(1_796_000_300_000),
            holder: Holder::of_link(hearth_model::LinkId::random()),
        }
    }

    #[test]
    fn turn_credentials_are_minted_per_grant_in_coturns_scheme() {
        // The reference value of the TURN REST draft's scheme, by an independent
        // computation (Python hmac): HMAC-SHA1("north", "1234567890:user"), base64.
        assert_eq!(
            turn_password("north", "1234567890:user"),
            "yqWhSUayifUHn5H27OXq5rL3//A="
        );
        let servers = IceServers::new(vec![
            IceServerConfig {
                urls: vec!["stun:stun.example.net:3478".into()],
                username: None,
                credential: None,
                secret: None,
            },
            IceServerConfig {
                urls: vec!["turn:turn.example.net:3478?transport=udp".into()],
                username: None,
                credential: None,
                secret: Some("north".into()),
            },
        ]);
        let g = grant();
        let out = servers.for_grant(&g);
        assert_eq!(out[0].username, None);
        let user = out[1].username.clone().unwrap();
        assert_eq!(user, format!("1796000300:{}", g.id));
        assert_eq!(
            out[1].credential.clone().unwrap(),
            turn_password("north", &user)
        );
        // Another grant, other credentials.
        assert_ne!(servers.for_grant(&grant())[1].username, out[1].username);
        let links = link_headers(&out);
        assert_eq!(links[0], "<stun:stun.example.net:3478>; rel=\"ice-server\"");
        assert!(
            links[1]
                .to_str()
                .unwrap()
                .contains("credential-type=\"password\"")
        );
        let json = serde_json::to_value(&out).unwrap();
        assert!(json[0].get("username").is_none(), "{json}");
    }
}
