//! Configuration: an optional TOML file, overridden by command-line flags.
//!
//! ```toml
//! # All keys optional; unknown keys are an error.
//! http = "127.0.0.1:8080"        # HTTP API and web app
//! rtmp = "127.0.0.1:1935"        # RTMP ingest
//! data_dir = "./hearth-data"     # database, audit journal, keys
//! keys_dir = "/run/secrets/hearth"  # grant.key and media.key, shared by every node of a cluster [default: data_dir]
//! database_url = "postgres://hearth:…@db.example.com/hearth"  # PostgreSQL instead of <data_dir>/hearth.db
//! public_url = "http://cams.example.com"  # base of absolute URLs; default from `http`
//! rtsp = "127.0.0.1:8554"        # RTSP egress for smart displays (Alexa); off if absent
//! rtsp_public_url = "rtsps://cams.example.com:443"  # base of RTSP URLs; default from `rtsp`
//! webrtc = "127.0.0.1:8189"      # WebRTC (WHEP) media, UDP: one port for every viewer
//! webrtc_candidates = ["203.0.113.7"]  # addresses viewers reach it at; default the bound one
//!
//! [[ice_servers]]                # optional: STUN/TURN servers handed to WebRTC viewers
//! urls = ["stun:stun.example.net:3478"]
//! [[ice_servers]]
//! urls = ["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"]
//! secret = "..."                 # coturn `static-auth-secret`: Hearth mints credentials per grant
//!
//! [tls]                          # optional: TLS listeners without a proxy in front
//! cert = "/etc/hearth/fullchain.pem"   # PEM certificate chain
//! key = "/etc/hearth/privkey.pem"      # PEM private key
//! https = "0.0.0.0:8443"         # the HTTP API and web app over TLS
//! rtmps = "0.0.0.0:1936"         # RTMP ingest over TLS (home agents, cameras that speak RTMPS)
//!
//! [cluster]                      # optional: one of several nodes (needs database_url)
//! nats_url = "nats://hearth:…@nats.example.com:4222"   # the control plane
//! node = "node-1"                # this node's name [default: its HTTP address]
//! lease_seconds = 5              # NATS unconfirmed this long: fail closed; a camera's placement lease
//! internal_url = "http://10.0.0.5:8080"  # where the other nodes reach this one [default: http://<http>]
//!
//! [pull]                         # optional: cameras this server pulls (RTSP)
//! private_addresses = true       # false on a cloud node: public addresses only (home agents reach the rest)
//!
//! [google]                       # optional: report to Google's HomeGraph
//! homegraph_url = "https://homegraph.googleapis.com"   # the default
//! homegraph_token_command = "gcloud auth print-access-token --impersonate-service-account=hearth@PROJECT.iam.gserviceaccount.com"
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The `[google]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// HomeGraph API base URL [default: https://homegraph.googleapis.com].
    pub homegraph_url: Option<String>,
    /// A command printing an OAuth access token for HomeGraph on stdout.
    pub homegraph_token_command: Option<String>,
}

/// The `[cluster]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub nats_url: Option<String>,
    pub node: Option<String>,
    pub lease_seconds: Option<u64>,
    pub internal_url: Option<String>,
}

/// The `[pull]` table: where this server may pull cameras from.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PullConfig {
    /// Cameras at private, loopback and link-local addresses [default: true].
    /// A cloud node sets false: an owner's "camera" URL must not make it
    /// probe its own network.
    pub private_addresses: bool,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            private_addresses: true,
        }
    }
}

/// The `[tls]` table: a certificate, and the listeners that use it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The HTTP API and web app over TLS.
    pub https: Option<SocketAddr>,
    /// RTMP ingest over TLS (RTMPS).
    pub rtmps: Option<SocketAddr>,
}

impl TlsConfig {
    /// Checks that listeners have a certificate to serve.
    pub fn validate(&self) -> anyhow::Result<()> {
        let listeners = self.https.is_some() || self.rtmps.is_some();
        if listeners && (self.cert.is_none() || self.key.is_none()) {
            anyhow::bail!("tls: https and rtmps need both cert and key");
        }
        Ok(())
    }
}

