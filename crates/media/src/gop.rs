//! GOP cache: the frames needed to start decoding *now*.
//!
//! A decoder can only start at a keyframe, so instant-start playback and the
//! still-image decoder need the frames from the newest keyframe onwards. The cache
//! keeps the in-progress GOP and the last complete one; frames before the first
//! keyframe are dropped. Memory is bounded: a GOP that grows past the byte limit
//! (a camera that stopped sending keyframes) is discarded until the next keyframe,
//! since a partial GOP without its keyframe is useless.

use crate::VideoFrame;

/// Default per-GOP byte limit.
pub const DEFAULT_MAX_GOP_BYTES: usize = 32 * 1024 * 1024;

/// Current and last complete GOP of one stream.
#[derive(Debug, Clone)]
pub struct GopCache {
    current: Vec<VideoFrame>,
    current_bytes: usize,
    last: Option<Vec<VideoFrame>>,
    max_gop_bytes: usize,
}

impl Default for GopCache {
    fn default() -> Self {
        Self::new()
    }
}

impl GopCache {
    /// An empty cache with [`DEFAULT_MAX_GOP_BYTES`].
    pub fn new() -> Self {
        Self::with_max_gop_bytes(DEFAULT_MAX_GOP_BYTES)
    }

    /// An empty cache that discards any GOP larger than `max_gop_bytes`.
    pub fn with_max_gop_bytes(max_gop_bytes: usize) -> Self {
        GopCache {
            current: Vec::new(),
            current_bytes: 0,
            last: None,
            max_gop_bytes,
        }
    }

    /// Adds a frame in decode order.
    pub fn push(&mut self, f: VideoFrame) {
        if f.keyframe {
            if !self.current.is_empty() {
                self.last = Some(std::mem::take(&mut self.current));
            }
            self.current_bytes = 0;
        } else if self.current.is_empty() {
            return;
        }
        self.current_bytes += f.data.len();
        if self.current_bytes > self.max_gop_bytes {
            self.current.clear();
            self.current_bytes = 0;
            return;
        }
        self.current.push(f);
    }

    /// From the newest keyframe to the newest frame; empty before the first keyframe.
    pub fn current(&self) -> &[VideoFrame] {
        &self.current
    }

    /// The GOP before the current one, complete.
    pub fn last_complete(&self) -> Option<&[VideoFrame]> {
        self.last.as_deref()
    }

    /// The newest keyframe, if any (what a still-image decoder needs first).
    pub fn keyframe(&self) -> Option<&VideoFrame> {
        self.current.first()
    }

    /// Forgets everything (e.g. on a config change).
    pub fn clear(&mut self) {
        self.current.clear();
        self.current_bytes = 0;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(dts: i64, key: bool, len: usize) -> VideoFrame {
        VideoFrame {
            dts_ms: dts,
            pts_ms: dts,
            keyframe: key,
            data: Bytes::from(vec![0; len]),
            provenance: None,
            annexb: Default::default(),
        }
    }

    #[test]
    fn keeps_current_and_last_complete() {
        let mut g = GopCache::new();
        g.push(frame(0, false, 1));
        assert!(
            g.current().is_empty(),
            "frames before a keyframe are dropped"
        );
        g.push(frame(40, true, 1));
        g.push(frame(80, false, 1));
        assert_eq!(g.current().len(), 2);
        assert!(g.last_complete().is_none());
        g.push(frame(120, true, 1));
        g.push(frame(160, false, 1));
        g.push(frame(200, false, 1));
        let dts = |s: &[VideoFrame]| s.iter().map(|f| f.dts_ms).collect::<Vec<_>>();
        assert_eq!(dts(g.current()), [120, 160, 200]);
        assert_eq!(dts(g.last_complete().unwrap()), [40, 80]);
        assert_eq!(g.keyframe().unwrap().dts_ms, 120);
        g.clear();
        assert!(g.current().is_empty() && g.last_complete().is_none());
    }

    #[test]
    fn oversized_gop_is_discarded_until_next_keyframe() {
        let mut g = GopCache::with_max_gop_bytes(10);
        g.push(frame(0, true, 4));
        g.push(frame(1, false, 4));
        g.push(frame(2, false, 4));
        assert!(g.current().is_empty());
        g.push(frame(3, false, 1));
        assert!(g.current().is_empty());
        g.push(frame(4, true, 4));
        assert_eq!(g.current().len(), 1);
    }
}
