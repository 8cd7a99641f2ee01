//! Stream hubs: one per camera and rendition, holding everything a viewer can be sent.
//!
//! A hub keeps one of the camera's streams (its main or its sub rendition, see
//! [`Rendition`]) in memory: the current GOP (for the still-image cache and
//! instant start), a sliding window of HLS segments in two flavours (fMP4/CMAF
//! for browsers, MPEG-TS for Cast receivers), the LL-HLS parts of the newest
//! segments and of the one being recorded, the init segments, and the playlists
//! (rendered when asked for after a change, so an unwatched camera renders none).
//! Both renditions of a camera carry the same camera and epoch; the sub
//! rendition's objects are named with a `sub-` prefix, so a name finds its hub. Every object is an immutable
//! [`MediaObject`] stamped with the camera's [`Provenance`], so the egress door can
//! check it no matter how it was found. Segments are muxed at ingest and sealed
//! (tagged in-band, encrypted) on their first request ([`LazySegment`]), so segment
//! crypto is paid only for cameras someone watches.
//!
//! Exactly one ingest connection may publish to a hub at a time: it holds a
//! [`Publisher`] lease, and a second publisher is refused. Dropping the lease flushes
//! the open segment and marks the camera offline. Viewers never touch ingest state:
//! they read `Arc`s out of a short critical section, so no viewer work happens under
//! the lock and no media is copied per viewer.

pub mod still;

use crate::metrics::Metrics;
use bytes::Bytes;
use hearth_access::keys::{KeyId, MediaKeys, Stamper};
use hearth_access::switches::BenchSwitch;
use hearth_access::{MediaKind, MediaObject};
use hearth_media::gop::GopCache;
use hearth_media::h264::AvcConfig;
use hearth_media::provenance::ProvenanceRecord;
use hearth_media::segmenter::{
    Fmp4Media, FragmentMedia, Part, Segment, Segmenter, SegmenterConfig, TsMedia,
};
use hearth_media::{AudioFrame, VideoFrame, crypt, fmp4, playlist, ts};
use hearth_model::{BindingEpoch, CameraId, Provenance, Rendition, UnixMillis};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Segments listed in a playlist.
const PLAYLIST_WINDOW: usize = 5;
/// Segments kept fetchable (a little longer than listed, for slow players).
const RETAINED_SEGMENTS: usize = 8;
/// A camera whose media nobody asked for in this long keeps only its newest
/// segment (what a joining viewer starts with), not the whole window.
const WATCHED_FOR_MS: i64 = 30_000;
const TARGET_DURATION_MS: u32 = 2000;
/// LL-HLS `PART-TARGET`: five frames at 15 fps, eight at 25, ten at 30.
pub const PART_TARGET_MS: u32 = 334;
/// LL-HLS `PART-HOLD-BACK`: three part targets (RFC 8216bis: at least two, and
/// three recommended); what an LL-HLS player stays behind the newest part.
pub const PART_HOLD_BACK_MS: u32 = 3 * PART_TARGET_MS;
/// Complete segments whose parts stay listed (RFC 8216bis: parts older than
/// three target durations from the end may be left out).
const SEGMENTS_WITH_PARTS: usize = 2;

/// All hubs of this process: one per camera and rendition.
pub struct HubRegistry {
    hubs: RwLock<HashMap<(CameraId, Rendition), Arc<Hub>>>,
    metrics: Arc<Metrics>,
    keys: Arc<MediaKeys>,
    bench: BenchSwitch,
}

impl HubRegistry {
    pub fn new(metrics: Arc<Metrics>, keys: Arc<MediaKeys>) -> Self {
        Self {
            hubs: RwLock::default(),
            metrics,
            keys,
            bench: BenchSwitch::default(),
        }
    }

    /// Hubs made from now on follow `bench` (inert without `bench-switches`).
    pub fn with_bench_switch(mut self, bench: BenchSwitch) -> Self {
        self.bench = bench;
        self
    }

    /// The stamper of `camera` in `epoch`, taken from the grant rather than from
    /// whatever hub a lookup returned: what a viewer's frames are checked with.
    pub(crate) fn stamper(&self, camera: CameraId, epoch: BindingEpoch) -> Stamper {
        self.keys.stamper(camera, epoch)
    }

    /// The hub of the camera's main rendition.
    pub fn get(&self, camera: CameraId) -> Option<Arc<Hub>> {
        self.get_rendition(camera, Rendition::Main)
    }

    pub fn get_rendition(&self, camera: CameraId, rendition: Rendition) -> Option<Arc<Hub>> {
        self.hubs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(camera, rendition))
            .cloned()
    }

    /// The hub of the camera's main rendition, made if there is none yet.
    pub fn get_or_create(&self, camera: CameraId) -> Arc<Hub> {
        self.get_or_create_rendition(camera, Rendition::Main)
    }

    pub fn get_or_create_rendition(&self, camera: CameraId, rendition: Rendition) -> Arc<Hub> {
        if let Some(h) = self.get_rendition(camera, rendition) {
            return h;
        }
        let mut hubs = self
            .hubs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hubs.entry((camera, rendition))
            .or_insert_with(|| {
                let mut hub = Hub::new(camera, rendition, self.metrics.clone(), self.keys.clone());
                hub.bench = self.bench;
                Arc::new(hub)
            })
            .clone()
    }

    /// The camera's main rendition is being published.
    pub fn is_online(&self, camera: CameraId) -> bool {
        self.get(camera).is_some_and(|h| h.is_online())
    }

    /// How many cameras are publishing (their main rendition) now.
    pub fn live_count(&self) -> usize {
        let hubs: Vec<Arc<Hub>> = self
            .hubs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        hubs.iter()
            .filter(|h| h.rendition == Rendition::Main && h.is_online())
            .count()
    }

    /// Ends the publisher of every camera whose binding epoch has changed (transfer,
    /// reset): it must reconnect, and is checked again, under the new epoch.
    pub fn disconnect_past_epochs(&self, view: &hearth_access::view::AccessView) {
        let hubs: Vec<Arc<Hub>> = self
            .hubs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for hub in hubs {
            let mut inner = hub.lock();
            if inner.lease.is_some() && view.epoch_of(hub.camera).is_some_and(|e| e != inner.epoch)
            {
                tracing::info!(camera = ?hub.camera, "binding epoch changed: disconnecting its publisher");
                inner.lease = None;
                drop(inner);
                hub.changed.send_modify(|v| *v += 1);
            }
        }
    }

    /// Takes the publisher lease of every rendition of `camera` back (the camera
    /// was deleted): its ingest connection or pull ends at its next frame.
    pub fn disconnect(&self, camera: CameraId) {
        for rendition in [Rendition::Main, Rendition::Sub] {
            if let Some(hub) = self.get_rendition(camera, rendition) {
                let mut inner = hub.lock();
                if inner.lease.take().is_some() {
                    drop(inner);
                    hub.changed.send_modify(|v| *v += 1);
                }
            }
        }
    }

    /// Any hub but `camera`'s (fault injection picks its wrong answers here);
    /// one of `like`'s rendition when another camera has one, so a wrong hub
    /// lookup answers with a hub that holds the objects its playlists name.
    pub fn random_other(&self, camera: CameraId, like: Option<Rendition>) -> Option<Arc<Hub>> {
        let hubs = self
            .hubs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let others: Vec<&Arc<Hub>> = hubs
            .iter()
            .filter(|((c, _), _)| *c != camera)
            .map(|(_, h)| h)
            .collect();
        let alike: Vec<&Arc<Hub>> = others
            .iter()
            .copied()
            .filter(|h| like.is_some_and(|r| h.rendition == r))
            .collect();
        let pool = if alike.is_empty() { others } else { alike };
        if pool.is_empty() {
            return None;
        }
        Some(pool[rand::random_range(0..pool.len())].clone())
    }
}

/// One camera's live media, of one rendition.
pub struct Hub {
    camera: CameraId,
    rendition: Rendition,
    inner: Mutex<HubInner>,
    /// Bumped whenever the playlists change, so waiting viewers wake up.
    changed: watch::Sender<u64>,
    /// Bumped with every video frame and when the publisher goes: what frame-by-
    /// frame viewers (RTSP) wait on.
    frames: watch::Sender<u64>,
    next_lease: AtomicU64,
    /// Sequence numbers of access units (video and audio), across publishers.
    next_access_unit: AtomicU64,
    metrics: Arc<Metrics>,
    keys: Arc<MediaKeys>,
    /// Benchmarks only: segments stored unstamped and clear (see `hearth_access::switches`).
    bench: BenchSwitch,
    pub(crate) still: tokio::sync::Mutex<crate::hub::still::StillState>,
    /// When a viewer last asked for this camera's HLS media, and for its TS
    /// flavour (wall-clock ms; 0: never). See [`Hub::watched`].
    last_watched_ms: AtomicI64,
    last_ts_ms: AtomicI64,
}

