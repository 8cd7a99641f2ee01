//! An impaired link for end-to-end tests, made of what this kernel has (no
//! `netem`): a network namespace the server runs in, a veth pair to it, a
//! `tbf` rate limit on the server's side (what it sends a viewer: the media
//! direction) and on the host's side (the viewer's requests), and nftables
//! random drop (`numgen random mod 100 < N`) on the namespace's way out.
//!
//! The server and its simulated cameras run inside the namespace, so ingest
//! (on the namespace's own loopback) is not impaired; a viewer on the host
//! (Chromium, the test's own clients) reaches the server at [`Link::server_ip`]
//! through the veth, and so through the limits. Everything is removed when the
//! value is dropped (deleting the namespace deletes the veth pair with it).
//! Needs root (CI runs as root; `scripts/test` says so).
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Link {
    pub ns: String,
    host_if: String,
    ns_if: String,
    /// The host's address on the link.
    pub host_ip: String,
    /// The server's address on the link (inside the namespace).
    pub server_ip: String,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_stdin(args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} <<< {stdin}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Panics with a clear message unless this process can make namespaces.
pub fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "impaired-link tests make network namespaces and need root"
    );
    for tool in ["ip", "tc", "nft"] {
        crate::common::require_tool(tool);
    }
}

impl Link {
    /// A link with no limits yet.
    pub fn new() -> Link {
        require_root();
        let n = (std::process::id() % 10_000) * 16 + NEXT.fetch_add(1, Ordering::Relaxed) % 16;
        let (a, b) = (10 + (n / 250) % 200, (n % 250) + 1);
        let link = Link {
            ns: format!("hearth-link-{n}"),
            host_if: format!("hlh{n}"),
            ns_if: format!("hln{n}"),
            host_ip: format!("10.{a}.{b}.1"),
            server_ip: format!("10.{a}.{b}.2"),
        };
        // A namespace left over by a killed run of the same number goes first.
        let _ = Command::new("ip").args(["netns", "del", &link.ns]).output();
        run(&["ip", "netns", "add", &link.ns]);
        run(&[
            "ip",
            "link",
            "add",
            &link.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &link.ns_if,
        ]);
        run(&["ip", "link", "set", &link.ns_if, "netns", &link.ns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", link.host_ip),
            "dev",
            &link.host_if,
        ]);
        run(&["ip", "link", "set", &link.host_if, "up"]);
        let ns = link.ns.clone();
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/30", link.server_ip),
            "dev",
            &link.ns_if,
        ]);
        run(&["ip", "-n", &ns, "link", "set", &link.ns_if, "up"]);
        link
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Limits both directions to `kbit` kbit/s (`None`: no limit) and drops
    /// `loss_percent` of the packets the server sends.
    pub fn set(&self, kbit: Option<u32>, loss_percent: u32) {
        let in_ns = ["ip", "netns", "exec", self.ns.as_str()];
        for (prefix, dev) in [(&in_ns[..], &self.ns_if), (&[][..], &self.host_if)] {
            let tc = |rest: &[&str]| -> Vec<String> {
                prefix
                    .iter()
                    .chain(&["tc", "qdisc"])
                    .chain(rest)
                    .map(|s| s.to_string())
                    .collect()
            };
            let del = tc(&["del", "dev", dev, "root"]);
            let _ = Command::new(&del[0]).args(&del[1..]).output();
            if let Some(kbit) = kbit {
                // A burst of a few packets and a queue of about 100 ms.
                let bytes_per_s = kbit as usize * 1000 / 8;
                let burst = (bytes_per_s / 50).max(4 * 1600).to_string();
                let limit = (bytes_per_s / 10).max(8 * 1600).to_string();
                let rate = format!("{kbit}kbit");
                let add = tc(&[
                    "add", "dev", dev, "root", "tbf", "rate", &rate, "burst", &burst, "limit",
                    &limit,
                ]);
                let add: Vec<&str> = add.iter().map(String::as_str).collect();
                run(&add);
            }
        }
        let rules = if loss_percent >= 100 {
            format!(
                "flush ruleset\ntable inet hearthlink {{\n chain out {{ type filter hook output priority 0; policy accept; oifname \"{}\" drop; }}\n}}\n",
                self.ns_if
            )
        } else if loss_percent > 0 {
            format!(
                "flush ruleset\ntable inet hearthlink {{\n chain out {{ type filter hook output priority 0; policy accept; oifname \"{}\" numgen random mod 100 < {loss_percent} drop; }}\n}}\n",
                self.ns_if
            )
        } else {
            "flush ruleset\n".to_string()
        };
        run_stdin(&["ip", "netns", "exec", &self.ns, "nft", "-f", "-"], &rules);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}
