//! Publishing the camera over RTMP, like a hardware camera pointed at a server.
//!
//! This is the only module that touches sockets, threads and the clock. The RTMP
//! protocol itself is `rml_rtmp`'s sans-IO [`Handshake`] and [`ClientSession`]; this
//! module moves their bytes over a tokio `TcpStream`.
//!
//! Two halves, connected by a bounded channel:
//!
//! - an **encoder thread** (a plain std thread: encoding is CPU-bound and must never
//!   block the async runtime) paces itself in real time, draws and encodes one frame per
//!   tick and hands it over. When the channel is full (slow or absent uplink) it skips
//!   the tick *before* encoding, like a camera dropping frames at the sensor, so the
//!   H.264 reference chain stays intact and timestamps stay on wall-clock time;
//! - the **connection loop** connects, handshakes, `connect`s to the app, `publish`es
//!   the stream key (live), sends `onMetaData`, then the AVC sequence header and frames,
//!   starting each connection with a fresh IDR. When the connection fails or the server
//!   closes it, the reason is logged and it reconnects after 1 s, doubling to at most
//!   5 s; a connection that got as far as publishing resets the backoff.
//!
//! Every access unit is signed at the source before it is sent: a
//! [`GopSigner`] per connection (so each connection starts a new chain at GOP 0,
//! with the IDR that starts it) puts a signature SEI into every IDR, keyed by
//! [`gop_signing_key`] of the stream key, which the server knows too. See
//! `hearth_media::signing` for what is covered and why.
//!
//! The stream key is the camera's credential, so [`RtmpUrl`] never prints it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hearth_media::signing::{GopSigner, gop_signing_key};
use hearth_model::Rendition;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::SimCameraConfig;
use crate::encoder::{EncodedFrame, Encoder};
use crate::error::CameraError;
use crate::flv;

const DEFAULT_PORT: u16 = 1935;
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to answer `connect` / `publish`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// A server that stops reading for this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `rtmp://host[:port]/app/stream_key` publish URL.
///
/// `Display` and `Debug` show `<key>` instead of the stream key.
#[derive(Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port; 1935 when the URL has none.
    pub port: u16,
    /// The RTMP application (first path segment).
    pub app: String,
    stream_key: String,
}

impl RtmpUrl {
    /// Parses `rtmp://host[:port]/app/stream_key`. The stream key is everything after
    /// the app, so it may contain `/` or a `?query`.
    pub fn parse(url: &str) -> Result<Self, CameraError> {
        let bad = |why| Err(CameraError::InvalidUrl(why));
        let Some(rest) = url
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("rtmp://"))
            .map(|_| &url[7..])
        else {
            return bad("must start with rtmp:// (rtmps is not supported)");
        };
        let Some((authority, path)) = rest.split_once('/') else {
            return bad("missing /app/stream_key");
        };
        if authority.contains('@') {
            return bad("user info in the URL is not supported");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return bad("unterminated [IPv6] host");
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return bad("junk after [IPv6] host"),
                },
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains([':', '[', ']']) && !authority.starts_with('[') {
            return bad("missing or malformed host");
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return bad("port is not a number in 1..=65535"),
            },
        };
        let Some((app, key)) = path.split_once('/') else {
            return bad("missing stream key after the app");
        };
        if app.is_empty() {
            return bad("empty app name");
        }
        if key.is_empty() {
            return bad("empty stream key");
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            app: app.to_owned(),
            stream_key: key.to_owned(),
        })
    }

    /// The stream key (a credential: do not log it).
    pub fn stream_key(&self) -> &str {
        &self.stream_key
    }

    /// `host:port` for connecting, with brackets around IPv6 addresses.
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `tcUrl` sent in `connect`: `rtmp://host:port/app`.
    pub fn tc_url(&self) -> String {
        format!("rtmp://{}/{}", self.socket_addr(), self.app)
    }
}

impl std::fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/<key>", self.tc_url())
    }
}

impl std::fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RtmpUrl({self})")
    }
}

