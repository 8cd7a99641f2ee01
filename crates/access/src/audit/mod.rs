//! The audit log's writer, and the view sessions it reports.
//!
//! [`Audit::record`] appends the event to the local audit [`journal`] before it
//! returns, so anything recorded survives `kill -9`; a background thread copies the
//! journal into the database in batches, so nothing on the media path waits for
//! the database. After a crash, [`Audit::open`] replays what the database lacks
//! before anything is served. A clean shutdown closes the open view sessions and
//! waits for the last copy (see [`Audit::shutdown`]).
//!
//! A *view session* is everything sent under one grant: it starts with the first
//! media object written (its `view_start` is journaled before that object leaves),
//! accumulates bytes and the provenance sequence range in memory — journaled every
//! [`CHECKPOINT_EVERY`] while they change, so a crash loses at most that much of
//! the count — and ends after [`SESSION_IDLE`] without requests (or at shutdown),
//! when one `view_end` event records the totals.

pub mod journal;

use crate::grant::Grant;
use crate::metrics::Counter;
use hearth_model::{GrantId, Provenance, UnixMillis};
use hearth_store::{AuditEvent, JournalMark, Store};
use journal::{JournalError, Progress, Reader, Replayed, Writer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often the copier looks for new journal lines.
const COPY_EVERY: Duration = Duration::from_millis(250);
/// How often open sessions' running totals are journaled (while they change).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Events per database transaction, at most.
const BATCH: usize = 1000;
pub const SESSION_IDLE: Duration = Duration::from_secs(15);

struct Session {
    grant: Grant,
    started: UnixMillis,
    last: UnixMillis,
    bytes: u64,
    objects: u64,
    seq_min: u64,
    seq_max: u64,
    /// Changed since its totals were last journaled.
    dirty: bool,
}

impl Session {
    fn progress(&self) -> Progress {
        Progress {
            grant: self.grant.id.to_string(),
            camera: self.grant.camera,
            user: self.grant.viewer,
            integration: self.grant.integration.as_str().to_string(),
            epoch: self.grant.epoch.0,
            started_at: self.started.0,
            last_at: self.last.0,
            bytes: self.bytes,
            objects: self.objects,
            seq_min: self.seq_min,
            seq_max: self.seq_max,
        }
    }
}

pub struct Audit {
    /// Lock order: `sessions`, then `journal`.
    journal: Mutex<Writer>,
    sessions: Mutex<HashMap<GrantId, Session>>,
    /// Events journaled, and events copied into the database.
    appended: AtomicU64,
    copied: AtomicU64,
    stop: Mutex<Option<mpsc::Sender<()>>>,
    done: Mutex<Option<oneshot::Receiver<()>>>,
    /// Events that could not be journaled (the disk refused the write).
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Audit {
    /// Replays the journal in `dir` (what a crash kept from the database), then
    /// starts a new journal generation and the thread that copies it. Blocking:
    /// call it once at start-up, before anything is served.
    pub fn open(store: Arc<dyn Store>, dir: &Path) -> Result<(Arc<Self>, Replayed), JournalError> {
        Self::open_rotating_at(store, dir, journal::ROTATE_AT)
    }

    fn open_rotating_at(
        store: Arc<dyn Store>,
        dir: &Path,
        rotate_at: u64,
    ) -> Result<(Arc<Self>, Replayed), JournalError> {
        let name = journal::name(store.as_ref(), dir)?;
        let replayed = journal::replay(store.as_ref(), dir, &name, crate::clock::now())?;
        let writer = Writer::create(dir, replayed.next_generation, b"")?;
        let reader = Reader::open(writer.path(), 0)?;
        let (stop_tx, stop_rx) = mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let audit = Arc::new(Self {
            journal: Mutex::new(writer),
            sessions: Mutex::default(),
            appended: AtomicU64::new(0),
            copied: AtomicU64::new(0),
            stop: Mutex::new(Some(stop_tx)),
            done: Mutex::new(Some(done_rx)),
            dropped: Counter::default(),
        });
        let copier = Copier {
            audit: audit.clone(),
            store,
            name,
            reader,
            rotate_at,
        };
        std::thread::Builder::new()
            .name("audit-journal".into())
            .spawn(move || copier.run(stop_rx, done_tx))
            .map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok((audit, replayed))
    }

    /// Journals an event; it is durable (against a crash of this process) when
    /// this returns. One short `write(2)`; never waits for the database.
    pub fn record(&self, e: AuditEvent) {
        self.append(&journal::event_line(&e), 1);
    }

    fn append(&self, bytes: &[u8], events: u64) {
        if let Err(error) = lock(&self.journal).append(bytes) {
            self.dropped.add(events);
            tracing::error!(%error, "audit journal write failed: event lost");
            return;
        }
        self.appended.fetch_add(events, Ordering::Relaxed);
    }

    /// Accounts a media object written under `grant` to its view session. The
    /// first one journals `view_start` before it returns (so before the object
    /// is sent); the rest only count, in memory.
    pub fn viewed(&self, grant: &Grant, p: &Provenance, bytes: usize) {
        let now = crate::clock::now();
        let mut sessions = lock(&self.sessions);
        let s = sessions.entry(grant.id).or_insert_with(|| {
            self.record(event(
                "view_start",
                Some(grant),
                serde_json::json!({"bytes": bytes, "seq": p.seq}),
            ));
            Session {
                grant: *grant,
                started: now,
                last: now,
                bytes: 0,
                objects: 0,
                seq_min: p.seq,
                seq_max: p.seq,
                dirty: false,
            }
        });
        s.last = now;
        s.bytes += bytes as u64;
        s.objects += 1;
        s.seq_min = s.seq_min.min(p.seq);
        s.seq_max = s.seq_max.max(p.seq);
        s.dirty = s.objects > 1;
    }

    /// Open view sessions, per integration (web app, api, google, alexa).
    pub fn open_sessions(&self) -> HashMap<&'static str, u64> {
        let mut by = HashMap::new();
        for s in lock(&self.sessions).values() {
            *by.entry(s.grant.integration.as_str()).or_insert(0) += 1;
        }
        by
    }

    /// Events journaled but not yet in the database.
    pub fn queue_depth(&self) -> usize {
        let appended = self.appended.load(Ordering::Relaxed);
        appended.saturating_sub(self.copied.load(Ordering::Relaxed)) as usize
    }

    /// Ends the view session under `grant` now (the egress door refused an object
    /// for it, or the connection ended), recording why.
    pub fn close_session(&self, grant: GrantId, reason: &str) {
        let mut sessions = lock(&self.sessions);
        if let Some(s) = sessions.remove(&grant) {
            self.record(end_event(&s, Some(reason)));
        }
    }

    /// Ends the sessions idle since before `idle_before` (all with `None`).
    fn end_sessions(&self, idle_before: Option<UnixMillis>) {
        let mut sessions = lock(&self.sessions);
        let ids: Vec<GrantId> = sessions
            .iter()
            .filter(|(_, s)| idle_before.is_none_or(|t| s.last < t))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(s) = sessions.remove(&id) {
                self.record(end_event(&s, None));
            }
        }
    }

    /// Journals the running totals of the sessions that changed since last time.
    fn checkpoint(&self) {
        let mut sessions = lock(&self.sessions);
        let mut lines = Vec::new();
        for s in sessions.values_mut().filter(|s| s.dirty) {
            s.dirty = false;
            lines.extend_from_slice(&journal::progress_line(&s.progress()));
        }
        if !lines.is_empty() {
            // Under the sessions lock: no `view_end` can slip in before these.
            self.append(&lines, 0);
        }
    }

    /// Ends every open view session, copies everything journaled into the
    /// database, and stops the copier.
    pub async fn shutdown(&self) {
        drop(lock(&self.stop).take());
        let done = lock(&self.done).take();
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

/// The thread that checkpoints sessions, ends idle ones, and copies the journal
/// into the database.
struct Copier {
    audit: Arc<Audit>,
    store: Arc<dyn Store>,
    /// The journal's name, under which its mark is stored.
    name: String,
    reader: Reader,
    /// [`journal::ROTATE_AT`], smaller in tests.
    rotate_at: u64,
}

impl Copier {
    fn run(mut self, stop: mpsc::Receiver<()>, done: oneshot::Sender<()>) {
        let mut last_sweep = Instant::now();
        loop {
            let stopping = matches!(
                stop.recv_timeout(COPY_EVERY.min(CHECKPOINT_EVERY)),
                Err(mpsc::RecvTimeoutError::Disconnected) | Ok(())
            );
            if stopping {
                self.audit.end_sessions(None);
            } else if last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                let idle = UnixMillis(crate::clock::now().0 - SESSION_IDLE.as_millis() as i64);
                self.audit.end_sessions(Some(idle));
            }
            self.audit.checkpoint();
            let copied = self.copy();
            if stopping {
                if let Err(error) = copied {
                    tracing::error!(%error, "audit journal: last copy failed; the next start replays it");
                }
                let _ = done.send(());
                return;
            }
            match copied {
                Ok(()) => self.rotate_if_large(),
                Err(error) => tracing::error!(%error, "audit journal copy failed; retrying"),
            }
        }
    }

    /// Copies every complete line journaled since the last copy (a bounded bite
    /// at a time, see [`Reader::read_new`]): events in
    /// batches, each transaction moving the database's mark past its last event.
    /// Lines after the last event (totals) need no transaction: a replay rereads
    /// them harmlessly.
    fn copy(&mut self) -> Result<(), JournalError> {
        loop {
            let before = self.reader.position;
            self.copy_some()?;
            if self.reader.position == before {
                return Ok(());
            }
        }
    }

    fn copy_some(&mut self) -> Result<(), JournalError> {
        let generation = lock(&self.audit.journal).generation();
        let records = self.reader.read_new()?;
        let mut batch = Vec::new();
        let mut end = self.reader.position;
        for (next, record) in records {
            match record {
                journal::Record::Event(e) => batch.push(e),
                journal::Record::Progress(_) => {}
                journal::Record::Unreadable => {
                    tracing::error!(
                        generation,
                        offset = end,
                        "audit journal: unreadable line skipped"
                    )
                }
            }
            end = next;
            if batch.len() == BATCH {
                self.flush(&mut batch, generation, end)?;
            }
        }
        if !batch.is_empty() {
            self.flush(&mut batch, generation, end)?;
        }
        self.reader.position = end;
        Ok(())
    }

    fn flush(
        &mut self,
        batch: &mut Vec<AuditEvent>,
        generation: u64,
        position: u64,
    ) -> Result<(), JournalError> {
        let mark = JournalMark {
            generation,
            position,
        };
        self.store.append_audit_journaled(batch, &self.name, mark)?;
        self.audit
            .copied
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
        self.reader.position = position;
        Ok(())
    }

    /// Starts a new generation once the current file is fully copied and large;
    /// it opens with the open sessions' totals, and the old file goes.
    fn rotate_if_large(&mut self) {
        let sessions = lock(&self.audit.sessions);
        let mut journal = lock(&self.audit.journal);
        if journal.len() < self.rotate_at || self.reader.position != journal.len() {
            return;
        }
        let mut snapshot = Vec::new();
        for s in sessions.values() {
            snapshot.extend_from_slice(&journal::progress_line(&s.progress()));
        }
        // The media path counts under the sessions lock: let it go on while the
        // new file is written. Holding the journal keeps every later line (a
        // view's start or end) in the new generation, after the snapshot.
        drop(sessions);
        let next = journal.generation() + 1;
        let rotated = Writer::create(journal.dir(), next, &snapshot).and_then(|w| {
            let reader = Reader::open(w.path(), 0)?;
            Ok((w, reader))
        });
        match rotated {
            Ok((w, reader)) => {
                let old = std::mem::replace(&mut *journal, w);
                self.reader = reader;
                if let Err(error) = std::fs::remove_file(old.path()) {
                    tracing::warn!(%error, "audit journal: old generation not removed");
                }
            }
            Err(error) => tracing::error!(%error, "audit journal rotation failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::Holder;
    use hearth_model::{BindingEpoch, CameraId, Integration, UserId};

    fn grant() -> Grant {
        Grant {
            id: GrantId::random(),
            viewer: UserId::random(),
            camera: CameraId::random(),
            epoch: BindingEpoch(1),
            integration: Integration::App,
            expires_at: UnixMillis(i64::MAX / 2),
            holder: Holder::of_session("s"),
        }
    }

    fn wait(mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn journals(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("audit-journal."))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_large_copied_journal_rotates_carrying_the_open_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(hearth_store::SqliteStore::open_in_memory().unwrap());
        let (audit, _) = Audit::open_rotating_at(store.clone(), dir.path(), 2048).unwrap();
        assert_eq!(journals(dir.path()), ["audit-journal.0000000001"]);
        let g = grant();
        let p = hearth_model::Provenance {
            camera: g.camera,
            epoch: g.epoch,
            seq: 1,
            capture_time: UnixMillis(0),
            rendition: Default::default(),
        };
        audit.viewed(&g, &p, 1000);
        for i in 0..40 {
            audit.record(event("test", None, serde_json::json!({"i": i})));
        }
        audit.viewed(&g, &p, 500);
        // Copied, then rotated: generation 2 opens with the open session's totals.
        wait(|| journals(dir.path()) == ["audit-journal.0000000002"]);
        wait(|| audit.queue_depth() == 0);
        let text = std::fs::read_to_string(dir.path().join("audit-journal.0000000002")).unwrap();
        let progress: Vec<&str> = text.lines().collect();
        assert_eq!(progress.len(), 1, "{text}");
        assert!(progress[0].contains("\"bytes\":1500"), "{text}");
        assert_eq!(store.audit_since(UnixMillis(0)).unwrap().len(), 41);
        // A clean stop ends the session with its totals and copies everything.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(audit.shutdown());
        let all = store.audit_since(UnixMillis(0)).unwrap();
        let end = all.last().unwrap();
        assert_eq!(end.event.kind, "view_end");
        assert_eq!(end.event.detail["bytes"], 1500);
        assert_eq!(end.event.detail["objects"], 2);
    }
}
