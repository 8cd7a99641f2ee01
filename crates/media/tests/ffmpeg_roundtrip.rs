//! Real encoder in, real decoder out: ffmpeg writes an FLV (as an RTMP publisher
//! would send it), the segmenter cuts it, and ffprobe/ffmpeg must decode every
//! frame of both HLS flavours (fMP4 and MPEG-TS), as a playlist and segment by
//! segment, with no decoder complaints.
//!
//! The stamped variant adds every kind of in-band provenance (an SEI
//! `user_data_unregistered` NAL in each access unit, a `uuid` box in each fMP4
//! segment and the init segment, a private-data packet in each TS segment) and
//! must decode exactly the same; the AES-128 variant encrypts the segments and
//! must decode only with the right key.
//!
//! ffmpeg and ffprobe are required: a missing binary fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use hearth_media::flv::{self, FlvAudio, FlvTagKind, FlvVideo};
use hearth_media::playlist::{self, KeyRef, KeyedEntry, PlaylistEntry};
use hearth_media::provenance::ProvenanceRecord;
use hearth_media::{AudioFrame, Segment, Segmenter, SegmenterConfig, VideoFrame};
use hearth_media::{crypt, fmp4, sei, ts};
use hearth_model::{BindingEpoch, CameraId, UnixMillis};

/// The record stamped on object number `seq` (frames from 0, segments from 1000,
/// the init segment u64::MAX). The tag is any 32 bytes to the media crate.
fn record(seq: u64) -> ProvenanceRecord {
    ProvenanceRecord {
        camera: CameraId::from_bytes([0x42; 16]),
        epoch: BindingEpoch(3),
        seq,
        capture_time: UnixMillis(1_700_000_000_000 + (seq % 1_000_000) as i64),
        rendition: Default::default(),
        tag: content_digest(&[b"tag", &seq.to_be_bytes()]),
    }
}
const INIT_SEQ: u64 = u64::MAX;

/// SHA-256 of the joined parts: deterministic filler for tags and IVs.
fn content_digest(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}
const SEGMENT_SEQ_BASE: u64 = 1000;

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

/// A [`Segment`] with both flavours written out (the segmenter writes fMP4 on
/// demand).
struct Muxed {
    seq: u64,
    first_dts_ms: i64,
    duration_ms: u32,
    discontinuity: bool,
    init_version: u32,
    init: bytes::Bytes,
    fmp4: bytes::Bytes,
    ts: bytes::Bytes,
    frame_count: u32,
    audio_frame_count: u32,
}

impl From<Segment> for Muxed {
    fn from(s: Segment) -> Self {
        Self {
            seq: s.seq,
            first_dts_ms: s.first_dts_ms,
            duration_ms: s.duration_ms,
            discontinuity: s.discontinuity,
            init_version: s.init_version,
            init: s.init,
            fmp4: s.fmp4.mux(),
            ts: s.ts.mux(),
            frame_count: s.frame_count,
            audio_frame_count: s.audio_frame_count,
        }
    }
}

struct Replay {
    segments: Vec<Muxed>,
    init: Bytes,
    codecs: String,
    resolution: (u32, u32),
    video_frames: usize,
    audio_frames: usize,
    /// Video pts (ms) of every frame in the FLV, in decode order.
    video_pts_ms: Vec<i64>,
}

