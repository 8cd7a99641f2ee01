//! The audit journal: a local append-only file every audit event is written to
//! before [`super::Audit::record`] returns, and that a background thread copies
//! into the database.
//!
//! Why a file and not the database: an event must survive `kill -9` from the
//! moment it is recorded (a grant answered, a view that received bytes), but the
//! media path must never wait for a database. One `write(2)` of a short line to a
//! file opened for appending puts it in the kernel's page cache, where it outlives
//! the process; it costs microseconds and takes no lock the database holds. (A
//! power cut can still lose the last moments; the copy into SQLite is fsync'd.)
//!
//! Format: one JSON object per line, either `{"event": …}` (an audit event, copied
//! to the database) or `{"progress": …}` (a view session's running totals, written
//! every [`super::CHECKPOINT_EVERY`] while bytes flow; never copied, only read
//! back after a crash to close the sessions that were open with what they had
//! sent). A line cut short by a crash is skipped on replay.
//!
//! Files are named `audit-journal.<generation>`. The database keeps, in the same
//! transaction as each copied batch, the generation and byte offset copied up to
//! ([`hearth_store::JournalMark`]), so a replay copies the rest exactly once. When
//! a fully copied file grows past [`ROTATE_AT`], the next generation starts with
//! the open sessions' totals and the old file is deleted.

use hearth_model::{CameraId, UnixMillis, UserId};
use hearth_store::{AuditEvent, JournalMark, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A fully copied journal larger than this is replaced by a new generation.
pub const ROTATE_AT: u64 = 8 * 1024 * 1024;
const PREFIX: &str = "audit-journal.";
/// What the copier reads per pass, at most (lines are far shorter).
const READ_AT_MOST: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("audit journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit journal: copying into the database: {0}")]
    Store(#[from] hearth_store::StoreError),
}

/// A view session's running totals, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub grant: String,
    pub camera: CameraId,
    pub user: UserId,
    pub integration: String,
    pub epoch: u64,
    pub started_at: i64,
    pub last_at: i64,
    pub bytes: u64,
    pub objects: u64,
    pub seq_min: u64,
    pub seq_max: u64,
}

impl Progress {
    /// The `view_end` event that closes this session.
    pub fn end_event(&self, at: UnixMillis, closed_by: Option<&str>) -> AuditEvent {
        AuditEvent {
            at,
            kind: "view_end".into(),
            camera: Some(self.camera),
            user: Some(self.user),
            integration: Some(self.integration.clone()),
            grant: Some(self.grant.clone()),
            detail: serde_json::json!({
                "started_at": self.started_at, "last_at": self.last_at, "bytes": self.bytes,
                "objects": self.objects, "seq_min": self.seq_min, "seq_max": self.seq_max,
                "closed_by": closed_by, "epoch": self.epoch,
            }),
        }
    }
}

/// An audit event, as journaled.
#[derive(Debug, Serialize, Deserialize)]
struct Event {
    at: i64,
    kind: String,
    camera: Option<CameraId>,
    user: Option<UserId>,
    integration: Option<String>,
    grant: Option<String>,
    detail: serde_json::Value,
}

impl From<&AuditEvent> for Event {
    fn from(e: &AuditEvent) -> Self {
        Self {
            at: e.at.0,
            kind: e.kind.clone(),
            camera: e.camera,
            user: e.user,
            integration: e.integration.clone(),
            grant: e.grant.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl From<Event> for AuditEvent {
    fn from(e: Event) -> Self {
        Self {
            at: UnixMillis(e.at),
            kind: e.kind,
            camera: e.camera,
            user: e.user,
            integration: e.integration,
            grant: e.grant,
            detail: e.detail,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Event(Event),
    Progress(Progress),
}

/// An event as one journal line.
pub fn event_line(e: &AuditEvent) -> Vec<u8> {
    line(&Line::Event(e.into()))
}

/// A session's totals as one journal line.
pub fn progress_line(p: &Progress) -> Vec<u8> {
    line(&Line::Progress(p.clone()))
}

fn line(l: &Line) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    let mut v = serde_json::to_vec(l).unwrap_or_default();
    v.push(b'\n');
    v
}

/// What one journal line says, for the copier and the replay.
pub enum Record {
    Event(AuditEvent),
    Progress(Progress),
    /// Not a journal line (cut short by a crash, or damaged); skipped.
    Unreadable,
}

/// Splits `buf` into complete lines; returns them with the offset (in `buf`) just
/// past each, and leaves an unterminated tail alone.
pub fn complete_lines(buf: &[u8]) -> impl Iterator<Item = (usize, Record)> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rel = buf[start..].iter().position(|&b| b == b'\n')?;
        let text = &buf[start..start + rel];
        start += rel + 1;
        let rec = match serde_json::from_slice::<Line>(text) {
            Ok(Line::Event(e)) if e.detail.is_object() && !e.kind.is_empty() => {
                Record::Event(e.into())
            }
            Ok(Line::Progress(p)) => Record::Progress(p),
            _ => Record::Unreadable,
        };
        Some((start, rec))
    })
}

fn file_name(generation: u64) -> String {
    format!("{PREFIX}{generation:010}")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The journal file being appended to.
pub struct Writer {
    dir: PathBuf,
    generation: u64,
    file: File,
    len: u64,
}

impl Writer {
    /// Starts generation `generation` holding `initial` (the open sessions'
    /// totals), written to a temporary file and renamed into place, so a crash
    /// leaves either no file or a whole one.
    pub fn create(dir: &Path, generation: u64, initial: &[u8]) -> Result<Self, JournalError> {
        let path = dir.join(file_name(generation));
        let tmp = dir.join(format!("{}.tmp", file_name(generation)));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            f.write_all(initial).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            generation,
            file,
            len: initial.len() as u64,
        })
    }