struct HubSegment {
    seq: u64,
    fmp4_name: String,
    ts_name: String,
    duration_ms: u32,
    program_date_time: UnixMillis,
    /// The init segment this segment decodes with.
    init_name: String,
    /// Starts a new timeline (`EXT-X-DISCONTINUITY` before it).
    discontinuity: bool,
    /// The key that encrypts both flavours, and their IV.
    key: KeyId,
    iv: [u8; 16],
    key_name: String,
    /// False only under the bench switch: listed without `EXT-X-KEY`.
    encrypted: bool,
    /// Bytes of the muxed fMP4 flavour (for the master playlist's BANDWIDTH).
    fmp4_len: usize,
    /// Its LL-HLS parts, while it is among the newest [`SEGMENTS_WITH_PARTS`].
    parts: Vec<HubPart>,
    fmp4: Arc<LazySegment>,
    /// `None` once let go unwritten: nobody played TS while the segment was
    /// retained (its frames would otherwise stay alive beside the sealed fMP4).
    ts: Option<Arc<LazySegment>>,
}

impl HubSegment {
    fn name(&self, kind: MediaKind) -> &str {
        if kind == MediaKind::TsSegment {
            &self.ts_name
        } else {
            &self.fmp4_name
        }
    }

    fn flavour(&self, kind: MediaKind) -> Option<Arc<LazySegment>> {
        if kind == MediaKind::TsSegment {
            self.ts.clone()
        } else {
            Some(self.fmp4.clone())
        }
    }
}

/// One flavour of a segment, written, stamped and encrypted on its first request
/// and then reused; until then it is only references to the frames' bytes, which
/// the GOP cache shares. Cameras nobody watches — most of a
/// vendor's cameras at any moment — pay no segment muxing, crypto or second copy
/// at all, and a watched one pays only for the flavours its players ask for
/// (browsers never ask for TS). Sealing happens under this segment's own lock,
/// never the hub's; viewers asking for the same new segment at once wait for one
/// sealing. Once sealed, the sealed bytes are the only copy the segment holds.
struct LazySegment(Mutex<SegmentState>);

/// What a segment flavour is written from, on its first request.
enum Source {
    Fmp4(Fmp4Media),
    Ts(Box<TsMedia>),
    /// An LL-HLS part: one fragment of a segment.
    Part(FragmentMedia),
}

impl Source {
    fn bytes(&self) -> Bytes {
        match self {
            Source::Fmp4(m) => m.mux(),
            Source::Ts(m) => m.mux(),
            Source::Part(m) => m.mux(),
        }
    }
}

/// One LL-HLS part, as listed and served. Parts are numbered across the
/// camera's stream (not per segment), so the preload hint names the next part
/// before anyone knows whether it starts a new segment.
struct HubPart {
    name: String,
    duration_ms: u32,
    independent: bool,
    /// Sealed as segments are (in-band provenance, then AES-128 with its
    /// segment's key and IV), on its first request.
    object: Arc<LazySegment>,
}

/// The segment being recorded: what its parts are listed and encrypted with.
struct OpenSegment {
    seq: u64,
    program_date_time: UnixMillis,
    init_name: String,
    discontinuity: bool,
    keying: Keying,
    key_name: String,
    parts: Vec<HubPart>,
}

enum SegmentState {
    Muxed {
        /// [`MediaKind::Fmp4Segment`] or [`MediaKind::TsSegment`].
        kind: MediaKind,
        source: Source,
        prov: Provenance,
        /// `None` only in the bench's unguarded mode.
        key: Option<KeyId>,
        iv: [u8; 16],
    },
    Sealed(Arc<MediaObject>),
    Failed,
}

impl LazySegment {
    /// Not yet asked for: still only references to the frames.
    fn is_unwritten(&self) -> bool {
        matches!(
            *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            SegmentState::Muxed { .. }
        )
    }

    fn new(
        kind: MediaKind,
        source: Source,
        prov: Provenance,
        key: Option<KeyId>,
        iv: [u8; 16],
    ) -> Arc<Self> {
        Arc::new(Self(Mutex::new(SegmentState::Muxed {
            kind,
            source,
            prov,
            key,
            iv,
        })))
    }
}

/// An init segment: its name, the muxer's bytes (to notice a change) and the
/// stamped object viewers get.
struct Init {
    name: String,
    raw: Bytes,
    object: Arc<MediaObject>,
}

/// How a segment (and its parts) is encrypted.
#[derive(Clone, Copy)]
struct Keying {
    key: KeyId,
    iv: [u8; 16],
    encrypted: bool,
}

#[derive(Clone)]
pub struct Playlists {
    /// fMP4 segments with LL-HLS parts (a player without LL-HLS plays the segments).
    pub fmp4: Arc<MediaObject>,
    pub ts: Arc<MediaObject>,
    /// How the master playlist lists this rendition.
    pub variant: Variant,
}

/// One rendition's line in the master playlist.
#[derive(Clone, Debug)]
pub struct Variant {
    pub rendition: Rendition,
    /// Peak bits per second of the listed segments.
    pub bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
}

/// The segments a playlist lists: fMP4 (with LL-HLS parts) for browsers and
/// hls.js, MPEG-TS for Cast receivers and Alexa's HLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Fmp4,
    Ts,
}

/// The master playlist of a camera in one container: its main rendition and,
/// when it is being published, its sub rendition, so any HLS player can move
/// between them. It carries the main playlist's provenance.
pub fn master_playlist(
    main: &Playlists,
    sub: Option<&Playlists>,
    container: Container,
) -> Arc<MediaObject> {
    let variants: Vec<playlist::VariantEntry<'_>> = std::iter::once(main)
        .chain(sub)
        .map(|p| playlist::VariantEntry {
            uri: media_playlist_name(p.variant.rendition, container),
            bandwidth: p.variant.bandwidth,
            codecs: &p.variant.codecs,
            resolution: p.variant.resolution,
        })
        .collect();
    MediaObject::new(
        *main.fmp4.provenance(),
        MediaKind::MasterPlaylist,
        Bytes::from(playlist::multivariant_playlist(&variants)),
    )
}

/// The media playlist of a rendition in a container, as the master names it.
pub fn media_playlist_name(rendition: Rendition, container: Container) -> &'static str {
    match (rendition, container) {
        (Rendition::Main, Container::Fmp4) => "live.m3u8",
        (Rendition::Sub, Container::Fmp4) => "sub.m3u8",
        (Rendition::Main, Container::Ts) => "ts.m3u8",
        (Rendition::Sub, Container::Ts) => "sub-ts.m3u8",
    }
}

/// What names every object of a rendition begin with.
pub fn object_prefix(rendition: Rendition) -> &'static str {
    match rendition {
        Rendition::Main => "",
        Rendition::Sub => "sub-",
    }
}

/// The rendition an object name belongs to, and the name without its prefix.
pub fn rendition_of(name: &str) -> (Rendition, &str) {
    match name.strip_prefix(object_prefix(Rendition::Sub)) {
        Some(rest) => (Rendition::Sub, rest),
        None => (Rendition::Main, name),
    }
}

/// A consistent view of the newest GOP, for the still-image decoder.
#[derive(Clone)]
pub struct GopSnapshot {
    pub epoch: BindingEpoch,
    pub config: AvcConfig,
    /// Identifies the GOP: changes with every keyframe and every publisher.
    pub gop_id: u64,
    /// From the keyframe to the newest frame.
    pub frames: Vec<VideoFrame>,
    /// Wall-clock capture time of `frames[0]`, and the mapping for the rest.
    pub clock_anchor_ms: i64,
}

/// Where a frame-by-frame viewer is in a camera's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCursor {
    gop_id: u64,
    next: usize,
}

/// New frames for a frame-by-frame viewer (see [`Hub::frames_after`]).
pub struct FrameBatch {
    /// The publisher's lease: a new one is a new timeline.
    pub lease: u64,
    pub epoch: BindingEpoch,
    /// `None` before the publisher's first codec configuration (then no frames).
    pub config: Option<AvcConfig>,
    /// In decode order; the first is a keyframe when the GOP changed.
    pub frames: Vec<VideoFrame>,
    /// Pass to the next call.
    pub cursor: FrameCursor,
}