/// One `[[ice_servers]]` entry: a STUN or TURN server WebRTC viewers may use
/// (handed out with every grant, to WHEP clients as `Link` headers and to
/// Google as `cameraStreamIceServers`). A TURN server needs credentials: either
/// `secret` (coturn's `use-auth-secret`: Hearth mints a username and password
/// per grant, valid as long as the grant) or a fixed `username` and
/// `credential`, which every signed-in viewer then sees.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
    pub secret: Option<String>,
}

impl IceServerConfig {
    /// Checks the entry before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.urls.is_empty() {
            anyhow::bail!("ice_servers: an entry has no urls");
        }
        for u in &self.urls {
            let scheme = u.split(':').next().unwrap_or_default();
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") || u.len() <= scheme.len() + 1
            {
                anyhow::bail!("ice_servers: {u:?} is not a stun:, stuns:, turn: or turns: URL");
            }
        }
        let fixed = self.username.is_some() || self.credential.is_some();
        if fixed && (self.username.is_none() || self.credential.is_none()) {
            anyhow::bail!("ice_servers: username and credential go together");
        }
        if fixed && self.secret.is_some() {
            anyhow::bail!("ice_servers: give either secret or username and credential, not both");
        }
        if self.secret.as_ref().is_some_and(String::is_empty) {
            anyhow::bail!("ice_servers: an empty secret");
        }
        Ok(())
    }
}

/// The `[limits]` table: how much one peer address may take. Behind a reverse
/// proxy every connection comes from the proxy's address: raise the connection
/// caps there, and name the proxy in `trusted_proxies` so that the limits on
/// secrets (logins, tokens) key on the client it forwards for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open HTTP connections from one address [default: 256].
    pub http_connections_per_address: usize,
    /// Open RTMP connections from one address [default: 128].
    pub rtmp_connections_per_address: usize,
    /// Open RTSP connections from one address [default: 32].
    pub rtsp_connections_per_address: usize,
    /// WebRTC (WHEP) sessions at once from one address [default: 128]; smart
    /// displays' sessions (from their platforms' clouds) are not counted.
    pub webrtc_sessions_per_address: usize,
    /// Login attempts from one address, at once and per minute [default: 30].
    pub logins_per_address_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed: for a request from
    /// one of them, the client is the nearest address in that header that is not
    /// itself a trusted proxy [default: none; the header is ignored].
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            http_connections_per_address: 256,
            rtmp_connections_per_address: 128,
            rtsp_connections_per_address: 32,
            webrtc_sessions_per_address: 128,
            logins_per_address_per_minute: 30,
            trusted_proxies: Vec::new(),
        }
    }
}

pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
pub const DEFAULT_RTMP: &str = "127.0.0.1:1935";
pub const DEFAULT_DATA_DIR: &str = "./hearth-data";
/// The operator's admin API listens apart from the public port, on loopback.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:8081";
/// WebRTC media (UDP), one port for every viewer.
pub const DEFAULT_WEBRTC: &str = "127.0.0.1:8189";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http: Option<SocketAddr>,
    pub rtmp: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    /// `grant.key` and `media.key` [default: `data_dir`]: one copy shared by
    /// every node of a cluster.
    pub keys_dir: Option<PathBuf>,
    /// PostgreSQL instead of the embedded SQLite file, for several nodes
    /// sharing one database (`postgres://user:password@host:port/db`).
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    /// RTSP egress address (smart displays that play RTSP: Alexa). Absent: off.
    pub rtsp: Option<SocketAddr>,
    /// Base of the RTSP URLs handed to displays (behind a TLS proxy:
    /// `rtsps://host:443`); default `rtsp://` and the bound address.
    pub rtsp_public_url: Option<String>,
    /// Google Home: HomeGraph reporting. Absent: Hearth does not report state.
    pub google: Option<GoogleConfig>,
    /// The admin API's own listener [default: 127.0.0.1:8081]; keep it off the
    /// public network.
    pub admin: Option<SocketAddr>,
    /// Per-address limits (see [`LimitsConfig`]).
    pub limits: Option<LimitsConfig>,
    /// WebRTC media address, UDP [default: 127.0.0.1:8189].
    pub webrtc: Option<SocketAddr>,
    /// The addresses announced to WebRTC viewers as this server's (ICE host
    /// candidates, with the WebRTC port): a public or LAN address when `webrtc`
    /// listens on all of them [default: the bound address].
    pub webrtc_candidates: Option<Vec<std::net::IpAddr>>,
    /// STUN/TURN servers handed to WebRTC viewers (see [`IceServerConfig`]).
    pub ice_servers: Option<Vec<IceServerConfig>>,
    /// TLS listeners (see [`TlsConfig`]).
    pub tls: Option<TlsConfig>,
    /// Where cameras may be pulled from (see [`PullConfig`]).
    pub pull: Option<PullConfig>,
    /// One of several nodes (see [`crate::cluster`]).
    pub cluster: Option<ClusterFile>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        let file: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        if let Some(tls) = &file.tls {
            tls.validate()
                .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        }
        for ice in file.ice_servers.iter().flatten() {
            ice.validate()
                .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        }
        Ok(file)
    }
}

