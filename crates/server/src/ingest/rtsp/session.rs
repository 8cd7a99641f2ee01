//! One attempt at pulling one rendition of one camera: reach it, sign in,
//! set up its H.264 video (and AAC audio, if it has some), play, and hand every
//! frame to a [`FrameSink`]: on this server the camera's hub, through a
//! [`Publisher`] lease, exactly as RTMP ingest does (the same stamping and
//! provenance, the same door after it); in a home agent, its RTMPS publisher.
//!
//! The RTSP client is retina (the one Moonfire NVR is built on): Digest and
//! Basic auth, RTP over TCP interleaved or UDP, depacketizing to AVC access
//! units and raw AAC frames. This module only maps its items onto Hearth's
//! frames and its failures onto [`PullState`]s.

use super::backoff::Outcome;
use super::source::{RtpTransport, RtspSource};
use crate::hub::Publisher;
use crate::pulls::{PullState, Statuses, scrub};
use bytes::Bytes;
use futures_util::StreamExt;
use hearth_media::aac::AacConfig;
use hearth_media::h264::AvcConfig;
use hearth_media::{AudioFrame, VideoFrame};
use hearth_model::{CameraId, Rendition, UnixMillis};
use retina::client::{PlayOptions, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, ParametersRef};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Connecting to the camera's address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// DESCRIBE, SETUP and PLAY together.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// No video frame for this long ends the session (the camera hung).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an attempt's frames go.
pub trait FrameSink: Send {
    /// Why it takes no more frames, once it does not (the camera's binding
    /// changed, the connection upstream is gone): the attempt ends.
    fn stopped(&self) -> Option<String>;
    fn set_video_config(&mut self, config: AvcConfig);
    fn set_audio_config(&mut self, config: AacConfig);
    fn push_video(&mut self, frame: VideoFrame, now: UnixMillis);
    fn push_audio(&mut self, frame: AudioFrame, now: UnixMillis);
}

impl FrameSink for Publisher {
    fn stopped(&self) -> Option<String> {
        (!Publisher::is_live(self)).then(|| "the camera's binding changed".into())
    }
    fn set_video_config(&mut self, config: AvcConfig) {
        Publisher::set_video_config(self, config);
    }
    fn set_audio_config(&mut self, config: AacConfig) {
        Publisher::set_audio_config(self, config);
    }
    fn push_video(&mut self, frame: VideoFrame, now: UnixMillis) {
        Publisher::push_video(self, frame, now);
    }
    fn push_audio(&mut self, frame: AudioFrame, now: UnixMillis) {
        Publisher::push_audio(self, frame, now);
    }
}

/// Opens the sink of one attempt, once the camera plays (an error says why
/// it cannot take frames now).
pub type OpenSink<'a> = &'a (dyn Fn() -> Result<Box<dyn FrameSink>, String> + Sync);

/// One pull of `rendition` of `camera` from `source`, until it fails, stalls,
/// the sink stops taking frames or `stop` is set. Puts the states it passes
/// through in `statuses` and says how it ended.
pub struct Attempt<'a> {
    pub statuses: &'a Statuses,
    pub camera: CameraId,
    pub rendition: Rendition,
    pub source: &'a RtspSource,
    pub stop: &'a mut watch::Receiver<bool>,
    pub open: OpenSink<'a>,
    /// Whether the camera may be at a private address (see `super::address`).
    pub private_addresses: bool,
}

/// How an attempt ended: the state to show and the error to record.
pub struct Ended {
    pub outcome: Outcome,
    pub state: PullState,
    pub error: String,
}

