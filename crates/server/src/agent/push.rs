//! A home agent's way out: one RTMPS publish per camera rendition, to the
//! server's TLS ingest listener, fed by the RTSP pull through [`RtmpsSink`].
//!
//! The pull (`crate::ingest::rtsp`) hands frames to the sink without waiting;
//! a bounded channel carries them to the task that owns the TLS connection.
//! When the uplink cannot keep up the sink drops frames up to the next
//! keyframe (a dropped reference frame would break the pictures after it).
//! When the connection fails the sink says why and the pull's attempt ends,
//! so the camera and the upstream are retried together, with the pull's
//! backoff. Keyframes are signed as the simulated camera signs them
//! (`hearth_media::signing`), with the camera's stream key.

use crate::ingest::rtsp::session::FrameSink;
use hearth_camera::{RtmpPublisher, RtmpUrl, StreamMetadata, flv};
use hearth_media::aac::AacConfig;
use hearth_media::h264::AvcConfig;
use hearth_media::signing::{GopSigner, gop_signing_key};
use hearth_media::{AudioFrame, VideoFrame};
use hearth_model::{CameraId, Rendition, UnixMillis};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_rustls::rustls::ClientConfig;

/// Frames waiting for the uplink: about four seconds at 30 fps with audio.
const QUEUE: usize = 256;

enum Item {
    VideoConfig(AvcConfig),
    AudioConfig(AacConfig),
    Video(VideoFrame),
    Audio(AudioFrame),
}

/// Where one rendition is published: `rtmps://host:port/live/<key>[/sub]`.
#[derive(Clone)]
pub struct Upstream {
    pub tls: Arc<ClientConfig>,
    pub host: String,
    pub port: u16,
    /// The ingest URL's `rtmp://` twin with the stream key (the RTMP session
    /// only needs its app and key; TLS is below it).
    pub target: RtmpUrl,
    pub camera: CameraId,
    pub rendition: Rendition,
}

impl Upstream {
    /// `ingest` is `rtmps://host:port/app`.
    pub fn new(
        tls: Arc<ClientConfig>,
        ingest: &str,
        stream_key: &str,
        camera: CameraId,
        rendition: Rendition,
    ) -> anyhow::Result<Self> {
        let url = url::Url::parse(ingest)?;
        anyhow::ensure!(url.scheme() == "rtmps", "the ingest URL is not rtmps://");
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("the ingest URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(443);
        let mut key = stream_key.to_owned();
        if rendition == Rendition::Sub {
            key.push_str("/sub");
        }
        let plain = format!(
            "rtmp://{}:{port}{}/{key}",
            url.host_str().unwrap_or_default(),
            url.path().trim_end_matches('/')
        );
        let target = RtmpUrl::parse(&plain).map_err(|e| anyhow::anyhow!("ingest URL: {e}"))?;
        Ok(Self {
            tls,
            host,
            port,
            target,
            camera,
            rendition,
        })
    }

    /// A sink whose frames a new task publishes.
    pub fn open(&self) -> RtmpsSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failure = Arc::new(Mutex::new(None));
        let up = self.clone();
        let why = failure.clone();
        tokio::spawn(async move {
            if let Err(e) = up.publish(rx).await {
                tracing::warn!(camera = ?up.camera, rendition = up.rendition.as_str(), error = %e, "rtmps publish ended");
                *why.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            }
        });
        RtmpsSink {
            tx,
            failure,
            skipping: false,
        }
    }

