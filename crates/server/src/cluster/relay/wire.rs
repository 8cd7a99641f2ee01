//! The relay's wire format (sans-IO): what goes between two nodes.
//!
//! ```text
//! config: 'C' len:u32                      avcC record (len bytes)
//! frame:  'V' dts:i64 pts:i64 flags:u8 provenance:[u8; 74] len:u32  AVCC bytes (len bytes)
//!         flags: bit 0 keyframe, bit 1 provenance present
//! ```
//!
//! Big-endian. A message longer than [`MAX_MESSAGE`] or of an unknown type
//! ends the stream: the decoder never guesses.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hearth_media::VideoFrame;
use hearth_media::provenance::{ENCODED_LEN, ProvenanceRecord};

/// The largest message accepted (a 4K keyframe is well under this).
pub const MAX_MESSAGE: usize = 16 << 20;
const FRAME_HEADER: usize = 1 + 8 + 8 + 1 + ENCODED_LEN + 4;

/// A decoded message.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// The avcC record of the frames that follow.
    Config(Bytes),
    Frame(VideoFrame),
}

/// Why a stream cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("unknown relay message type {0:#04x}")]
    UnknownType(u8),
    #[error("relay message of {0} bytes is over the limit")]
    TooLong(usize),
    #[error("relay frame: {0}")]
    Provenance(#[from] hearth_media::MediaError),
}

/// A configuration message.
pub fn config(record: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + record.len());
    out.put_u8(b'C');
    out.put_u32(record.len() as u32);
    out.put_slice(record);
    out.freeze()
}

/// The header of a frame message; the frame's bytes follow as they are
/// (shared with the hub, not copied).
pub fn frame_header(f: &VideoFrame) -> Bytes {
    let mut out = BytesMut::with_capacity(FRAME_HEADER);
    out.put_u8(b'V');
    out.put_i64(f.dts_ms);
    out.put_i64(f.pts_ms);
    out.put_u8(u8::from(f.keyframe) | (u8::from(f.provenance.is_some()) << 1));
    out.put_slice(&f.provenance.map_or([0; ENCODED_LEN], |p| p.encode()));
    out.put_u32(f.data.len() as u32);
    out.freeze()
}

/// Splits a byte stream into messages.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, if one is buffered.
    pub fn message(&mut self) -> Result<Option<Message>, WireError> {
        let Some(&kind) = self.buf.first() else {
            return Ok(None);
        };
        let header = match kind {
            b'C' => 5,
            b'V' => FRAME_HEADER,
            other => return Err(WireError::UnknownType(other)),
        };
        if self.buf.len() < header {
            return Ok(None);
        }
        let len =
            u32::from_be_bytes(self.buf[header - 4..header].try_into().expect("4 bytes")) as usize;
        if len > MAX_MESSAGE {
            return Err(WireError::TooLong(len));
        }
        if self.buf.len() < header + len {
            self.buf.reserve(header + len - self.buf.len());
            return Ok(None);
        }
        let mut head = self.buf.split_to(header);
        let body = self.buf.split_to(len).freeze();
        head.advance(1);
        if kind == b'C' {
            return Ok(Some(Message::Config(body)));
        }
        let dts_ms = head.get_i64();
        let pts_ms = head.get_i64();
        let flags = head.get_u8();
        let provenance = if flags & 2 != 0 {
            Some(ProvenanceRecord::decode(&head[..ENCODED_LEN])?)
        } else {
            None
        };
        Ok(Some(Message::Frame(VideoFrame {
            dts_ms,
            pts_ms,
            keyframe: flags & 1 != 0,
            data: body,
            provenance,
            annexb: Default::default(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_model::{BindingEpoch, CameraId, Provenance, Rendition, UnixMillis};

    fn frame(provenance: bool) -> VideoFrame {
        let p = Provenance {
            camera: CameraId::random(),
            epoch: BindingEpoch(2),
            seq: 9,
            capture_time: UnixMillis(1_700_000_000_000),
            rendition: Rendition::Sub,
        };
        VideoFrame {
            dts_ms: 40,
            pts_ms: 80,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
            provenance: provenance.then(|| ProvenanceRecord::new(&p, [7; 32])),
            annexb: Default::default(),
        }
    }

    #[test]
    fn messages_come_back_whole_however_the_stream_is_cut() {
        let (a, b) = (frame(true), frame(false));
        let mut stream = Vec::new();
        stream.extend_from_slice(&config(b"avcC-record"));
        for f in [&a, &b] {
            stream.extend_from_slice(&frame_header(f));
            stream.extend_from_slice(&f.data);
        }
        for cut in 1..stream.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                d.push(piece);
                while let Some(m) = d.message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(
                got,
                vec![
                    Message::Config(Bytes::from_static(b"avcC-record")),
                    Message::Frame(a.clone()),
                    Message::Frame(b.clone()),
                ],
                "cut every {cut} bytes"
            );
        }
    }

    #[test]
    fn garbage_and_oversized_messages_end_the_stream() {
        let mut d = Decoder::default();
        d.push(b"X");
        assert!(matches!(d.message(), Err(WireError::UnknownType(b'X'))));
        let mut d = Decoder::default();
        d.push(&[b'C', 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.message(), Err(WireError::TooLong(_))));
        // A provenance record of an unknown version.
        let mut header = frame_header(&frame(true)).to_vec();
        header[18] = 0xee;
        let mut d = Decoder::default();
        d.push(&header);
        d.push(&[0, 0, 0, 2, 0x65, 0x88]);
        assert!(d.message().is_err());
    }
}