/// Runs a simulated camera publishing to `url` until `shutdown` becomes `true` (or its
/// sender is dropped).
///
/// Returns an error only for problems that retrying cannot fix: a bad URL or config
/// (before anything starts) or a failed encoder. Connection problems are logged and
/// retried with backoff, forever.
pub async fn publish(
    url: &str,
    cfg: SimCameraConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), CameraError> {
    let target = RtmpUrl::parse(url)?;
    let encoder = Encoder::new(cfg.clone())?;
    let span = info_span!("sim_camera", camera = %cfg.name, url = %target);
    async move {
        let mut source = FrameSource::spawn(encoder)?;
        let result = reconnect_loop(&target, &cfg, &mut source, &mut shutdown).await;
        source.stop().await;
        result
    }
    .instrument(span)
    .await
}

/// Runs a simulated camera that, like most real ones, offers a main stream and
/// a sub stream: `cfg` published to `url`, and the same scene at `sub_size`
/// published to `url` + `/sub` (the camera's sub rendition), until `shutdown`.
/// `sub_size: None` publishes the main stream only.
pub async fn publish_renditions(
    url: &str,
    cfg: SimCameraConfig,
    sub_size: Option<(u32, u32)>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), CameraError> {
    let Some((width, height)) = sub_size else {
        return publish(url, cfg, shutdown).await;
    };
    let sub = SimCameraConfig {
        width,
        height,
        ..cfg.clone()
    };
    sub.validate()?;
    let sub_url = sub_stream_url(url);
    let (main, sub) = tokio::join!(
        publish(url, cfg, shutdown.clone()),
        publish(&sub_url, sub, shutdown)
    );
    main.and(sub)
}

/// `rtmp://host/live/<key>` → `rtmp://host/live/<key>/sub` (before any query).
pub fn sub_stream_url(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{path}/sub?{query}"),
        None => format!("{url}/sub"),
    }
}

