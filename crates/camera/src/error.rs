//! The crate's one error type.
//!
//! Errors say which side failed: the configuration (caller's mistake, reported before
//! anything starts), the encoder (internal), or the RTMP server (the peer). The
//! publisher logs peer errors and reconnects; it only returns configuration errors.

/// Everything that can go wrong in the simulated camera.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// The IANA time zone name is not in the bundled tz database.
    #[error("unknown time zone {name:?}")]
    UnknownTimeZone {
        name: String,
        #[source]
        source: jiff::Error,
    },

    /// The camera configuration cannot produce video (size, frame rate, ...).
    #[error("invalid camera config: {0}")]
    InvalidConfig(String),

    /// The publish URL is not `rtmp://host[:port]/app/stream_key`.
    #[error("invalid RTMP URL: {0}")]
    InvalidUrl(&'static str),

    /// OpenH264 refused to set up or encode.
    #[error("H.264 encoder failed while {context}")]
    Encoder {
        context: &'static str,
        #[source]
        source: openh264::Error,
    },

    /// The operating system refused to start the encoder thread.
    #[error("could not start the encoder thread")]
    Thread(#[source] std::io::Error),

    /// The encoder thread ended (panicked or failed) while the publisher still needed frames.
    #[error("encoder thread stopped")]
    EncoderStopped,

    /// Writing the pictures to a pipe or file failed.
    #[error("writing the stream failed")]
    Output(#[source] std::io::Error),

    /// A socket operation with the RTMP server failed.
    #[error("RTMP I/O with {addr} failed while {context}")]
    Io {
        addr: String,
        context: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The server did not answer in time.
    #[error("RTMP server {addr} did not answer in time while {context}")]
    Timeout { addr: String, context: &'static str },

    /// The server closed the connection.
    #[error("RTMP server {addr} closed the connection while {context}")]
    Closed { addr: String, context: &'static str },

    /// The RTMP handshake bytes were invalid.
    #[error("RTMP handshake failed")]
    Handshake(#[from] rml_rtmp::handshake::HandshakeError),

    /// The RTMP session (chunking, commands) failed.
    #[error("RTMP session error")]
    Session(#[from] rml_rtmp::sessions::ClientSessionError),

    /// An encoded access unit could not be signed (malformed encoder output).
    #[error("could not sign an access unit")]
    Sign(#[source] hearth_media::MediaError),

    /// The server answered a `connect` or `publish` with a refusal.
    #[error("RTMP server refused {what}: {description}")]
    Rejected {
        what: &'static str,
        description: String,
    },
}
