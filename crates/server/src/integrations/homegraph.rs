//! Tells Google's HomeGraph about changes, as a cloud-to-cloud integration must:
//! `devices:requestSync` when the cameras a Google link shows change (consent
//! edited, a camera shared away, transferred or renamed) and
//! `devices:reportStateAndNotification` when one of them goes online or offline.
//!
//! One task compares, twice a second, each Google link's cameras and their
//! online state (both in memory: the access view and the hubs) with what it last
//! reported, and sends the differences. The comparing is [`Reporter`], which does
//! no I/O and takes time as an input. A link whose call fails is retried on its
//! own after a pause that doubles up to 5 minutes; other links are not held up.
//! The state is only taken as reported once Google accepted it. The first pass,
//! and a new link, are recorded without a report (Google SYNCs and QUERYs by
//! itself after linking).
//!
//! HomeGraph calls need an OAuth access token of the operator's Google service
//! account. Hearth gets it by running the configured `homegraph_token_command`
//! (e.g. `gcloud auth print-access-token --impersonate-service-account=...`) and
//! keeps it for 30 minutes. The base URL is configurable so tests can point it at
//! a local recorder.
//!
//! The HTTPS client is `crate::tls::post_json` (webpki roots).

use crate::state::AppState;
use hearth_model::{CameraId, Integration, LinkId, UserId};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://homegraph.googleapis.com";
const TICK: Duration = Duration::from_millis(500);
/// The pause after a link's first failed call; it doubles with each further one.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(5 * 60);
const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// What was last reported for one link.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reported {
    agent: String,
    /// Camera -> online.
    cameras: BTreeMap<CameraId, bool>,
}

struct Client {
    base: String,
    token_command: Option<String>,
    token: Option<(String, Instant)>,
    tls: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
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
            crate::tls::post_json(&url, bearer.as_deref(), &body, &self.tls, true),
        )
        .await
        .map_err(|_| anyhow::anyhow!("{method}: timed out"))??
        .status;
        if status == 401 {
            self.token = None;
        }
        anyhow::ensure!((200..300).contains(&status), "{method}: HTTP {status}");
        Ok(())
    }
}

/// One link's report that is due: what to send, and the state it reports.
#[derive(Debug, PartialEq)]
struct Due {
    link: LinkId,
    request_sync: bool,
    /// Device id -> `{"online": bool}`, for cameras whose state changed.
    states: serde_json::Map<String, serde_json::Value>,
    now: Reported,
}

/// A link whose last call failed: not retried before `until`.
struct Backoff {
    until: Instant,
    pause: Duration,
}

/// Decides, from snapshots of every Google link, what HomeGraph must be told;
/// sans-IO: the caller makes the calls and hands back each outcome.
#[derive(Default)]
struct Reporter {
    /// What Google accepted last, per link; `None` before the first snapshot.
    reported: Option<HashMap<LinkId, Reported>>,
    /// Links with a renamed camera, until a requestSync for them succeeds.
    resync: HashSet<LinkId>,
    backoff: HashMap<LinkId, Backoff>,
}

impl Reporter {
    /// The reports due at `t`, given every link's current state and the cameras
    /// renamed since the last poll.
    fn poll(
        &mut self,
        current: &HashMap<LinkId, Reported>,
        renamed: &HashSet<CameraId>,
        t: Instant,
    ) -> Vec<Due> {
        let Some(reported) = &mut self.reported else {
            self.reported = Some(current.clone());
            return Vec::new();
        };
        reported.retain(|id, _| current.contains_key(id));
        self.resync.retain(|id| current.contains_key(id));
        self.backoff.retain(|id, _| current.contains_key(id));
        let mut due = Vec::new();
        for (id, now) in current {
            if now.cameras.keys().any(|c| renamed.contains(c)) {
                self.resync.insert(*id);
            }
            let Some(before) = reported.get(id) else {
                reported.insert(*id, now.clone());
                continue;
            };
            if self.backoff.get(id).is_some_and(|b| t < b.until) {
                continue;
            }
            let request_sync =
                self.resync.contains(id) || !now.cameras.keys().eq(before.cameras.keys());
            // A camera new to the link is announced by requestSync; Google
            // QUERYs its state after syncing, and refuses state for a device it
            // does not know yet.
            let states: serde_json::Map<_, _> = now
                .cameras
                .iter()
                .filter(|(c, online)| before.cameras.get(c).is_some_and(|b| b != *online))
                .map(|(c, online)| (c.to_string(), json!({"online": online})))
                .collect();
            if request_sync || !states.is_empty() {
                due.push(Due {
                    link: *id,
                    request_sync,
                    states,
                    now: now.clone(),
                });
            }
        }
        due
    }