async fn reconnect_loop(
    target: &RtmpUrl,
    cfg: &SimCameraConfig,
    source: &mut FrameSource,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), CameraError> {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if stop_requested(shutdown) {
            return Ok(());
        }
        let mut published = false;
        match publish_once(target, cfg, source, shutdown, &mut published).await {
            Ok(()) => return Ok(()),
            Err(CameraError::EncoderStopped) => return Err(CameraError::EncoderStopped),
            Err(e) => {
                if published {
                    backoff = INITIAL_BACKOFF;
                }
                warn!(
                    error = %error_chain(&e),
                    retry_in_ms = backoff.as_millis() as u64,
                    "RTMP publish failed; reconnecting"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            () = stopped(shutdown) => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection, from TCP connect until shutdown (`Ok`) or failure (`Err`).
/// Sets `published` once the server has accepted the stream and video is flowing.
async fn publish_once(
    target: &RtmpUrl,
    cfg: &SimCameraConfig,
    source: &mut FrameSource,
    shutdown: &mut watch::Receiver<bool>,
    published: &mut bool,
) -> Result<(), CameraError> {
    // Until the server accepts the stream there is nothing to unpublish: on shutdown,
    // just drop the connection.
    let setup = async {
        let tcp = connect_tcp(target.socket_addr()).await?;
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(cfg.width);
        metadata.video_height = Some(cfg.height);
        metadata.video_frame_rate = Some(cfg.fps as f32);
        metadata.video_codec_id = Some(u32::from(flv::CODEC_ID_AVC));
        metadata.encoder = Some(concat!("hearth-camera/", env!("CARGO_PKG_VERSION")).to_owned());
        RtmpPublisher::start(tcp, target.socket_addr(), target, &metadata).await
    };
    let mut publisher = tokio::select! {
        result = setup => result?,
        () = stopped(shutdown) => return Ok(()),
    };

    // Start clean: drop frames queued while disconnected and begin with a fresh IDR.
    source.discard_queued();
    source.request_keyframe();
    let mut base_pts_ms = None;
    // A new chain per connection: the server's verifier is per connection too.
    // A sub stream (`<key>/sub`) signs with the camera's key, naming its rendition.
    let (key, rendition) = Rendition::from_stream_path(target.stream_key());
    let mut signer = GopSigner::new(gop_signing_key(key), cfg.camera_id).for_rendition(rendition);
    let mut tamper = Tamper::new(cfg.tamper_after_gops);

    loop {
        tokio::select! {
            biased;
            () = stopped(shutdown) => {
                publisher.stop().await?;
                info!("stopped publishing");
                return Ok(());
            }
            read = publisher.read() => {
                publisher.handle_read(read).await?;
            }
            frame = source.frames.recv() => {
                let Some(frame) = frame else {
                    return Err(CameraError::EncoderStopped);
                };
                let base = match base_pts_ms {
                    Some(base) => base,
                    // Until the first IDR of this connection, nothing is decodable.
                    None if !frame.keyframe => continue,
                    None => {
                        let Some(header) = flv::avc_sequence_header_from_annexb(&frame.annexb) else {
                            continue;
                        };
                        publisher.send_video(header, 0).await?;
                        base_pts_ms = Some(frame.pts_ms);
                        *published = true;
                        info!(width = cfg.width, height = cfg.height, fps = cfg.fps, "publishing");
                        frame.pts_ms
                    }
                };
                // RTMP timestamps are 32-bit milliseconds and wrap after ~49 days.
                let timestamp = (frame.pts_ms - base) as u32;
                let signed = signer
                    .sign(&frame.avcc, flv::NALU_LENGTH_SIZE, frame.keyframe, frame.capture_time)
                    .map_err(CameraError::Sign)?;
                let signed = tamper.apply(frame.keyframe, signed);
                let tag = flv::avc_video_tag(frame.keyframe, &signed);
                publisher.send_video(tag, timestamp).await?;
            }
        }
    }
}

/// The test-only tampering of [`SimCameraConfig::tamper_after_gops`], per connection.
struct Tamper {
    after_gops: Option<u64>,
    gops: u64,
    done: bool,
}

impl Tamper {
    fn new(after_gops: Option<u64>) -> Self {
        Self {
            after_gops,
            gops: 0,
            done: false,
        }
    }

    /// `au` as signed, or, once per connection, the first inter frame after the
    /// configured number of complete GOPs with one byte of its slice data flipped.
    fn apply(&mut self, keyframe: bool, au: bytes::Bytes) -> bytes::Bytes {
        if keyframe {
            self.gops += 1;
            return au;
        }
        let Some(after) = self.after_gops else {
            return au;
        };
        // `gops` counts IDRs sent, so GOP number `gops - 1` is the current one.
        if self.done || self.gops != after + 1 {
            return au;
        }
        // The middle of the last NAL unit's payload: inside the slice data, never a
        // length prefix or NAL header (so the framing stays valid).
        let Some(Ok(last)) = hearth_media::h264::nal_units(&au, flv::NALU_LENGTH_SIZE).last()
        else {
            return au;
        };
        if last.len() < 2 {
            return au;
        }
        self.done = true;
        let at = au.len() - last.len() + 1 + (last.len() - 1) / 2;
        let mut out = au.to_vec();
        out[at] ^= 0x01;
        warn!(
            gop = after,
            "tampering with an inter frame after signing it (tamper_after_gops is for tests only)"
        );
        bytes::Bytes::from(out)
    }
}

/// Connects to an RTMP server's TCP port (within [`CONNECT_TIMEOUT`], Nagle off).
pub async fn connect_tcp(addr: String) -> Result<TcpStream, CameraError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Err(_) => {
            return Err(CameraError::Timeout {
                addr,
                context: "connecting",
            });
        }
        Ok(Err(source)) => {
            return Err(CameraError::Io {
                addr,
                context: "connecting",
                source,
            });
        }
        Ok(Ok(stream)) => stream,
    };
    // Frames are written whole; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A live RTMP publish over any byte stream (TCP, or TLS for RTMPS): the
/// handshake, `connect` to the app and `publish` of the stream key done, the
/// stream's metadata sent. Frames go in as FLV tag bodies.
pub struct RtmpPublisher<S> {
    conn: Connection<S>,
    session: ClientSession,
    events: Vec<ClientSessionEvent>,
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> RtmpPublisher<S> {
    /// Handshakes on `stream` (`addr` names the server in errors), connects
    /// to `target`'s app and publishes its stream key with `metadata`.
    pub async fn start(
        stream: S,
        addr: String,
        target: &RtmpUrl,
        metadata: &StreamMetadata,
    ) -> Result<Self, CameraError> {
        let mut conn = Connection::new(stream, addr);
        let leftover = conn.handshake().await?;

        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(target.tc_url());
        let (mut session, results) = ClientSession::new(config)?;
        let mut events = Vec::new();
        conn.send(results, &mut events).await?;
        if !leftover.is_empty() {
            let results = session.handle_input(&leftover)?;
            conn.send(results, &mut events).await?;
        }

        let request = session.request_connection(target.app.clone())?;
        conn.send(vec![request], &mut events).await?;
        conn.await_answer(
            &mut session,
            &mut events,
            "connecting to the app",
            |event| match event {
                ClientSessionEvent::ConnectionRequestAccepted => Some(Ok(())),
                ClientSessionEvent::ConnectionRequestRejected { description } => {
                    Some(Err(CameraError::Rejected {
                        what: "connect",
                        description,
                    }))
                }
                _ => None,
            },
        )
        .await?;

        let request =
            session.request_publishing(target.stream_key().to_owned(), PublishRequestType::Live)?;
        conn.send(vec![request], &mut events).await?;
        conn.await_answer(
            &mut session,
            &mut events,
            "requesting to publish",
            |event| match event {
                ClientSessionEvent::PublishRequestAccepted => Some(Ok(())),
                ClientSessionEvent::UnhandleableOnStatusCode { code }
                    if !code.ends_with(".Start") =>
                {
                    Some(Err(CameraError::Rejected {
                        what: "publish",
                        description: code,
                    }))
                }
                _ => None,
            },
        )
        .await?;
        let result = session.publish_metadata(metadata)?;
        conn.send(vec![result], &mut events).await?;
        Ok(Self {
            conn,
            session,
            events,
        })
    }

    /// An FLV video tag body at `timestamp_ms` (32-bit, wrapping).
    pub async fn send_video(
        &mut self,
        tag: bytes::Bytes,
        timestamp_ms: u32,
    ) -> Result<(), CameraError> {
        let result =
            self.session
                .publish_video_data(tag, RtmpTimestamp::new(timestamp_ms), false)?;
        self.conn.send(vec![result], &mut self.events).await
    }

    /// An FLV audio tag body at `timestamp_ms`.
    pub async fn send_audio(
        &mut self,
        tag: bytes::Bytes,
        timestamp_ms: u32,
    ) -> Result<(), CameraError> {
        let result =
            self.session
                .publish_audio_data(tag, RtmpTimestamp::new(timestamp_ms), false)?;
        self.conn.send(vec![result], &mut self.events).await
    }

    /// Waits for bytes from the server (cancel-safe: nothing is lost when the
    /// future is dropped); hand the result to [`Self::handle_read`].
    pub async fn read(&mut self) -> std::io::Result<usize> {
        self.conn.reader.read(&mut self.conn.buf).await
    }

    /// Feeds what [`Self::read`] got to the session (acknowledgements,
    /// pings); an error if the server closed the connection.
    pub async fn handle_read(&mut self, read: std::io::Result<usize>) -> Result<(), CameraError> {
        let n = self.conn.check_read(read, "publishing")?;
        let results = self.session.handle_input(&self.conn.buf[..n])?;
        self.conn.send(results, &mut self.events).await?;
        for event in self.events.drain(..) {
            debug!(?event, "RTMP event while publishing");
        }
        Ok(())
    }

    /// Ends the publish and closes the connection.
    pub async fn stop(&mut self) -> Result<(), CameraError> {
        let results = self.session.stop_publishing()?;
        self.conn.send(results, &mut self.events).await?;
        let _ = self.conn.writer.shutdown().await;
        Ok(())
    }
}

/// A connection to the RTMP server with timeouts and error context.
struct Connection<S> {
    addr: String,
    reader: ReadHalf<S>,
    writer: WriteHalf<S>,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite> Connection<S> {
    fn new(stream: S, addr: String) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            addr,
            reader,
            writer,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Runs the client handshake; returns bytes the server sent after it (already RTMP).
    async fn handshake(&mut self) -> Result<Vec<u8>, CameraError> {
        let mut handshake = Handshake::new(PeerType::Client);
        let c0c1 = handshake.generate_outbound_p0_and_p1()?;
        self.write(&c0c1, "handshaking").await?;
        loop {
            let n = self.read_with_timeout("handshaking").await?;
            match handshake.process_bytes(&self.buf[..n])? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.write(&response_bytes, "handshaking").await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.write(&response_bytes, "handshaking").await?;
                    return Ok(remaining_bytes);
                }
            }
        }
    }

    /// Reads and feeds the session until `answer` maps an event to a result.
    async fn await_answer(
        &mut self,
        session: &mut ClientSession,
        events: &mut Vec<ClientSessionEvent>,
        context: &'static str,
        mut answer: impl FnMut(ClientSessionEvent) -> Option<Result<(), CameraError>>,
    ) -> Result<(), CameraError> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            for event in events.drain(..) {
                debug!(?event, context, "RTMP event");
                if let Some(result) = answer(event) {
                    return result;
                }
            }
            let read = tokio::time::timeout_at(deadline, self.reader.read(&mut self.buf)).await;
            let Ok(read) = read else {
                return Err(CameraError::Timeout {
                    addr: self.addr.clone(),
                    context,
                });
            };
            let n = self.check_read(read, context)?;
            let results = session.handle_input(&self.buf[..n])?;
            self.send(results, events).await?;
        }
    }

    /// Writes outbound packets in order and collects raised events.
    async fn send(
        &mut self,
        results: Vec<ClientSessionResult>,
        events: &mut Vec<ClientSessionEvent>,
    ) -> Result<(), CameraError> {
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.write(&packet.bytes, "sending").await?;
                }
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(payload) => {
                    debug!(type_id = payload.type_id, "ignoring unhandled RTMP message");
                }
            }
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8], context: &'static str) -> Result<(), CameraError> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.writer.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(self.io_error(source, context)),
            Err(_) => Err(CameraError::Timeout {
                addr: self.addr.clone(),
                context,
            }),
        }
    }

    async fn read_with_timeout(&mut self, context: &'static str) -> Result<usize, CameraError> {
        match tokio::time::timeout(ANSWER_TIMEOUT, self.reader.read(&mut self.buf)).await {
            Ok(read) => self.check_read(read, context),
            Err(_) => Err(CameraError::Timeout {
                addr: self.addr.clone(),
                context,
            }),
        }
    }

    /// Turns a read result into a byte count, with EOF as [`CameraError::Closed`].
    fn check_read(
        &self,
        read: std::io::Result<usize>,
        context: &'static str,
    ) -> Result<usize, CameraError> {
        match read {
            Ok(0) => Err(CameraError::Closed {
                addr: self.addr.clone(),
                context,
            }),
            Ok(n) => Ok(n),
            Err(source) => Err(self.io_error(source, context)),
        }
    }

    fn io_error(&self, source: std::io::Error, context: &'static str) -> CameraError {
        match source.kind() {
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => CameraError::Closed {
                addr: self.addr.clone(),
                context,
            },
            _ => CameraError::Io {
                addr: self.addr.clone(),
                context,
                source,
            },
        }
    }
}

