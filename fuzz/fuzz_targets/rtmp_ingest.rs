//! RTMP ingest exactly as the server drives it: the handshake, the chunk stream,
//! AMF0 commands, and after an accepted publish the FLV tags, GOP signatures and
//! the camera's hub (segmenter, GOP cache) behind its publisher lease.
//!
//! The first byte picks the mode: raw bytes from the first byte of the handshake,
//! or a valid handshake and publish followed by raw chunk-stream bytes, or by
//! messages the harness frames into chunks (so the fuzzer reaches FLV and the hub).
#![no_main]
use hearth_access::keys::MediaKeys;
use hearth_model::{BindingEpoch, CameraId, UnixMillis};
use hearth_server::hub::HubRegistry;
use hearth_server::ingest::rtmp::session::{Need, RtmpIngest};
use libfuzzer_sys::fuzz_target;
use rml_amf0::Amf0Value;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use std::collections::HashMap;
use std::sync::Arc;

const CHUNK: usize = 128;

/// One message framed as chunks of the default size on chunk stream `csid`.
fn frame(csid: u8, ts: u32, type_id: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.push(csid);
    out.extend_from_slice(&ts.min(0xFF_FFFF).to_be_bytes()[1..]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream.to_le_bytes());
    if ts >= 0xFF_FFFF {
        out.extend_from_slice(&ts.to_be_bytes());
    }
    for (i, part) in payload.chunks(CHUNK).enumerate() {
        if i > 0 {
            out.push(0xC0 | csid);
        }
        out.extend_from_slice(part);
    }
}

fn command(values: Vec<Amf0Value>) -> Vec<u8> {
    rml_amf0::serialize(&values).unwrap()
}

/// Client bytes for a valid handshake, connect, createStream and publish.
fn handshake_and_publish(server: &mut RtmpIngest, out: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut client = Handshake::new(PeerType::Client);
    let c0c1 = client.generate_outbound_p0_and_p1().ok()?;
    server.push(&c0c1, out).ok()?;
    let c2 = match client.process_bytes(out).ok()? {
        HandshakeProcessResult::InProgress { response_bytes }
        | HandshakeProcessResult::Completed { response_bytes, .. } => response_bytes,
    };
    out.clear();
    let mut bytes = c2;
    let app = HashMap::from([("app".to_string(), Amf0Value::Utf8String("live".into()))]);
    frame(
        3,
        0,
        20,
        0,
        &command(vec![
            Amf0Value::Utf8String("connect".into()),
            Amf0Value::Number(1.0),
            Amf0Value::Object(app),
        ]),
        &mut bytes,
    );
    frame(
        3,
        0,
        20,
        0,
        &command(vec![
            Amf0Value::Utf8String("createStream".into()),
            Amf0Value::Number(2.0),
            Amf0Value::Null,
        ]),
        &mut bytes,
    );
    frame(
        4,
        0,
        20,
        1,
        &command(vec![
            Amf0Value::Utf8String("publish".into()),
            Amf0Value::Number(3.0),
            Amf0Value::Null,
            Amf0Value::Utf8String("fuzz-key".into()),
            Amf0Value::Utf8String("live".into()),
        ]),
        &mut bytes,
    );
    Some(bytes)
}

/// Feeds `bytes` and answers what the session needs, as the driver does.
fn drive(s: &mut RtmpIngest, hubs: &HubRegistry, bytes: &[u8], out: &mut Vec<u8>) -> bool {
    if s.push(bytes, out).is_err() {
        return false;
    }
    loop {
        match s.poll(UnixMillis(1_000), out) {
            Err(_) | Ok(Some(Need::Finished)) => return false,
            Ok(None) => return true,
            Ok(Some(Need::Publish {
                request_id,
                stream_key,
            })) => {
                let hub = hubs.get_or_create(CameraId::from_bytes([1; 16]));
                let Ok(p) = hub.claim(BindingEpoch(1)) else {
                    return false;
                };
                if s.accept_publish(request_id, &stream_key, p, out).is_err() {
                    return false;
                }
            }
        }
        out.clear();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let hubs = HubRegistry::new(Arc::default(), Arc::new(MediaKeys::random()));
    let mut s = RtmpIngest::new();
    let mut out = Vec::new();
    let stream: Vec<u8> = match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let Some(mut b) = handshake_and_publish(&mut s, &mut out) else {
                return;
            };
            b.extend_from_slice(rest);
            b
        }
        _ => {
            let Some(mut b) = handshake_and_publish(&mut s, &mut out) else {
                return;
            };
            // Messages: type, timestamp delta, length, payload.
            let (mut r, mut ts) = (rest, 0u32);
            while r.len() >= 3 {
                let type_id = [8u8, 9, 9, 9, 18, 20, 1, 4, 5][usize::from(r[0] % 9)];
                ts = ts.wrapping_add(u32::from(r[1]));
                let n = usize::from(r[2]).min(r.len() - 3);
                let csid = if type_id == 8 { 5 } else { 6 };
                frame(csid, ts, type_id, 1, &r[3..3 + n], &mut b);
                r = &r[3 + n..];
            }
            b
        }
    };
    // Split the stream into reads the way a socket might.
    let step = 1 + usize::from(mode / 3) * 7;
    for part in stream.chunks(step) {
        if !drive(&mut s, &hubs, part, &mut out) {
            break;
        }
        out.clear();
    }
});