    /// The outcome of sending `due` at `t`.
    fn done(&mut self, due: Due, ok: bool, t: Instant) {
        let Some(reported) = &mut self.reported else {
            return;
        };
        if ok {
            self.backoff.remove(&due.link);
            if due.request_sync {
                self.resync.remove(&due.link);
            }
            reported.insert(due.link, due.now);
        } else {
            let pause = self
                .backoff
                .get(&due.link)
                .map_or(RETRY_FIRST, |b| (b.pause * 2).min(RETRY_MAX));
            self.backoff.insert(
                due.link,
                Backoff {
                    until: t + pause,
                    pause,
                },
            );
        }
    }
}

/// Sends one due report: requestSync first, then the state changes.
async fn send_due(client: &mut Client, due: &Due) -> anyhow::Result<()> {
    if due.request_sync {
        let body = json!({"agentUserId": due.now.agent, "async": true});
        client.post("requestSync", body).await?;
        tracing::info!(link = ?due.link, "HomeGraph requestSync sent");
    }
    if !due.states.is_empty() {
        let body = json!({
            "requestId": uuid::Uuid::new_v4().to_string(),
            "agentUserId": due.now.agent,
            "payload": {"devices": {"states": due.states}},
        });
        client.post("reportStateAndNotification", body).await?;
        tracing::info!(link = ?due.link, devices = due.states.len(), "HomeGraph state reported");
    }
    Ok(())
}

/// Runs until the process ends, if HomeGraph is configured.
pub async fn run(st: AppState) {
    let Some(cfg) = st.homegraph.config() else {
        return;
    };
    let tls = match crate::tls::client_config(None) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "HomeGraph reporting off: no TLS client"
            );
            return;
        }
    };
    let mut client = Client {
        tls,
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
    let mut reporter = Reporter::default();
    loop {
        tokio::time::sleep(TICK).await;
        if st.access.integration_suspended(Integration::Google) {
            // The kill switch stops reporting too; what changed meanwhile is
            // reported once it is lifted.
            continue;
        }
        let renamed: HashSet<CameraId> = st.homegraph.take_renamed();
        for due in reporter.poll(&current(&st), &renamed, Instant::now()) {
            let result = send_due(&mut client, &due).await;
            if let Err(e) = &result {
                tracing::warn!(link = ?due.link, error = %e, "HomeGraph call failed; this link is retried later");
            }
            reporter.done(due, result.is_ok(), Instant::now());
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
                .map(|c| (*c, st.camera_online(*c)))
                .collect();
            (l.id, Reported { agent, cameras })
        })
        .collect()
}

