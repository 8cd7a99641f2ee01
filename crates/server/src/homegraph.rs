//! Tells Google's HomeGraph about changes, as a cloud-to-cloud integration must:
//! `devices:requestSync` when the cameras a Google link shows change (consent
//! edited, a camera shared away, transferred or renamed) and
//! `devices:reportStateAndNotification` when one of them goes online or offline.
//!
//! One task compares, twice a second, each Google link's cameras and their
//! online state (both in memory: the access view and the hubs) with what it last
//! reported, and sends the differences. A failed call is logged and retried after
//! a pause; the state is only taken as reported once Google accepted it. The
//! first pass records the state without reporting it (Google SYNCs and QUERYs by
//! itself after linking).
//!
//! HomeGraph calls need an OAuth access token of the operator's Google service
//! account. Hearth gets it by running the configured `homegraph_token_command`
//! (e.g. `gcloud auth print-access-token --impersonate-service-account=...`) and
//! keeps it for 30 minutes. The base URL is configurable so tests can point it at
//! a local recorder.
//!
//! The HTTPS client is hyper's client connection over tokio-rustls, a dozen lines
//! here rather than reqwest: reqwest's rustls needs `subtle` >= 2.5, and the RTMP
//! crate (rml_rtmp, through crypto-mac 0.10) pins `subtle` < 2.5, so the rustls
//! line that resolves is 0.21 (maintained security releases; TLS 1.3, webpki
//! roots), which only the bare connector fits.

