//! Starting the server: open the store and key, bind the listeners, run the drivers.

use crate::config::Config;
use crate::state::AppState;
use hearth_access::grant::GrantKey;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Slow-loris guard: a client must send a request's headers within this time
/// (also the longest a kept-alive connection may sit idle between requests).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A response write that makes no progress for this long ends the connection.
const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_HTTP_CONNECTIONS: usize = 16 * 1024;

pub struct Running {
    pub public_url: String,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    /// The RTSP egress, if configured.
    pub rtsp: Option<SocketAddr>,
    /// The admin API's own listener.
    pub admin: SocketAddr,
    /// The WebRTC media socket (UDP).
    pub webrtc: SocketAddr,
    /// The `[tls]` listeners, if configured.
    pub https: Option<SocketAddr>,
    pub rtmps: Option<SocketAddr>,
    pub state: AppState,
}

/// Opens (creating it if need be) the database in `data_dir`. The directory and
/// the database hold password hashes, token hashes, the audit log and the keys:
/// a new directory is made owner-only, the database file is created owner-only
/// (SQLite gives its WAL and shared-memory files the same mode) and tightened
/// if an older run left it open; an existing directory others can read is
/// left as the operator made it, with a warning.
/// The master key of media and camera secrets, made on first use.
pub fn media_keys(keys_dir: &std::path::Path) -> std::io::Result<hearth_access::keys::MediaKeys> {
    hearth_access::keys::MediaKeys::load_or_create(&keys_dir.join("media.key"))
}

/// The metadata store the config names: PostgreSQL at `database_url`, or the
/// embedded SQLite file in the data directory. Either way the data directory
/// (keys, the audit journal) is made owner-only first.
pub fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn hearth_store::Store>> {
    make_data_dir(&cfg.data_dir)?;
    if let Some(url) = &cfg.database_url {
        let store = hearth_store::PgStore::connect(url)?;
        tracing::info!(database = ?store, "metadata in PostgreSQL");
        return Ok(Arc::new(store));
    }
    open_sqlite(&cfg.data_dir)
}