/// Feeds an FLV file through the parser and segmenter the way RTMP ingest does.
/// With `stamp`, every access unit gets a provenance SEI before its first slice,
/// and every segment (and the init segment) its provenance box / packet.
fn replay(flv_path: &Path, stamp: bool) -> Replay {
    let data = Bytes::from(std::fs::read(flv_path).unwrap());
    let tags = flv::read_flv_file(data).expect("read flv");
    // Segments of LL-HLS parts (one fragment each): what players decode.
    let mut seg = Segmenter::new(SegmenterConfig {
        target_duration_ms: 2000,
        part_target_ms: 334,
    });
    let mut segments = Vec::new();
    let (mut video_frames, mut audio_frames) = (0, 0);
    let mut video_pts_ms = Vec::new();
    let mut nalu_length_size = 4;
    for tag in tags {
        let ts = i64::from(tag.timestamp_ms);
        let out = match tag.kind {
            FlvTagKind::Script => None,
            FlvTagKind::Video => match flv::parse_video_tag(tag.payload).expect("video tag") {
                FlvVideo::Config(c) => {
                    nalu_length_size = c.nalu_length_size;
                    seg.set_video_config(c);
                    None
                }
                FlvVideo::Frame(f) => {
                    let data = if stamp {
                        let nal = sei::provenance_nal(&record(video_frames as u64));
                        let au = sei::insert_before_first_slice(&f.data, nalu_length_size, &nal)
                            .expect("insert SEI");
                        assert_eq!(
                            sei::find_provenance(&au, nalu_length_size),
                            Some(record(video_frames as u64))
                        );
                        Bytes::from(au)
                    } else {
                        f.data
                    };
                    video_frames += 1;
                    video_pts_ms.push(ts + i64::from(f.cts_ms));
                    seg.push_video(VideoFrame {
                        dts_ms: ts,
                        pts_ms: ts + i64::from(f.cts_ms),
                        keyframe: f.keyframe,
                        data,
                        provenance: None,
                        annexb: Default::default(),
                    })
                }
                FlvVideo::EndOfSequence => None,
            },
            FlvTagKind::Audio => match flv::parse_audio_tag(tag.payload).expect("audio tag") {
                FlvAudio::Config(c) => {
                    seg.set_audio_config(c);
                    None
                }
                FlvAudio::Frame(data) => {
                    audio_frames += 1;
                    seg.push_audio(AudioFrame {
                        pts_ms: ts,
                        data,
                        provenance: None,
                    })
                }
            },
        };
        segments.extend(out);
    }
    while let Some(s) = seg.flush() {
        segments.push(s);
    }
    assert_eq!(seg.stats(), Default::default(), "nothing dropped");
    let mut segments: Vec<Muxed> = segments.into_iter().map(Muxed::from).collect();
    let mut init = seg.init_segment().expect("init segment");
    if stamp {
        init = fmp4::insert_provenance(&init, &record(INIT_SEQ)).expect("stamp init");
        for s in &mut segments {
            let rec = record(SEGMENT_SEQ_BASE + s.seq);
            s.init = init.clone();
            s.fmp4 = fmp4::insert_provenance(&s.fmp4, &rec).expect("stamp fmp4");
            s.ts = ts::insert_provenance(&s.ts, &rec).expect("stamp ts");
        }
    }
    Replay {
        segments,
        init,
        codecs: seg.codecs().unwrap(),
        resolution: seg.resolution().unwrap(),
        video_frames,
        audio_frames,
        video_pts_ms,
    }
}

/// Writes init.mp4, seg*.m4s, seg*.ts and fmp4.m3u8 / ts.m3u8 / master.m3u8.
fn write_hls(dir: &Path, r: &Replay) {
    std::fs::write(dir.join("init.mp4"), &r.init).unwrap();
    let mut names = Vec::new();
    for s in &r.segments {
        std::fs::write(dir.join(format!("seg{}.m4s", s.seq)), &s.fmp4).unwrap();
        std::fs::write(dir.join(format!("seg{}.ts", s.seq)), &s.ts).unwrap();
        names.push((format!("seg{}.m4s", s.seq), format!("seg{}.ts", s.seq)));
    }
    let base_ms = 1_700_000_000_000;
    let entries = |ts: bool| -> Vec<PlaylistEntry<'_>> {
        r.segments
            .iter()
            .zip(&names)
            .map(|(s, (m4s, tsn))| PlaylistEntry {
                uri: if ts { tsn } else { m4s },
                duration_ms: s.duration_ms,
                program_date_time_ms: base_ms + s.first_dts_ms,
                discontinuity: s.discontinuity,
            })
            .collect()
    };
    let target = playlist::target_duration_s(r.segments.iter().map(|s| s.duration_ms));
    let mut fmp4 = playlist::media_playlist(target, 0, 0, Some("init.mp4"), &entries(false));
    fmp4.push_str(playlist::ENDLIST);
    let mut ts = playlist::media_playlist(target, 0, 0, None, &entries(true));
    ts.push_str(playlist::ENDLIST);
    std::fs::write(dir.join("fmp4.m3u8"), fmp4).unwrap();
    std::fs::write(dir.join("ts.m3u8"), ts).unwrap();
    let master = playlist::master_playlist("fmp4.m3u8", 1_000_000, &r.codecs, Some(r.resolution));
    std::fs::write(dir.join("master.m3u8"), master).unwrap();
}