impl Attempt<'_> {
    fn report(&self, state: PullState) {
        self.statuses.set(
            self.camera,
            self.rendition,
            state,
            None,
            hearth_access::clock::now(),
        );
    }

    fn ended(&self, outcome: Outcome, state: PullState, error: impl std::fmt::Display) -> Ended {
        let secrets = [self.source.username.as_str(), self.source.password.as_str()];
        Ended {
            outcome,
            state,
            error: scrub(&error.to_string(), &secrets),
        }
    }

    pub async fn run(self) -> Ended {
        let Some(url) = self.source.url(self.rendition) else {
            return self.ended(
                Outcome::Failed,
                PullState::Connecting,
                "no URL for this stream",
            );
        };
        let url = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return self.ended(Outcome::Failed, PullState::Connecting, e),
        };
        self.report(PullState::Connecting);
        // A cheap probe first: a camera that is off costs one SYN, and its
        // state says so plainly.
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port().unwrap_or(554);
        let addr = match super::address::resolve(&host, port, self.private_addresses).await {
            Ok(a) => a,
            Err(e) => return self.ended(Outcome::Unreachable, PullState::Unreachable, e),
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_probe)) => {}
            Ok(Err(e)) => {
                return self.ended(
                    Outcome::Unreachable,
                    PullState::Unreachable,
                    format!("{host}:{port}: {e}"),
                );
            }
            Err(_) => {
                return self.ended(
                    Outcome::Unreachable,
                    PullState::Unreachable,
                    format!("{host}:{port}: no answer within {CONNECT_TIMEOUT:?}"),
                );
            }
        }
        // The address checked is the one pulled from, not whatever the name
        // resolves to a moment later.
        let mut url = url;
        if !self.private_addresses && url.set_ip_host(addr.ip()).is_err() {
            return self.ended(
                Outcome::Failed,
                PullState::Connecting,
                "the camera's URL has no host",
            );
        }
        let setup = tokio::time::timeout(SETUP_TIMEOUT, self.setup(url));
        let mut stop = self.stop.clone();
        let (session, video, audio) = tokio::select! {
            r = setup => match r {
                Ok(Ok(s)) => s,
                Ok(Err(ended)) => return ended,
                Err(_) => return self.ended(Outcome::Failed, PullState::Connecting, format!("no answer to DESCRIBE/SETUP/PLAY within {SETUP_TIMEOUT:?}")),
            },
            _ = stop.changed() => return self.ended(Outcome::Ran(Duration::ZERO), PullState::Connecting, "stopped"),
        };
        self.play(session, video, audio).await
    }

    /// DESCRIBE, SETUP of the H.264 stream (and the AAC one), PLAY.
    async fn setup(
        &self,
        url: url::Url,
    ) -> Result<(retina::client::Demuxed, usize, Option<usize>), Ended> {
        let creds =
            (!self.source.username.is_empty() || !self.source.password.is_empty()).then(|| {
                retina::client::Credentials {
                    username: self.source.username.clone(),
                    password: self.source.password.clone(),
                }
            });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("Hearth/{}", env!("CARGO_PKG_VERSION")));
        let mut session = retina::client::Session::describe(url, options)
            .await
            .map_err(|e| self.failure(&e, "DESCRIBE"))?;
        let streams = session.streams();
        let video = streams
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"));
        let Some(video) = video else {
            let offered: Vec<String> = streams
                .iter()
                .map(|s| format!("{} {}", s.media(), s.encoding_name()))
                .collect();
            return Err(self.ended(
                Outcome::Failed,
                PullState::UnsupportedCodec,
                format!(
                    "no H.264 video stream (the camera offers: {})",
                    offered.join(", ")
                ),
            ));
        };
        let audio = streams.iter().position(|s| {
            s.media() == "audio" && s.encoding_name().eq_ignore_ascii_case("mpeg4-generic")
        });
        let transport = || match self.source.transport {
            RtpTransport::Tcp => Transport::Tcp(Default::default()),
            RtpTransport::Udp => Transport::Udp(Default::default()),
        };
        for i in std::iter::once(video).chain(audio) {
            session
                .setup(i, SetupOptions::default().transport(transport()))
                .await
                .map_err(|e| self.failure(&e, "SETUP"))?;
        }
        let playing = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| self.failure(&e, "PLAY"))?;
        let demuxed = playing.demuxed().map_err(|e| self.failure(&e, "PLAY"))?;
        Ok((demuxed, video, audio))
    }

    /// An RTSP error: a refused sign-in, or anything else the camera said.
    fn failure(&self, e: &retina::Error, step: &str) -> Ended {
        match e.status_code() {
            Some(401 | 403) => self.ended(
                Outcome::Failed,
                PullState::AuthFailed,
                format!(
                    "{step}: the camera refused the user name or password ({})",
                    e.status_code().unwrap_or(401)
                ),
            ),
            _ => self.ended(
                Outcome::Failed,
                PullState::Connecting,
                format!("{step}: {e}"),
            ),
        }
    }

    /// Frames to the hub until the session ends.
    async fn play(
        self,
        mut session: retina::client::Demuxed,
        video: usize,
        audio: Option<usize>,
    ) -> Ended {
        let started = Instant::now();
        let ran = || Outcome::Ran(started.elapsed());
        let mut publisher = match (self.open)() {
            Ok(p) => p,
            Err(e) => return self.ended(Outcome::Failed, PullState::Connecting, e),
        };
        let mut feed = Feed::default();
        let mut stop = self.stop.clone();
        let mut last_video = tokio::time::Instant::now();
        loop {
            let deadline = last_video + STALL_TIMEOUT;
            let item = tokio::select! {
                item = session.next() => item,
                _ = tokio::time::sleep_until(deadline) => {
                    return self.ended(ran(), PullState::Connecting, format!("no video for {STALL_TIMEOUT:?}"));
                }
                _ = stop.changed() => {
                    return self.ended(ran(), PullState::Connecting, "stopped");
                }
            };
            let item = match item {
                None => {
                    return self.ended(
                        ran(),
                        PullState::Connecting,
                        "the camera ended the session",
                    );
                }
                Some(Err(e)) => {
                    return self.ended(ran(), PullState::Connecting, format!("session: {e}"));
                }
                Some(Ok(item)) => item,
            };
            if let Some(why) = publisher.stopped() {
                return self.ended(ran(), PullState::Connecting, why);
            }
            let now = hearth_access::clock::now();
            match item {
                CodecItem::VideoFrame(f) if f.stream_id() == video => {
                    if f.has_new_parameters() || !feed.video_configured {
                        let params = session.streams()[video].parameters();
                        match params {
                            Some(ParametersRef::Video(v)) => {
                                match AvcConfig::parse_record(Bytes::copy_from_slice(
                                    v.extra_data(),
                                )) {
                                    Ok(cfg) => {
                                        publisher.set_video_config(cfg);
                                        feed.video_configured = true;
                                    }
                                    Err(e) => {
                                        return self.ended(
                                            ran(),
                                            PullState::UnsupportedCodec,
                                            format!("H.264 parameters: {e}"),
                                        );
                                    }
                                }
                            }
                            _ => continue, // no SPS/PPS yet: wait for a frame that has them
                        }
                    }
                    last_video = tokio::time::Instant::now();
                    if !feed.online {
                        feed.online = true;
                        self.report(PullState::Online);
                        tracing::info!(camera = ?self.camera, rendition = self.rendition.as_str(), source = %self.source.describe(), "camera live (rtsp)");
                    }
                    let ms = to_ms(f.timestamp());
                    publisher.push_video(
                        VideoFrame {
                            dts_ms: ms,
                            pts_ms: ms,
                            keyframe: f.is_random_access_point(),
                            data: Bytes::from(f.into_data()),
                            provenance: None,
                            annexb: Default::default(),
                        },
                        now,
                    );
                }
                CodecItem::AudioFrame(f) if Some(f.stream_id()) == audio => {
                    if !feed.audio_configured {
                        if let Some(ParametersRef::Audio(a)) =
                            session.streams()[f.stream_id()].parameters()
                            && let Ok(cfg) =
                                AacConfig::parse(Bytes::copy_from_slice(a.extra_data()))
                        {
                            publisher.set_audio_config(cfg);
                            feed.audio_configured = true;
                        } else {
                            continue;
                        }
                    }
                    if feed.video_configured {
                        push_audio(&mut publisher, &f, now);
                    }
                }
                _ => {}
            }
        }
    }
}

#[derive(Default)]
struct Feed {
    video_configured: bool,
    audio_configured: bool,
    online: bool,
}

fn push_audio(p: &mut Box<dyn FrameSink>, f: &retina::codec::AudioFrame, now: UnixMillis) {
    p.push_audio(
        AudioFrame {
            pts_ms: to_ms(f.timestamp()),
            data: Bytes::copy_from_slice(f.data()),
            provenance: None,
        },
        now,
    );
}

/// An RTP timestamp as milliseconds since the stream started.
fn to_ms(t: retina::Timestamp) -> i64 {
    t.elapsed() * 1000 / i64::from(t.clock_rate().get())
}
