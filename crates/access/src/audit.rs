//! The audit log's writer, and the view sessions it reports.
//!
//! Events are queued on a bounded channel and written in batches by one task, so
//! nothing on the media path waits for the database. A clean shutdown closes the
//! queue and waits for the last batch (see [`Audit::shutdown`]). A full queue (the
//! database cannot keep up) drops the event with an error log and a counter rather
//! than stall viewers.
//!
//! A *view session* is everything sent under one grant: it starts with the first
//! media object written, accumulates bytes and the provenance sequence range, and
//! ends after [`SESSION_IDLE`] without requests (or at shutdown), when one
//! `view_end` event records the totals.

use crate::grant::Grant;
use crate::metrics::Counter;
use hearth_model::{GrantId, Provenance, UnixMillis};
use hearth_store::{AuditEvent, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 16 * 1024;
const BATCH: usize = 1000;
const FLUSH_EVERY: Duration = Duration::from_millis(250);
pub const SESSION_IDLE: Duration = Duration::from_secs(15);

struct Session {
    grant: Grant,
    started: UnixMillis,
    last: UnixMillis,
    bytes: u64,
    objects: u64,
    seq_min: u64,
    seq_max: u64,
}

pub struct Audit {
    tx: Mutex<Option<mpsc::Sender<AuditEvent>>>,
    done: Mutex<Option<oneshot::Receiver<()>>>,
    sessions: Mutex<HashMap<GrantId, Session>>,
    pub dropped: Counter,
}

/// An audit event; one under a grant names its viewer, camera and integration,
/// and its detail carries the grant's binding `epoch` (unless given), so an
/// owner's access log can leave out what belongs to an earlier binding.
pub fn event(kind: &str, grant: Option<&Grant>, mut detail: serde_json::Value) -> AuditEvent {
    if let (Some(g), Some(d)) = (grant, detail.as_object_mut()) {
        d.entry("epoch")
            .or_insert_with(|| serde_json::json!(g.epoch));
    }
    AuditEvent {
        at: crate::clock::now(),
        kind: kind.to_string(),
        camera: grant.map(|g| g.camera),
        user: grant.map(|g| g.viewer),
        integration: grant.map(|g| g.integration.as_str().to_string()),
        grant: grant.map(|g| g.id.to_string()),
        detail,
    }
}

impl Audit {
    /// Starts the writer task.
    pub fn start(store: Arc<dyn Store>) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (done_tx, done_rx) = oneshot::channel();
        tokio::spawn(write_batches(store, rx, done_tx));
        let audit = Arc::new(Self {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
            sessions: Mutex::default(),
            dropped: Counter::default(),
        });
        tokio::spawn(sweep_sessions(audit.clone()));
        audit
    }

    /// Queues an event; never waits.
    pub fn record(&self, e: AuditEvent) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(tx) = tx else { return };
        if tx.try_send(e).is_err() {
            self.dropped.inc();
            tracing::error!("audit queue full or closed: event dropped");
        }
    }

    /// Accounts a media object written under `grant` to its view session.
    pub fn viewed(&self, grant: &Grant, p: &Provenance, bytes: usize) {
        let now = crate::clock::now();
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = sessions.entry(grant.id).or_insert_with(|| {
            self.record(event("view_start", Some(grant), serde_json::json!({})));
            Session {
                grant: *grant,
                started: now,
                last: now,
                bytes: 0,
                objects: 0,
                seq_min: p.seq,
                seq_max: p.seq,
            }
        });
        s.last = now;
        s.bytes += bytes as u64;
        s.objects += 1;
        s.seq_min = s.seq_min.min(p.seq);
        s.seq_max = s.seq_max.max(p.seq);
    }

    /// Ends the view session under `grant` now (the egress door refused an object
    /// for it), recording why.
    /// Open view sessions, per integration (web app, api, google, alexa).
    pub fn open_sessions(&self) -> HashMap<&'static str, u64> {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut by = HashMap::new();
        for s in sessions.values() {
            *by.entry(s.grant.integration.as_str()).or_insert(0) += 1;
        }
        by
    }

    /// Events waiting to be written.
    pub fn queue_depth(&self) -> usize {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }

    pub fn close_session(&self, grant: GrantId, reason: &str) {
        let s = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&grant);
        if let Some(s) = s {
            self.record(end_event(&s, Some(reason)));
        }
    }

    fn end_sessions(&self, idle_before: Option<UnixMillis>) {
        let ended: Vec<Session> = {
            let mut sessions = self
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ids: Vec<GrantId> = sessions
                .iter()
                .filter(|(_, s)| idle_before.is_none_or(|t| s.last < t))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for s in ended {
            self.record(end_event(&s, None));
        }
    }

    /// Ends every open view session, writes everything queued, and stops.
    pub async fn shutdown(&self) {
        self.end_sessions(None);
        drop(
            self.tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let done = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(done) = done {
            let _ = done.await;
        }
    }
}

fn end_event(s: &Session, closed_by: Option<&str>) -> AuditEvent {
    event(
        "view_end",
        Some(&s.grant),
        serde_json::json!({
            "started_at": s.started.0, "last_at": s.last.0, "bytes": s.bytes,
            "objects": s.objects, "seq_min": s.seq_min, "seq_max": s.seq_max,
            "closed_by": closed_by,
        }),
    )
}

async fn sweep_sessions(audit: Arc<Audit>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if audit
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
        {
            return;
        }
        let idle_before = UnixMillis(crate::clock::now().0 - SESSION_IDLE.as_millis() as i64);
        audit.end_sessions(Some(idle_before));
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<AuditEvent>,
    done: oneshot::Sender<()>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let closed = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n == 0,
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
        };
        // Gather whatever else is already queued, then write once.
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let events = std::mem::take(&mut batch);
            let store = store.clone();
            let n = events.len();
            match tokio::task::spawn_blocking(move || store.append_audit(&events)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, events = n, "audit batch could not be written")
                }
                Err(e) => tracing::error!(error = %e, events = n, "audit writer panicked"),
            }
        }
        if closed {
            let _ = done.send(());
            return;
        }
    }
}