/// Streams from `ffprobe -of compact` as key=value maps, one per stream index
/// (program sections repeat streams, so entries are deduplicated by index).
fn ffprobe_streams(
    input: &Path,
    extra: &[&str],
    entries: &str,
) -> Vec<std::collections::BTreeMap<String, String>> {
    let entries = format!("{entries},index");
    let (out, stderr) = run(tool("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args(["-show_entries", &entries, "-of", "compact"])
        .arg(input));
    assert!(
        stderr.trim().is_empty(),
        "ffprobe errors for {}: {stderr}",
        input.display()
    );
    let mut by_index = std::collections::BTreeMap::new();
    for line in out.lines() {
        let m: std::collections::BTreeMap<String, String> = line
            .split('|')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(i) = m.get("index").and_then(|i| i.parse::<u32>().ok()) {
            by_index.insert(i, m);
        }
    }
    by_index.into_values().collect()
}

/// (codec_type, codec_name, width, height) per stream.
fn probe_streams(input: &Path) -> Vec<(String, String, String, String)> {
    ffprobe_streams(input, &[], "stream=codec_type,codec_name,width,height")
        .into_iter()
        .map(|m| {
            let get = |k: &str| m.get(k).cloned().unwrap_or_default();
            (
                get("codec_type"),
                get("codec_name"),
                get("width"),
                get("height"),
            )
        })
        .collect()
}

/// Decodes every stream fully; returns (video frames, audio frames) and asserts
/// ffmpeg printed nothing at level `error`.
fn decode_count(input: &Path) -> (usize, usize) {
    decode_count_with(input, &[])
}

/// [`decode_count`] with extra input options (before `-i`).
fn decode_count_with(input: &Path, extra: &[&str]) -> (usize, usize) {
    let (_, stderr) = run(tool("ffmpeg")
        .args(["-v", "error"])
        .args(extra)
        .arg("-i")
        .arg(input)
        .args(["-f", "null", "-"]));
    assert!(
        stderr.trim().is_empty(),
        "decoder errors for {}: {stderr}",
        input.display()
    );
    let (mut v, mut a) = (0, 0);
    let mut probe_args = vec!["-count_frames"];
    probe_args.extend_from_slice(extra);
    for m in ffprobe_streams(input, &probe_args, "stream=codec_type,nb_read_frames") {
        let n: usize = m["nb_read_frames"]
            .parse()
            .unwrap_or_else(|_| panic!("bad count {m:?}"));
        match m["codec_type"].as_str() {
            "video" => v += n,
            "audio" => a += n,
            _ => {}
        }
    }
    (v, a)
}

/// Video packet pts in ms as the demuxer sees them, sorted and rebased to 0.
fn video_pts_ms(input: &Path) -> Vec<i64> {
    let (out, _) = run(tool("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(input));
    let mut pts: Vec<i64> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| (l.trim().trim_end_matches(',').parse::<f64>().unwrap() * 1000.0).round() as i64)
        .collect();
    pts.sort_unstable();
    let base = pts[0];
    pts.iter().map(|p| p - base).collect()
}

fn rebased_sorted(pts: &[i64]) -> Vec<i64> {
    let mut p = pts.to_vec();
    p.sort_unstable();
    let base = p[0];
    p.iter().map(|x| x - base).collect()
}

fn check(
    name: &str,
    ffmpeg_args: &[&str],
    expect_audio: bool,
    expect_profile_idc: u8,
    stamp: bool,
) {
    let dir = work_dir(name);
    let flv_path = dir.join("in.flv");
    run(tool("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(ffmpeg_args)
        .arg(&flv_path));

    let r = replay(&flv_path, stamp);
    assert_eq!(r.video_frames, 150, "6 s at 25 fps in the FLV");
    assert_eq!(r.audio_frames > 0, expect_audio);
    assert!(
        r.codecs
            .starts_with(&format!("avc1.{expect_profile_idc:02x}")),
        "{}",
        r.codecs
    );
    assert_eq!(r.codecs.contains("mp4a.40.2"), expect_audio, "{}", r.codecs);
    assert_eq!(r.resolution, (640, 360));
    write_hls(&dir, &r);

    // Segmentation: every frame lands in exactly one segment, ~2 s each, keyframe first.
    let seqs: Vec<u64> = r.segments.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (0..r.segments.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        r.segments
            .iter()
            .map(|s| s.frame_count as usize)
            .sum::<usize>(),
        r.video_frames
    );
    assert_eq!(
        r.segments
            .iter()
            .map(|s| s.audio_frame_count as usize)
            .sum::<usize>(),
        r.audio_frames
    );
    assert_eq!(r.segments.len(), 3, "6 s of 2 s GOPs");
    for s in &r.segments {
        assert!(
            (1960..=2440).contains(&s.duration_ms),
            "segment {} lasts {} ms",
            s.seq,
            s.duration_ms
        );
        assert!(!s.discontinuity);
        assert_eq!(s.init_version, 0);
        assert_eq!(s.init, r.init);
        assert_eq!(s.ts.len() % 188, 0);
    }
    for w in r.segments.windows(2) {
        assert_eq!(
            w[0].first_dts_ms + i64::from(w[0].duration_ms),
            w[1].first_dts_ms
        );
    }

    let expect_streams = |input: &Path| {
        let streams = probe_streams(input);
        assert!(
            streams
                .iter()
                .any(|s| s.0 == "video" && s.1 == "h264" && s.2 == "640" && s.3 == "360"),
            "{}: {streams:?}",
            input.display()
        );
        assert_eq!(
            streams.iter().any(|s| s.0 == "audio" && s.1 == "aac"),
            expect_audio,
            "{}: {streams:?}",
            input.display()
        );
    };

    for flavour in ["fmp4.m3u8", "ts.m3u8"] {
        let pl = dir.join(flavour);
        expect_streams(&pl);
        let (v, a) = decode_count(&pl);
        assert_eq!(v, r.video_frames, "{flavour}: every video frame decodes");
        if expect_audio {
            assert_eq!(a, r.audio_frames, "{flavour}: every audio frame decodes");
        }
        // Presentation times survive exactly (B-frames: pts != dts).
        assert_eq!(
            video_pts_ms(&pl),
            rebased_sorted(&r.video_pts_ms),
            "{flavour}: video pts"
        );
    }
    expect_streams(&dir.join("master.m3u8"));

    if stamp {
        // In-band provenance is found in every file as written, and ffmpeg's
        // H.264 decoder sees our SEI on every decoded frame.
        assert_eq!(
            fmp4::find_provenance(&std::fs::read(dir.join("init.mp4")).unwrap()),
            Some(record(INIT_SEQ))
        );
        for s in &r.segments {
            let rec = Some(record(SEGMENT_SEQ_BASE + s.seq));
            let m4s = std::fs::read(dir.join(format!("seg{}.m4s", s.seq))).unwrap();
            let tsb = std::fs::read(dir.join(format!("seg{}.ts", s.seq))).unwrap();
            assert_eq!(fmp4::find_provenance(&m4s), rec);
            assert_eq!(ts::find_provenance(&tsb), rec);
        }
        // Side data entries of type "User Data Unregistered" over all frames. The
        // encoder's own SEI (x264 writes its settings once) is counted in the FLV.
        let unregistered_sei = |input: &Path| {
            let (out, _) = run(tool("ffprobe")
                .args(["-v", "error", "-select_streams", "v:0"])
                .args(["-show_entries", "frame_side_data=side_data_type"])
                .args(["-of", "csv=p=0"])
                .arg(input));
            out.lines()
                .filter(|l| l.contains("User Data Unregistered"))
                .count()
        };
        let encoder_own = unregistered_sei(&flv_path);
        for flavour in ["fmp4.m3u8", "ts.m3u8"] {
            assert_eq!(
                unregistered_sei(&dir.join(flavour)),
                encoder_own + r.video_frames,
                "{flavour}: our SEI on every frame"
            );
        }
    }

    // Each segment alone: TS as-is, fMP4 as init + segment.
    for s in &r.segments {
        let ts = dir.join(format!("seg{}.ts", s.seq));
        let (v, a) = decode_count(&ts);
        assert_eq!(v, s.frame_count as usize, "seg{}.ts decodes alone", s.seq);
        assert_eq!(a, s.audio_frame_count as usize, "seg{}.ts audio", s.seq);
        let mp4 = dir.join(format!("seg{}-standalone.mp4", s.seq));
        std::fs::write(&mp4, [&r.init[..], &s.fmp4[..]].concat()).unwrap();
        let (v, a) = decode_count(&mp4);
        assert_eq!(
            v, s.frame_count as usize,
            "init + seg{}.m4s decodes alone",
            s.seq
        );
        assert_eq!(
            a, s.audio_frame_count as usize,
            "init + seg{}.m4s audio",
            s.seq
        );
    }
    if std::env::var_os("HEARTH_KEEP_TEST_OUTPUT").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// What the brief's real publisher sends: x264 High profile with B-frames, plus AAC.
#[test]
fn x264_high_with_aac() {
    check(
        "high-aac",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ],
        true,
        0x64,
        false,
    );
}

/// Like the simulated camera: constrained baseline, video only, SPS/PPS repeated
/// in-band before every IDR (as openh264 does).
#[test]
fn baseline_video_only_inband_parameter_sets() {
    check(
        "baseline",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-x264-params",
            "repeat-headers=1",
            "-g",
            "50",
            "-an",
            "-f",
            "flv",
        ],
        false,
        0x42,
        false,
    );
}

const HIGH_AAC: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=640x360:rate=25",
    "-f",
    "lavfi",
    "-i",
    "sine",
    "-t",
    "6",
    "-c:v",
    "libx264",
    "-g",
    "50",
    "-c:a",
    "aac",
    "-f",
    "flv",
];

/// Every in-band provenance carrier at once (SEI per access unit, fMP4 `uuid`
/// box, TS private-data packet): ffmpeg decodes exactly what it did without.
#[test]
fn x264_high_with_aac_stamped_inband_provenance() {
    check("high-aac-stamped", HIGH_AAC, true, 0x64, true);
}

/// AES-128 HLS: with the right key every frame decodes (explicit, non-sequential
/// IVs prove the IV attribute is honoured); with another camera's key nothing does.
#[test]
fn aes128_segments_decode_only_with_their_key() {
    let dir = work_dir("aes128");
    let flv_path = dir.join("in.flv");
    run(tool("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(HIGH_AAC)
        .arg(&flv_path));
    let r = replay(&flv_path, true);
    let key: [u8; 16] = *b"hearth-camera-k1";
    let wrong: [u8; 16] = *b"another-camera-2";
    std::fs::write(dir.join("key.bin"), key).unwrap();
    std::fs::write(dir.join("wrong.bin"), wrong).unwrap();
    std::fs::write(dir.join("init.mp4"), &r.init).unwrap();
    let iv = |seq: u64| -> [u8; 16] {
        content_digest(&[b"iv", &seq.to_be_bytes()])[..16]
            .try_into()
            .unwrap()
    };
    let mut names = Vec::new();
    for s in &r.segments {
        let (m4s, tsn) = (format!("seg{}.m4s", s.seq), format!("seg{}.ts", s.seq));
        let enc_m4s = crypt::encrypt_segment(&key, &iv(s.seq), &s.fmp4);
        let enc_ts = crypt::encrypt_segment(&key, &iv(s.seq), &s.ts);
        // Ciphertext hides the provenance; decryption restores the exact bytes.
        assert_eq!(fmp4::find_provenance(&enc_m4s), None);
        assert_eq!(ts::find_provenance(&enc_ts), None);
        let dec = crypt::decrypt_segment(&key, &iv(s.seq), &enc_ts).unwrap();
        assert_eq!(dec, s.ts);
        assert_eq!(
            ts::find_provenance(&dec),
            Some(record(SEGMENT_SEQ_BASE + s.seq))
        );
        assert_ne!(
            crypt::decrypt_segment(&wrong, &iv(s.seq), &enc_ts).ok(),
            Some(s.ts.to_vec())
        );
        std::fs::write(dir.join(&m4s), enc_m4s).unwrap();
        std::fs::write(dir.join(&tsn), enc_ts).unwrap();
        names.push((m4s, tsn));
    }
    let target = playlist::target_duration_s(r.segments.iter().map(|s| s.duration_ms));
    let write = |file: &str, fmp4: bool, key_uri: &str| {
        let ivs: Vec<[u8; 16]> = r.segments.iter().map(|s| iv(s.seq)).collect();
        let entries: Vec<KeyedEntry<'_>> = r
            .segments
            .iter()
            .zip(&names)
            .zip(&ivs)
            .map(|((s, (m4s, tsn)), iv)| KeyedEntry {
                map_uri: fmp4.then_some("init.mp4"),
                key: Some(KeyRef {
                    uri: key_uri,
                    iv: *iv,
                }),
                entry: PlaylistEntry {
                    uri: if fmp4 { m4s } else { tsn },
                    duration_ms: s.duration_ms,
                    program_date_time_ms: 1_700_000_000_000 + s.first_dts_ms,
                    discontinuity: false,
                },
            })
            .collect();
        let mut text = playlist::media_playlist_keyed(target, 0, 0, &entries);
        assert_eq!(
            text.matches("#EXT-X-KEY:METHOD=AES-128").count(),
            r.segments.len()
        );
        text.push_str(playlist::ENDLIST);
        std::fs::write(dir.join(file), text).unwrap();
        dir.join(file)
    };
    let hls_opts = ["-allowed_extensions", "ALL"];
    for fmp4 in [false, true] {
        let pl = write(
            if fmp4 { "enc-fmp4.m3u8" } else { "enc-ts.m3u8" },
            fmp4,
            "key.bin",
        );
        let (v, a) = decode_count_with(&pl, &hls_opts);
        assert_eq!(v, r.video_frames, "{}: every video frame", pl.display());
        assert_eq!(a, r.audio_frames, "{}: every audio frame", pl.display());

        let bad = write(
            if fmp4 {
                "wrong-fmp4.m3u8"
            } else {
                "wrong-ts.m3u8"
            },
            fmp4,
            "wrong.bin",
        );
        let out = tool("ffmpeg")
            .args(["-v", "error"])
            .args(hls_opts)
            .arg("-i")
            .arg(&bad)
            .args(["-map", "0:v?", "-f", "framemd5", "-"])
            .output()
            .unwrap();
        let decoded = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert!(
            !out.status.success() || decoded == 0,
            "{}: wrong key decoded {decoded} frames",
            bad.display()
        );
    }
    if std::env::var_os("HEARTH_KEEP_TEST_OUTPUT").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
