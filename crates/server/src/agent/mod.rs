//! `hearth agent`: a Hearth on a household's LAN for cameras the server
//! cannot reach (behind NAT). It pulls the cameras the server tells it of
//! over RTSP, as the server pulls its own (`crate::ingest::rtsp`), and
//! pushes each to the server over RTMPS ([`push`]). Everything it says to
//! the server goes over TLS.
//!
//! - [`pair`]: trades the one-time claim code the owner's web app showed for
//!   the agent's own credential, kept in a file only its user can read.
//! - [`run`]: keeps a sync with the server open (a long poll: the server
//!   answers when the agent's cameras change, or after 20 s), reporting each
//!   camera's state upstream in every request and starting a new request as
//!   soon as a state changes; starts, changes and stops pulls to match the
//!   answers. A server that does not answer is retried with backoff (1 s
//!   doubling to 10 s) while the cameras keep streaming; each pull retries
//!   its camera and its upstream on its own, so a server restart costs a
//!   reconnect, not a restart of the agent.

pub mod push;

use crate::api::agents::{AgentCamera, ReportedStatus, SyncAnswer, SyncRequest};
use crate::pulls::Statuses;
use anyhow::{Context as _, bail};
use hearth_model::{AgentId, CameraId, Rendition};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What `hearth agent pair` keeps (mode 0600): where the server is and the
/// agent's credential.
#[derive(Serialize, Deserialize)]
pub struct AgentFile {
    /// The server's base URL (`https://...`).
    pub server: String,
    pub agent: AgentId,
    pub credential: String,
    /// A CA certificate (PEM) to trust besides the public roots: a server
    /// with a self-made certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Talk to the server over plain HTTP (a server on the same machine
    /// only; its RTMP ingest is over TLS regardless).
    #[serde(default)]
    pub allow_plain_http: bool,
}