    /// Appends whole lines with one `write(2)` where the kernel allows.
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(file_name(self.generation))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Reads what has been appended to one generation since the last call.
pub struct Reader {
    path: PathBuf,
    file: File,
    /// Offset of the first byte not yet handed out.
    pub position: u64,
}

impl Reader {
    pub fn open(path: PathBuf, position: u64) -> Result<Self, JournalError> {
        let file = File::open(&path).map_err(io_err(&path))?;
        Ok(Self {
            path,
            file,
            position,
        })
    }

    /// The complete lines appended since `position`, each with the offset just
    /// past it (where the next read starts once it is copied).
    pub fn read_new(&mut self) -> Result<Vec<(u64, Record)>, JournalError> {
        let mut buf = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.position))
            .map_err(io_err(&self.path))?;
        // A bounded bite: after a long database outage the backlog is copied a
        // few MiB per pass, not reread whole every time.
        (&mut self.file)
            .take(READ_AT_MOST)
            .read_to_end(&mut buf)
            .map_err(io_err(&self.path))?;
        let base = self.position;
        Ok(complete_lines(&buf)
            .map(|(end, rec)| (base + end as u64, rec))
            .collect())
    }
}

/// What a start-up replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Events in the journal that had not reached the database.
    pub events_copied: usize,
    /// View sessions open at the crash, closed now with the totals journaled.
    pub sessions_closed: usize,
    /// Lines cut short or damaged, skipped.
    pub unreadable_lines: usize,
    /// The generation to append to from now on.
    pub next_generation: u64,
}

/// The file beside the journals that holds their name.
const NAME_FILE: &str = "journal.id";
/// The name the journal of a database from before journals had names adopts.
const LEGACY_NAME: &str = "local";

/// The name of the journal in `dir`, made on first use: several server
/// processes may share one database (PostgreSQL), and each copies its own
/// journal under its own mark. A data dir whose database still has the one
/// mark of the time before names (kept as `local` by the store's migration)
/// takes that name and goes on from it; any other gets 128 random bits.
pub fn name(store: &dyn Store, dir: &Path) -> Result<String, JournalError> {
    let path = dir.join(NAME_FILE);
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => return Ok(name.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let name = if store.audit_journal_mark(LEGACY_NAME)?.is_some() {
        LEGACY_NAME.to_owned()
    } else {
        let bytes: [u8; 16] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(name.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&path))?;
    Ok(name)
}

/// Copies into the database what the journals in `dir` hold beyond the stored
/// mark of journal `name`, closes the view sessions a crash left open (`closed_by: "restart"`, with
/// their last journaled totals), all in one transaction that moves the mark to a
/// new generation, then deletes the old files. Run once at start, before anything
/// is served or recorded.
pub fn replay(
    store: &dyn Store,
    dir: &Path,
    name: &str,
    now: UnixMillis,
) -> Result<Replayed, JournalError> {
    let mark = store.audit_journal_mark(name)?.unwrap_or(JournalMark {
        generation: 0,
        position: 0,
    });
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let generation = name.strip_prefix(PREFIX)?.parse().ok()?;
            Some((generation, e.path()))
        })
        .collect();
    files.sort();
    let mut out = Replayed::default();
    let mut to_copy = Vec::new();
    let mut open: HashMap<String, Progress> = HashMap::new();
    for (generation, path) in &files {
        if *generation < mark.generation {
            continue;
        }
        let buf = std::fs::read(path).map_err(io_err(path))?;
        let mut start = 0usize;
        for (next, rec) in complete_lines(&buf) {
            let copied = *generation == mark.generation && (start as u64) < mark.position;
            start = next;
            match rec {
                Record::Unreadable => out.unreadable_lines += 1,
                Record::Progress(p) => {
                    open.insert(p.grant.clone(), p);
                }
                Record::Event(e) => {
                    track(&mut open, &e);
                    if !copied {
                        to_copy.push(e);
                    }
                }
            }
        }
        if start < buf.len() {
            out.unreadable_lines += 1;
        }
    }
    out.events_copied = to_copy.len();
    out.sessions_closed = open.len();
    let mut ends: Vec<&Progress> = open.values().collect();
    ends.sort_by_key(|p| p.last_at);
    to_copy.extend(ends.into_iter().map(|p| p.end_event(now, Some("restart"))));
    out.next_generation = files
        .last()
        .map_or(mark.generation, |(g, _)| (*g).max(mark.generation))
        + 1;
    store.append_audit_journaled(
        &to_copy,
        name,
        JournalMark {
            generation: out.next_generation,
            position: 0,
        },
    )?;
    for (_, path) in &files {
        std::fs::remove_file(path).map_err(io_err(path))?;
    }
    // Leftovers of a rotation cut short.
    for e in std::fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(out)
}

