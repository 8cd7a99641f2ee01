//! The isolation invariant under injected faults.
//!
//! The server runs with `HEARTH_FAULT_P=0.2`: the grant lookup, the stream-hub
//! lookup, the segment cache, the still-image cache and the frame cache under the
//! still decoder each answer with another camera's entry one time in five. 20 cameras in 10 households stream while 100
//! viewers make more than 50,000 media requests; then every camera drops and
//! reconnects within 5 s while the viewers keep watching. Two of the cameras
//! are IP cameras Hearth pulls over RTSP (GStreamer's RTSP server, Digest
//! auth); in the storm they die and come back like rebooting cameras. After it,
//! viewer keys restream four of the cameras (two pulled) over RTSP and HLS to
//! ffmpeg, under the same faults. Nothing is judged by the
//! server's own counters: every byte a viewer received is decoded and the pictures
//! must carry that viewer's camera's visual signature, never another's.

mod common;
#[path = "common/rtsp_camera.rs"]
mod rtsp_camera;
use common::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const HOUSEHOLDS: usize = 10;
const CAMERAS_PER_HOUSEHOLD: usize = 2;
const VIEWERS: usize = 100;
const REQUESTS: u64 = 50_000;
const W: u32 = 160;
const H: u32 = 96;
/// Households whose second camera Hearth pulls over RTSP.
const PULLED: [usize; 2] = [0, 1];

struct Camera {
    id: String,
    owner: String,
    /// A push camera's RTMP URL; `None` for a pulled one.
    ingest: Option<String>,
    signature: u32,
}

fn simulate(c: &Camera) -> Option<Sim> {
    Some(common::simulate(
        c.ingest.as_deref()?,
        "cam",
        (W, H),
        &["--signature", &c.signature.to_string()],
    ))
}

/// Everything one viewer received with a 200, by object name.
#[derive(Default)]
struct Received {
    playlists: Vec<String>,
    segments: BTreeMap<String, HashSet<Vec<u8>>>,
    inits: HashSet<Vec<u8>>,
    snapshots: HashSet<Vec<u8>>,
    undecryptable: u64,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
    statuses: std::sync::Mutex<BTreeMap<u16, u64>>,
}

async fn fetch(client: &reqwest::Client, url: &str, counts: &Counts) -> Option<Vec<u8>> {
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let Ok(r) = media_get(client, url).send().await else {
        counts.other.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let status = r.status().as_u16();
    let body = r.bytes().await.ok()?.to_vec();
    match status {
        200 => {
            counts.ok.fetch_add(1, Ordering::Relaxed);
            Some(body)
        }
        403 => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            assert!(
                body.len() < 200 && body.starts_with(b"{"),
                "a refusal carried {} bytes",
                body.len()
            );
            None
        }
        _ => {
            counts.other.fetch_add(1, Ordering::Relaxed);
            *counts.statuses.lock().unwrap().entry(status).or_default() += 1;
            None
        }
    }
}

async fn view(
    base: String,
    ts: bool,
    counts: Arc<Counts>,
    newest: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Received {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let playlist = format!("{base}/{}", if ts { "ts.m3u8" } else { "live.m3u8" });
    let mut got = Received::default();
    let mut keys: HashMap<String, [u8; 16]> = HashMap::new();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let Some(body) = fetch(&client, &playlist, &counts).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let text = String::from_utf8(body).expect("playlist is text");
        // (key URI, IV) in force for the next segment, as a player tracks them.
        let mut key: Option<(String, [u8; 16])> = None;
        for line in text.lines() {
            if let Some(attrs) = line.strip_prefix("#EXT-X-KEY:") {
                key = parse_key(attrs);
                continue;
            }
            if let Some(init) = line
                .strip_prefix("#EXT-X-MAP:URI=\"")
                .map(|l| l.trim_end_matches('"'))
            {
                if let Some(b) = fetch(&client, &format!("{base}/{init}"), &counts).await {
                    got.inits.insert(b);
                }
            } else if !line.starts_with('#')
                && !line.is_empty()
                && let Some(b) = fetch(&client, &format!("{base}/{line}"), &counts).await
            {
                // Decrypt as a player would, with the key the playlist names.
                let Some((uri, iv)) = &key else {
                    panic!("segment {line} is not encrypted")
                };
                if !keys.contains_key(uri) {
                    match fetch(&client, &format!("{base}/{uri}"), &counts).await {
                        Some(k) if k.len() == 16 => {
                            keys.insert(uri.clone(), k.try_into().unwrap());
                        }
                        _ => continue,
                    }
                }
                match hearth_media::crypt::decrypt_segment(&keys[uri], iv, &b) {
                    Ok(clear) => {
                        newest.fetch_max(segment_seq(line), Ordering::Relaxed);
                        got.segments
                            .entry(line.to_string())
                            .or_default()
                            .insert(clear);
                    }
                    // Bytes that do not decrypt under this camera's key show nothing.
                    Err(_) => got.undecryptable += 1,
                }
            }
        }
        got.playlists.push(text);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if round.is_multiple_of(5)
            && let Some(b) = fetch(&client, &format!("{base}/snapshot.jpg"), &counts).await
        {
            got.snapshots.insert(b);
        }
    }
    got
}