#[derive(Default)]
struct HubInner {
    lease: Option<u64>,
    epoch: BindingEpoch,
    video_config: Option<AvcConfig>,
    codecs: Option<String>,
    resolution: Option<(u32, u32)>,
    gop: GopCache,
    gop_id: u64,
    /// wall clock (ms) = anchor + RTMP dts (ms)
    clock_anchor_ms: i64,
    init_version: u64,
    /// Init segments referenced by retained segments, oldest first.
    inits: VecDeque<Init>,
    segments: VecDeque<HubSegment>,
    next_seq: u64,
    /// Discontinuities ever published; with the ones still listed this yields
    /// `EXT-X-DISCONTINUITY-SEQUENCE`.
    discontinuities: u64,
    /// The next segment starts a new timeline (a publisher reconnected).
    pending_discontinuity: bool,
    /// The segment being recorded, once its first part is out.
    open: Option<OpenSegment>,
    /// The number of the next LL-HLS part.
    next_part: u64,
    /// The provenance of the newest segment or part: what playlists carry.
    newest: Option<Provenance>,
    /// Rendered on request after a change (`None`: to be rendered).
    playlists: Option<Playlists>,
}

#[derive(Debug, thiserror::Error)]
#[error("camera already has a live publisher")]
pub struct AlreadyLive;

impl Hub {
    fn new(
        camera: CameraId,
        rendition: Rendition,
        metrics: Arc<Metrics>,
        keys: Arc<MediaKeys>,
    ) -> Self {
        // Segments and parts are numbered from the wall clock in tenths of a
        // second, not from 0: a hub made later (this node restarted, or another
        // node relaying the camera) never reuses a name an earlier hub gave
        // other bytes, which a CDN keeping `immutable` segments by name would
        // otherwise serve (both count up by fewer than ten a second).
        let first = u64::try_from(hearth_access::clock::now().0 / 100).unwrap_or(0);
        Self {
            camera,
            rendition,
            inner: Mutex::new(HubInner {
                next_seq: first,
                next_part: first,
                ..HubInner::default()
            }),
            changed: watch::channel(0).0,
            frames: watch::channel(0).0,
            next_lease: AtomicU64::new(1),
            next_access_unit: AtomicU64::new(0),
            metrics,
            keys,
            bench: BenchSwitch::default(),
            still: tokio::sync::Mutex::new(crate::hub::still::StillState::default()),
            last_watched_ms: AtomicI64::new(0),
            last_ts_ms: AtomicI64::new(0),
        }
    }

    /// A viewer asked for this camera's HLS media (`ts`: its TS flavour): the
    /// hub keeps the whole window (of that flavour) while that is recent.
    pub fn touch(&self, ts: bool) {
        let now = hearth_access::clock::now().0;
        self.last_watched_ms.fetch_max(now, Ordering::Relaxed);
        if ts {
            self.last_ts_ms.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn recent(at: &AtomicI64) -> bool {
        hearth_access::clock::now().0 - at.load(Ordering::Relaxed) < WATCHED_FOR_MS
    }

    /// Someone asked for this camera's HLS media in the last [`WATCHED_FOR_MS`].
    fn watched(&self) -> bool {
        Self::recent(&self.last_watched_ms)
    }

    /// Someone asked for this camera's TS in the last [`WATCHED_FOR_MS`].
    fn ts_wanted(&self) -> bool {
        Self::recent(&self.last_ts_ms)
    }

    pub fn camera(&self) -> CameraId {
        self.camera
    }

    pub fn rendition(&self) -> Rendition {
        self.rendition
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        // Every critical section leaves the state consistent, so a panic elsewhere
        // while the lock was held must not take the camera (or the process) down.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_online(&self) -> bool {
        self.lock().lease.is_some()
    }

    /// The picture size of the current stream, once its SPS has been seen.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.lock().resolution
    }

    /// The binding epoch of the current (or last) publisher.
    pub fn epoch(&self) -> BindingEpoch {
        self.lock().epoch
    }

    fn provenance(&self, epoch: BindingEpoch, seq: u64, capture_time: UnixMillis) -> Provenance {
        Provenance {
            camera: self.camera,
            epoch,
            seq,
            capture_time,
            rendition: self.rendition,
        }
    }

    /// Takes the publisher lease. A camera has at most one live publisher.
    pub fn claim(self: &Arc<Self>, epoch: BindingEpoch) -> Result<Publisher, AlreadyLive> {
        let mut inner = self.lock();
        if inner.lease.is_some() {
            return Err(AlreadyLive);
        }
        let lease = self.next_lease.fetch_add(1, Ordering::Relaxed);
        inner.lease = Some(lease);
        if inner.epoch != epoch {
            // A new binding: nothing of the old epoch may be listed under the new one.
            inner.segments.clear();
            inner.inits.clear();
            inner.newest = None;
        }
        inner.playlists = None;
        inner.epoch = epoch;
        // A reconnect continues the window with a new timeline; the parts of a
        // segment the last publisher left unfinished are let go.
        inner.pending_discontinuity = true;
        inner.open = None;
        inner.video_config = None;
        inner.gop.clear();
        inner.gop_id += 1;
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
        Ok(Publisher {
            hub: self.clone(),
            stamper: self
                .keys
                .stamper(self.camera, epoch)
                .for_rendition(self.rendition),
            lease,
            segmenter: Segmenter::new(SegmenterConfig {
                target_duration_ms: TARGET_DURATION_MS,
                part_target_ms: PART_TARGET_MS,
            }),
            anchor: None,
            flush_on_drop: true,
        })
    }

    /// The current playlists, if at least one segment exists (rendered now if
    /// anything changed since they last were).
    pub fn playlists(&self) -> Option<Playlists> {
        let mut inner = self.lock();
        inner.lease?;
        if inner.playlists.is_none() {
            let newest = inner.newest?;
            if inner.segments.is_empty() {
                return None;
            }
            let rendered = self.render_playlists(&inner, newest);
            inner.playlists = Some(rendered);
        }
        inner.playlists.clone()
    }

    /// Whether the media playlist lists segment `msn` complete, or (with
    /// `part`) that part of it: what a blocking playlist reload waits for.
    fn lists(&self, msn: u64, part: Option<u32>) -> bool {
        let inner = self.lock();
        if inner.segments.is_empty() {
            return false;
        }
        if msn < inner.next_seq {
            return true;
        }
        match (part, &inner.open) {
            (Some(p), Some(open)) => open.seq == msn && open.parts.len() > p as usize,
            _ => false,
        }
    }

    /// The number of the newest segment listed (complete or being recorded).
    pub fn last_msn(&self) -> Option<u64> {
        let inner = self.lock();
        match &inner.open {
            Some(o) => Some(o.seq),
            None => inner.segments.back().map(|s| s.seq),
        }
    }

    /// LL-HLS blocking playlist reload (RFC 8216bis §6.2.5.2): waits until the
    /// playlist lists segment `msn` (and part `part` of it), at most `timeout`.
    /// `false` if it did not come in time or the camera went offline.
    pub async fn wait_for_media(&self, msn: u64, part: Option<u32>, timeout: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.lists(msn, part) {
                return true;
            }
            if !self.is_online() {
                return false;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return self.lists(msn, part),
            }
        }
    }

    /// The part named `name` is the next one or the one after (the preload hint
    /// names it before it exists): a request for it may wait.
    fn is_coming_part(&self, name: &str) -> bool {
        let inner = self.lock();
        let number = name
            .strip_prefix(&self.part_name_stem(inner.epoch))
            .and_then(|r| r.strip_suffix(".m4s"))
            .and_then(|n| n.parse::<u64>().ok());
        number.is_some_and(|n| n >= inner.next_part && n <= inner.next_part + 1)
    }

    fn part_name_stem(&self, epoch: BindingEpoch) -> String {
        format!(
            "{}{}-{}-p",
            object_prefix(self.rendition),
            self.camera,
            epoch
        )
    }

