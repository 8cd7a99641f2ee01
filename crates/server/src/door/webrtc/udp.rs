//! The one UDP socket every WebRTC peer shares, and the demultiplexer that hands
//! each datagram to its peer's session.
//!
//! Hearth is an ICE-lite agent: it never sends connectivity checks, it answers
//! them. A peer first shows up as a STUN binding request whose USERNAME starts
//! with the local ICE ufrag of exactly one session (the ufrag is only in that
//! session's SDP answer, handed to its grant's holder). From then on the source
//! address routes to that session. Routing is only delivery: the session's
//! str0m instance checks every STUN message's integrity against its ICE password
//! and every DTLS/SRTP packet against its keys, so a datagram routed to the wrong
//! session is dropped there, never decrypted or answered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A received datagram.
pub struct Datagram {
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

/// Datagrams queued for one session before newer ones are dropped (UDP: the
/// peer retransmits what matters).
const SESSION_QUEUE: usize = 256;
/// Source addresses one session may be reached from (a peer's candidates).
const ADDRESSES_PER_SESSION: usize = 8;
/// Largest datagram read (WebRTC keeps packets under the path MTU).
const MAX_DATAGRAM: usize = 2048;

/// Routes datagrams to sessions: by ICE ufrag until a source address is known,
/// then by address.
#[derive(Default)]
pub struct Demux {
    inner: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, Route>,
    by_addr: HashMap<SocketAddr, String>,
}

struct Route {
    tx: mpsc::Sender<Datagram>,
    addrs: Vec<SocketAddr>,
}

impl Demux {
    /// Registers a session by its local ufrag; returns its datagram queue.
    pub fn register(&self, ufrag: &str) -> mpsc::Receiver<Datagram> {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let mut r = self.lock();
        r.by_ufrag.insert(
            ufrag.to_string(),
            Route {
                tx,
                addrs: Vec::new(),
            },
        );
        rx
    }

    /// Forgets a session and every address that routed to it.
    pub fn remove(&self, ufrag: &str) {
        let mut r = self.lock();
        if let Some(route) = r.by_ufrag.remove(ufrag) {
            for a in route.addrs {
                r.by_addr.remove(&a);
            }
        }
    }