fn make_data_dir(data_dir: &std::path::Path) -> anyhow::Result<()> {
    if !data_dir.exists() {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| anyhow::anyhow!("creating data dir {}: {e}", data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

fn open_sqlite(data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn hearth_store::Store>> {
    let db = data_dir.join("hearth.db");
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mode = std::fs::metadata(data_dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %data_dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data directory is open to other users of this machine; it holds \
                 password hashes, keys and the audit log: chmod 700 it"
            );
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(anyhow::anyhow!("creating {}: {e}", db.display())),
        }
        for file in ["hearth.db", "hearth.db-wal", "hearth.db-shm"] {
            let path = data_dir.join(file);
            if let Ok(m) = std::fs::metadata(&path)
                && m.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                tracing::warn!(file = %path.display(), "database file was open to others; now owner-only");
            }
        }
    }
    let store = hearth_store::SqliteStore::open(&db)?;
    Ok(Arc::new(store))
}

/// Binds both listeners and spawns the HTTP and RTMP drivers.
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    crate::net::raise_open_files();
    // Sealed segments in memfds hold a descriptor each: a quarter of the
    // open-file limit, and well under vm.max_map_count's default of 65,530.
    let segments = (crate::net::open_files_limit() / 4).min(30_000) as usize;
    hearth_zerocopy::set_limit(segments);
    tracing::info!(
        segments,
        "segments held in memfds at most (sent with sendfile)"
    );
    let store = open_store(cfg)?;
    std::fs::create_dir_all(&cfg.keys_dir)
        .map_err(|e| anyhow::anyhow!("keys directory {}: {e}", cfg.keys_dir.display()))?;
    let key = GrantKey::load_or_create(&cfg.keys_dir.join("grant.key"))?;
    let media_keys = media_keys(&cfg.keys_dir)?;
    let http = TcpListener::bind(cfg.http)
        .await
        .map_err(|e| anyhow::anyhow!("binding HTTP {}: {e}", cfg.http))?;
    let rtmp = TcpListener::bind(cfg.rtmp)
        .await
        .map_err(|e| anyhow::anyhow!("binding RTMP {}: {e}", cfg.rtmp))?;
    let rtsp = match cfg.rtsp {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("binding RTSP {addr}: {e}"))?,
        ),
        None => None,
    };
    let tls = match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(cert), Some(key)) if cfg.tls.https.is_some() || cfg.tls.rtmps.is_some() => {
            Some(crate::tls::acceptor(cert, key)?)
        }
        _ => None,
    };
    let bind_tls = |addr: Option<SocketAddr>, what: &'static str| async move {
        match addr {
            Some(a) => TcpListener::bind(a)
                .await
                .map(Some)
                .map_err(|e| anyhow::anyhow!("binding {what} {a}: {e}")),
            None => Ok(None),
        }
    };
    let https = bind_tls(cfg.tls.https, "HTTPS").await?;
    let rtmps = bind_tls(cfg.tls.rtmps, "RTMPS").await?;
    let admin = TcpListener::bind(cfg.admin)
        .await
        .map_err(|e| anyhow::anyhow!("binding the admin API {}: {e}", cfg.admin))?;
    if !cfg.admin.ip().is_loopback() {
        tracing::warn!(admin = %cfg.admin, "the admin API listens beyond loopback: firewall it");
    }
    let public_url = cfg.public_url_for(http.local_addr()?);
    // What a crash kept from the audit log goes in before anything is served.
    let (audit, replayed) = {
        let (store, dir) = (store.clone(), cfg.data_dir.clone());
        tokio::task::spawn_blocking(move || hearth_access::audit::Audit::open(store, &dir))
            .await??
    };
    if replayed.events_copied + replayed.sessions_closed + replayed.unreadable_lines > 0 {
        tracing::warn!(
            events_copied = replayed.events_copied,
            sessions_closed = replayed.sessions_closed,
            unreadable_lines = replayed.unreadable_lines,
            "audit journal replayed after an unclean stop"
        );
    }
    let state = AppState::with_data_dir(
        cfg.data_dir.clone(),
        store,
        key,
        media_keys,
        public_url.clone(),
        &cfg.limits,
        audit,
    );
    let webrtc = crate::door::webrtc::WebRtc::bind(
        cfg.webrtc,
        &cfg.webrtc_candidates,
        crate::door::webrtc::ice::IceServers::new(cfg.ice_servers.clone()),
        cfg.limits.webrtc_sessions_per_address,
    )
    .await?;
    let running = Running {
        public_url,
        http: http.local_addr()?,
        rtmp: rtmp.local_addr()?,
        rtsp: rtsp.as_ref().map(TcpListener::local_addr).transpose()?,
        admin: admin.local_addr()?,
        webrtc: webrtc.local_addr(),
        https: https.as_ref().map(TcpListener::local_addr).transpose()?,
        rtmps: rtmps.as_ref().map(TcpListener::local_addr).transpose()?,
        state: state.clone(),
    };

    // Access decisions must be loaded before anything is served.
    {
        let (view, store) = (state.access.clone(), state.store.clone());
        tokio::task::spawn_blocking(move || view.refresh(store.as_ref())).await??;
    }
    let _ = state.ingest_url.set(cfg.ingest_base_for(running.rtmp));
    if let Some(bound) = running.rtmps {
        let _ = state.rtmps_url.set(cfg.rtmps_base_for(bound));
    }
    state
        .pulls
        .set_private_addresses(cfg.pull.private_addresses);
    // Placement before the first pull: a pulled camera is ingested by one node.
    let poll = match &cfg.cluster {
        Some(c) => {
            let internal_url = c
                .internal_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", crate::config::reachable(running.http)));
            let cluster = crate::cluster::Cluster::join(c, internal_url.clone()).await?;
            tracing::info!(node = %c.node, nats = %crate::cluster::redact(&c.nats_url), lease = ?c.lease, internal_url, "cluster node");
            tokio::spawn(cluster.clone().watch(state.access.clone()));
            let _ = state.cluster.set(cluster);
            crate::cluster::SAFETY_POLL
        }
        None => hearth_access::view::POLL_INTERVAL,
    };
    crate::ingest::rtsp::sync(&state).await?;
    let st = state.clone();
    tokio::spawn(
        state
            .access
            .clone()
            .run(state.store.clone(), poll, move |view| {
                st.hubs.disconnect_past_epochs(view);
                // Sources added, changed or removed by any process.
                let st = st.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::ingest::rtsp::sync(&st).await {
                        tracing::error!(
                            error = format!("{e:#}"),
                            "rtsp pulls not synced with the store"
                        );
                    }
                });
            }),
    );
    tokio::spawn(crate::ingest::rtmp::serve(
        rtmp,
        state.clone(),
        cfg.limits.rtmp_connections_per_address,
        None,
    ));
    if let (Some(listener), Some(tls)) = (rtmps, tls.clone()) {
        tokio::spawn(crate::ingest::rtmp::serve(
            listener,
            state.clone(),
            cfg.limits.rtmp_connections_per_address,
            Some(tls),
        ));
    }
    let public = crate::net::Limits {
        max: MAX_HTTP_CONNECTIONS,
        per_address: cfg.limits.http_connections_per_address,
    }
    .fit(0.5);
    let operator = crate::net::Limits {
        max: 64,
        per_address: 16,
    };
    let proxies: Arc<[std::net::IpAddr]> = cfg.limits.trusted_proxies.clone().into();
    let app = Arc::new(crate::router::app(state.clone(), webrtc));
    tokio::spawn(serve_http(
        http,
        public,
        app.clone(),
        None,
        proxies.clone(),
        state.metrics.clone(),
    ));
    if let (Some(listener), Some(tls)) = (https, tls) {
        tokio::spawn(serve_http(
            listener,
            public,
            app,
            Some(tls),
            proxies.clone(),
            state.metrics.clone(),
        ));
    }
    tokio::spawn(serve_http(
        admin,
        operator,
        Arc::new(crate::router::admin_app(state.clone())),
        None,
        proxies,
        state.metrics.clone(),
    ));
    if let (Some(listener), Some(bound)) = (rtsp, running.rtsp) {
        let _ = state.rtsp_url.set(cfg.rtsp_url_for(bound));
        tokio::spawn(crate::door::rtsp::serve(
            listener,
            state.clone(),
            cfg.limits.rtsp_connections_per_address,
        ));
    }
    if let Some(g) = cfg.google.clone() {
        state.homegraph.configure(g);
    }
    tokio::spawn(crate::integrations::homegraph::run(state.clone()));
    tokio::spawn(sweep_secret_failures(state.clone()));
    tokio::spawn(crate::api::onboarding::expire_drafts(state.clone()));
    tokio::spawn(purge_sessions(state));
    Ok(running)
}

