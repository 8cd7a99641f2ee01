//! Several Hearth nodes serving one fleet: the control plane on NATS.
//!
//! The nodes share one PostgreSQL database, which holds every decision (who may
//! see which camera, kill switches, sessions); each node keeps the in-memory
//! access view the door checks ([`hearth_access::view::AccessView`]). NATS
//! carries the news that a decision changed, so that every node reloads at once
//! rather than at its next poll of the database:
//!
//! - A node that changed something (the API handlers call
//!   [`crate::state::AppState::refresh_access`] after every write that can
//!   change access) publishes on [`SUBJECT`] once its own view has reloaded;
//!   every node (itself included) reloads on the message. The CLI announces
//!   what it changed too ([`announce_once`]). Reloading is
//!   idempotent (the view compares the store's change counter), so duplicates
//!   cost one primary-key read.
//! - Nothing is lost when a message is: each node still polls the counter every
//!   [`SAFETY_POLL`], and reloads when it comes back to NATS after missing
//!   anything (changes made by the CLI from another process arrive that way too).
//! - A node that cannot confirm it is connected to NATS (a PING answered) for
//!   longer than the lease fails closed: its view is fenced (every check denies:
//!   live views end at their next object or frame, no grant is issued) until
//!   NATS answers again and the view is reloaded from the database.
//!
//! Why NATS and not PostgreSQL's LISTEN/NOTIFY: the same connection later carries
//! placement (JetStream KV leases: which node ingests which camera), and a
//! vendor's fleet already runs NATS for its devices; PostgreSQL stays the one
//! source of truth either way.

pub mod placement;
pub mod relay;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_access::view::AccessView;

/// Where changes are announced.
pub const SUBJECT: &str = "hearth.access.changed";
/// How often a node in a cluster polls the store anyway.
pub const SAFETY_POLL: Duration = Duration::from_secs(1);
/// How long NATS may stay unconfirmed before a node fails closed [default].
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// The `[cluster]` settings.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `nats://[user:password@]host:port`.
    pub nats_url: String,
    /// This node's name in logs and on the wire.
    pub node: String,
    pub lease: Duration,
    /// Where the other nodes reach this one's HTTP listener (the edge relay)
    /// [default: `http://` and the bound HTTP address].
    pub internal_url: Option<String>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("nats_url", &redact(&self.nats_url))
            .field("node", &self.node)
            .field("lease", &self.lease)
            .field("internal_url", &self.internal_url)
            .finish()
    }
}

/// `url` fit for logs (see [`hearth_store::redact_url`]).
pub fn redact(url: &str) -> String {
    hearth_store::redact_url(url)
}

/// Announces a change made outside the nodes (the CLI): one message, flushed.
pub async fn announce_once(cfg: &ClusterConfig) -> anyhow::Result<()> {
    let (address, credentials) = split_credentials(&cfg.nats_url);
    let client = options(credentials)
        .connection_timeout(Duration::from_secs(2))
        .connect(address.as_str())
        .await?;
    client
        .publish(SUBJECT, format!("cli@{}", cfg.node).into_bytes().into())
        .await?;
    tokio::time::timeout(Duration::from_secs(2), client.flush()).await??;
    Ok(())
}

fn options(credentials: Option<(String, Option<String>)>) -> async_nats::ConnectOptions {
    match credentials {
        Some((user, Some(password))) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
        Some((token, None)) => async_nats::ConnectOptions::with_token(token),
        None => async_nats::ConnectOptions::new(),
    }
}

/// `nats://user:password@host:port` as (`nats://host:port`, user and
/// password), `nats://token@host` as the token alone; percent-escapes decoded.
fn split_credentials(url: &str) -> (String, Option<(String, Option<String>)>) {
    let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return (url.to_owned(), None);
    };
    if at < scheme {
        return (url.to_owned(), None);
    }
    let userinfo = &url[scheme + 3..at];
    let address = format!("{}{}", &url[..scheme + 3], &url[at + 1..]);
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && let Some(b) = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let credentials = match userinfo.split_once(':') {
        Some((user, password)) => (decode(user), Some(decode(password))),
        None => (decode(userinfo), None),
    };
    (address, Some(credentials))
}