    /// How many sessions are registered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_ufrag.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `d` to its session; drops it when no session claims it or the
    /// session's queue is full.
    pub fn deliver(&self, d: Datagram) {
        let mut r = self.lock();
        let ufrag = match r.by_addr.get(&d.from) {
            Some(u) => u.clone(),
            None => {
                let Some(u) = stun_local_ufrag(&d.data) else {
                    return;
                };
                let u = u.to_string();
                let Some(route) = r.by_ufrag.get_mut(&u) else {
                    return;
                };
                if route.addrs.len() >= ADDRESSES_PER_SESSION {
                    return;
                }
                route.addrs.push(d.from);
                r.by_addr.insert(d.from, u.clone());
                u
            }
        };
        if let Some(route) = r.by_ufrag.get(&ufrag) {
            let _ = route.tx.try_send(d);
        }
    }
}

/// Reads the shared socket until the process ends, routing every datagram.
pub async fn receive(socket: Arc<UdpSocket>, demux: Arc<Demux>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => demux.deliver(Datagram {
                from,
                data: buf[..n].to_vec(),
            }),
            Err(e) => {
                // ICMP errors from a vanished peer surface here on Linux: not fatal.
                tracing::debug!(error = %e, "webrtc udp receive");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
}

/// The receiver's ufrag in a STUN binding request (`USERNAME` is
/// `receiver:sender`, RFC 8445 §7.2.2), if `data` is one.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    const BINDING_REQUEST: u16 = 0x0001;
    const MAGIC_COOKIE: u32 = 0x2112_A442;
    const USERNAME: u16 = 0x0006;
    if data.len() < 20 {
        return None;
    }
    let msg_type = u16::from_be_bytes([data[0], data[1]]);
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let cookie = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    if msg_type != BINDING_REQUEST || cookie != MAGIC_COOKIE || 20 + len != data.len() {
        return None;
    }
    let mut attrs = &data[20..];
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([attrs[0], attrs[1]]);
        let alen = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let value = attrs.get(4..4 + alen)?;
        if kind == USERNAME {
            let name = std::str::from_utf8(value).ok()?;
            let (local, _) = name.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        let padded = 4 + alen.div_ceil(4) * 4;
        attrs = attrs.get(padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &[u8], extra_before: bool) -> Vec<u8> {
        let mut attrs = Vec::new();
        if extra_before {
            // PRIORITY (4 bytes), then an odd-length SOFTWARE to test padding.
            attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
            attrs.extend_from_slice(&[0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0]);
        }
        attrs.extend_from_slice(&0x0006u16.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_local_ufrag_is_read_from_a_binding_request() {
        assert_eq!(
            stun_local_ufrag(&binding(b"srv1:cli1", false)),
            Some("srv1")
        );
        assert_eq!(stun_local_ufrag(&binding(b"abcd:efg", true)), Some("abcd"));
    }

    #[test]
    fn anything_else_names_no_session() {
        let good = binding(b"srv1:cli1", true);
        assert_eq!(stun_local_ufrag(&binding(b"nocolon", false)), None);
        assert_eq!(stun_local_ufrag(&binding(b":cli", false)), None);
        assert_eq!(stun_local_ufrag(&binding(&[0xff, b':', b'x'], false)), None);
        // A response, a wrong cookie, a wrong length, truncations, RTP-like bytes.
        let mut response = good.clone();
        response[1] = 0x01;
        response[0] = 0x01;
        assert_eq!(stun_local_ufrag(&response), None);
        let mut cookie = good.clone();
        cookie[4] ^= 1;
        assert_eq!(stun_local_ufrag(&cookie), None);
        for n in 0..good.len() {
            assert_eq!(stun_local_ufrag(&good[..n]), None, "truncated to {n}");
        }
        assert_eq!(stun_local_ufrag(&[0x80; 60]), None);
        // An attribute longer than the message.
        let mut long = binding(b"srv1:cli1", false);
        long[22] = 0x7f;
        assert_eq!(stun_local_ufrag(&long), None);
    }

    #[tokio::test]
    async fn datagrams_follow_their_sessions_address_once_known() {
        let demux = Demux::default();
        let mut a = demux.register("ufa");
        let mut b = demux.register("ufb");
        let (pa, pb): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        );
        // Unknown address, not STUN: dropped.
        demux.deliver(Datagram {
            from: pa,
            data: vec![0x80; 40],
        });
        assert!(a.try_recv().is_err() && b.try_recv().is_err());
        demux.deliver(Datagram {
            from: pa,
            data: binding(b"ufa:x", false),
        });
        demux.deliver(Datagram {
            from: pb,
            data: binding(b"ufb:y", false),
        });
        assert_eq!(a.try_recv().unwrap().from, pa);
        assert_eq!(b.try_recv().unwrap().from, pb);
        // Later datagrams route by address.
        demux.deliver(Datagram {
            from: pa,
            data: vec![0x80; 40],
        });
        assert_eq!(a.try_recv().unwrap().data.len(), 40);
        assert!(b.try_recv().is_err());
        // A removed session's address routes nowhere.
        demux.remove("ufa");
        demux.deliver(Datagram {
            from: pa,
            data: vec![0x80; 40],
        });
        assert!(a.try_recv().is_err());
        assert_eq!(demux.len(), 1);
        // One session takes at most a few addresses.
        for port in 3000..3100 {
            demux.deliver(Datagram {
                from: SocketAddr::from(([127, 0, 0, 1], port)),
                data: binding(b"ufb:y", false),
            });
        }
        let mut n = 0;
        while b.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, ADDRESSES_PER_SESSION - 1);
    }
}