    async fn publish(&self, mut rx: mpsc::Receiver<Item>) -> Result<(), String> {
        let server = format!("{}:{}", self.host, self.port);
        let stream = crate::tls::connect(&self.tls, &self.host, self.port)
            .await
            .map_err(|e| format!("upstream {server}: {e:#}"))?;
        let mut metadata = StreamMetadata::new();
        metadata.video_codec_id = Some(u32::from(flv::CODEC_ID_AVC));
        metadata.encoder = Some(concat!("hearth-agent/", env!("CARGO_PKG_VERSION")).to_owned());
        let mut up = RtmpPublisher::start(stream, server.clone(), &self.target, &metadata)
            .await
            .map_err(|e| format!("upstream {server}: {e}"))?;
        tracing::info!(camera = ?self.camera, rendition = self.rendition.as_str(), %server, "publishing over rtmps");
        let (key, _) = Rendition::from_stream_path(self.target.stream_key());
        let mut signer =
            GopSigner::new(gop_signing_key(key), Some(self.camera)).for_rendition(self.rendition);
        let mut video_header = None;
        let mut audio_header = None;
        let mut headers_sent = false;
        let mut base: Option<i64> = None;
        let fail = |e: hearth_camera::CameraError| format!("upstream {server}: {e}");
        loop {
            let item = tokio::select! {
                read = up.read() => {
                    up.handle_read(read).await.map_err(fail)?;
                    continue;
                }
                item = rx.recv() => item,
            };
            let Some(item) = item else {
                let _ = up.stop().await;
                return Ok(());
            };
            match item {
                Item::VideoConfig(cfg) => {
                    video_header = match (cfg.sps.first(), cfg.pps.first()) {
                        (Some(sps), Some(pps)) => flv::avc_sequence_header(sps, pps),
                        _ => None,
                    };
                    headers_sent = false;
                }
                Item::AudioConfig(cfg) => {
                    audio_header = Some(flv::aac_sequence_header(&cfg.asc));
                    headers_sent = false;
                }
                Item::Video(f) => {
                    if base.is_none() && !f.keyframe {
                        continue; // nothing decodes before the first keyframe
                    }
                    let base = *base.get_or_insert(f.dts_ms);
                    let ts = (f.dts_ms - base).max(0) as u32;
                    if !headers_sent {
                        let Some(h) = video_header.clone() else {
                            continue;
                        };
                        up.send_video(h, ts).await.map_err(fail)?;
                        if let Some(a) = audio_header.clone() {
                            up.send_audio(a, ts).await.map_err(fail)?;
                        }
                        headers_sent = true;
                    }
                    let signed = signer
                        .sign(&f.data, 4, f.keyframe, hearth_access::clock::now())
                        .map_err(|e| format!("signing: {e}"))?;
                    up.send_video(flv::avc_video_tag(f.keyframe, &signed), ts)
                        .await
                        .map_err(fail)?;
                }
                Item::Audio(a) => {
                    let Some(base) = base.filter(|_| headers_sent) else {
                        continue;
                    };
                    let ts = (a.pts_ms - base).max(0) as u32;
                    up.send_audio(flv::aac_audio_tag(&a.data), ts)
                        .await
                        .map_err(fail)?;
                }
            }
        }
    }
}

/// The pull's end of one RTMPS publish.
pub struct RtmpsSink {
    tx: mpsc::Sender<Item>,
    failure: Arc<Mutex<Option<String>>>,
    /// A frame was dropped: drop the rest until a keyframe.
    skipping: bool,
}

impl RtmpsSink {
    fn send(&mut self, item: Item) {
        let _ = self.tx.try_send(item);
    }
}

impl FrameSink for RtmpsSink {
    fn stopped(&self) -> Option<String> {
        if !self.tx.is_closed() {
            return None;
        }
        let why = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Some(why.unwrap_or_else(|| "the upstream publish ended".into()))
    }

    fn set_video_config(&mut self, config: AvcConfig) {
        self.send(Item::VideoConfig(config));
    }

    fn set_audio_config(&mut self, config: AacConfig) {
        self.send(Item::AudioConfig(config));
    }

    fn push_video(&mut self, frame: VideoFrame, _now: UnixMillis) {
        if self.skipping && !frame.keyframe {
            return;
        }
        self.skipping = self.tx.try_send(Item::Video(frame)).is_err();
    }

    fn push_audio(&mut self, frame: AudioFrame, _now: UnixMillis) {
        if !self.skipping {
            let _ = self.tx.try_send(Item::Audio(frame));
        }
    }
}
