//! Cuts a live H.264(+AAC) stream into HLS segments, in both fMP4 and MPEG-TS.
//!
//! Input: configs and timestamped frames from ingest. Output: [`Segment`]s, each
//! starting with a keyframe and closing at the first keyframe at or after the
//! target duration, so every segment is independently decodable. Both container
//! flavours are produced from the same frames, so they always agree on boundaries.
//!
//! Memory: the fMP4 flavour is not written at the cut. A [`Fmp4Media`] holds the
//! samples (references to the frames' bytes, which the GOP cache shares) and
//! everything the muxer needs, and writes the segment when first asked
//! ([`Fmp4Media::mux`]) — a segment nobody fetches costs no second copy. MPEG-TS
//! is written on demand the same way ([`TsMedia::mux`]). Its continuity counters
//! run on across segments, so at the cut the segmenter only counts the packets the
//! segment will take (from the frames' sizes, without writing them) and the
//! segment keeps the counters it starts with: any segment can be written alone,
//! in any order, and the bytes are those a muxer writing every segment in turn
//! would produce.
//!
//! Timing rules (all deterministic, no clock reads):
//! - Video timestamps are taken as given (ms → 90 kHz). `dts` must not go
//!   backwards; a backwards `dts` or a forward gap over [`MAX_DTS_GAP_MS`] ends the
//!   open segment and starts a new one marked `discontinuity`.
//! - AAC times come from a running sample count (1024 per frame) anchored at the
//!   first frame's pts, so long streams do not drift with the publisher's ms
//!   rounding. The anchor is reset at discontinuities and when the publisher's pts
//!   runs ahead of the count by more than [`AUDIO_RESYNC_MS`] (lost audio).
//! - Audio belongs to the segment whose video time range contains its pts;
//!   audio arriving before the first keyframe is held briefly for that.
//! - Media times written into containers are shifted by a non-negative offset,
//!   chosen at each (re)start, so that they are never negative; `Segment`
//!   reports the publisher's original ms.
//!
//! LL-HLS parts: a segment's fMP4 flavour is a run of fragments (`moof` +
//! `mdat`), each one part. A part closes when the next frame would take it past
//! [`SegmenterConfig::part_target_ms`], or with its segment; so every part is at
//! most the part target long (unless a single frame is longer), and a segment's
//! bytes are `styp` followed by its parts' bytes. Parts come out through
//! [`Segmenter::pop_part`] as they close, before the segment they belong to.
//!
//! A changed video or audio config closes the open segment (returned by the next
//! `push_*`/`flush`), bumps `init_version` and marks the next segment a
//! discontinuity. Setting an identical config again is a no-op, as RTMP publishers
//! resend sequence headers.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::aac::{self, AacConfig};
use crate::fmp4::{self, AudioSample, Fragment, VideoSample};
use crate::h264::{self, AvcConfig};
use crate::ts::{self, TsMuxer};
use crate::{AudioFrame, VideoFrame};

/// A video `dts` jump larger than this between consecutive frames is a discontinuity.
pub const MAX_DTS_GAP_MS: i64 = 10_000;
/// Audio pts ahead of the sample-count clock by more than this re-anchors the clock.
pub const AUDIO_RESYNC_MS: i64 = 100;
/// Audio frames held while waiting for the first keyframe.
const MAX_PENDING_AUDIO: usize = 128;
/// Frame duration assumed when a stream has only one frame so far (25 fps).
const DEFAULT_FRAME_MS: i64 = 40;
/// Largest audio PES we build in TS (several ADTS frames per PES cuts overhead).
const MAX_AUDIO_FRAMES_PER_PES: usize = 8;

/// Segmenter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// Target segment duration; segments close at the first keyframe at or after it.
    pub target_duration_ms: u32,
    /// Longest LL-HLS part (`PART-TARGET`); `u32::MAX`: one part per segment.
    pub part_target_ms: u32,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            target_duration_ms: 2000,
            part_target_ms: u32::MAX,
        }
    }
}

/// One LL-HLS part: consecutive frames of the open segment, as one fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The [`Segment::seq`] of the segment it belongs to.
    pub segment_seq: u64,
    /// 0, 1, … within its segment.
    pub index: u32,
    /// DTS of its first video frame, publisher ms.
    pub first_dts_ms: i64,
    /// Next part's first dts minus this one's (or as [`Segment::duration_ms`]).
    pub duration_ms: u32,
    /// Starts with a keyframe (`INDEPENDENT=YES`): the first part of a segment.
    pub independent: bool,
    /// Its segment starts a new timeline (as [`Segment::discontinuity`]).
    pub discontinuity: bool,
    /// The init segment it decodes with (as [`Segment::init_version`], [`Segment::init`]).
    pub init_version: u32,
    pub init: Bytes,
    /// `moof` + `mdat`, written on demand.
    pub fmp4: FragmentMedia,
}

/// One finished segment, in both container flavours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// 0, 1, 2, … per [`Segmenter`].
    pub seq: u64,
    /// DTS of the first video frame (a keyframe), publisher ms.
    pub first_dts_ms: i64,
    /// Next segment's first dts minus this one's; at end of stream or a config
    /// change, last dts plus one estimated frame duration minus the first dts.
    pub duration_ms: u32,
    /// Timestamps or codec config changed before this segment (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// Which init segment this segment needs. Starts at 0 and bumps on a config
    /// change after a segment has used the current init (configs that arrive
    /// before the first segment, like AAC after H.264, do not bump it).
    pub init_version: u32,
    /// The fMP4 init segment of `init_version` (same bytes as
    /// [`Segmenter::init_segment`] returned while that version was current).
    pub init: Bytes,
    /// `styp` + `moof` + `mdat`, decodable with `init`, written on demand.
    pub fmp4: Fmp4Media,
    /// Self-contained MPEG-TS (PAT/PMT, SPS/PPS before the IDR, ADTS audio),
    /// written on demand.
    pub ts: TsMedia,
    /// Number of video frames.
    pub frame_count: u32,
    /// Number of audio frames.
    pub audio_frame_count: u32,
}