/// This node's place in the cluster.
pub struct Cluster {
    client: async_nats::Client,
    placement: Arc<placement::Placement>,
    relays: relay::Relays,
    node: String,
    lease: Duration,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to NATS (in the background if it is down now: the node then
    /// starts and fails closed after the lease until NATS answers).
    /// `internal_url`: where the other nodes reach this one.
    pub async fn join(cfg: &ClusterConfig, internal_url: String) -> anyhow::Result<Arc<Self>> {
        // The client takes credentials as options, not from the URL.
        let (address, credentials) = split_credentials(&cfg.nats_url);
        let client = options(credentials)
            .name(format!("hearth {}", cfg.node))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(cfg.lease / 2)
            .ping_interval(cfg.lease / 2)
            .connect(address.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("NATS {}: {e}", redact(&cfg.nats_url)))?;
        let me = placement::Holder {
            node: cfg.node.clone(),
            internal_url,
        };
        let placement = placement::Placement::new(client.clone(), me, cfg.lease);
        tokio::spawn(placement.clone().follow());
        Ok(Arc::new(Self {
            client,
            placement,
            relays: relay::Relays::default(),
            node: cfg.node.clone(),
            lease: cfg.lease,
            runtime: tokio::runtime::Handle::current(),
        }))
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The cameras relayed here from the nodes that ingest them.
    pub fn relays(&self) -> &relay::Relays {
        &self.relays
    }

    /// Which node ingests which camera.
    pub fn placement(&self) -> &Arc<placement::Placement> {
        &self.placement
    }

    /// Tells every node that access changed. Returns at once (from any thread);
    /// a message that cannot be sent is made up for by the nodes' polls.
    pub fn announce(&self) {
        let (client, node) = (self.client.clone(), self.node.clone());
        self.runtime.spawn(async move {
            if let Err(e) = client.publish(SUBJECT, node.into_bytes().into()).await {
                tracing::warn!(error = %e, "access change not announced; the nodes' polls will see it");
            }
        });
    }

    /// Reloads `view` on every announcement, and fences it while NATS is not
    /// confirmed for longer than the lease. Runs until the process ends.
    pub async fn watch(self: Arc<Self>, view: Arc<AccessView>) {
        let listen = {
            let (me, view) = (self.clone(), view.clone());
            async move {
                loop {
                    match me.client.subscribe(SUBJECT).await {
                        Ok(mut sub) => {
                            use futures_util::StreamExt;
                            while let Some(msg) = sub.next().await {
                                tracing::debug!(from = %String::from_utf8_lossy(&msg.payload), "access change announced");
                                view.wake();
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot subscribe to the control plane")
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        tokio::join!(listen, self.guard(view));
    }

    /// The lease: a PING answered confirms the control plane; none for
    /// `lease` fences the view; the first answer after that lifts the fence
    /// (the view reloads from the database before it allows anything).
    async fn guard(&self, view: Arc<AccessView>) {
        let probe_every = (self.lease / 5).max(Duration::from_millis(100));
        let mut confirmed = Instant::now();
        let mut was_ok = true;
        loop {
            let ok = matches!(
                tokio::time::timeout(probe_every.max(self.lease / 2), self.client.flush()).await,
                Ok(Ok(()))
            ) && self.client.connection_state()
                == async_nats::connection::State::Connected;
            if ok {
                confirmed = Instant::now();
                if view.unfence() {
                    tracing::warn!(node = %self.node, "control plane back: serving again after a reload from the database");
                } else if !was_ok {
                    // Back within the lease: whatever was announced meanwhile
                    // was missed; reload from the database.
                    view.wake();
                }
            } else if confirmed.elapsed() > self.lease && view.fence() {
                tracing::error!(
                    node = %self.node,
                    lease = ?self.lease,
                    "control plane lost for longer than the lease: failing closed (no grant, no view) until it is back"
                );
            }
            was_ok = ok;
            tokio::time::sleep(probe_every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_the_url_and_out_of_logs() {
        assert_eq!(
            split_credentials("nats://hearth:p%40ss@127.0.0.1:4222"),
            (
                "nats://127.0.0.1:4222".to_string(),
                Some(("hearth".to_string(), Some("p@ss".to_string())))
            )
        );
        assert_eq!(
            split_credentials("nats://s3cret@nats:4222"),
            (
                "nats://nats:4222".to_string(),
                Some(("s3cret".to_string(), None))
            )
        );
        assert_eq!(split_credentials("nats://nats:4222").1, None);
        assert_eq!(redact("nats://hearth:pw@h:1"), "nats://hearth:***@h:1");
    }
}