/// Follows a view session through the events: `view_start` opens it with its
/// first object, `view_end` closes it.
fn track(open: &mut HashMap<String, Progress>, e: &AuditEvent) {
    let Some(grant) = &e.grant else { return };
    match e.kind.as_str() {
        "view_start" => {
            let (Some(camera), Some(user)) = (e.camera, e.user) else {
                return;
            };
            let d = &e.detail;
            let n = |k: &str| d.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            let seq = n("seq");
            open.entry(grant.clone()).or_insert(Progress {
                grant: grant.clone(),
                camera,
                user,
                integration: e.integration.clone().unwrap_or_default(),
                epoch: n("epoch"),
                started_at: e.at.0,
                last_at: e.at.0,
                bytes: n("bytes"),
                objects: 1,
                seq_min: seq,
                seq_max: seq,
            });
        }
        "view_end" => {
            open.remove(grant);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_store::SqliteStore;

    fn progress(grant: &str, bytes: u64) -> Progress {
        Progress {
            grant: grant.into(),
            camera: CameraId::random(),
            user: UserId::random(),
            integration: "app".into(),
            epoch: 3,
            started_at: 10,
            last_at: 20,
            bytes,
            objects: 2,
            seq_min: 1,
            seq_max: 2,
        }
    }

    fn event(kind: &str, grant: &str) -> AuditEvent {
        AuditEvent {
            at: UnixMillis(5),
            kind: kind.into(),
            camera: Some(CameraId::random()),
            user: Some(UserId::random()),
            integration: Some("google".into()),
            grant: Some(grant.into()),
            detail: serde_json::json!({"epoch": 1, "bytes": 100, "seq": 7}),
        }
    }

    fn kinds(store: &SqliteStore) -> Vec<(String, Option<String>)> {
        store
            .audit_since(UnixMillis(0))
            .unwrap()
            .into_iter()
            .map(|r| (r.event.kind, r.event.grant))
            .collect()
    }

    #[test]
    fn replay_copies_what_the_database_lacks_exactly_once_and_closes_open_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_memory().unwrap();
        let mut w = Writer::create(dir.path(), 1, b"").unwrap();
        w.append(&event_line(&event("grant_issued", "g1"))).unwrap();
        let copied_up_to = w.len();
        store
            .append_audit_journaled(
                &[event("grant_issued", "g1")],
                "n1",
                JournalMark {
                    generation: 1,
                    position: copied_up_to,
                },
            )
            .unwrap();
        // After the copy: a view starts and sends more, another starts and ends.
        w.append(&event_line(&event("view_start", "g1"))).unwrap();
        w.append(&progress_line(&progress("g1", 5000))).unwrap();
        w.append(&event_line(&event("view_start", "g2"))).unwrap();
        w.append(&event_line(&event("view_end", "g2"))).unwrap();
        // A line cut short by the crash.
        w.append(br#"{"event":{"at":1,"kind":"vi"#).unwrap();
        drop(w);

        let r = replay(&store, dir.path(), "n1", UnixMillis(99)).unwrap();
        assert_eq!(
            r,
            Replayed {
                events_copied: 3,
                sessions_closed: 1,
                unreadable_lines: 1,
                next_generation: 2
            }
        );
        let k = kinds(&store);
        let names: Vec<(&str, Option<&str>)> =
            k.iter().map(|(a, b)| (a.as_str(), b.as_deref())).collect();
        assert_eq!(
            names,
            [
                ("grant_issued", Some("g1")),
                ("view_start", Some("g1")),
                ("view_start", Some("g2")),
                ("view_end", Some("g2")),
                ("view_end", Some("g1")),
            ]
        );
        let end = store.audit_since(UnixMillis(0)).unwrap().pop().unwrap();
        assert_eq!(end.event.detail["bytes"], 5000);
        assert_eq!(end.event.detail["closed_by"], "restart");
        assert_eq!(
            store.audit_journal_mark("n1").unwrap(),
            Some(JournalMark {
                generation: 2,
                position: 0
            })
        );
        // The old file is gone; a second replay finds nothing to do.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let again = replay(&store, dir.path(), "n1", UnixMillis(100)).unwrap();
        assert_eq!((again.events_copied, again.sessions_closed), (0, 0));
        assert_eq!(kinds(&store).len(), 5);
    }

    #[test]
    fn each_journal_is_named_once_and_copied_under_its_own_mark() {
        let store = SqliteStore::open_in_memory().unwrap();
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let n1 = name(&store, d1.path()).unwrap();
        let n2 = name(&store, d2.path()).unwrap();
        assert_eq!(n1.len(), 32);
        assert_ne!(n1, n2, "two nodes' journals, two names");
        assert_eq!(name(&store, d1.path()).unwrap(), n1, "the name is kept");
        // Two journals on one database: one's progress is not the other's.
        let mark = |generation| JournalMark {
            generation,
            position: 10,
        };
        store.append_audit_journaled(&[], &n1, mark(3)).unwrap();
        store.append_audit_journaled(&[], &n2, mark(7)).unwrap();
        assert_eq!(store.audit_journal_mark(&n1).unwrap(), Some(mark(3)));
        assert_eq!(store.audit_journal_mark(&n2).unwrap(), Some(mark(7)));
        assert!(store.append_audit_journaled(&[], "", mark(1)).is_err());
        // A database with the mark of the time before names: its journal
        // goes on under that mark.
        store
            .append_audit_journaled(&[], LEGACY_NAME, mark(9))
            .unwrap();
        let d3 = tempfile::tempdir().unwrap();
        assert_eq!(name(&store, d3.path()).unwrap(), LEGACY_NAME);
    }

    #[test]
    fn sessions_carried_into_a_new_generation_are_closed_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_memory().unwrap();
        let mut w = Writer::create(dir.path(), 4, b"").unwrap();
        w.append(&event_line(&event("view_start", "g1"))).unwrap();
        let len = w.len();
        store
            .append_audit_journaled(
                &[event("view_start", "g1")],
                "n1",
                JournalMark {
                    generation: 4,
                    position: len,
                },
            )
            .unwrap();
        // Rotation: the open session's totals open generation 5; 4 is deleted.
        let w5 = Writer::create(dir.path(), 5, &progress_line(&progress("g1", 42))).unwrap();
        std::fs::remove_file(w.path()).unwrap();
        drop(w5);
        let r = replay(&store, dir.path(), "n1", UnixMillis(99)).unwrap();
        assert_eq!((r.events_copied, r.sessions_closed), (0, 1));
        assert_eq!(r.next_generation, 6);
        let end = store.audit_since(UnixMillis(0)).unwrap().pop().unwrap();
        assert_eq!(
            (end.event.kind.as_str(), end.event.detail["bytes"].as_u64()),
            ("view_end", Some(42))
        );
    }

    #[test]
    fn a_large_backlog_is_read_in_bounded_bites() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(dir.path(), 1, b"").unwrap();
        let mut e = event("big", "g");
        e.detail = serde_json::json!({"pad": "x".repeat(1000)});
        let line = event_line(&e);
        let n = (2 * READ_AT_MOST as usize) / line.len() + 10;
        for _ in 0..n {
            w.append(&line).unwrap();
        }
        let mut r = Reader::open(w.path(), 0).unwrap();
        let mut total = 0;
        let mut bites = 0;
        loop {
            let recs = r.read_new().unwrap();
            let Some((end, _)) = recs.last() else { break };
            assert!(recs.len() * line.len() <= READ_AT_MOST as usize);
            r.position = *end;
            total += recs.len();
            bites += 1;
        }
        assert_eq!(total, n);
        assert_eq!(r.position, w.len());
        assert!(bites >= 3, "{bites}");
    }

    #[test]
    fn the_reader_hands_out_complete_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(dir.path(), 1, b"").unwrap();
        w.append(&event_line(&event("a", "g"))).unwrap();
        w.append(br#"{"event":"#).unwrap();
        let mut r = Reader::open(w.path(), 0).unwrap();
        let recs = r.read_new().unwrap();
        assert_eq!(recs.len(), 1);
        assert!(recs[0].0 < w.len());
        assert!(matches!(recs[0].1, Record::Event(_)));
        r.position = recs[0].0;
        assert!(r.read_new().unwrap().is_empty());
    }
}
