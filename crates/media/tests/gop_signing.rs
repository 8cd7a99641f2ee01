//! GOP signing on real encoder output: ffmpeg/x264 writes an FLV (as an RTMP
//! publisher sends it), every access unit goes through [`GopSigner`] as the
//! camera does, [`GopVerifier`] accepts the result GOP by GOP, and ffmpeg still
//! decodes every frame of the signed stream (decoders skip the unknown SEI) and
//! reports our user data once per keyframe. A flipped byte in an inter frame of
//! the real stream is refused at the next keyframe.
//!
//! ffmpeg and ffprobe are required: a missing binary fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use hearth_media::flv::{self, FlvTagKind, FlvVideo};
use hearth_media::signing::{
    GopSigner, GopVerifier, SignatureFailure, Verdict, find_gop_signature, gop_signing_key,
};
use hearth_media::{MediaError, h264};
use hearth_model::{CameraId, UnixMillis};

fn tool(name: &str) -> Command {
    match Command::new(name).arg("-version").output() {
        Ok(o) if o.status.success() => Command::new(name),
        _ => panic!(
            "`{name}` is required for this test but was not found on PATH; install ffmpeg (apt-get install ffmpeg)"
        ),
    }
}

fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed: {stderr}");
    (stdout, stderr)
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-media-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The video of an ffmpeg-made FLV: (SPS, PPS, NAL length size, access units as
/// (keyframe, AVCC)) in decode order.
struct Video {
    sps: Bytes,
    pps: Bytes,
    ls: u8,
    aus: Vec<(bool, Vec<u8>)>,
}

fn encode(dir: &Path, x264: &[&str]) -> Video {
    let flv_path = dir.join("in.flv");
    run(tool("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x180:rate=25")
        .args(["-t", "4", "-c:v", "libx264", "-g", "25"])
        .args(x264)
        .args(["-an", "-f", "flv"])
        .arg(&flv_path));
    let tags = flv::read_flv_file(Bytes::from(std::fs::read(&flv_path).unwrap())).unwrap();
    let mut config = None;
    let mut aus = Vec::new();
    for tag in tags {
        if tag.kind != FlvTagKind::Video {
            continue;
        }
        match flv::parse_video_tag(tag.payload).unwrap() {
            FlvVideo::Config(c) => config = Some(c),
            FlvVideo::Frame(f) => aus.push((f.keyframe, f.data.to_vec())),
            FlvVideo::EndOfSequence => {}
        }
    }
    let c = config.expect("sequence header");
    Video {
        sps: c.sps[0].clone(),
        pps: c.pps[0].clone(),
        ls: c.nalu_length_size,
        aus,
    }
}

/// Annex B with the parameter sets before every keyframe (as a TS segment has them).
fn annexb(v: &Video, aus: &[(bool, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, au) in aus {
        if *k {
            for ps in [&v.sps, &v.pps] {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(ps);
            }
        }
        h264::avcc_to_annexb(au, v.ls, &mut out).unwrap();
    }
    out
}

fn sign(v: &Video, stream_key: &str) -> Vec<(bool, Vec<u8>)> {
    let mut signer = GopSigner::new(
        gop_signing_key(stream_key),
        Some(CameraId::from_bytes([0x42; 16])),
    );
    v.aus
        .iter()
        .enumerate()
        .map(|(i, (k, au))| {
            let t = UnixMillis(1_700_000_000_000 + 40 * i as i64);
            (*k, signer.sign(au, v.ls, *k, t).unwrap().to_vec())
        })
        .collect()
}

/// (decoded frames, frames with User Data Unregistered side data); asserts ffmpeg
/// reports no decoder error.
fn decode(path: &Path) -> (usize, usize) {
    let (_, stderr) = run(tool("ffmpeg")
        .args(["-v", "error", "-f", "h264", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]));
    assert!(stderr.trim().is_empty(), "decoder errors: {stderr}");
    let (out, _) = run(tool("ffprobe")
        .args(["-v", "error", "-f", "h264", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "frame=key_frame:frame_side_data=side_data_type",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path));
    let frames = out.lines().filter(|l| l.starts_with(['0', '1'])).count();
    let user_data = out
        .lines()
        .filter(|l| l.contains("User Data Unregistered"))
        .count();
    (frames, user_data)
}

fn check(name: &str, x264: &[&str]) {
    let dir = work_dir(name);
    let v = encode(&dir, x264);
    let keyframes = v.aus.iter().filter(|(k, _)| *k).count();
    assert_eq!(v.aus.len(), 100);
    assert_eq!(keyframes, 4, "-g 25 over 4 s");

    let signed = sign(&v, "cam-key");
    let mut verifier = GopVerifier::new(gop_signing_key("cam-key"));
    let mut verified = Vec::new();
    for (k, au) in &signed {
        match verifier.push(au, v.ls, *k).unwrap() {
            Verdict::Verified { record, gop } => {
                assert_eq!(record.seq, gop);
                verified.push(gop);
            }
            Verdict::Pending => assert!(!k),
            Verdict::Unsigned => panic!("signed stream reported unsigned"),
        }
    }
    assert_eq!(verified, [0, 1, 2, 3]);

    let plain_path = dir.join("plain.h264");
    let signed_path = dir.join("signed.h264");
    std::fs::write(&plain_path, annexb(&v, &v.aus)).unwrap();
    std::fs::write(&signed_path, annexb(&v, &signed)).unwrap();
    let (plain_frames, plain_user_data) = decode(&plain_path);
    let (signed_frames, signed_user_data) = decode(&signed_path);
    assert_eq!(plain_frames, 100);
    assert_eq!(
        signed_frames, 100,
        "every frame of the signed stream decodes"
    );
    assert_eq!(
        signed_user_data,
        plain_user_data + keyframes,
        "ffmpeg sees our SEI on each keyframe"
    );

    // A flipped byte at the end of the tenth inter frame of GOP 1 (its last slice's
    // data) is refused at the keyframe of GOP 2.
    let mut tampered = signed.clone();
    let idr1 = tampered
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| *k)
        .nth(1)
        .unwrap()
        .0;
    let au = &mut tampered[idr1 + 10].1;
    *au.last_mut().unwrap() ^= 0x01;
    let mut verifier = GopVerifier::new(gop_signing_key("cam-key"));
    let failure = tampered
        .iter()
        .enumerate()
        .find_map(|(i, (k, au))| verifier.push(au, v.ls, *k).err().map(|e| (i, e)));
    let idr2 = idr1 + 25;
    assert!(find_gop_signature(&tampered[idr2].1, v.ls).is_some());
    assert_eq!(
        failure,
        Some((
            idr2,
            MediaError::SignatureMismatch {
                gop: 2,
                reason: SignatureFailure::BadTag
            }
        ))
    );
    // Another camera's key fails at once.
    let mut verifier = GopVerifier::new(gop_signing_key("other-key"));
    assert!(verifier.push(&signed[0].1, v.ls, true).is_err());

    if std::env::var_os("HEARTH_KEEP_TEST_OUTPUT").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Like the simulated camera: constrained baseline, parameter sets in-band.
#[test]
fn signed_baseline_stream_verifies_and_decodes() {
    check(
        "signing-baseline",
        &["-profile:v", "baseline", "-x264-params", "repeat-headers=1"],
    );
}

/// x264 High with B-frames (decode order differs from presentation order) and its
/// own user-data SEI in the first access unit.
#[test]
fn signed_high_profile_with_b_frames_verifies_and_decodes() {
    check("signing-high", &["-profile:v", "high", "-bf", "2"]);
}