impl AgentFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} (pair the agent first)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    fn save(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

/// How the agent reaches the server.
pub struct Link {
    pub server: String,
    pub ca: Option<PathBuf>,
    pub allow_plain_http: bool,
}

/// `hearth agent pair`: redeems `code`, writes the credential to `path`.
pub async fn pair(link: Link, code: &str, name: &str, path: &Path) -> anyhow::Result<AgentId> {
    let tls = crate::tls::client_config(link.ca.as_deref())?;
    let server = link.server.trim_end_matches('/').to_owned();
    let answer = crate::tls::post_json(
        &format!("{server}/api/v1/agents/pair"),
        None,
        &serde_json::json!({"code": code, "name": name}),
        &tls,
        link.allow_plain_http,
    )
    .await?;
    if answer.status != 201 {
        bail!(
            "the server refused the code (HTTP {}): {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    #[derive(Deserialize)]
    struct Paired {
        agent: AgentId,
        credential: String,
    }
    let paired: Paired = serde_json::from_slice(&answer.body).context("the server's answer")?;
    AgentFile {
        server,
        agent: paired.agent,
        credential: paired.credential,
        ca: link.ca,
        allow_plain_http: link.allow_plain_http,
    }
    .save(path)?;
    Ok(paired.agent)
}

/// One camera being pulled: what it was started with, and its stop switch.
struct Pulling {
    camera: AgentCamera,
    ingest: String,
    _stop: watch::Sender<bool>,
}

/// The longest pause between syncs with a server that does not answer.
const MAX_RETRY: Duration = Duration::from_secs(10);
/// How long a sync may take: the server's long poll and then some.
const SYNC_TIMEOUT: Duration = Duration::from_secs(40);
/// How often the agent looks for state changes to report while a sync waits.
const REPORT_CHECK: Duration = Duration::from_millis(250);

/// `hearth agent run`: syncs with the server and pulls its cameras until
/// `shutdown` resolves.
pub async fn run(
    file: AgentFile,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = crate::tls::client_config(file.ca.as_deref())?;
    let url = format!("{}/api/v1/agent/sync", file.server);
    let statuses = Arc::new(Statuses::default());
    let mut pulling: HashMap<CameraId, Pulling> = HashMap::new();
    let mut wait = Duration::ZERO;
    let mut failures = 0u32;
    let mut version: Option<String> = None;
    tokio::pin!(shutdown);
    tracing::info!(agent = ?file.agent, server = %file.server, "home agent started");
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut shutdown => {
                tracing::info!("home agent stopping");
                return Ok(());
            }
        }
        let statuses_now = report(&statuses, &pulling);
        let request = serde_json::to_value(SyncRequest {
            statuses: statuses_now.clone(),
            version: version.clone(),
        })?;
        let sync = tokio::time::timeout(
            SYNC_TIMEOUT,
            crate::tls::post_json(
                &url,
                Some(&file.credential),
                &request,
                &tls,
                file.allow_plain_http,
            ),
        );
        // A state that changes while the server holds the request goes up at
        // once, in a new request.
        let state_changed = async {
            loop {
                tokio::time::sleep(REPORT_CHECK).await;
                if report(&statuses, &pulling) != statuses_now {
                    return;
                }
            }
        };
        let answer = tokio::select! {
            a = sync => a.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {SYNC_TIMEOUT:?}"))),
            () = state_changed => {
                wait = Duration::ZERO;
                continue;
            }
            () = &mut shutdown => {
                tracing::info!("home agent stopping");
                return Ok(());
            }
        };
        let answer = match answer {
            Ok(a) if a.status == 200 => serde_json::from_slice::<SyncAnswer>(&a.body)
                .map_err(|e| anyhow::anyhow!("the server's answer: {e}")),
            Ok(a) if a.status == 401 => {
                // Removed by its owner: nothing it may publish any more.
                pulling.clear();
                version = None;
                Err(anyhow::anyhow!(
                    "the server does not know this agent any more (removed?): pair it again"
                ))
            }
            Ok(a) => Err(anyhow::anyhow!(
                "HTTP {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Err(e) => Err(e),
        };
        match answer {
            Ok(answer) => {
                if failures > 0 {
                    tracing::info!(server = %file.server, "home agent reconnected to the server");
                }
                failures = 0;
                reconcile(&mut pulling, &answer, &tls, &statuses);
                version = Some(answer.version);
                wait = Duration::ZERO;
            }
            Err(e) => {
                failures += 1;
                wait = (Duration::from_secs(1) * 2u32.saturating_pow(failures - 1)).min(MAX_RETRY);
                tracing::warn!(server = %file.server, error = format!("{e:#}"), retry_in = ?wait, cameras = pulling.len(), "home agent sync failed");
            }
        }
    }
}

/// The states of the cameras it pulls, to send upstream.
fn report(statuses: &Statuses, pulling: &HashMap<CameraId, Pulling>) -> Vec<ReportedStatus> {
    let mut out = Vec::new();
    for (camera, p) in pulling {
        for rendition in [Rendition::Main, Rendition::Sub] {
            if rendition == Rendition::Sub && p.camera.source.sub_url.is_none() {
                continue;
            }
            if let Some(st) = statuses.get(*camera, rendition) {
                out.push(ReportedStatus {
                    camera: *camera,
                    rendition,
                    state: st.state,
                    error: st.last_error.map(|(_, e)| e),
                });
            }
        }
    }
    out
}

/// Whether `a` and `b` are pulled and published the same way (names aside).
fn same_pull(a: &AgentCamera, b: &AgentCamera) -> bool {
    AgentCamera {
        name: String::new(),
        ..a.clone()
    } == AgentCamera {
        name: String::new(),
        ..b.clone()
    }
}

/// Starts, restarts and stops pulls to match what the server said.
fn reconcile(
    pulling: &mut HashMap<CameraId, Pulling>,
    answer: &SyncAnswer,
    tls: &Arc<tokio_rustls::rustls::ClientConfig>,
    statuses: &Arc<Statuses>,
) {
    pulling.retain(|id, p| {
        // A rename changes nothing here: only where and how it is pulled.
        let keep = answer
            .cameras
            .iter()
            .any(|c| same_pull(c, &p.camera) && answer.ingest_url == p.ingest);
        if !keep {
            tracing::info!(camera = ?id, "home agent stops pulling a camera");
            statuses.remove(*id);
        }
        keep
    });
    for cam in &answer.cameras {
        if pulling.contains_key(&cam.id) {
            continue;
        }
        let Some(push_key) = cam.source.push_key.as_deref() else {
            tracing::error!(camera = ?cam.id, "the server named a camera without a stream key");
            continue;
        };
        let source = Arc::new(cam.source.clone());
        let (stop, stopped) = watch::channel(false);
        for rendition in [Rendition::Main, Rendition::Sub] {
            if source.url(rendition).is_none() {
                continue;
            }
            let upstream = match push::Upstream::new(
                tls.clone(),
                &answer.ingest_url,
                push_key,
                cam.id,
                rendition,
            ) {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!(camera = ?cam.id, error = format!("{e:#}"), "cannot publish a camera");
                    continue;
                }
            };
            let (source, statuses, stopped) = (source.clone(), statuses.clone(), stopped.clone());
            let camera = cam.id;
            tokio::spawn(async move {
                let open =
                    || -> Result<Box<dyn crate::ingest::rtsp::session::FrameSink>, String> {
                        Ok(Box::new(upstream.open()))
                    };
                // At home: the cameras are on the LAN, at private addresses.
                crate::ingest::rtsp::pull_loop(
                    &statuses, camera, rendition, &source, stopped, &open, true,
                )
                .await;
            });
        }
        tracing::info!(camera = ?cam.id, name = %cam.name, source = %source.describe(), "home agent pulls a camera");
        pulling.insert(
            cam.id,
            Pulling {
                camera: cam.clone(),
                ingest: answer.ingest_url.clone(),
                _stop: stop,
            },
        );
    }
}