/// Serves `app` on `listener`, over TLS when `tls` is given (then without
/// `sendfile`: TLS encrypts every byte in user space).
async fn serve_http(
    listener: TcpListener,
    limits: crate::net::Limits,
    app: Arc<crate::router::HttpApp>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    trusted_proxies: Arc<[std::net::IpAddr]>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let what = if tls.is_some() { "https" } else { "http" };
    crate::net::accept_loop(listener, what, limits, move |sock, peer| {
        let (app, proxies, metrics) = (app.clone(), trusted_proxies.clone(), metrics.clone());
        let tls = tls.clone();
        let svc = hyper::service::service_fn(move |req| {
            let (app, proxies) = (app.clone(), proxies.clone());
            async move { Ok::<_, std::convert::Infallible>(app.serve(req, peer.ip(), &proxies).await) }
        });
        async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(64 * 1024);
            let served = match tls {
                None => {
                    let sock = crate::net::HttpSocket::new(sock, metrics);
                    let sock = crate::net::WriteDeadline::new(sock, RESPONSE_WRITE_TIMEOUT);
                    builder.serve_connection(TokioIo::new(sock), svc).await
                }
                Some(tls) => {
                    let accepted =
                        tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, tls.accept(sock)).await;
                    let Ok(Ok(sock)) = accepted else {
                        tracing::debug!(%peer, "https connection ended in the TLS handshake");
                        return;
                    };
                    let sock = crate::net::WriteDeadline::new(sock, RESPONSE_WRITE_TIMEOUT);
                    builder.serve_connection(TokioIo::new(sock), svc).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        }
    })
    .await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

impl Running {
    /// The line that names the bound addresses (tests read it).
    pub fn addresses(&self, cfg: &Config) -> String {
        let rtsp = self.rtsp.map(|a| format!("  RTSP {a}")).unwrap_or_default();
        let https = self
            .https
            .map(|a| format!("  HTTPS {a}"))
            .unwrap_or_default();
        let rtmps = self
            .rtmps
            .map(|a| format!("  RTMPS {a}"))
            .unwrap_or_default();
        format!(
            "  HTTP {}  RTMP {}{rtsp}{https}{rtmps}  ADMIN {}  WEBRTC {}  data {}",
            self.http,
            self.rtmp,
            self.admin,
            self.webrtc,
            cfg.data_dir.display()
        )
    }

    /// Clean shutdown: close open view sessions and write the audit queue out.
    pub async fn shutdown(&self) {
        tracing::info!("shutting down: flushing the audit log");
        self.state.audit_failures(true);
        self.state.audit.shutdown().await;
    }
}

async fn purge_sessions(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let now = hearth_access::clock::now();
        match state.db(move |s| s.purge_expired_sessions(now)).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session purge failed"),
        }
    }
}

/// Writes ended bursts of failed secret checks to the audit log, and lets the
/// rate limits forget recovered keys.
async fn sweep_secret_failures(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        state.audit_failures(false);
        state.limits.sweep();
    }
}