/// What the command line says (each overrides the file's key of that name).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub http: Option<SocketAddr>,
    pub rtmp: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub nats_url: Option<String>,
    pub node: Option<String>,
    pub public_url: Option<String>,
    pub rtsp: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub webrtc: Option<SocketAddr>,
    /// Each overrides the `[tls]` key of its name.
    pub tls: TlsConfig,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    pub data_dir: PathBuf,
    /// Where `grant.key` and `media.key` are: every node of a cluster must
    /// have the same (grants, segment keys, sealed camera sources and relay
    /// tokens made on one node open on the others).
    pub keys_dir: PathBuf,
    /// `None`: the embedded SQLite database in `data_dir`.
    pub database_url: Option<String>,
    /// Explicit base URL; when `None` it is derived from the bound HTTP address.
    pub public_url: Option<String>,
    pub rtsp: Option<SocketAddr>,
    pub rtsp_public_url: Option<String>,
    pub google: Option<GoogleConfig>,
    pub admin: SocketAddr,
    pub limits: LimitsConfig,
    pub webrtc: SocketAddr,
    pub webrtc_candidates: Vec<std::net::IpAddr>,
    pub ice_servers: Vec<IceServerConfig>,
    pub tls: TlsConfig,
    pub pull: PullConfig,
    /// `None`: a single node.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Config {
    /// Flags win over the file; the file wins over defaults.
    pub fn resolve(file: FileConfig, flags: Flags) -> Self {
        let Flags {
            http,
            rtmp,
            data_dir,
            keys_dir,
            database_url,
            nats_url,
            node,
            public_url,
            rtsp,
            admin,
            webrtc,
            tls,
        } = flags;
        let cluster_file = file.cluster.unwrap_or_default();
        let file_tls = file.tls.unwrap_or_default();
        let tls = TlsConfig {
            cert: tls.cert.or(file_tls.cert),
            key: tls.key.or(file_tls.key),
            https: tls.https.or(file_tls.https),
            rtmps: tls.rtmps.or(file_tls.rtmps),
        };
        let http = http
            .or(file.http)
            .unwrap_or_else(|| DEFAULT_HTTP.parse().expect("default addr"));
        let rtmp = rtmp
            .or(file.rtmp)
            .unwrap_or_else(|| DEFAULT_RTMP.parse().expect("default addr"));
        let data_dir = data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let public_url = public_url
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_string());
        Self {
            http,
            rtmp,
            keys_dir: keys_dir
                .or(file.keys_dir)
                .unwrap_or_else(|| data_dir.clone()),
            data_dir,
            database_url: database_url.or(file.database_url),
            public_url,
            rtsp: rtsp.or(file.rtsp),
            rtsp_public_url: file
                .rtsp_public_url
                .map(|u| u.trim_end_matches('/').to_string()),
            google: file.google,
            admin: admin
                .or(file.admin)
                .unwrap_or_else(|| DEFAULT_ADMIN.parse().expect("default addr")),
            limits: file.limits.unwrap_or_default(),
            webrtc: webrtc
                .or(file.webrtc)
                .unwrap_or_else(|| DEFAULT_WEBRTC.parse().expect("default addr")),
            webrtc_candidates: file.webrtc_candidates.unwrap_or_default(),
            ice_servers: file.ice_servers.unwrap_or_default(),
            tls,
            pull: file.pull.unwrap_or_default(),
            cluster: nats_url.or(cluster_file.nats_url).map(|nats_url| {
                crate::cluster::ClusterConfig {
                    nats_url,
                    node: node
                        .or(cluster_file.node)
                        .unwrap_or_else(|| http.to_string()),
                    lease: cluster_file.lease_seconds.map_or(
                        crate::cluster::DEFAULT_LEASE,
                        std::time::Duration::from_secs,
                    ),
                    internal_url: cluster_file
                        .internal_url
                        .map(|u| u.trim_end_matches('/').to_string()),
                }
            }),
        }
    }

    /// The public base URL once the HTTP listener is bound at `bound`.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", reachable(bound)))
    }

    /// The base of RTSP URLs once the RTSP listener is bound at `bound`.
    pub fn rtsp_url_for(&self, bound: SocketAddr) -> String {
        self.rtsp_public_url
            .clone()
            .unwrap_or_else(|| format!("rtsp://{}", reachable(bound)))
    }

    /// The base of the RTMP ingest URLs handed to owners who add a push camera:
    /// the public URL's host (cameras reach Hearth where browsers do) at the
    /// RTMP listener's port.
    pub fn ingest_base_for(&self, bound: SocketAddr) -> String {
        let host = self
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned));
        match host {
            Some(h) => format!("rtmp://{h}:{}/live", bound.port()),
            None => format!("rtmp://{}/live", reachable(bound)),
        }
    }

    /// The base of the RTMPS ingest URLs handed to home agents, once the RTMPS
    /// listener is bound at `bound`: the public URL's host at its port.
    pub fn rtmps_base_for(&self, bound: SocketAddr) -> String {
        self.ingest_base_for(bound)
            .replacen("rtmp://", "rtmps://", 1)
    }

    /// The URL a camera on this machine publishes to, given a stream key.
    pub fn ingest_url(rtmp: SocketAddr, key: &str) -> String {
        format!("rtmp://{}/live/{key}", reachable(rtmp))
    }
}