    /// The named object, waiting (at most `timeout`) if it is an LL-HLS part
    /// that is about to be published: a player asks for the hinted part before
    /// it exists, and is answered the moment it does.
    pub async fn wait_for_object(
        &self,
        kind: MediaKind,
        name: &str,
        timeout: Duration,
    ) -> Option<Arc<MediaObject>> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(o) = self.object(kind, name) {
                return Some(o);
            }
            if kind != MediaKind::Fmp4Segment || !self.is_coming_part(name) || !self.is_online() {
                return None;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return self.object(kind, name);
            }
        }
    }

    /// Waits (bounded) until the camera has playlists: a viewer who arrives
    /// while the first GOP is still being recorded is answered as soon as the
    /// segment completes.
    pub async fn wait_for_playlists(&self, timeout: Duration) -> Option<Playlists> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self.playlists() {
                return Some(p);
            }
            if !self.is_online() {
                return None;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return self.playlists(),
            }
        }
    }

    /// Some object of `kind` this hub holds (for fault injection).
    pub fn any_object(&self, kind: MediaKind) -> Option<Arc<MediaObject>> {
        let inner = self.lock();
        match kind {
            MediaKind::InitSegment => inner.inits.back().map(|i| i.object.clone()),
            MediaKind::Fmp4Segment | MediaKind::TsSegment => {
                let lazy = inner.segments.back().and_then(|s| s.flavour(kind));
                drop(inner);
                lazy.and_then(|l| self.sealed(&l))
            }
            MediaKind::MasterPlaylist => inner
                .playlists
                .as_ref()
                .map(|p| master_playlist(p, None, Container::Fmp4)),
            MediaKind::MediaPlaylist => inner.playlists.as_ref().map(|p| p.fmp4.clone()),
            MediaKind::Key => inner.segments.back().and_then(|s| self.key_for(&s.key)),
            MediaKind::Snapshot => None,
        }
    }

    /// The AES key named `name`, if this hub's retained segments use it. Keys are
    /// media objects with this camera's provenance, so they leave only through the
    /// egress door, under a grant for this camera and epoch.
    pub fn key(&self, name: &str) -> Option<Arc<MediaObject>> {
        let id = KeyId::parse(name.strip_prefix(object_prefix(self.rendition))?)?;
        if id.camera != self.camera {
            return None;
        }
        let inner = self.lock();
        let used = inner.segments.iter().any(|s| s.key == id)
            || inner.open.as_ref().is_some_and(|o| o.keying.key == id);
        drop(inner);
        if !used {
            return None;
        }
        self.key_for(&id)
    }

    fn key_for(&self, id: &KeyId) -> Option<Arc<MediaObject>> {
        let key = self.keys.segment_key(id);
        let start =
            UnixMillis((id.period as i64).saturating_mul(hearth_access::keys::KEY_PERIOD_MS));
        let prov = self.provenance(id.epoch, id.period, start);
        Some(MediaObject::new(
            prov,
            MediaKind::Key,
            Bytes::copy_from_slice(&key),
        ))
    }

    /// The key and IV of a segment; nothing is encrypted yet (see [`LazySegment`]).
    fn keying(&self, prov: &Provenance) -> Keying {
        Keying {
            key: KeyId::for_time(prov.camera, prov.epoch, prov.capture_time),
            iv: crypt::sequence_iv(prov.seq),
            // Bench switch only (constant true in production builds).
            encrypted: !self.bench.unguarded(),
        }
    }

    /// A segment flavour, sealed: stamped with its provenance (in-band) and
    /// encrypted under the camera's key for its epoch and hour, on its first
    /// request, once.
    fn sealed(&self, lazy: &LazySegment) -> Option<Arc<MediaObject>> {
        let mut state = lazy
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let SegmentState::Muxed {
            kind,
            source,
            prov,
            key,
            iv,
        } = &*state
        {
            let bytes = source.bytes();
            let sealed = match key {
                None => Ok(bytes),
                Some(key) => {
                    let record = self.keys.stamp(prov, &bytes);
                    let stamped = if *kind == MediaKind::TsSegment {
                        ts::insert_provenance(&bytes, &record)
                    } else {
                        fmp4::insert_provenance(&bytes, &record)
                    };
                    stamped.map(|stamped| {
                        crypt::encrypt_segment(&self.keys.segment_key(key), iv, &stamped)
                    })
                }
            };
            *state = match sealed {
                // Held where every viewer's socket can send it without a copy.
                Ok(b) => {
                    SegmentState::Sealed(MediaObject::new(*prov, *kind, hearth_zerocopy::seal(b)))
                }
                Err(e) => {
                    tracing::error!(camera = ?self.camera, seq = prov.seq, ?kind, error = %e, "segment cannot be sealed");
                    SegmentState::Failed
                }
            };
        }
        match &*state {
            SegmentState::Sealed(o) => Some(o.clone()),
            _ => None,
        }
    }

    /// The still most recently made, if the still cache is not busy.
    pub fn cached_still(&self) -> Option<Arc<MediaObject>> {
        self.still.try_lock().ok().and_then(|s| s.cached_object())
    }

    /// The named object of `kind` (init segment, either flavour of segment, or
    /// key), if this hub holds it. Names embed the camera, so another camera's name
    /// finds nothing here.
    pub fn object(&self, kind: MediaKind, name: &str) -> Option<Arc<MediaObject>> {
        if kind == MediaKind::Key {
            return self.key(name);
        }
        let inner = self.lock();
        match kind {
            MediaKind::InitSegment => inner
                .inits
                .iter()
                .find(|i| i.name == name)
                .map(|i| i.object.clone()),
            MediaKind::Fmp4Segment | MediaKind::TsSegment => {
                let mut lazy = inner
                    .segments
                    .iter()
                    .find(|s| s.name(kind) == name)
                    .and_then(|s| s.flavour(kind));
                if lazy.is_none() && kind == MediaKind::Fmp4Segment {
                    // An LL-HLS part, of the open segment or a recent one.
                    let listed = inner.segments.iter().rev().flat_map(|s| &s.parts);
                    lazy = inner
                        .open
                        .iter()
                        .flat_map(|o| &o.parts)
                        .chain(listed)
                        .find(|p| p.name == name)
                        .map(|p| p.object.clone());
                }
                drop(inner);
                lazy.and_then(|l| self.sealed(&l))
            }
            _ => None,
        }
    }

    /// The newest GOP, for the still decoder. `None` while offline or before a keyframe.
    pub fn newest_gop(&self) -> Option<GopSnapshot> {
        let inner = self.lock();
        inner.lease?;
        let frames = inner.gop.current();
        if frames.is_empty() {
            return None;
        }
        Some(GopSnapshot {
            epoch: inner.epoch,
            config: inner.video_config.clone()?,
            gop_id: inner.gop_id,
            frames: frames.to_vec(),
            clock_anchor_ms: inner.clock_anchor_ms,
        })
    }

    /// Wakes with every new frame (and when the camera goes offline).
    pub fn subscribe_frames(&self) -> watch::Receiver<u64> {
        self.frames.subscribe()
    }

    /// The frames a frame-by-frame viewer has not had yet: those of the newest GOP
    /// after `cursor`, or the whole GOP from its keyframe when the GOP changed
    /// (or on the first call). The batch is empty between a new codec
    /// configuration and its first keyframe. `None` while offline.
    pub fn frames_after(&self, cursor: Option<FrameCursor>) -> Option<FrameBatch> {
        let inner = self.lock();
        let lease = inner.lease?;
        let gop = inner.gop.current();
        let from = match cursor {
            Some(c) if c.gop_id == inner.gop_id => c.next.min(gop.len()),
            _ => 0,
        };
        Some(FrameBatch {
            lease,
            epoch: inner.epoch,
            config: inner.video_config.clone(),
            frames: gop[from..].to_vec(),
            cursor: FrameCursor {
                gop_id: inner.gop_id,
                next: gop.len(),
            },
        })
    }

    /// The video bitrate the current GOP shows (bits per second), if it spans
    /// some time: what a frame-by-frame sender sizes its buffers by.
    pub fn gop_bitrate(&self) -> Option<u64> {
        let inner = self.lock();
        let gop = inner.gop.current();
        let (first, last) = (gop.first()?, gop.last()?);
        let span_ms = u64::try_from(last.dts_ms - first.dts_ms)
            .ok()
            .filter(|&s| s > 0)?;
        let bytes: u64 = gop.iter().map(|f| f.data.len() as u64).sum();
        // The last frame's bytes cover one more frame interval than the span.
        let frames = gop.len() as u64;
        Some(bytes * 8 * 1000 * (frames - 1) / frames / span_ms)
    }

    /// What a stream description needs, without copying frames: the binding
    /// epoch, the codec configuration and the frame rate the current GOP shows.
    /// `None` while offline or before the codec configuration.
    pub fn video_info(&self) -> Option<(BindingEpoch, AvcConfig, Option<u32>)> {
        let inner = self.lock();
        inner.lease?;
        let gop = inner.gop.current();
        let framerate = match (gop.first(), gop.last()) {
            (Some(first), Some(last)) if last.dts_ms > first.dts_ms => {
                let (frames, span_ms) = ((gop.len() - 1) as i64, last.dts_ms - first.dts_ms);
                u32::try_from((frames * 1000 + span_ms / 2) / span_ms).ok()
            }
            _ => None,
        };
        Some((inner.epoch, inner.video_config.clone()?, framerate))
    }

    /// The stamper of this camera's rendition in `epoch`: what the still cache
    /// checks frames with and stamps stills with.
    pub(crate) fn stamper(&self, epoch: BindingEpoch) -> Stamper {
        self.keys
            .stamper(self.camera, epoch)
            .for_rendition(self.rendition)
    }

    /// Bench switch only (constant false in production builds).
    pub(crate) fn unguarded(&self) -> bool {
        self.bench.unguarded()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts listing the segment being recorded, at its first part: its
    /// number, date, key and IV, and its init segment (a new one when the
    /// codec configuration changed, which also starts a new timeline).
    fn begin_segment(
        &self,
        inner: &mut HubInner,
        first_dts_ms: i64,
        discontinuity: bool,
        init: &Bytes,
    ) -> Option<()> {
        let epoch = inner.epoch;
        let seq = inner.next_seq;
        let pdt = UnixMillis(inner.clock_anchor_ms + first_dts_ms);
        let prov = self.provenance(epoch, seq, pdt);
        let keying = self.keying(&prov);
        // Each segment carries the exact init it needs; a new one (first segment,
        // changed codec config) gets a new name and starts a new timeline.
        let init_changed = inner.inits.back().is_none_or(|i| i.raw != *init);
        if init_changed {
            inner.init_version += 1;
            let name = format!(
                "{}init-{}-{}-{}.mp4",
                object_prefix(self.rendition),
                self.camera,
                epoch,
                inner.init_version
            );
            // Init segments stay clear (RFC 8216 EXT-X-MAP) but carry provenance.
            let stamped = match fmp4::insert_provenance(init, &self.keys.stamp(&prov, init)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(camera = ?self.camera, error = %e, "segment dropped: cannot stamp init");
                    return None;
                }
            };
            let object = MediaObject::new(prov, MediaKind::InitSegment, stamped);
            inner.inits.push_back(Init {
                name,
                raw: init.clone(),
                object,
            });
        }
        let init_name = inner
            .inits
            .back()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let discontinuity = !inner.segments.is_empty()
            && (inner.pending_discontinuity || discontinuity || init_changed);
        inner.pending_discontinuity = false;
        if discontinuity {
            inner.discontinuities += 1;
        }
        inner.open = Some(OpenSegment {
            seq,
            program_date_time: pdt,
            init_name,
            discontinuity,
            key_name: format!("{}{}", object_prefix(self.rendition), keying.key.name()),
            keying,
            parts: Vec::new(),
        });
        Some(())
    }

    /// Lists a new LL-HLS part of the segment being recorded.
    fn publish_part(&self, lease: u64, part: Part) {
        let mut inner = self.lock();
        if inner.lease != Some(lease) {
            return;
        }
        if part.index == 0 || inner.open.is_none() {
            inner.open = None;
            if self
                .begin_segment(
                    &mut inner,
                    part.first_dts_ms,
                    part.discontinuity,
                    &part.init,
                )
                .is_none()
            {
                return;
            }
        }
        let number = inner.next_part;
        inner.next_part += 1;
        let capture = UnixMillis(inner.clock_anchor_ms + part.first_dts_ms);
        let prov = self.provenance(inner.epoch, number, capture);
        let name = format!("{}{number}.m4s", self.part_name_stem(inner.epoch));
        let Some(open) = inner.open.as_mut() else {
            return;
        };
        let keying = open.keying;
        open.parts.push(HubPart {
            name,
            duration_ms: part.duration_ms,
            independent: part.independent,
            object: LazySegment::new(
                MediaKind::Fmp4Segment,
                Source::Part(part.fmp4),
                prov,
                keying.encrypted.then_some(keying.key),
                keying.iv,
            ),
        });
        inner.newest = Some(prov);
        inner.playlists = None;
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
    }

    fn publish_segment(&self, lease: u64, seg: Segment) {
        let mut inner = self.lock();
        if inner.lease != Some(lease) {
            return;
        }
        if inner.open.is_none()
            && self
                .begin_segment(&mut inner, seg.first_dts_ms, seg.discontinuity, &seg.init)
                .is_none()
        {
            return;
        }
        let Some(open) = inner.open.take() else {
            return;
        };
        let seq = open.seq;
        inner.next_seq = seq + 1;
        let prov = self.provenance(inner.epoch, seq, open.program_date_time);
        let keying = open.keying;
        let base = format!(
            "{}{}-{}-{}",
            object_prefix(self.rendition),
            self.camera,
            inner.epoch,
            seq
        );
        inner.segments.push_back(HubSegment {
            seq,
            fmp4_name: format!("{base}.m4s"),
            ts_name: format!("{base}.ts"),
            duration_ms: seg.duration_ms,
            program_date_time: open.program_date_time,
            init_name: open.init_name,
            discontinuity: open.discontinuity,
            key: keying.key,
            iv: keying.iv,
            key_name: open.key_name,
            encrypted: keying.encrypted,
            fmp4_len: seg.fmp4.media_len(),
            parts: open.parts,
            fmp4: LazySegment::new(
                MediaKind::Fmp4Segment,
                Source::Fmp4(seg.fmp4),
                prov,
                keying.encrypted.then_some(keying.key),
                keying.iv,
            ),
            ts: Some(LazySegment::new(
                MediaKind::TsSegment,
                Source::Ts(Box::new(seg.ts)),
                prov,
                keying.encrypted.then_some(keying.key),
                keying.iv,
            )),
        });
        // Nobody watching: only the newest segment stays, for the next viewer to
        // start with at once.
        let retained = if self.watched() { RETAINED_SEGMENTS } else { 1 };
        while inner.segments.len() > retained {
            inner.segments.pop_front();
        }
        // Parts are listed for the newest segments only.
        let with_parts = inner.segments.len().saturating_sub(SEGMENTS_WITH_PARTS);
        for s in inner.segments.iter_mut().take(with_parts) {
            s.parts = Vec::new();
        }
        if !self.ts_wanted() {
            // Nobody plays TS: only the newest segment keeps its TS unwritten, for
            // the first TS viewer to start with at once.
            let older = inner.segments.len() - 1;
            for s in inner.segments.iter_mut().take(older) {
                if s.ts.as_ref().is_some_and(|t| t.is_unwritten()) {
                    s.ts = None;
                }
            }
        }
        let HubInner {
            inits, segments, ..
        } = &mut *inner;
        inits.retain(|i| segments.iter().any(|s| s.init_name == i.name));
        inner.newest = Some(prov);
        inner.playlists = None;
        drop(inner);
        self.metrics.segments_produced.inc();
        self.changed.send_modify(|v| *v += 1);
    }

    fn release(&self, lease: u64) {
        let mut inner = self.lock();
        if inner.lease == Some(lease) {
            inner.lease = None;
            inner.gop.clear();
            inner.gop_id += 1;
            inner.open = None;
            inner.playlists = None;
        }
        drop(inner);
        self.changed.send_modify(|v| *v += 1);
        self.frames.send_modify(|v| *v += 1);
    }
}