/// One fragment, not yet written: the samples (sharing the frames' bytes) and
/// the fragment's timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentMedia {
    sequence_number: u32,
    video_base_90k: u64,
    video: Vec<VideoSample>,
    audio_base: u64,
    audio: Vec<AudioSample>,
}

impl FragmentMedia {
    fn fragment(&self) -> Fragment<'_> {
        Fragment {
            sequence_number: self.sequence_number,
            video_base_90k: self.video_base_90k,
            video: &self.video,
            audio_base: self.audio_base,
            audio: &self.audio,
        }
    }

    /// Writes `moof` + `mdat` (one copy of the samples): a part as served.
    pub fn mux(&self) -> Bytes {
        fmp4::fragment(&self.fragment())
    }

    /// Bytes of media the fragment carries.
    pub fn media_len(&self) -> usize {
        let video: usize = self.video.iter().map(|s| s.data.len()).sum();
        let audio: usize = self.audio.iter().map(|s| s.data.len()).sum();
        video + audio
    }
}

/// A segment's fMP4 flavour, not yet written: its parts' fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmp4Media {
    fragments: Vec<FragmentMedia>,
}

impl Fmp4Media {
    /// A segment of one fragment of these samples (the segmenter makes them;
    /// tests may too).
    pub fn new(
        sequence_number: u32,
        video_base_90k: u64,
        video: Vec<VideoSample>,
        audio_base: u64,
        audio: Vec<AudioSample>,
    ) -> Self {
        Self {
            fragments: vec![FragmentMedia {
                sequence_number,
                video_base_90k,
                video,
                audio_base,
                audio,
            }],
        }
    }

    /// Writes `styp`, then `moof` + `mdat` per part (one copy of the samples).
    pub fn mux(&self) -> Bytes {
        let frags: Vec<Fragment<'_>> = self.fragments.iter().map(|f| f.fragment()).collect();
        fmp4::media_segment_of(&frags)
    }

    /// Bytes of media the segment carries (its size, less a few hundred bytes of
    /// boxes).
    pub fn media_len(&self) -> usize {
        self.fragments.iter().map(FragmentMedia::media_len).sum()
    }

    /// How many fragments (parts) it is made of.
    pub fn fragment_count(&self) -> usize {
        self.fragments.len()
    }
}

/// A segment's MPEG-TS flavour, not yet written: the frames (sharing their
/// bytes), their 90 kHz times and the muxer's counters as the segment starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsMedia {
    /// Counters and PMT version as the segment starts.
    start: TsMuxer,
    /// The PMT lists an audio stream.
    audio_stream: bool,
    video_cfg: AvcConfig,
    audio_cfg: Option<AacConfig>,
    video: Vec<TsVideo>,
    /// (raw AAC frame, pts), 90 kHz.
    audio: Vec<(Bytes, i64)>,
}

/// A video frame of a TS segment, times in 90 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TsVideo {
    data: Bytes,
    pts: i64,
    dts: i64,
    keyframe: bool,
}

/// One PES of a TS segment, in the order the segment carries them.
enum TsUnit {
    /// The video frame at this index.
    Video(usize),
    /// These audio frames, as one PES.
    Audio(std::ops::Range<usize>),
}

impl TsMedia {
    /// The segment's PES in order, interleaved by decode time: before each video
    /// frame, the audio up to its dts, in PES of at most
    /// [`MAX_AUDIO_FRAMES_PER_PES`] frames; the rest of the audio at the end.
    fn units(&self) -> Vec<TsUnit> {
        let mut units = Vec::with_capacity(self.video.len() + self.audio.len());
        let mut ai = 0;
        let mut audio_until = |until: Option<i64>, units: &mut Vec<TsUnit>| {
            if self.audio_cfg.is_none() {
                return;
            }
            let due = |i: usize| i < self.audio.len() && until.is_none_or(|u| self.audio[i].1 <= u);
            while due(ai) {
                let from = ai;
                while due(ai) && ai - from < MAX_AUDIO_FRAMES_PER_PES {
                    ai += 1;
                }
                units.push(TsUnit::Audio(from..ai));
            }
        };
        for (i, v) in self.video.iter().enumerate() {
            audio_until(Some(v.dts), &mut units);
            units.push(TsUnit::Video(i));
        }
        audio_until(None, &mut units);
        units
    }

    /// Advances `mux`'s counters past the segment, as writing it would, without
    /// writing it.
    fn count(&self, mux: &mut TsMuxer) {
        let mut pieces = Vec::new();
        mux.skip_tables();
        for unit in self.units() {
            match unit {
                TsUnit::Video(i) => {
                    let v = &self.video[i];
                    pieces.clear();
                    // Validated on push, so conversion cannot fail (see `mux`).
                    let len = ts::annexb_pieces(&v.data, &self.video_cfg, &mut pieces).unwrap_or(0);
                    mux.skip_video(v.pts, v.dts, len);
                }
                TsUnit::Audio(r) => {
                    let len = self.audio[r]
                        .iter()
                        .map(|(a, _)| aac::ADTS_HEADER_LEN + a.len());
                    mux.skip_audio(len.sum());
                }
            }
        }
    }

