//! The still-image cache: a camera's newest picture as JPEG.
//!
//! This is the kind of cache that leaked strangers' stills in 2019, so it is built
//! like everything else: it lives inside the camera's own hub, it decodes only
//! access units whose provenance tag verifies under this camera's key for the GOP's
//! epoch (a foreign frame in the GOP cache is refused, counted and logged, never
//! decoded), and every JPEG it makes is a [`MediaObject`] stamped with the camera's
//! provenance, in-band too (an APP11 segment, see `hearth_media::jpeg`), and served
//! only through the egress door.
//!
//! Decoding is lazy and incremental. Nothing is decoded until someone asks; a request
//! decodes only the frames of the newest GOP that the cached decoder has not seen
//! yet (a new GOP restarts at its keyframe), so the answer is at most one frame
//! interval stale and a camera nobody looks at costs nothing. A JPEG whose frame is
//! less than [`MAX_STALENESS_MS`] older than the newest frame is reused as is.

use crate::error::AppError;
use crate::hub::{GopSnapshot, Hub};
use bytes::Bytes;
use hearth_access::{MediaKind, MediaObject};
use hearth_model::UnixMillis;
use openh264::decoder::Decoder;
use std::sync::Arc;

/// A cached JPEG is reused while its frame is at most this much older than the newest.
pub const MAX_STALENESS_MS: i64 = 1000;
const JPEG_QUALITY: u8 = 80;
/// How long a snapshot request waits for a just-connected camera's first keyframe.
const FIRST_KEYFRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

#[derive(Default)]
pub struct StillState {
    decoder: Option<Decoder>,
    gop_id: u64,
    /// Frames of `gop_id` already fed to the decoder.
    fed: usize,
    cached: Option<Cached>,
}

impl StillState {
    pub fn cached_object(&self) -> Option<Arc<MediaObject>> {
        self.cached.as_ref().map(|c| c.object.clone())
    }
}

struct Cached {
    gop_id: u64,
    dts_ms: i64,
    object: Arc<MediaObject>,
}

/// The camera's newest still, decoding what is needed. `frames` sees the GOP as
/// read from the frame cache (the identity, except where fault injection swaps
/// frames to prove the check below).
pub async fn snapshot(
    hub: &Arc<Hub>,
    frames: impl FnOnce(GopSnapshot) -> GopSnapshot,
) -> Result<Arc<MediaObject>, AppError> {
    let gop = frames(newest_gop(hub).await.ok_or(AppError::CameraOffline)?);
    let newest_dts = gop.frames.last().map_or(0, |f| f.dts_ms);
    let mut guard = hub.still.lock().await;
    if let Some(c) = &guard.cached
        && c.gop_id == gop.gop_id
        && newest_dts - c.dts_ms <= MAX_STALENESS_MS
    {
        return Ok(c.object.clone());
    }
    let state = std::mem::take(&mut *guard);
    let hub2 = hub.clone();
    let (state, result) = tokio::task::spawn_blocking(move || {
        let mut state = state;
        let r = decode_newest(&mut state, &gop, &hub2);
        (state, r)
    })
    .await?;
    *guard = state;
    result
}

/// The newest GOP; a camera that just came online gets a moment to send its first
/// keyframe (rare, so a short poll is enough).
async fn newest_gop(hub: &Hub) -> Option<GopSnapshot> {
    let deadline = tokio::time::Instant::now() + FIRST_KEYFRAME_WAIT;
    loop {
        if let Some(g) = hub.newest_gop() {
            return Some(g);
        }
        if !hub.is_online() || tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn decode_newest(
    state: &mut StillState,
    gop: &GopSnapshot,
    hub: &Hub,
) -> Result<Arc<MediaObject>, AppError> {
    if state.decoder.is_none() || state.gop_id != gop.gop_id || state.fed > gop.frames.len() {
        state.decoder =
            Some(Decoder::new().map_err(|e| AppError::internal(anyhow::anyhow!("openh264: {e}")))?);
        state.gop_id = gop.gop_id;
        state.fed = 0;
    }
    let stamper = hub.stamper(gop.epoch);
    let guarded = !hub.unguarded();
    let decoder = state.decoder.as_mut().expect("decoder just set");
    let mut annexb = Vec::with_capacity(256 * 1024);
    if state.fed == 0 {
        for ps in gop.config.sps.iter().chain(gop.config.pps.iter()) {
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(ps);
        }
    }
    let mut picture: Option<(Vec<u8>, usize, usize)> = None;
    let mut picture_dts = None;
    for f in &gop.frames[state.fed..] {
        if guarded && !f.provenance.is_some_and(|r| stamper.verify(&r, &[&f.data])) {
            let found = f.provenance.map(|r| r.provenance());
            hub.metrics().door.isolation_violations.inc();
            tracing::error!(
                camera = ?hub.camera(),
                epoch = %gop.epoch,
                frame_camera = ?found.map(|p| p.camera),
                frame_epoch = ?found.map(|p| p.epoch),
                dts_ms = f.dts_ms,
                "isolation violation blocked in the still cache: a frame without this camera's stamp"
            );
            state.decoder = None;
            state.cached = None;
            return Err(AppError::ForeignFrame(found));
        }
        hearth_media::h264::avcc_to_annexb(&f.data, gop.config.nalu_length_size, &mut annexb)
            .map_err(|e| AppError::internal(anyhow::anyhow!("still: bad access unit: {e}")))?;
        match decoder.decode(&annexb) {
            Ok(Some(yuv)) => {
                let (w, h) = openh264::formats::YUVSource::dimensions(&yuv);
                let mut rgb = picture.take().map(|p| p.0).unwrap_or_default();
                rgb.resize(w * h * 3, 0);
                yuv.write_rgb8(&mut rgb);
                picture = Some((rgb, w, h));
                picture_dts = Some(f.dts_ms);
            }
            Ok(None) => {}
            Err(e) => {
                // A damaged frame: restart at the next request rather than serve garbage.
                state.decoder = None;
                return Err(AppError::internal(anyhow::anyhow!(
                    "still: decode failed: {e}"
                )));
            }
        }
        annexb.clear();
        state.fed += 1;
    }
    let (Some((rgb, w, h)), Some(dts)) = (picture, picture_dts) else {
        // Nothing new decoded: keep serving the last picture of this GOP, if any.
        return state
            .cached
            .as_ref()
            .filter(|c| c.gop_id == gop.gop_id)
            .map(|c| c.object.clone())
            .ok_or(AppError::CameraOffline);
    };
    let mut jpeg = Vec::with_capacity(w * h / 4);
    let enc = jpeg_encoder::Encoder::new(&mut jpeg, JPEG_QUALITY);
    enc.encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| AppError::internal(anyhow::anyhow!("jpeg: {e}")))?;
    let capture = UnixMillis(gop.clock_anchor_ms + dts);
    let seq = (gop.gop_id << 16) | state.fed as u64;
    let prov = stamper.provenance(seq, capture);
    let jpeg = if guarded {
        hearth_media::jpeg::insert_provenance(&jpeg, &stamper.stamp(seq, capture, &jpeg))
            .map_err(|e| AppError::internal(anyhow::anyhow!("still: {e}")))?
    } else {
        jpeg
    };
    let object = MediaObject::new(prov, MediaKind::Snapshot, Bytes::from(jpeg));
    state.cached = Some(Cached {
        gop_id: gop.gop_id,
        dts_ms: dts,
        object: object.clone(),
    });
    Ok(object)
}