impl Hub {
    fn render_playlists(&self, inner: &HubInner, prov: Provenance) -> Playlists {
        let listed: Vec<&HubSegment> = {
            let skip = inner.segments.len().saturating_sub(PLAYLIST_WINDOW);
            inner.segments.iter().skip(skip).collect()
        };
        let target_s = playlist::target_duration_s(listed.iter().map(|s| s.duration_ms))
            .max(TARGET_DURATION_MS / 1000);
        fn entry<'a>(s: &HubSegment, uri: &'a str) -> playlist::PlaylistEntry<'a> {
            playlist::PlaylistEntry {
                uri,
                duration_ms: s.duration_ms,
                program_date_time_ms: s.program_date_time.0,
                discontinuity: s.discontinuity,
            }
        }
        fn parts(parts: &[HubPart]) -> Vec<playlist::PartEntry<'_>> {
            parts
                .iter()
                .map(|p| playlist::PartEntry {
                    uri: &p.name,
                    duration_ms: p.duration_ms,
                    independent: p.independent,
                })
                .collect()
        }
        // RFC 8216 4.3.3.3: the number of discontinuities that have left the playlist.
        let discontinuity_sequence =
            |listed_discontinuities: u64| inner.discontinuities - listed_discontinuities;

        // fMP4, with LL-HLS parts.
        let segment_parts: Vec<Vec<playlist::PartEntry<'_>>> =
            listed.iter().map(|s| parts(&s.parts)).collect();
        let open_parts = inner.open.as_ref().map(|o| parts(&o.parts));
        let mut entries: Vec<playlist::LlEntry<'_>> = listed
            .iter()
            .zip(&segment_parts)
            .map(|(s, p)| playlist::LlEntry {
                segment: playlist::KeyedEntry {
                    map_uri: Some(s.init_name.as_str()),
                    key: s.encrypted.then_some(playlist::KeyRef {
                        uri: &s.key_name,
                        iv: s.iv,
                    }),
                    entry: entry(s, &s.fmp4_name),
                },
                parts: p,
                complete: true,
            })
            .collect();
        let mut listed_discontinuities = listed.iter().filter(|s| s.discontinuity).count() as u64;
        if let (Some(o), Some(p)) = (&inner.open, &open_parts) {
            listed_discontinuities += u64::from(o.discontinuity);
            entries.push(playlist::LlEntry {
                segment: playlist::KeyedEntry {
                    map_uri: Some(o.init_name.as_str()),
                    key: o.keying.encrypted.then_some(playlist::KeyRef {
                        uri: &o.key_name,
                        iv: o.keying.iv,
                    }),
                    entry: playlist::PlaylistEntry {
                        uri: "",
                        duration_ms: 0,
                        program_date_time_ms: o.program_date_time.0,
                        discontinuity: o.discontinuity,
                    },
                },
                parts: p,
                complete: false,
            });
        }
        let hint = format!(
            "{}{}.m4s",
            self.part_name_stem(inner.epoch),
            inner.next_part
        );
        let fmp4 = playlist::media_playlist_ll(
            target_s,
            listed.first().map_or(0, |s| s.seq),
            discontinuity_sequence(listed_discontinuities),
            Some(&playlist::LowLatency {
                part_target_ms: PART_TARGET_MS,
                part_hold_back_ms: PART_HOLD_BACK_MS,
                preload_hint: Some(&hint),
            }),
            &entries,
        );

        // TS: the newest run of segments that still have it (see `publish_segment`);
        // the newest always does. No parts: Cast receivers play segments.
        let ts_listed: Vec<&HubSegment> = {
            let run = listed.iter().rev().take_while(|s| s.ts.is_some()).count();
            listed[listed.len() - run..].to_vec()
        };
        let ts_entries: Vec<playlist::KeyedEntry<'_>> = ts_listed
            .iter()
            .map(|s| playlist::KeyedEntry {
                map_uri: None,
                key: s.encrypted.then_some(playlist::KeyRef {
                    uri: &s.key_name,
                    iv: s.iv,
                }),
                entry: entry(s, &s.ts_name),
            })
            .collect();
        let ts = playlist::media_playlist_keyed(
            target_s,
            ts_listed.first().map_or(0, |s| s.seq),
            discontinuity_sequence(ts_listed.iter().filter(|s| s.discontinuity).count() as u64),
            &ts_entries,
        );
        let bandwidth = listed
            .iter()
            .map(|s| s.fmp4_len as u64 * 8 * 1000 / u64::from(s.duration_ms.max(1)))
            .max()
            .unwrap_or(1_000_000);
        Playlists {
            fmp4: MediaObject::new(prov, MediaKind::MediaPlaylist, Bytes::from(fmp4)),
            ts: MediaObject::new(prov, MediaKind::MediaPlaylist, Bytes::from(ts)),
            variant: Variant {
                rendition: self.rendition,
                bandwidth,
                codecs: inner
                    .codecs
                    .clone()
                    .unwrap_or_else(|| "avc1.42e01f".to_owned()),
                resolution: inner.resolution,
            },
        }
    }
}