    /// Writes the segment (one copy of the frames).
    pub fn mux(&self) -> Bytes {
        let mut mux = self.start.clone();
        let size: usize = self.video.iter().map(|v| v.data.len()).sum::<usize>()
            + self.audio.iter().map(|a| a.0.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size + size / 8);
        mux.write_tables(self.audio_stream, &mut out);
        let mut pieces = Vec::new();
        let mut headers = Vec::new();
        for unit in self.units() {
            match unit {
                TsUnit::Video(i) => {
                    let v = &self.video[i];
                    pieces.clear();
                    // Validated on push, so conversion cannot fail; a failure
                    // would only truncate (the same in `count`).
                    let _ = ts::annexb_pieces(&v.data, &self.video_cfg, &mut pieces);
                    mux.write_video(v.pts, v.dts, v.keyframe, &pieces, &mut out);
                }
                TsUnit::Audio(r) => {
                    let Some(c) = &self.audio_cfg else { continue };
                    let frames = &self.audio[r];
                    headers.clear();
                    headers.extend(frames.iter().map(|(a, _)| c.adts_header(a.len())));
                    let pieces: Vec<&[u8]> = headers
                        .iter()
                        .zip(frames)
                        .flat_map(|(h, (a, _))| [&h[..], &a[..]])
                        .collect();
                    mux.write_audio(frames[0].1, &pieces, &mut out);
                }
            }
        }
        Bytes::from(out)
    }
}

/// Counters of input the segmenter could not use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    /// Video frames dropped while waiting for a keyframe (start, after a discontinuity).
    pub video_waiting_for_keyframe: u64,
    /// Video frames dropped because no video config was set yet.
    pub video_without_config: u64,
    /// Video frames dropped because their AVCC framing was malformed.
    pub video_malformed: u64,
    /// Audio frames dropped: no audio config, before the first segment, or too large for ADTS.
    pub audio_dropped: u64,
}

#[derive(Debug)]
struct OpenSegment {
    /// Every video frame of the segment (the TS flavour is written from them).
    video: Vec<VideoFrame>,
    /// Audio not yet in a part.
    audio: Vec<AudioFrame>,
    discontinuity: bool,
    /// Index in `video` of the open part's first frame.
    part_start: usize,
    /// Closed parts' fragments.
    parts: Vec<FragmentMedia>,
    /// Closed parts' audio for the TS flavour: (raw frame, 90 kHz pts).
    ts_audio: Vec<(Bytes, i64)>,
}

/// Running AAC sample clock.
#[derive(Debug, Clone, Copy)]
struct AudioClock {
    anchor_ms: i64,
    frames: u64,
}

/// Live segmenter. See the module docs for the rules.
#[derive(Debug)]
pub struct Segmenter {
    cfg: SegmenterConfig,
    video_config: Option<AvcConfig>,
    audio_config: Option<AacConfig>,
    init: Option<Bytes>,
    init_version: u32,
    /// A segment has been opened with the current init version.
    init_used: bool,
    open: Option<OpenSegment>,
    pending_audio: VecDeque<AudioFrame>,
    ready: Option<Segment>,
    /// Closed parts not yet taken ([`Segmenter::pop_part`]).
    parts: VecDeque<Part>,
    /// The next fragment's `mfhd` sequence number.
    next_fragment: u32,
    next_seq: u64,
    next_discontinuity: bool,
    last_video_dts: Option<i64>,
    last_frame_ms: i64,
    offset_ms: i64,
    timeline_started: bool,
    audio_clock: Option<AudioClock>,
    ts: TsMuxer,
    stats: SegmenterStats,
}

impl Segmenter {
    /// A segmenter with no configs yet.
    pub fn new(cfg: SegmenterConfig) -> Self {
        Segmenter {
            cfg,
            video_config: None,
            audio_config: None,
            init: None,
            init_version: 0,
            init_used: false,
            open: None,
            pending_audio: VecDeque::new(),
            ready: None,
            parts: VecDeque::new(),
            next_fragment: 1,
            next_seq: 0,
            next_discontinuity: false,
            last_video_dts: None,
            last_frame_ms: DEFAULT_FRAME_MS,
            offset_ms: 0,
            timeline_started: false,
            audio_clock: None,
            ts: TsMuxer::new(),
            stats: SegmenterStats::default(),
        }
    }

    /// Sets the H.264 config. Identical configs are ignored; a changed one closes
    /// the open segment and starts a new init version.
    pub fn set_video_config(&mut self, c: AvcConfig) {
        if self
            .video_config
            .as_ref()
            .is_some_and(|old| old.record == c.record)
        {
            return;
        }
        self.config_changed();
        self.video_config = Some(c);
        self.rebuild_init();
    }

    /// Sets the AAC config. Identical configs are ignored; a changed one (including
    /// audio appearing mid-stream) closes the open segment and starts a new init version.
    pub fn set_audio_config(&mut self, c: AacConfig) {
        if self
            .audio_config
            .as_ref()
            .is_some_and(|old| old.asc == c.asc)
        {
            return;
        }
        self.config_changed();
        self.audio_config = Some(c);
        self.rebuild_init();
    }

    /// Closes the open segment; if any segment used the current init, the next
    /// init is a new version and the next segment a discontinuity.
    fn config_changed(&mut self) {
        if let Some(seg) = self.close(None) {
            debug_assert!(self.ready.is_none());
            self.ready = Some(seg);
        }
        if self.init_used {
            self.next_discontinuity = true;
            self.init_used = false;
            self.init_version += 1;
            self.audio_clock = None;
            self.last_video_dts = None;
            self.ts.bump_version();
        }
    }