/// The encoder thread and the receiving end of its frames.
pub(crate) struct FrameSource {
    pub(crate) frames: mpsc::Receiver<EncodedFrame>,
    keyframe_request: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FrameSource {
    pub(crate) fn spawn(mut encoder: Encoder) -> Result<Self, CameraError> {
        let fps = u64::from(encoder.config().fps);
        // One second of frames: enough to ride out a slow write, small enough that a
        // reconnect does not start with stale video.
        let (tx, frames) = mpsc::channel(fps as usize);
        let keyframe_request = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (request, stopping) = (keyframe_request.clone(), stop.clone());
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("sim-camera-encoder".into())
            .spawn(move || {
                let _entered = span.enter();
                let tick = |index: u64| Duration::from_nanos(index * 1_000_000_000 / fps);
                let mut start = Instant::now();
                let mut index = 0u64;
                while !stopping.load(Ordering::Relaxed) && !tx.is_closed() {
                    let due = start + tick(index);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    } else if now - due > Duration::from_secs(1) {
                        // Far behind (machine suspended or overloaded): do not burst to
                        // catch up, carry on from now.
                        start = now - tick(index);
                    }
                    index += 1;
                    if tx.capacity() == 0 {
                        // Uplink not keeping up: drop this tick before encoding.
                        encoder.skip_frame();
                        continue;
                    }
                    if request.swap(false, Ordering::Relaxed) {
                        encoder.request_keyframe();
                    }
                    match encoder.next_frame(jiff::Timestamp::now()) {
                        Ok(frame) => match tx.try_send(frame) {
                            Ok(()) => {}
                            // Cannot happen (we are the only sender and saw room), but a
                            // dropped encoded frame breaks the reference chain: recover.
                            Err(mpsc::error::TrySendError::Full(_)) => encoder.request_keyframe(),
                            Err(mpsc::error::TrySendError::Closed(_)) => break,
                        },
                        Err(e) => {
                            tracing::error!(error = %error_chain(&e), "encoder failed; camera stops");
                            break;
                        }
                    }
                }
            })
            .map_err(CameraError::Thread)?;
        Ok(Self {
            frames,
            keyframe_request,
            stop,
            thread: Some(thread),
        })
    }