/// A bind address turned into one a client on this machine can reach.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let file: FileConfig =
            toml::from_str("http = \"127.0.0.1:9000\"\ndata_dir = \"/x\"").unwrap();
        let c = Config::resolve(
            file,
            Flags {
                rtmp: Some("0.0.0.0:1936".parse().unwrap()),
                data_dir: Some("/y".into()),
                ..Flags::default()
            },
        );
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.webrtc, DEFAULT_WEBRTC.parse().unwrap());
        assert_eq!(c.admin, DEFAULT_ADMIN.parse().unwrap(), "admin on loopback");
        assert_eq!(c.limits.http_connections_per_address, 256);
        assert_eq!(c.rtmp.port(), 1936);
        assert_eq!(c.data_dir, PathBuf::from("/y"));
        assert_eq!(
            c.keys_dir,
            PathBuf::from("/y"),
            "keys live with the data by default"
        );
        assert_eq!(c.public_url_for(c.http), "http://127.0.0.1:9000");
        assert_eq!(
            Config::ingest_url(c.rtmp, "k"),
            "rtmp://127.0.0.1:1936/live/k"
        );
    }

    #[test]
    fn unknown_keys_are_an_error() {
        assert!(toml::from_str::<FileConfig>("htp = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn limits_take_what_the_file_says_and_default_the_rest() {
        let file: FileConfig =
            toml::from_str("[limits]\nhttp_connections_per_address = 5000").unwrap();
        let c = Config::resolve(file, Flags::default());
        assert_eq!(c.limits.http_connections_per_address, 5000);
        assert_eq!(
            c.limits.rtsp_connections_per_address, 32,
            "the rest default"
        );
        assert!(toml::from_str::<FileConfig>("[limits]\nbogus = 1").is_err());
    }
}