fn agent(user: UserId) -> String {
    crate::integrations::links::agent_user_id(Integration::Google, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(agent: &str, cams: &[(CameraId, bool)]) -> Reported {
        Reported {
            agent: agent.into(),
            cameras: cams.iter().copied().collect(),
        }
    }

    fn ids(due: &[Due]) -> Vec<LinkId> {
        due.iter().map(|d| d.link).collect()
    }

    #[test]
    fn reports_changes_per_link_and_a_failing_link_holds_up_no_other() {
        let (a, b) = (LinkId::random(), LinkId::random());
        let (c1, c2, c3) = (CameraId::random(), CameraId::random(), CameraId::random());
        let none = HashSet::new();
        let t0 = Instant::now();
        let mut r = Reporter::default();
        let mut cur = HashMap::from([
            (a, state("agent-a", &[(c1, true)])),
            (b, state("agent-b", &[(c2, true)])),
        ]);
        assert!(
            r.poll(&cur, &none, t0).is_empty(),
            "the first pass only records"
        );
        assert!(r.poll(&cur, &none, t0).is_empty(), "nothing changed");

        // c1 goes offline; b consents to c3 as well.
        cur.insert(a, state("agent-a", &[(c1, false)]));
        cur.insert(b, state("agent-b", &[(c2, true), (c3, true)]));
        let due = r.poll(&cur, &none, t0);
        let da = due.iter().find(|d| d.link == a).unwrap();
        assert!(!da.request_sync);
        assert_eq!(da.states[&c1.to_string()], json!({"online": false}));
        let db = due.iter().find(|d| d.link == b).unwrap();
        assert!(db.request_sync, "the device list changed");
        assert!(
            db.states.is_empty(),
            "no state for a device Google has not synced"
        );

        // Google refuses a's report and accepts b's.
        for d in due {
            let ok = d.link == b;
            r.done(d, ok, t0);
        }
        assert!(r.poll(&cur, &none, t0).is_empty(), "b is done, a waits");
        // b changes again meanwhile: it is reported while a still waits.
        cur.insert(b, state("agent-b", &[(c2, false), (c3, true)]));
        assert_eq!(
            ids(&r.poll(&cur, &none, t0 + Duration::from_secs(1))),
            vec![b]
        );
        // After the pause a's report is due again, unchanged.
        let due = r.poll(&cur, &none, t0 + RETRY_FIRST);
        let da = due.iter().find(|d| d.link == a).expect("a is retried");
        assert_eq!(da.states[&c1.to_string()], json!({"online": false}));
        // A second failure doubles the pause.
        let t1 = t0 + RETRY_FIRST;
        let da = due.into_iter().find(|d| d.link == a).unwrap();
        r.done(da, false, t1);
        assert!(!ids(&r.poll(&cur, &none, t1 + RETRY_FIRST)).contains(&a));
        assert!(ids(&r.poll(&cur, &none, t1 + 2 * RETRY_FIRST)).contains(&a));
    }

    #[test]
    fn a_rename_resyncs_the_links_showing_that_camera_until_it_succeeds() {
        let (a, b, fresh) = (LinkId::random(), LinkId::random(), LinkId::random());
        let (c1, c2) = (CameraId::random(), CameraId::random());
        let t = Instant::now();
        let mut r = Reporter::default();
        let mut cur = HashMap::from([
            (a, state("agent-a", &[(c1, true)])),
            (b, state("agent-b", &[(c2, true)])),
        ]);
        r.poll(&cur, &HashSet::new(), t);
        let due = r.poll(&cur, &HashSet::from([c1]), t);
        assert_eq!(ids(&due), vec![a], "only the link showing the camera");
        assert!(due[0].request_sync && due[0].states.is_empty());
        r.done(due.into_iter().next().unwrap(), false, t);
        // The rename is remembered across the failure.
        let due = r.poll(&cur, &HashSet::new(), t + RETRY_FIRST);
        assert_eq!(ids(&due), vec![a]);
        assert!(due[0].request_sync);
        r.done(due.into_iter().next().unwrap(), true, t + RETRY_FIRST);
        assert!(r.poll(&cur, &HashSet::new(), t + RETRY_FIRST).is_empty());

        // A new link is recorded, not reported; a link gone is forgotten.
        cur.insert(fresh, state("agent-a", &[(c1, true)]));
        cur.remove(&b);
        assert!(r.poll(&cur, &HashSet::new(), t + RETRY_FIRST).is_empty());
        assert!(!r.reported.as_ref().unwrap().contains_key(&b));
    }
}