    fn request_keyframe(&self) {
        self.keyframe_request.store(true, Ordering::Relaxed);
    }

    /// A handle that asks the encoder for a keyframe when set.
    pub(crate) fn keyframe_requester(&self) -> Arc<AtomicBool> {
        self.keyframe_request.clone()
    }

    fn discard_queued(&mut self) {
        while self.frames.try_recv().is_ok() {}
    }

    pub(crate) async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.frames.close();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Whether the camera should stop: `shutdown` is `true`, or its sender is gone (nobody
/// could ever stop the camera then, so it stops rather than run orphaned).
fn stop_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves once [`stop_requested`] would say so.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: stop as well. The returned guard is dropped
    // here, so it is never held across an await (it is not `Send`).
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// `error: cause: cause` on one line, for logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_publish_urls() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1:19350/live/abc123").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.app.as_str()),
            ("127.0.0.1", 19350, "live")
        );
        assert_eq!(u.stream_key(), "abc123");
        assert_eq!(u.socket_addr(), "127.0.0.1:19350");
        assert_eq!(u.tc_url(), "rtmp://127.0.0.1:19350/live");

        let u = RtmpUrl::parse("RTMP://cams.example/ingest/k/with/slash?token=x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("cams.example", 1935));
        assert_eq!(u.stream_key(), "k/with/slash?token=x");

        let u = RtmpUrl::parse("rtmp://[::1]:1936/live/k").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1936));
        assert_eq!(u.socket_addr(), "[::1]:1936");
        let u = RtmpUrl::parse("rtmp://[::1]/live/k").unwrap();
        assert_eq!(u.port, 1935);
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in [
            "",
            "http://host/live/key",
            "rtmps://host/live/key",
            "rtmp://host",
            "rtmp://host/live",
            "rtmp://host/live/",
            "rtmp://host//key",
            "rtmp:///live/key",
            "rtmp://host:0/live/key",
            "rtmp://host:99999/live/key",
            "rtmp://host:abc/live/key",
            "rtmp://user:pw@host/live/key",
            "rtmp://::1/live/key",
            "rtmp://[::1/live/key",
            "rtmp://[::1]x/live/key",
        ] {
            assert!(
                matches!(RtmpUrl::parse(bad), Err(CameraError::InvalidUrl(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn publish_can_be_spawned() {
        // The server spawns cameras on a multi-threaded runtime.
        fn assert_send<T: Send + 'static>(_: &T) {}
        let (_stop, shutdown) = watch::channel(false);
        let cfg = SimCameraConfig::new("x", "UTC", 1);
        let future = async move { publish("rtmp://h/a/k", cfg, shutdown).await };
        assert_send(&future);
    }

    #[test]
    fn never_prints_the_stream_key() {
        let u = RtmpUrl::parse("rtmp://h:1/live/s3cr3t").unwrap();
        assert_eq!(u.to_string(), "rtmp://h:1/live/<key>");
        assert!(!format!("{u:?}").contains("s3cr3t"));
    }

    #[test]
    fn error_chain_joins_sources() {
        let e = CameraError::Io {
            addr: "h:1".into(),
            context: "connecting",
            source: std::io::Error::other("refused"),
        };
        assert_eq!(
            error_chain(&e),
            "RTMP I/O with h:1 failed while connecting: refused"
        );
    }
}