/// Decodes a stream (fMP4 or TS bytes) and returns its frames as RGB.
fn decode(bytes: &[u8], ext: &str) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("in.{ext}"));
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "quiet", "-i"])
        .arg(&p)
        .args([
            "-an",
            "-vf",
            &format!("scale={W}:{H}"),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    out.stdout
        .chunks_exact((W * H * 3) as usize)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Every readable picture in `frames` carries `expected`; returns how many did.
fn check_frames(frames: &[Vec<u8>], expected: u32, what: &str) -> usize {
    let mut ok = 0;
    for f in frames {
        if let Some(sig) = hearth_camera::read_signature(f, W, H) {
            assert_eq!(sig, expected, "FOREIGN PICTURE reached a viewer: {what}");
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_foreign_byte_reaches_a_viewer_under_injected_faults_and_a_reconnect_storm() {
    require_tool("ffmpeg");
    let mut s = Server::serve_with_env(&[("HEARTH_FAULT_P", "0.2")]);
    assert!(
        s.log().contains("FAULT INJECTION ENABLED"),
        "the fault mode is not live:\n{}",
        s.log()
    );

    let mut cameras = Vec::new();
    let mut pulled = Vec::new();
    for h in 0..HOUSEHOLDS {
        let owner = format!("household{h}@example.com");
        s.admin(
            &["user", "add", "--email", &owner],
            Some("a long password\n"),
        );
        for c in 0..CAMERAS_PER_HOUSEHOLD {
            if c == 1 && PULLED.contains(&h) {
                let port = rtsp_camera::free_port();
                let out = s.admin(
                    &[
                        "camera",
                        "add",
                        "--owner",
                        &owner,
                        "--name",
                        &format!("cam {h}.{c}"),
                        "--rtsp-url",
                        &format!("rtsp://127.0.0.1:{port}/main"),
                        "--rtsp-username",
                        "admin",
                        "--rtsp-password-stdin",
                    ],
                    Some("camera password\n"),
                );
                let id = out
                    .lines()
                    .find_map(|l| l.strip_prefix("camera "))
                    .unwrap()
                    .to_string();
                let signature = signature_of(&id);
                pulled.push(rtsp_camera::RtspCamera::start(
                    port,
                    signature,
                    (W, H),
                    None,
                    ("admin", "camera password"),
                ));
                cameras.push(Camera {
                    signature,
                    id,
                    owner: owner.clone(),
                    ingest: None,
                });
                continue;
            }
            let (id, ingest) = s.add_camera(&owner, &format!("cam {h}.{c}"));
            cameras.push(Camera {
                signature: signature_of(&id),
                id,
                owner: owner.clone(),
                ingest: Some(ingest),
            });
        }
    }
    let sigs: HashSet<u32> = cameras.iter().map(|c| c.signature).collect();
    assert_eq!(sigs.len(), cameras.len(), "signatures must be distinct");
    let mut sims: Vec<Sim> = cameras.iter().filter_map(simulate).collect();

    let mut tokens = HashMap::new();
    for c in &cameras {
        if !tokens.contains_key(&c.owner) {
            tokens.insert(c.owner.clone(), s.login(&c.owner, "a long password").await);
        }
    }
    for c in &cameras {
        let t = &tokens[&c.owner];
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s
            .cameras(t)
            .await
            .iter()
            .any(|x| x["id"] == c.id.as_str() && x["online"] == true)
        {
            assert!(
                Instant::now() < deadline,
                "camera {} never came online",
                c.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // 100 viewers, five per camera, alternating fMP4 and MPEG-TS players.
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let newest_seq: Vec<Arc<AtomicU64>> = cameras.iter().map(|_| Arc::default()).collect();
    let mut viewers = Vec::new();
    for v in 0..VIEWERS {
        let cam = &cameras[v % cameras.len()];
        let g = s.grant(&tokens[&cam.owner], &cam.id).await;
        let base = g["hls_url"]
            .as_str()
            .unwrap()
            .trim_end_matches("/index.m3u8")
            .to_string();
        // Each camera gets both kinds of player.
        let ts = (v / cameras.len()) % 2 == 1;
        let newest = newest_seq[v % cameras.len()].clone();
        let task = tokio::spawn(view(base, ts, counts.clone(), newest, stop.clone()));
        viewers.push((v % cameras.len(), task));
    }

    // Phase 1: half the requests; then the reconnect storm; then the rest.
    let started = Instant::now();
    let limit = Duration::from_secs(300);
    while counts.requests.load(Ordering::Relaxed) < REQUESTS / 2
        || started.elapsed() < Duration::from_secs(10)
    {
        assert!(
            started.elapsed() < limit,
            "too slow: {} requests",
            counts.requests.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let storm = Instant::now();
    sims.clear(); // every camera drops
    for p in &mut pulled {
        p.kill();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sims = cameras.iter().filter_map(simulate).collect(); // and reconnects
    for p in &mut pulled {
        p.restart();
    }
    assert!(storm.elapsed() < Duration::from_secs(5));
    let storm_at = std::time::SystemTime::now();
    let before_storm: Vec<u64> = newest_seq
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    while counts.requests.load(Ordering::Relaxed) < REQUESTS
        || storm.elapsed() < Duration::from_secs(10)
    {
        assert!(
            started.elapsed() < limit,
            "too slow: {} requests",
            counts.requests.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let every stream show that it resumed after the storm; meanwhile players
    // that cannot sign in (viewer keys) take the first four cameras, two of
    // them pulled over RTSP, over RTSP and HLS, under the same faults.
    let restreamed = restreams(&s, &cameras[..4], &tokens).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);

    let mut by_camera: Vec<Vec<Received>> = (0..cameras.len()).map(|_| Vec::new()).collect();
    for (cam, task) in viewers {
        by_camera[cam].push(task.await.expect("viewer task"));
    }
    drop(sims);
    drop(pulled);
    let requests = counts.requests.load(Ordering::Relaxed);
    let refused = counts.refused.load(Ordering::Relaxed);
    eprintln!(
        "{requests} requests: {} ok, {refused} refused, {} other {:?}; storm at {storm_at:?}",
        counts.ok.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed),
        counts.statuses.lock().unwrap()
    );
    assert!(requests >= REQUESTS);

    // Judge by the bytes the viewers received.
    let mut decoded_frames = 0;
    for (i, cam) in cameras.iter().enumerate() {
        let mut fmp4_inits = HashSet::new();
        let mut m4s = BTreeMap::new();
        let mut ts = BTreeMap::new();
        let mut stills = HashSet::new();
        for r in &by_camera[i] {
            for p in &r.playlists {
                for name in p.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
                    assert!(
                        name.starts_with(&cam.id),
                        "a playlist listed a foreign object: {name}"
                    );
                }
            }
            for (name, bodies) in &r.segments {
                assert!(name.starts_with(&cam.id));
                let into = if name.ends_with(".ts") {
                    &mut ts
                } else {
                    &mut m4s
                };
                for b in bodies {
                    // The in-band provenance a client can check names this camera too.
                    let record = if name.ends_with(".ts") {
                        hearth_media::ts::find_provenance(b)
                    } else {
                        hearth_media::fmp4::find_provenance(b)
                    };
                    let record = record.unwrap_or_else(|| panic!("{name} carries no provenance"));
                    assert_eq!(
                        record.camera.to_string(),
                        cam.id,
                        "FOREIGN PROVENANCE reached a viewer"
                    );
                    into.entry(segment_seq(name))
                        .or_insert_with(HashSet::new)
                        .insert(b.clone());
                }
            }
            fmp4_inits.extend(r.inits.iter().cloned());
            stills.extend(r.snapshots.iter().cloned());
        }
        assert!(
            !m4s.is_empty() && !ts.is_empty(),
            "camera {i}: its viewers received no segments"
        );
        // Every distinct segment body, in sequence order, decoded as one stream.
        let ts_bytes: Vec<u8> = ts
            .values()
            .flat_map(|set| set.iter().flatten().copied())
            .collect::<Vec<u8>>();
        let frames = decode(&ts_bytes, "ts");
        let n = check_frames(&frames, cam.signature, &format!("camera {i} TS"));
        assert!(n >= 20, "camera {i}: only {n} readable TS frames");
        decoded_frames += n;
        for init in &fmp4_inits {
            let mut mp4 = init.clone();
            for set in m4s.values() {
                for b in set {
                    mp4.extend_from_slice(b);
                }
            }
            decoded_frames += check_frames(
                &decode(&mp4, "mp4"),
                cam.signature,
                &format!("camera {i} fMP4"),
            );
        }
        for jpeg in &stills {
            let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
            let rgb = d.decode().expect("a snapshot is a valid JPEG");
            let info = d.info().unwrap();
            let sig =
                hearth_camera::read_signature(&rgb, u32::from(info.width), u32::from(info.height));
            assert_eq!(
                sig,
                Some(cam.signature),
                "camera {i}: a snapshot is not this camera's"
            );
        }
        // The stream resumed after the storm: its viewers received several segments
        // made after it.
        let newest = newest_seq[i].load(Ordering::Relaxed);
        assert!(
            newest >= before_storm[i] + 3,
            "camera {i} did not resume: {} -> {newest}",
            before_storm[i]
        );
    }
    eprintln!("{decoded_frames} decoded frames, every one this viewer's camera");
    eprintln!("{restreamed} decoded frames from viewer-key restreams, every one their camera's");
    // Only now the counters: they show the fault was live, they prove nothing alone.
    assert!(
        refused > 0,
        "no request was refused: the fault mode was not live"
    );
    let log = s.log();
    let violations = log.matches("isolation violation blocked").count();
    assert!(violations > 0, "the door never had to refuse anything");
    // Foreign frames handed to the still decoder were refused before decoding.
    let frames_refused = log
        .matches("isolation violation blocked in the still cache")
        .count();
    assert!(frames_refused > 0, "the frame fault was never live");
    eprintln!("{frames_refused} of them foreign frames refused by the still cache");
    eprintln!("{violations} isolation violations blocked at the door");
    // The operator's exposure report: every principal sent a camera's bytes held a
    // grant for it, and the blocked attempts are there.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let exposure = s.admin(&["audit", "exposure"], None);
    assert!(!exposure.contains("NO MATCHING GRANT"), "{exposure}");
    let blocked: usize = exposure
        .lines()
        .filter_map(|l| l.trim().strip_prefix("isolation violations blocked: "))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    assert!(
        blocked > 0,
        "no violation reached the audit log:\n{exposure}"
    );
    eprintln!("audit: {blocked} blocked violations recorded");
    assert!(s.is_running());
}

/// A viewer key per camera, played over RTSP and HLS by ffmpeg (which may
/// be cut off when the door refuses a foreign frame: what it decoded before
/// counts); every readable picture must be the key's camera's. Returns how
/// many were read.
async fn restreams(s: &Server, cameras: &[Camera], tokens: &HashMap<String, String>) -> usize {
    let mut jobs = Vec::new();
    for c in cameras {
        let (st, key) = s
            .api(
                reqwest::Method::POST,
                "/api/v1/viewer-keys",
                &tokens[&c.owner],
                serde_json::json!({"name": "NVR", "cameras": [c.id]}),
            )
            .await;
        assert_eq!(st, 201, "{key}");
        for url in [&key["urls"][0]["rtsp_url"], &key["urls"][0]["hls_url"]] {
            let url = url.as_str().unwrap().to_string();
            let (sig, id) = (c.signature, c.id.clone());
            jobs.push(tokio::task::spawn_blocking(move || {
                // A refusal ends ffmpeg's session: it tries again, as a
                // recorder would, until it has read some pictures.
                let mut read = 0;
                for _ in 0..8 {
                    let out = Command::new("ffmpeg")
                        .args(["-v", "error"])
                        .args(transport_args(&url))
                        .args(["-i", &url, "-t", "2", "-an", "-fps_mode", "passthrough"])
                        .args(["-vf", &format!("scale={W}:{H}")])
                        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
                        .stdin(std::process::Stdio::null())
                        .output()
                        .expect("ffmpeg");
                    let frames: Vec<Vec<u8>> = out
                        .stdout
                        .chunks_exact((W * H * 3) as usize)
                        .map(<[u8]>::to_vec)
                        .collect();
                    read +=
                        check_frames(&frames, sig, &format!("viewer key of camera {id}: {url}"));
                    if read >= 10 {
                        break;
                    }
                }
                (url.starts_with("rtsp://"), read)
            }));
        }
    }
    let (mut rtsp, mut hls) = (0, 0);
    for j in jobs {
        match j.await.expect("restream job") {
            (true, n) => rtsp += n,
            (false, n) => hls += n,
        }
    }
    eprintln!("viewer-key restreams: {rtsp} RTSP and {hls} HLS frames read");
    assert!(
        rtsp > 0 && hls > 0,
        "a restream never got through the faults"
    );
    rtsp + hls
}

/// `METHOD=AES-128,URI="...",IV=0x...` -> (URI, IV).
fn parse_key(attrs: &str) -> Option<(String, [u8; 16])> {
    if !attrs.starts_with("METHOD=AES-128") {
        return None;
    }
    let uri = attrs.split("URI=\"").nth(1)?.split('"').next()?.to_string();
    let hex = attrs.split("IV=0x").nth(1)?.get(..32)?;
    let mut iv = [0u8; 16];
    for (i, b) in iv.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some((uri, iv))
}

fn segment_seq(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
