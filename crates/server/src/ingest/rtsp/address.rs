//! Which addresses this server may pull from. A household's box pulls cameras
//! on its own LAN (private addresses: the default). A cloud node should not:
//! an owner's "camera" at `rtsp://169.254.169.254/` or `rtsp://10.0.0.5:6379/`
//! would have the server probe its own network (server-side request forgery),
//! and the camera's answer comes back to the owner as `last_error`. With
//! `[pull] private_addresses = false` a pull resolves the camera's host itself,
//! refuses every address that is not public, and hands retina the address it
//! checked (so a name that resolves differently a moment later changes
//! nothing). Cameras at home then come through a home agent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = v6.octets();
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240) // reserved
}

/// The address to pull `host:port` from: the first one it resolves to, or
/// the first public one when private addresses are not allowed.
pub async fn resolve(host: &str, port: u16, private_allowed: bool) -> Result<SocketAddr, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let first = addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{host}: no address"))?;
    if private_allowed {
        return Ok(first);
    }
    addrs.into_iter().find(|a| is_public(a.ip())).ok_or_else(|| {
        format!(
            "{host} is a private address ({}); this server pulls public addresses only (a home agent reaches cameras at home)",
            first.ip()
        )
    })
}

/// For a URL's host given as an address: whether it may be pulled from.
pub fn literal_allowed(host: &str, private_allowed: bool) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    private_allowed || host.parse::<IpAddr>().map_or(true, is_public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_metadata_addresses_are_not_public() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.1.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "203.0.114.1", "2a00:1450::1", "::ffff:8.8.8.8"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
        assert!(!literal_allowed("192.168.1.20", false));
        assert!(!literal_allowed("[::1]", false));
        assert!(
            literal_allowed("cam.example.com", false),
            "names are checked when resolved"
        );
        assert!(literal_allowed("192.168.1.20", true));
    }

    #[tokio::test]
    async fn a_name_for_a_private_address_is_refused_when_they_are_not_allowed() {
        let e = resolve("localhost", 554, false).await.unwrap_err();
        assert!(e.contains("private address"), "{e}");
        assert_eq!(
            resolve("127.0.0.1", 554, true).await.unwrap(),
            "127.0.0.1:554".parse().unwrap()
        );
    }
}