    fn rebuild_init(&mut self) {
        if let Some(v) = &self.video_config {
            self.init = Some(fmp4::init_segment(v, self.audio_config.as_ref()));
        }
    }

    /// Adds a video frame; returns a segment when this keyframe closes one (or one
    /// was closed by a config change). Frames before the first keyframe are dropped.
    pub fn push_video(&mut self, f: VideoFrame) -> Option<Segment> {
        let ready = self.ready.take();
        let closed = self.push_video_inner(f);
        debug_assert!(ready.is_none() || closed.is_none());
        ready.or(closed)
    }

    fn push_video_inner(&mut self, f: VideoFrame) -> Option<Segment> {
        let Some(cfg) = &self.video_config else {
            self.stats.video_without_config += 1;
            return None;
        };
        if h264::validate_avcc(&f.data, cfg.nalu_length_size).is_err() {
            self.stats.video_malformed += 1;
            return None;
        }
        let mut closed = None;
        if let Some(last) = self.last_video_dts {
            let delta = f.dts_ms - last;
            if !(0..=MAX_DTS_GAP_MS).contains(&delta) {
                closed = self.close(None);
                self.next_discontinuity = true;
                self.audio_clock = None;
            } else if delta > 0 {
                self.last_frame_ms = delta;
            }
        }
        self.last_video_dts = Some(f.dts_ms);

        let target = i64::from(self.cfg.target_duration_ms);
        match self.open.take() {
            Some(open) if f.keyframe && f.dts_ms - open.video[0].dts_ms >= target => {
                debug_assert!(closed.is_none());
                self.open = Some(open);
                closed = self.close(Some(f.dts_ms));
                self.open_segment(f);
            }
            Some(mut open) => {
                let part_first = open.video[open.part_start].dts_ms;
                let part_target = i64::from(self.cfg.part_target_ms);
                if f.dts_ms + self.last_frame_ms - part_first > part_target {
                    // With this frame the part would pass its target: it ends here.
                    self.close_part(&mut open, f.dts_ms, Some(f.dts_ms));
                }
                open.video.push(f);
                self.open = Some(open);
            }
            None if f.keyframe => self.open_segment(f),
            None => self.stats.video_waiting_for_keyframe += 1,
        }
        closed
    }

    fn open_segment(&mut self, f: VideoFrame) {
        let start = f.dts_ms;
        if !self.timeline_started || self.next_discontinuity {
            self.offset_ms = (-start).max(0);
            self.timeline_started = true;
        }
        let audio = self
            .pending_audio
            .drain(..)
            .filter(|a| a.pts_ms >= start)
            .collect();
        self.open = Some(OpenSegment {
            video: vec![f],
            audio,
            discontinuity: std::mem::take(&mut self.next_discontinuity),
            part_start: 0,
            parts: Vec::new(),
            ts_audio: Vec::new(),
        });
        self.init_used = true;
    }

    /// Adds an AAC frame. It lands in the open segment (or waits briefly for the
    /// first keyframe); returns a segment only if a config change closed one.
    pub fn push_audio(&mut self, f: AudioFrame) -> Option<Segment> {
        let ready = self.ready.take();
        if self.audio_config.is_none() || f.data.len() > aac::MAX_ADTS_PAYLOAD || f.data.is_empty()
        {
            self.stats.audio_dropped += 1;
        } else if let Some(open) = &mut self.open {
            open.audio.push(f);
        } else {
            if self.pending_audio.len() == MAX_PENDING_AUDIO {
                self.pending_audio.pop_front();
                self.stats.audio_dropped += 1;
            }
            self.pending_audio.push_back(f);
        }
        ready
    }

    /// End of stream: closes and returns the open segment (or one already closed by
    /// a config change). Call repeatedly until `None` to drain.
    pub fn flush(&mut self) -> Option<Segment> {
        if let Some(seg) = self.ready.take() {
            return Some(seg);
        }
        let seg = self.close(None);
        self.pending_audio.clear();
        seg
    }

    /// The next closed LL-HLS part, in order. Take them after every `push_*` and
    /// `flush`, before the segment it returned (which they belong to).
    pub fn pop_part(&mut self) -> Option<Part> {
        self.parts.pop_front()
    }

    /// The fMP4 init segment (`ftyp` + `moov`) for the current configs; `None`
    /// until a video config is known. It may still change (without a version bump)
    /// until the first segment of its version opens; [`Segment::init`] is exact.
    pub fn init_segment(&self) -> Option<Bytes> {
        self.init.clone()
    }

    /// The current init version (see [`Segment::init_version`]).
    pub fn init_version(&self) -> u32 {
        self.init_version
    }

    /// RFC 6381 codecs for `EXT-X-STREAM-INF`, e.g. `avc1.64001f,mp4a.40.2`.
    pub fn codecs(&self) -> Option<String> {
        let v = self.video_config.as_ref()?;
        Some(match &self.audio_config {
            Some(a) => format!("{},{}", v.codec_string(), a.codec_string()),
            None => v.codec_string(),
        })
    }