use crate::state::AppState;
use hearth_model::{CameraId, Integration, LinkId, UserId};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://homegraph.googleapis.com";
const TICK: Duration = Duration::from_millis(500);
const RETRY_AFTER: Duration = Duration::from_secs(5);
const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The `[google]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// HomeGraph API base URL [default: https://homegraph.googleapis.com].
    pub homegraph_url: Option<String>,
    /// A command printing an OAuth access token for HomeGraph on stdout.
    pub homegraph_token_command: Option<String>,
}

/// The server's HomeGraph reporter state: configured once at start-up; renames
/// are handed to it by the API.
#[derive(Default)]
pub struct HomeGraph {
    config: OnceLock<GoogleConfig>,
    renamed: Mutex<HashSet<CameraId>>,
}

impl HomeGraph {
    pub fn configure(&self, cfg: GoogleConfig) {
        let _ = self.config.set(cfg);
    }

    /// Whether Hearth reports state to Google (SYNC's `willReportState`).
    pub fn enabled(&self) -> bool {
        self.config.get().is_some()
    }

    pub fn camera_renamed(&self, camera: CameraId) {
        if self.enabled() {
            self.lock_renamed().insert(camera);
        }
    }

    fn lock_renamed(&self) -> std::sync::MutexGuard<'_, HashSet<CameraId>> {
        self.renamed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What was last reported for one link.
#[derive(Clone, PartialEq, Eq)]
struct Reported {
    agent: String,
    /// Camera -> online.
    cameras: BTreeMap<CameraId, bool>,
}

/// One POST of a JSON body; the response status. HTTPS (webpki roots) or HTTP.
async fn post_json(
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> anyhow::Result<u16> {
    use anyhow::Context as _;
    use axum::http::header;
    use hyper_util::rt::TokioIo;
    let uri: hyper::Uri = url.parse().context("HomeGraph URL")?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => anyhow::bail!("HomeGraph URL must be http(s)"),
    };
    let host = uri.host().context("HomeGraph URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().context("no authority")?.to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = hyper::Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(http_body_util::Full::new(bytes::Bytes::from(
        serde_json::to_vec(body)?,
    )))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    if https {
        use tokio_rustls::rustls;
        let mut roots = rustls::RootCertStore::empty();
        roots.add_trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().map(|ta| {
            rustls::OwnedTrustAnchor::from_subject_spki_name_constraints(
                ta.subject,
                ta.spki,
                ta.name_constraints,
            )
        }));
        let config = rustls::ClientConfig::builder()
            .with_safe_defaults()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::ServerName::try_from(host.as_str())?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(tcp), req).await
    }
}

async fn send<I>(
    io: I,
    req: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> anyhow::Result<u16>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender.send_request(req).await?.status().as_u16())
}

struct Client {
    base: String,
    token_command: Option<String>,
    token: Option<(String, Instant)>,
}

impl Client {
    async fn bearer(&mut self) -> anyhow::Result<Option<String>> {
        let Some(cmd) = &self.token_command else {
            return Ok(None);
        };
        if let Some((t, at)) = &self.token
            && at.elapsed() < TOKEN_LIFETIME
        {
            return Ok(Some(t.clone()));
        }
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "homegraph_token_command failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let token = String::from_utf8(out.stdout)?.trim().to_string();
        anyhow::ensure!(!token.is_empty(), "homegraph_token_command printed nothing");
        self.token = Some((token.clone(), Instant::now()));
        Ok(Some(token))
    }

    async fn post(&mut self, method: &str, body: serde_json::Value) -> anyhow::Result<()> {
        let url = format!("{}/v1/devices:{method}", self.base);
        let bearer = self.bearer().await?;
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            post_json(&url, bearer.as_deref(), &body),
        )
        .await
        .map_err(|_| anyhow::anyhow!("{method}: timed out"))??;
        if status == 401 {
            self.token = None;
        }
        anyhow::ensure!((200..300).contains(&status), "{method}: HTTP {status}");
        Ok(())
    }
}

/// Runs until the process ends, if HomeGraph is configured.
pub async fn run(st: AppState) {
    let Some(cfg) = st.homegraph.config.get().cloned() else {
        return;
    };
    let mut client = Client {
        base: cfg
            .homegraph_url
            .unwrap_or_else(|| DEFAULT_BASE_URL.into())
            .trim_end_matches('/')
            .to_string(),
        token_command: cfg.homegraph_token_command,
        token: None,
    };
    if client.token_command.is_none() {
        tracing::warn!(
            "google.homegraph_token_command is not set: HomeGraph calls carry no credentials (fine for a local recorder, refused by Google)"
        );
    }
    let mut reported: Option<HashMap<LinkId, Reported>> = None;
    loop {
        tokio::time::sleep(TICK).await;
        let now = current(&st);
        let Some(last) = &mut reported else {
            reported = Some(now);
            continue;
        };
        let renamed: HashSet<CameraId> = std::mem::take(&mut *st.homegraph.lock_renamed());
        let mut failed = false;
        for (id, cur) in &now {
            let prev = last.get(id);
            let Some(prev) = prev else {
                // A new link: Google syncs it by itself.
                last.insert(*id, cur.clone());
                continue;
            };
            let devices: BTreeSet<_> = cur.cameras.keys().collect();
            let before: BTreeSet<_> = prev.cameras.keys().collect();
            let resync = devices != before || cur.cameras.keys().any(|c| renamed.contains(c));
            if resync {
                let body = json!({"agentUserId": cur.agent, "async": true});
                if let Err(e) = client.post("requestSync", body).await {
                    tracing::warn!(error = %e, "HomeGraph requestSync failed; will retry");
                    failed = true;
                    // Renames are not visible in the snapshot: keep them for the retry.
                    st.homegraph.lock_renamed().extend(renamed.iter().copied());
                    continue;
                }
                tracing::info!(link = ?id, "HomeGraph requestSync sent");
            }
            let changed: serde_json::Map<String, serde_json::Value> = cur
                .cameras
                .iter()
                .filter(|(c, online)| prev.cameras.get(c) != Some(online))
                .map(|(c, online)| (c.to_string(), json!({"online": online})))
                .collect();
            if !changed.is_empty() {
                let body = json!({
                    "requestId": uuid::Uuid::new_v4().to_string(),
                    "agentUserId": cur.agent,
                    "payload": {"devices": {"states": changed}},
                });
                if let Err(e) = client.post("reportStateAndNotification", body).await {
                    tracing::warn!(error = %e, "HomeGraph reportState failed; will retry");
                    failed = true;
                    continue;
                }
                tracing::info!(link = ?id, devices = changed.len(), "HomeGraph state reported");
            }
            last.insert(*id, cur.clone());
        }
        last.retain(|id, _| now.contains_key(id));
        if failed {
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

/// Each Google link's cameras (consented and still visible) and their state.
fn current(st: &AppState) -> HashMap<LinkId, Reported> {
    st.access
        .links_of(Integration::Google)
        .into_iter()
        .map(|l| {
            let agent = agent(l.user);
            let cameras = l
                .cameras
                .iter()
                .map(|c| (*c, st.hubs.is_online(*c)))
                .collect();
            (l.id, Reported { agent, cameras })
        })
        .collect()
}

fn agent(user: UserId) -> String {
    crate::links::agent_user_id(Integration::Google, user)
}