/// The publisher lease of one ingest connection. Owns the segmenter (the sans-IO
/// core); the hub only sees finished objects. Dropping it takes the camera offline.
pub struct Publisher {
    hub: Arc<Hub>,
    /// Tags every access unit with the camera's provenance as it arrives.
    stamper: Stamper,
    lease: u64,
    segmenter: Segmenter,
    /// Wall-clock ms minus RTMP ms, fixed at the first frame.
    anchor: Option<i64>,
    /// False once the open segment must not be published (see [`Publisher::discard`]).
    flush_on_drop: bool,
}

impl Publisher {
    pub fn camera(&self) -> CameraId {
        self.hub.camera
    }

    pub fn rendition(&self) -> Rendition {
        self.hub.rendition
    }

    /// Ends publishing without publishing the open segment: its media did not
    /// verify, so it must never reach a viewer.
    pub fn discard(mut self) {
        self.flush_on_drop = false;
    }

    /// False once the hub has taken the lease back (the camera's binding changed).
    pub fn is_live(&self) -> bool {
        self.hub.lock().lease == Some(self.lease)
    }

    pub fn set_video_config(&mut self, config: AvcConfig) {
        self.segmenter.set_video_config(config.clone());
        let mut inner = self.hub.lock();
        if inner.lease == Some(self.lease) {
            inner.video_config = Some(config);
            inner.codecs = self.segmenter.codecs();
            inner.resolution = self.segmenter.resolution();
            inner.gop.clear();
            inner.gop_id += 1;
        }
    }

    pub fn set_audio_config(&mut self, config: hearth_media::aac::AacConfig) {
        self.segmenter.set_audio_config(config);
        let mut inner = self.hub.lock();
        if inner.lease == Some(self.lease) {
            inner.codecs = self.segmenter.codecs();
        }
    }

    fn anchor(&mut self, dts_ms: i64, now: UnixMillis) -> i64 {
        *self.anchor.get_or_insert(now.0 - dts_ms)
    }

    /// The provenance record of an access unit of this camera: the stamp of the
    /// connection that authenticated with the camera's credential (and, for a
    /// signing camera, verified its GOP signatures). Outside the hub lock.
    fn stamp(&self, capture_ms: i64, data: &[u8]) -> Option<ProvenanceRecord> {
        if self.hub.bench.unguarded() {
            return None; // bench switch only (constant false in production builds)
        }
        let seq = self.hub.next_access_unit.fetch_add(1, Ordering::Relaxed);
        Some(self.stamper.stamp(seq, UnixMillis(capture_ms), data))
    }

    pub fn push_video(&mut self, mut frame: VideoFrame, now: UnixMillis) {
        let anchor = self.anchor(frame.dts_ms, now);
        frame.provenance = self.stamp(anchor + frame.dts_ms, &frame.data);
        {
            let mut inner = self.hub.lock();
            if inner.lease != Some(self.lease) {
                return;
            }
            inner.clock_anchor_ms = anchor;
            if frame.keyframe {
                inner.gop_id += 1;
            }
            inner.gop.push(frame.clone());
        }
        self.hub.frames.send_modify(|v| *v += 1);
        let seg = self.segmenter.push_video(frame);
        self.publish(seg);
    }

    /// Hands the segmenter's closed parts, then `seg` (which they come before),
    /// to the hub.
    fn publish(&mut self, seg: Option<Segment>) {
        while let Some(part) = self.segmenter.pop_part() {
            self.hub.publish_part(self.lease, part);
        }
        if let Some(seg) = seg {
            self.hub.publish_segment(self.lease, seg);
        }
    }