    /// Video dimensions from the SPS.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.video_config.as_ref().map(|v| (v.width, v.height))
    }

    /// Counters of dropped input.
    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }

    /// Closes the open part of `open`: its frames from `part_start` up to
    /// `end_dts` (the next frame's dts, or the estimated end), and the audio
    /// before `audio_until` (all of it: `None`). Queues the [`Part`].
    fn close_part(&mut self, open: &mut OpenSegment, end_dts: i64, audio_until: Option<i64>) {
        let frames = &open.video[open.part_start..];
        if frames.is_empty() {
            return;
        }
        let Some(init) = self.init.clone() else {
            return;
        };
        let first_dts = frames[0].dts_ms;
        let video: Vec<VideoSample> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let next = frames.get(i + 1).map_or(end_dts, |n| n.dts_ms);
                VideoSample {
                    duration_90k: ((next - f.dts_ms).max(0) * 90) as u32,
                    cts_offset_90k: ((f.pts_ms - f.dts_ms) * 90) as i32,
                    keyframe: f.keyframe,
                    data: f.data.clone(),
                }
            })
            .collect();
        let independent = frames[0].keyframe;
        let audio: Vec<AudioFrame> = match audio_until {
            None => std::mem::take(&mut open.audio),
            Some(t) => {
                let (this, later) = std::mem::take(&mut open.audio)
                    .into_iter()
                    .partition(|a| a.pts_ms < t);
                open.audio = later;
                this
            }
        };
        // Per-frame audio times: (sample time in sample-rate ticks, 90 kHz pts).
        let audio_times: Vec<(u64, i64)> = match self.audio_config.clone() {
            Some(c) => audio
                .iter()
                .map(|a| self.audio_time(&c, a.pts_ms))
                .collect(),
            None => Vec::new(),
        };
        let audio_samples: Vec<AudioSample> = audio
            .iter()
            .enumerate()
            .map(|(i, a)| AudioSample {
                duration: audio_times
                    .get(i + 1)
                    .map_or(u64::from(aac::SAMPLES_PER_FRAME), |n| {
                        n.0.saturating_sub(audio_times[i].0)
                    }) as u32,
                data: a.data.clone(),
            })
            .collect();
        open.ts_audio.extend(
            audio
                .iter()
                .zip(&audio_times)
                .map(|(a, t)| (a.data.clone(), t.1)),
        );
        let fragment = FragmentMedia {
            sequence_number: self.next_fragment,
            video_base_90k: ((first_dts + self.offset_ms) * 90).max(0) as u64,
            video,
            audio_base: audio_times.first().map_or(0, |t| t.0),
            audio: audio_samples,
        };
        self.next_fragment = self.next_fragment.wrapping_add(1).max(1);
        self.parts.push_back(Part {
            segment_seq: self.next_seq,
            index: open.parts.len() as u32,
            first_dts_ms: first_dts,
            duration_ms: (end_dts - first_dts).clamp(0, i64::from(u32::MAX)) as u32,
            independent,
            discontinuity: open.discontinuity,
            init_version: self.init_version,
            init,
            fmp4: fragment.clone(),
        });
        open.parts.push(fragment);
        open.part_start = open.video.len();
    }

    /// Closes the open segment. `next_dts` is the dts of the keyframe that starts
    /// the next segment (None: end of stream / config change / discontinuity).
    fn close(&mut self, next_dts: Option<i64>) -> Option<Segment> {
        let mut open = self.open.take()?;
        let video_cfg = self.video_config.clone()?;
        let init = self.init.clone()?;
        let first_dts = open.video[0].dts_ms;
        let last_dts = open.video[open.video.len() - 1].dts_ms;
        let end_dts = next_dts.unwrap_or(last_dts + self.last_frame_ms);

        if let Some(t) = next_dts {
            // Audio at or after the next keyframe belongs to the next segment.
            let (this, next): (Vec<_>, Vec<_>) = std::mem::take(&mut open.audio)
                .into_iter()
                .partition(|a| a.pts_ms < t);
            open.audio = this;
            for a in next.into_iter().rev() {
                self.pending_audio.push_front(a);
            }
        }
        self.close_part(&mut open, end_dts, None);

        let offset = self.offset_ms;
        let to_90k = |ms: i64| (ms + offset) * 90;
        let audio_frame_count = open.ts_audio.len() as u32;
        let audio_cfg = self
            .audio_config
            .clone()
            .filter(|_| !open.ts_audio.is_empty());
        let ts = TsMedia {
            start: self.ts.clone(),
            audio_stream: self.audio_config.is_some(),
            video_cfg,
            video: open
                .video
                .iter()
                .map(|f| TsVideo {
                    data: f.data.clone(),
                    pts: to_90k(f.pts_ms),
                    dts: to_90k(f.dts_ms),
                    keyframe: f.keyframe,
                })
                .collect(),
            audio: open.ts_audio,
            audio_cfg,
        };
        ts.count(&mut self.ts);

        let seg = Segment {
            seq: self.next_seq,
            first_dts_ms: first_dts,
            duration_ms: (end_dts - first_dts).clamp(0, i64::from(u32::MAX)) as u32,
            discontinuity: open.discontinuity,
            init_version: self.init_version,
            init,
            fmp4: Fmp4Media {
                fragments: open.parts,
            },
            ts,
            frame_count: open.video.len() as u32,
            audio_frame_count,
        };
        self.next_seq += 1;
        Some(seg)
    }

    /// Advances the AAC clock by one frame with publisher pts `pts_ms`; returns the
    /// frame's (sample time, 90 kHz pts).
    fn audio_time(&mut self, c: &AacConfig, pts_ms: i64) -> (u64, i64) {
        let rate = i64::from(c.sample_rate.max(1));
        let spf = i64::from(aac::SAMPLES_PER_FRAME);
        let clock = match self.audio_clock {
            Some(clk)
                if pts_ms - (clk.anchor_ms + clk.frames as i64 * spf * 1000 / rate)
                    <= AUDIO_RESYNC_MS =>
            {
                clk
            }
            _ => AudioClock {
                anchor_ms: pts_ms,
                frames: 0,
            },
        };
        let anchor = (clock.anchor_ms + self.offset_ms).max(0);
        let n = clock.frames as i64;
        let samples = anchor * rate / 1000 + n * spf;
        let pts_90k = anchor * 90 + n * spf * 90_000 / rate;
        self.audio_clock = Some(AudioClock {
            anchor_ms: clock.anchor_ms,
            frames: clock.frames + 1,
        });
        (samples as u64, pts_90k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::tests::{boxes, find};
    use crate::h264::tests::{PPS, SPS_640X360, record};

    const IDR: &[u8] = &[0, 0, 0, 2, 0x65, 0x88];
    const P: &[u8] = &[0, 0, 0, 2, 0x41, 0x9a];

    fn video_cfg() -> AvcConfig {
        AvcConfig::parse_record(Bytes::from(record(SPS_640X360, PPS))).unwrap()
    }
    fn audio_cfg() -> AacConfig {
        AacConfig::parse(Bytes::from_static(&[0x12, 0x10])).unwrap()
    }
    fn vf(dts: i64, key: bool) -> VideoFrame {
        VideoFrame {
            dts_ms: dts,
            pts_ms: dts + 80,
            keyframe: key,
            data: Bytes::from_static(if key { IDR } else { P }),
            provenance: None,
            annexb: Default::default(),
        }
    }
    fn af(pts: i64) -> AudioFrame {
        AudioFrame {
            pts_ms: pts,
            data: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60]),
            provenance: None,
        }
    }

    /// 25 fps video with a keyframe every `gop` frames from `start_ms`, AAC at
    /// 44.1 kHz interleaved by time; returns every segment including the flush.
    fn run(seg: &mut Segmenter, start_ms: i64, frames: i64, gop: i64) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut audio_n = 0i64;
        for i in 0..frames {
            let dts = start_ms + i * 40;
            while start_ms + audio_n * 1024 * 1000 / 44100 <= dts {
                out.extend(seg.push_audio(af(start_ms + audio_n * 1024 * 1000 / 44100)));
                audio_n += 1;
            }
            out.extend(seg.push_video(vf(dts, i % gop == 0)));
        }
        out.extend(seg.flush());
        out
    }

    fn tfdt(fmp4: &[u8], traf_index: usize) -> u64 {
        let moof = find(fmp4, &[b"moof"]);
        let trafs: Vec<_> = boxes(moof)
            .into_iter()
            .filter(|b| &b.0 == b"traf")
            .collect();
        let t = find(trafs[traf_index].1, &[b"tfdt"]);
        u64::from_be_bytes(t[4..12].try_into().unwrap())
    }

    /// LL-HLS: 25 fps with a keyframe every 50 frames and a 334 ms part target
    /// gives 8-frame parts (320 ms), the first of each segment independent;
    /// every part comes out before its segment, and a segment's bytes are `styp`
    /// followed by its parts' bytes, audio included.
    #[test]
    fn parts_tile_their_segment() {
        let mut s = Segmenter::new(SegmenterConfig {
            target_duration_ms: 2000,
            part_target_ms: 334,
        });
        s.set_video_config(video_cfg());
        s.set_audio_config(audio_cfg());
        let mut parts: Vec<Part> = Vec::new();
        let mut segs = Vec::new();
        let mut audio_n = 0i64;
        for i in 0..200i64 {
            let dts = i * 40;
            while audio_n * 1024 * 1000 / 44100 <= dts {
                segs.extend(s.push_audio(af(audio_n * 1024 * 1000 / 44100)));
                audio_n += 1;
            }
            let seg = s.push_video(vf(dts, i % 50 == 0));
            while let Some(p) = s.pop_part() {
                assert!(
                    segs.iter().all(|g: &Segment| g.seq < p.segment_seq),
                    "a part comes before its segment"
                );
                parts.push(p);
            }
            segs.extend(seg);
        }
        segs.extend(s.flush());
        parts.extend(std::iter::from_fn(|| s.pop_part()));
        assert_eq!(segs.len(), 4);
        for seg in &segs {
            let mine: Vec<&Part> = parts.iter().filter(|p| p.segment_seq == seg.seq).collect();
            // 50 frames: six parts of 8 frames and one of 2.
            let durations: Vec<u32> = mine.iter().map(|p| p.duration_ms).collect();
            assert_eq!(durations, [320, 320, 320, 320, 320, 320, 80], "{}", seg.seq);
            assert!(mine.iter().all(|p| p.duration_ms <= 334));
            let indices: Vec<u32> = mine.iter().map(|p| p.index).collect();
            assert_eq!(indices, (0..7).collect::<Vec<_>>());
            assert!(mine[0].independent && mine[1..].iter().all(|p| !p.independent));
            assert_eq!(mine[0].first_dts_ms, seg.first_dts_ms);
            assert_eq!(seg.fmp4.fragment_count(), 7);
            let written = seg.fmp4.mux();
            let styp_len = u32::from_be_bytes(written[..4].try_into().unwrap()) as usize;
            let joined: Vec<u8> = mine.iter().flat_map(|p| p.fmp4.mux().to_vec()).collect();
            assert_eq!(&written[styp_len..], &joined[..], "segment = styp + parts");
            let audio: usize = mine.iter().map(|p| p.fmp4.audio.len()).sum();
            assert_eq!(audio as u32, seg.audio_frame_count);
            assert!(audio > 80, "about two seconds of AAC: {audio}");
        }
        // Each part's audio starts where the one before ended.
        let audio_starts: Vec<u64> = parts
            .iter()
            .filter(|p| !p.fmp4.audio.is_empty())
            .map(|p| p.fmp4.audio_base)
            .collect();
        let counts: Vec<u64> = parts
            .iter()
            .filter(|p| !p.fmp4.audio.is_empty())
            .map(|p| p.fmp4.audio.len() as u64 * 1024)
            .collect();
        for i in 1..audio_starts.len() {
            assert_eq!(
                audio_starts[i],
                audio_starts[i - 1] + counts[i - 1],
                "part {i}"
            );
        }
    }

    #[test]
    fn cuts_at_first_keyframe_after_target() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        s.set_audio_config(audio_cfg());
        assert_eq!(s.codecs().unwrap(), "avc1.64001e,mp4a.40.2");
        assert_eq!(s.resolution(), Some((640, 360)));
        // Two P frames before the first keyframe are dropped.
        assert!(s.push_video(vf(-80, false)).is_none());
        assert!(s.push_video(vf(-40, false)).is_none());
        // Keyframes every 30 frames (1.2 s): cuts at 2400 and 4800.
        let segs = run(&mut s, 0, 150, 30);
        assert_eq!(s.stats().video_waiting_for_keyframe, 2);
        let summary: Vec<_> = segs
            .iter()
            .map(|g| (g.seq, g.first_dts_ms, g.duration_ms, g.frame_count))
            .collect();
        assert_eq!(
            summary,
            [(0, 0, 2400, 60), (1, 2400, 2400, 60), (2, 4800, 1200, 30)]
        );
        // Audio is split by pts at the cut: frames with pts < 2400 ms go to segment 0.
        let first_audio_in_1 = (0..).find(|n| n * 1024 * 1000 / 44100 >= 2400).unwrap();
        assert_eq!(segs[0].audio_frame_count, first_audio_in_1 as u32);
        // fMP4 timing: video tfdt in 90 kHz, audio tfdt from the sample count.
        assert_eq!(tfdt(&segs[1].fmp4.mux(), 0), 2400 * 90);
        assert_eq!(tfdt(&segs[1].fmp4.mux(), 1), first_audio_in_1 as u64 * 1024);
        assert!(segs.iter().all(|g| !g.discontinuity && g.init_version == 0));
    }

    #[test]
    fn both_flavours_are_written_on_demand() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        s.set_audio_config(audio_cfg());
        let segs = run(&mut s, 5000, 100, 50);
        // Each flavour shares the frames' bytes until it is written.
        let seg = &segs[0];
        let written = seg.fmp4.mux();
        assert!(written.len() > seg.fmp4.media_len());
        assert!(written.len() < seg.fmp4.media_len() + 4096);
        assert_eq!(written, seg.fmp4.mux(), "writing is deterministic");
        assert_eq!(seg.ts.mux(), seg.ts.mux(), "writing is deterministic");
    }

    /// An AVCC frame of `len` payload bytes after an SEI: PES of every size.
    fn sized_frame(dts: i64, key: bool, len: usize) -> VideoFrame {
        let mut data = vec![0, 0, 0, 3, 0x06, 0x05, 0x80];
        data.extend_from_slice(&(len as u32 + 1).to_be_bytes());
        data.push(if key { 0x65 } else { 0x41 });
        data.extend((0..len).map(|i| i as u8));
        VideoFrame {
            dts_ms: dts,
            pts_ms: dts + 40 * (dts % 3),
            keyframe: key,
            data: Bytes::from(data),
            provenance: None,
            annexb: Default::default(),
        }
    }

    #[test]
    fn ts_segments_written_alone_in_any_order_continue_the_counters() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        s.set_audio_config(audio_cfg());
        let mut segs = Vec::new();
        let mut audio_n = 0i64;
        for i in 0..600i64 {
            let dts = i * 40;
            while audio_n * 1024 * 1000 / 44100 <= dts {
                let len = (audio_n * 37 % 700 + 1) as usize;
                segs.extend(s.push_audio(AudioFrame {
                    pts_ms: audio_n * 1024 * 1000 / 44100,
                    data: Bytes::from(vec![0x21; len]),
                    provenance: None,
                }));
                audio_n += 1;
            }
            // Sizes sweep every remainder modulo a packet's payload.
            let len = (i * 331 % 7000) as usize;
            segs.extend(s.push_video(sized_frame(dts, i % 50 == 0, len)));
            if i == 300 {
                // A new config: the PMT version changes, the counters run on.
                let mut other = video_cfg();
                other.record = Bytes::from_static(b"another record");
                s.set_video_config(other);
            }
        }
        segs.extend(s.flush());
        assert!(segs.len() > 10);
        // Written newest first, each on its own, as viewers ask for them.
        let mut written: Vec<Bytes> = segs.iter().rev().map(|g| g.ts.mux()).collect();
        written.reverse();
        let mut last_cc: std::collections::HashMap<u16, u8> = Default::default();
        let mut packets = 0;
        for ts in &written {
            assert_eq!(ts.len() % 188, 0);
            for p in ts.chunks(188) {
                assert_eq!(p[0], 0x47);
                let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
                let cc = p[3] & 0x0f;
                if let Some(prev) = last_cc.insert(pid, cc) {
                    assert_eq!(cc, (prev + 1) & 0x0f, "pid {pid:#x} at packet {packets}");
                }
                packets += 1;
            }
        }
        assert_eq!(last_cc.len(), 4, "PAT, PMT, video, audio");
        assert!(packets > 10_000, "{packets}");
    }

    #[test]
    fn ts_continuity_counters_continue_across_segments() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        s.set_audio_config(audio_cfg());
        let segs = run(&mut s, 1000, 200, 50);
        assert_eq!(segs.len(), 4);
        let mut last_cc: std::collections::HashMap<u16, u8> = Default::default();
        for seg in &segs {
            let ts = seg.ts.mux();
            assert_eq!(ts.len() % 188, 0);
            let first = &ts[..188];
            assert_eq!(
                (first[1] & 0x1f, first[2]),
                (0, 0),
                "segment starts with PAT"
            );
            for p in ts.chunks(188) {
                assert_eq!(p[0], 0x47);
                let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
                let cc = p[3] & 0x0f;
                if let Some(prev) = last_cc.insert(pid, cc) {
                    assert_eq!(cc, (prev + 1) & 0x0f, "pid {pid:#x}");
                }
            }
        }
        assert_eq!(last_cc.len(), 4, "PAT, PMT, video, audio");
    }

    #[test]
    fn config_change_closes_segment_and_marks_discontinuity() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        let init0 = s.init_segment().unwrap();
        for i in 0..10 {
            assert!(s.push_video(vf(i * 40, i == 0)).is_none());
        }
        // Same config again (RTMP republish): nothing happens.
        s.set_video_config(video_cfg());
        assert!(s.push_video(vf(400, false)).is_none());
        // New config: the open segment closes and comes out of the next push.
        let mut changed = video_cfg();
        let mut rec = changed.record.to_vec();
        rec[3] = 31; // level 3.1
        changed = AvcConfig::parse_record(Bytes::from(rec)).unwrap();
        s.set_video_config(changed);
        let closed = s.push_video(vf(0, true)).expect("closed by config change");
        assert_eq!(
            (closed.seq, closed.frame_count, closed.duration_ms),
            (0, 11, 440)
        );
        assert_eq!((closed.init_version, closed.discontinuity), (0, false));
        assert_eq!(closed.init, init0);
        assert_ne!(s.init_segment().unwrap(), init0);
        let next = s.flush().unwrap();
        assert_eq!(
            (next.seq, next.init_version, next.discontinuity),
            (1, 1, true)
        );
        assert_eq!(next.init, s.init_segment().unwrap());
        assert!(s.flush().is_none());
    }

    #[test]
    fn backwards_timestamps_start_a_discontinuity() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        for i in 0..5 {
            assert!(s.push_video(vf(10_000 + i * 40, i == 0)).is_none());
        }
        // Publisher restarted from 0: the open segment is closed with an estimated end.
        let closed = s.push_video(vf(0, false)).unwrap();
        assert_eq!((closed.frame_count, closed.duration_ms), (5, 200));
        assert!(s.push_video(vf(40, true)).is_none());
        let next = s.flush().unwrap();
        assert!(next.discontinuity);
        assert_eq!(next.init_version, 0, "same config, same init");
        assert_eq!(s.stats().video_waiting_for_keyframe, 1);
    }

    #[test]
    fn negative_start_is_shifted_to_zero_in_containers() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        s.push_video(vf(-500, true));
        s.push_video(vf(-460, false));
        let seg = s.flush().unwrap();
        assert_eq!(seg.first_dts_ms, -500);
        assert_eq!(tfdt(&seg.fmp4.mux(), 0), 0);
    }

    #[test]
    fn malformed_and_configless_input_is_dropped_and_counted() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        assert!(s.push_video(vf(0, true)).is_none());
        assert!(s.push_audio(af(0)).is_none());
        assert!(s.init_segment().is_none() && s.codecs().is_none());
        s.set_video_config(video_cfg());
        s.push_video(VideoFrame {
            dts_ms: 0,
            pts_ms: 0,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 9, 0x65]),
            provenance: None,
            annexb: Default::default(),
        });
        let st = s.stats();
        assert_eq!(
            (
                st.video_without_config,
                st.audio_dropped,
                st.video_malformed
            ),
            (1, 1, 1)
        );
        assert!(s.flush().is_none());
    }

    #[test]
    fn audio_clock_does_not_drift_and_resyncs_after_a_gap() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_video_config(video_cfg());
        s.set_audio_config(audio_cfg());
        s.push_video(vf(0, true));
        // Publisher ms are rounded (23 ms per frame instead of 23.22): the clock ignores that.
        for n in 0..10 {
            s.push_audio(af(n * 23));
        }
        // Then 500 ms of lost audio.
        s.push_audio(af(10 * 23 + 500));
        s.push_video(vf(40, false));
        let seg = s.flush().unwrap();
        let fmp4 = seg.fmp4.mux();
        let moof = find(&fmp4, &[b"moof"]);
        let trafs: Vec<_> = boxes(moof)
            .into_iter()
            .filter(|b| &b.0 == b"traf")
            .collect();
        let trun = find(trafs[1].1, &[b"trun"]);
        let durations: Vec<u32> = (0..11)
            .map(|i| u32::from_be_bytes(trun[12 + i * 8..16 + i * 8].try_into().unwrap()))
            .collect();
        assert!(durations[..9].iter().all(|&d| d == 1024), "{durations:?}");
        // Frame 9 stretches to the resynced anchor at 730 ms.
        assert_eq!(durations[9], 730 * 44100 / 1000 - 9 * 1024);
    }
}