    pub fn push_audio(&mut self, mut frame: AudioFrame, now: UnixMillis) {
        let anchor = self.anchor(frame.pts_ms, now);
        frame.provenance = self.stamp(anchor + frame.pts_ms, &frame.data);
        let seg = self.segmenter.push_audio(frame);
        self.publish(seg);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.flush_on_drop {
            let seg = self.segmenter.flush();
            self.publish(seg);
        }
        self.hub.release(self.lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    /// An ISO BMFF box.
    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    /// Structurally valid (if meaningless) segments: provenance insertion parses them.
    fn segment(first_dts_ms: i64, init: &'static [u8]) -> Segment {
        let sample = hearth_media::fmp4::VideoSample {
            duration_90k: 180_000,
            cts_offset_90k: 0,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        };
        let fmp4 = Fmp4Media::new(1, first_dts_ms.max(0) as u64 * 90, vec![sample], 0, vec![]);
        // The TS flavour from a segmenter: one keyframe of x264's 640x360.
        let sps: &[u8] = &[
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00,
            0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
        ];
        let pps: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let mut record = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1, 0, sps.len() as u8];
        record.extend_from_slice(sps);
        record.extend_from_slice(&[1, 0, pps.len() as u8]);
        record.extend_from_slice(pps);
        let mut segmenter = Segmenter::new(SegmenterConfig::default());
        segmenter.set_video_config(AvcConfig::parse_record(Bytes::from(record)).unwrap());
        let key = |dts_ms| VideoFrame {
            dts_ms,
            pts_ms: dts_ms,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
            provenance: None,
            annexb: Default::default(),
        };
        segmenter.push_video(key(first_dts_ms));
        let ts = segmenter.push_video(key(first_dts_ms + 2000)).unwrap().ts;
        Segment {
            seq: 0,
            first_dts_ms,
            duration_ms: 2000,
            discontinuity: false,
            init_version: 0,
            init: Bytes::from(mp4_box(b"moov", init)),
            fmp4,
            ts,
            frame_count: 30,
            audio_frame_count: 0,
        }
    }

    fn text(o: &MediaObject) -> String {
        String::from_utf8(o.body().to_vec()).unwrap()
    }

    /// Finds a segment's in-band provenance record and its byte range.
    type Locate = fn(
        &[u8],
    ) -> Option<(
        hearth_media::provenance::ProvenanceRecord,
        std::ops::Range<usize>,
    )>;

    /// Decrypts `seg` with `key` as a player would, and checks that its in-band
    /// provenance names the object and its tag verifies.
    fn assert_opens(keys: &MediaKeys, key: &MediaObject, seg: &MediaObject, locate: Locate) {
        let clear = crypt::decrypt_segment(
            &key.body()[..].try_into().unwrap(),
            &crypt::sequence_iv(seg.provenance().seq),
            seg.body(),
        )
        .unwrap();
        let (record, at) = locate(&clear).expect("in-band provenance");
        assert_eq!(record.provenance(), *seg.provenance());
        assert!(keys.verify(&record, &[&clear[..at.start], &clear[at.end..]]));
    }

    fn hub() -> Arc<Hub> {
        HubRegistry::new(Arc::default(), Arc::new(MediaKeys::random()))
            .get_or_create(CameraId::random())
    }

    /// A cache or mapping fault that puts a frame into the wrong camera's GOP cache
    /// (simulated by writing the cache directly) is caught by the still cache before
    /// anything is decoded.
    #[tokio::test]
    async fn the_still_cache_decodes_only_frames_stamped_for_its_camera() {
        let keys = Arc::new(MediaKeys::random());
        let (a, b) = (CameraId::random(), CameraId::random());
        let hub = HubRegistry::new(Arc::default(), keys.clone()).get_or_create(a);
        let _publisher = hub.claim(BindingEpoch(1)).unwrap();
        const IDR: &[u8] = &[0, 0, 0, 2, 0x65, 0x88];
        let frame = |data: &'static [u8], stamper: Option<Stamper>| VideoFrame {
            dts_ms: 0,
            pts_ms: 0,
            keyframe: true,
            provenance: stamper.map(|s| s.stamp(0, UnixMillis(0), IDR)),
            annexb: Default::default(),
            data: Bytes::from_static(data),
        };
        let set_gop = |f: VideoFrame| {
            let mut inner = hub.lock();
            inner.video_config = Some(AvcConfig {
                profile_idc: 66,
                constraint_flags: 0,
                level_idc: 30,
                nalu_length_size: 4,
                sps: vec![],
                pps: vec![],
                width: 16,
                height: 16,
                record: Bytes::new(),
            });
            inner.gop.clear();
            inner.gop_id += 1;
            inner.gop.push(f);
        };
        for (what, f) in [
            ("unstamped", frame(IDR, None)),
            (
                "another camera's",
                frame(IDR, Some(keys.stamper(b, BindingEpoch(1)))),
            ),
            (
                "another epoch's",
                frame(IDR, Some(keys.stamper(a, BindingEpoch(2)))),
            ),
            (
                "altered",
                frame(
                    &[0, 0, 0, 2, 0x65, 0x89],
                    Some(keys.stamper(a, BindingEpoch(1))),
                ),
            ),
        ] {
            set_gop(f);
            let before = hub.metrics.door.isolation_violations.get();
            let err = crate::hub::still::snapshot(&hub, |g| g)
                .await
                .expect_err(what);
            assert!(matches!(err, AppError::ForeignFrame(_)), "{what}: {err:?}");
            assert_eq!(
                hub.metrics.door.isolation_violations.get(),
                before + 1,
                "{what}"
            );
        }
        // Its own stamp passes the check and reaches the decoder (which these bytes
        // do not satisfy: that is another error).
        set_gop(frame(IDR, Some(hub.stamper(BindingEpoch(1)))));
        let r = crate::hub::still::snapshot(&hub, |g| g).await;
        assert!(!matches!(r, Err(AppError::ForeignFrame(_))));
    }

    #[test]
    fn one_publisher_at_a_time() {
        let h = hub();
        let p = h.claim(BindingEpoch(1)).unwrap();
        assert!(h.is_online());
        assert!(h.claim(BindingEpoch(1)).is_err());
        drop(p);
        assert!(!h.is_online());
        assert!(h.playlists().is_none(), "offline cameras have no playlists");
        assert!(h.claim(BindingEpoch(1)).is_ok());
    }

    #[test]
    fn an_unwatched_camera_keeps_only_its_newest_segment_unwritten() {
        let h = hub();
        let p = h.claim(BindingEpoch(1)).unwrap();
        for i in 0..RETAINED_SEGMENTS as i64 {
            h.publish_segment(p.lease, segment(i * 2000, b"init"));
        }
        {
            let inner = h.lock();
            assert_eq!(inner.segments.len(), 1, "only the newest is kept");
            let s = inner.segments.back().unwrap();
            // Neither flavour is written, let alone sealed, until someone asks.
            assert!(matches!(
                &*s.fmp4.0.lock().unwrap(),
                SegmentState::Muxed {
                    source: Source::Fmp4(_),
                    ..
                }
            ));
            assert!(matches!(
                &*s.ts.as_ref().unwrap().0.lock().unwrap(),
                SegmentState::Muxed {
                    source: Source::Ts(_),
                    ..
                }
            ));
        }
        let pl = h.playlists().unwrap();
        assert_eq!(text(&pl.fmp4).matches("#EXTINF").count(), 1);
        assert_eq!(text(&pl.ts).matches("#EXTINF").count(), 1);
        // A browser (fMP4) arrives: its window fills again, while the older
        // segments let go of their unwritten TS (and so of their frames, once
        // the fMP4 is sealed); the newest keeps it for a TS viewer to start on.
        h.touch(false);
        for i in 0..RETAINED_SEGMENTS as i64 + 2 {
            h.publish_segment(p.lease, segment((10 + i) * 2000, b"init"));
        }
        {
            let inner = h.lock();
            assert_eq!(inner.segments.len(), RETAINED_SEGMENTS);
            let with_ts: Vec<bool> = inner.segments.iter().map(|s| s.ts.is_some()).collect();
            assert_eq!(with_ts.iter().filter(|t| **t).count(), 1, "{with_ts:?}");
            assert!(with_ts[RETAINED_SEGMENTS - 1], "the newest keeps its TS");
        }
        let pl = h.playlists().unwrap();
        assert_eq!(text(&pl.fmp4).matches("#EXTINF").count(), PLAYLIST_WINDOW);
        let ts = text(&pl.ts);
        assert_eq!(ts.matches("#EXTINF").count(), 1, "{ts}");
        let newest = h.lock().segments.back().unwrap().seq;
        assert!(
            ts.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{newest}\n")),
            "{ts}"
        );
        // A TS viewer arrives: TS is kept from then on, and its window grows.
        h.touch(true);
        for i in 0..3 {
            h.publish_segment(p.lease, segment((30 + i) * 2000, b"init"));
        }
        let ts = text(&h.playlists().unwrap().ts);
        assert_eq!(ts.matches("#EXTINF").count(), 4, "{ts}");
        assert!(
            ts.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{newest}\n")),
            "{ts}"
        );
    }

    #[test]
    fn reconnect_continues_the_window_with_a_discontinuity() {
        let h = hub();
        h.touch(true);
        let p = h.claim(BindingEpoch(1)).unwrap();
        for i in 0..3 {
            h.publish_segment(p.lease, segment(i * 2000, b"init-a"));
        }
        drop(p);
        let p = h.claim(BindingEpoch(1)).unwrap();
        h.publish_segment(p.lease, segment(0, b"init-b"));
        let pl = h.playlists().unwrap();
        let fmp4 = text(&pl.fmp4);
        // Old segments stay listed; the new timeline starts after a discontinuity
        // with its own init segment.
        assert_eq!(fmp4.matches("#EXTINF").count(), 4, "{fmp4}");
        assert_eq!(fmp4.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{fmp4}");
        assert_eq!(fmp4.matches("#EXT-X-MAP").count(), 2, "{fmp4}");
        assert!(!fmp4.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1"), "{fmp4}");
        let ts = text(&pl.ts);
        assert_eq!(ts.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{ts}");
        // Once the discontinuity slides out, the discontinuity sequence counts it.
        for i in 1..=PLAYLIST_WINDOW as i64 {
            h.publish_segment(p.lease, segment(i * 2000, b"init-b"));
        }
        let fmp4 = text(&h.playlists().unwrap().fmp4);
        assert!(fmp4.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1"), "{fmp4}");
        assert!(!fmp4.contains("#EXT-X-DISCONTINUITY\n"), "{fmp4}");
        assert_eq!(fmp4.matches("#EXT-X-MAP").count(), 1, "{fmp4}");
        // The first init stays while its segments are retained, then goes.
        for i in 0..RETAINED_SEGMENTS as i64 {
            h.publish_segment(p.lease, segment((10 + i) * 2000, b"init-b"));
        }
        let inits = h.lock().inits.len();
        assert_eq!(inits, 1);
    }

    #[test]
    fn a_new_epoch_starts_an_empty_window() {
        let h = hub();
        let p = h.claim(BindingEpoch(1)).unwrap();
        h.publish_segment(p.lease, segment(0, b"init"));
        let old = text(&h.playlists().unwrap().fmp4);
        drop(p);
        let p = h.claim(BindingEpoch(2)).unwrap();
        assert!(h.playlists().is_none());
        h.publish_segment(p.lease, segment(0, b"init"));
        let pl = h.playlists().unwrap();
        let new = text(&pl.fmp4);
        assert_eq!(new.matches("#EXTINF").count(), 1, "{new}");
        let old_name = old.lines().find(|l| l.ends_with(".m4s")).unwrap();
        assert!(
            !new.contains(old_name),
            "old-epoch segment listed under the new epoch"
        );
        assert!(h.object(MediaKind::Fmp4Segment, old_name).is_none());
        assert_eq!(pl.fmp4.provenance().epoch, BindingEpoch(2));
    }

    #[test]
    fn every_object_carries_the_hub_camera_and_epoch() {
        let h = hub();
        let p = h.claim(BindingEpoch(3)).unwrap();
        h.publish_segment(p.lease, segment(0, b"init"));
        h.publish_segment(p.lease, segment(2000, b"init"));
        let pl = h.playlists().unwrap();
        let names: Vec<String> = text(&pl.fmp4)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect();
        let mut objects = vec![
            master_playlist(&pl, None, Container::Fmp4),
            pl.fmp4.clone(),
            pl.ts.clone(),
        ];
        for n in &names {
            objects.push(h.object(MediaKind::Fmp4Segment, n).unwrap());
            objects.push(
                h.object(MediaKind::TsSegment, &n.replace(".m4s", ".ts"))
                    .unwrap(),
            );
        }
        let init = h.lock().inits[0].name.clone();
        objects.push(h.object(MediaKind::InitSegment, &init).unwrap());
        for o in objects {
            assert!(
                o.provenance().belongs_to(h.camera(), BindingEpoch(3)),
                "{:?}",
                o.kind()
            );
        }
        // A stale lease cannot publish.
        drop(p);
        let _p2 = h.claim(BindingEpoch(3)).unwrap();
        let before = h.lock().next_seq;
        h.publish_segment(1, segment(0, b"init"));
        assert_eq!(h.lock().next_seq, before);
    }

    #[cfg(feature = "bench-switches")]
    #[test]
    fn unguarded_segments_are_stored_clear_and_listed_without_keys() {
        let h = HubRegistry::new(Arc::default(), Arc::new(MediaKeys::random()))
            .with_bench_switch(BenchSwitch::unguarded_for_tests())
            .get_or_create(CameraId::random());
        let p = h.claim(BindingEpoch(1)).unwrap();
        h.publish_segment(p.lease, segment(0, b"init"));
        let pl = text(&h.playlists().unwrap().fmp4);
        assert!(!pl.contains("#EXT-X-KEY"), "{pl}");
        let name = pl.lines().find(|l| l.ends_with(".m4s")).unwrap();
        assert_eq!(
            h.object(MediaKind::Fmp4Segment, name).unwrap().body(),
            &segment(0, b"init").fmp4
        );
    }

    #[test]
    fn segments_are_stamped_then_encrypted_under_a_listed_key() {
        let keys = Arc::new(MediaKeys::random());
        let h = HubRegistry::new(Arc::default(), keys.clone()).get_or_create(CameraId::random());
        let p = h.claim(BindingEpoch(4)).unwrap();
        h.publish_segment(p.lease, segment(0, b"init"));
        let pl = text(&h.playlists().unwrap().fmp4);
        let key_line = pl
            .lines()
            .find(|l| l.starts_with("#EXT-X-KEY:METHOD=AES-128"))
            .expect(&pl);
        let key_name = key_line
            .split("URI=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let name = pl.lines().find(|l| l.ends_with(".m4s")).unwrap();
        let seg = h.object(MediaKind::Fmp4Segment, name).unwrap();
        let key = h.key(key_name).expect("the listed key is served");
        assert!(key.provenance().belongs_to(h.camera(), BindingEpoch(4)));
        assert_opens(&keys, &key, &seg, fmp4::locate_provenance);
        // The init segment is clear but stamped too.
        let init = h.lock().inits[0].object.clone();
        assert!(fmp4::find_provenance(init.body()).is_some());
        // Keys of other cameras, epochs or unused periods are not served.
        let other = KeyId {
            camera: CameraId::random(),
            ..KeyId::parse(key_name).unwrap()
        };
        assert!(h.key(&other.name()).is_none());
        let later = KeyId {
            period: 99_999,
            ..KeyId::parse(key_name).unwrap()
        };
        assert!(h.key(&later.name()).is_none());
    }

    #[test]
    fn segments_are_sealed_once_on_first_request() {
        let keys = Arc::new(MediaKeys::random());
        let h = HubRegistry::new(Arc::default(), keys.clone()).get_or_create(CameraId::random());
        let p = h.claim(BindingEpoch(1)).unwrap();
        h.publish_segment(p.lease, segment(0, b"init"));
        let pls = h.playlists().unwrap();
        let flavours: [(&MediaObject, &str, MediaKind, Locate); 2] = [
            (
                &pls.fmp4,
                ".m4s",
                MediaKind::Fmp4Segment,
                fmp4::locate_provenance,
            ),
            (&pls.ts, ".ts", MediaKind::TsSegment, ts::locate_provenance),
        ];
        for (playlist, ext, kind, locate) in flavours {
            let pl = text(playlist);
            let name = pl.lines().find(|l| l.ends_with(ext)).unwrap();
            let key_name = pl
                .lines()
                .find(|l| l.starts_with("#EXT-X-KEY:"))
                .and_then(|l| l.split("URI=\"").nth(1))
                .and_then(|r| r.split('"').next())
                .unwrap();
            // Nothing is sealed until someone asks.
            let lazy = h.lock().segments.back().unwrap().flavour(kind).unwrap();
            assert!(matches!(
                &*lazy.0.lock().unwrap(),
                SegmentState::Muxed { .. }
            ));
            let first = h.object(kind, name).unwrap();
            let again = h.object(kind, name).unwrap();
            assert!(
                Arc::ptr_eq(&first, &again),
                "{ext}: sealed once, then reused"
            );
            assert_eq!(first.kind(), kind);
            let key = h.key(key_name).unwrap();
            assert_opens(&keys, &key, &first, locate);
        }
    }
}
