//! Good pictures on bad networks, proven on impaired links (see
//! `common/link.rs`: the server in a network namespace, a `tbf` rate limit and
//! nftables random loss between it and the viewer on the host).
//!
//! For each way the web player plays (HLS and WebRTC), with fault injection on
//! throughout (hub, object and still lookups sometimes answer with another
//! camera's):
//! (a) behind 600 kbit/s with 3% loss it keeps playing, on the sub rendition,
//!     the picture advancing at least 80% of wall-clock time;
//! (b) at 150 kbit/s it shows stills, about one a second, each carrying this
//!     camera's provenance (and its picture this camera's signature), under a
//!     "Poor connection" badge;
//! (c) when the link recovers it is back on the main rendition within 10 s;
//! (d) at no point does it show anything not this camera's (it never refuses,
//!     because the door refused the foreign objects first: the log shows it did).
//! hls.js (a): the reference player, given the master playlist behind the same
//! 600 kbit/s lossy link, moves to the sub rendition and keeps playing.
//! (e) a reconnect storm: viewers on a 5% loss link lose it entirely for a few
//! seconds, all come back at once, and every one resumes with this camera's
//! segments.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;
use common::link::Link;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use webdriver::Driver;

/// The main stream needs more than 600 kbit/s, the sub stream between 150 and
/// 600 (measured: see the bitrates the test prints).
const MAIN: (u32, u32) = (1280, 720);
const SUB: (u32, u32) = (480, 270);
const FAULTS: [(&str, &str); 2] = [
    ("HEARTH_FAULT_P", "0.05"),
    ("HEARTH_FAULT_POINTS", "hub,object,still"),
];
/// For the WebRTC player and hls.js: without the hub point, whose wrong answer
/// at a session's start ends it before its first frame (a player may then take
/// HLS for good), or leaves the sub rendition out of the one master hls.js
/// reads (it never reads it again); the per-frame door check under faults is
/// `webrtc_whep.rs`'s; the master is read under every fault point by the web
/// player's HLS run here, which reads it again when it lists main alone.
const WEBRTC_FAULTS: [(&str, &str); 2] = [
    ("HEARTH_FAULT_P", "0.05"),
    ("HEARTH_FAULT_POINTS", "object,still"),
];

/// One scenario at a time: each runs a demo of three busy cameras (two
/// encoders each) and a browser, which is all two cores can time fairly.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Rig {
    // Dropped in this order: the browser, the server, then the link.
    d: Driver,
    s: Server,
    link: Link,
    camera: String,
}

async fn rig(faults: &[(&str, &str)]) -> Rig {
    require_tool("chromium");
    let link = Link::new();
    let s = Server::demo_behind(&link, MAIN, SUB, faults);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let camera = s.camera_id(&a, "Living room").await;
    // The link's address is not a secure origin to Chromium; the player needs one
    // (WebCrypto for AES-128, encoded transforms for WebRTC).
    let d = Driver::start_with(&[format!(
        "--unsafely-treat-insecure-origin-as-secure={}",
        s.base
    )])
    .await;
    d.log_in(&s.base, OWNER_A, PASSWORD).await;
    d.wait_find("[data-testid=camera-card]").await;
    Rig { d, s, link, camera }
}

async fn stats(d: &Driver) -> Value {
    d.js("const p = window.hearthPlayer; return p ? JSON.parse(JSON.stringify(p)) : null")
        .await
}

/// Opens the camera in the web player over `transport`.
async fn open(r: &Rig, transport: &str) {
    r.d.js(&format!(
        "localStorage.setItem('hearth.transport', {transport:?}); return true"
    ))
    .await;
    r.d.goto(&format!("{}/", r.s.base)).await;
    // The whole web app comes again over the impaired link: give it time (a
    // CI run once took over 30 s).
    r.d.wait_find_within("[data-testid=camera-card]", Duration::from_secs(90))
        .await;
    r.d.js(&format!(
        "location.hash = '#/camera/{}'; return true",
        r.camera
    ))
    .await;
}

/// Waits (at most `within`) until `pred` holds for the player's stats.
async fn wait_stats(
    d: &Driver,
    within: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let st = stats(d).await;
        assert_ne!(st["state"], "refused", "{what}: the player refused: {st}");
        if pred(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}: {st}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How far the picture advanced over `span`, as a share of wall-clock time
/// (`currentTime`, sampled twice a second; a new WebRTC session starts its
/// stream's time again from zero, which counts as playing from there; a jump
/// forward counts no more than the wall time it took, so a stall that ends in a
/// jump to live still counts as a stall), and
/// what the player said at each sample where the picture stood still (for the
/// failure message).
async fn progress(d: &Driver, span: Duration) -> (f64, Vec<String>) {
    let t = || async {
        d.js("return document.getElementById('player').currentTime")
            .await
    };
    let (mut last, w0) = (t().await.as_f64().unwrap_or(0.0), Instant::now());
    let (mut played, mut stalls, mut sampled) = (0.0, Vec::new(), w0);
    let deadline = w0 + span;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = stats(d).await;
        assert_ne!(st["state"], "refused", "the player refused: {st}");
        let now = t().await.as_f64().unwrap_or(last);
        let wall = sampled.elapsed().as_secs_f64();
        sampled = Instant::now();
        let step = (if now >= last { now - last } else { now }).min(wall);
        if step < 0.1 {
            stalls.push(format!(
                "{:.1}s: {} {} appended={} link={} error={}",
                w0.elapsed().as_secs_f64(),
                st["state"],
                st["rendition"],
                st["segmentsAppended"],
                st["linkBps"],
                st["lastError"]
            ));
        }
        played += step;
        last = now;
    }
    (played / w0.elapsed().as_secs_f64(), stalls)
}

/// The still on screen (the `<video>`'s poster), drawn at `w`x`h`, as RGB24.
async fn poster_rgb(d: &Driver, w: u32, h: u32) -> Vec<u8> {
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const img = new Image();
         img.onload = () => {{
           const c = document.createElement('canvas'); c.width = {w}; c.height = {h};
           const g = c.getContext('2d'); g.drawImage(img, 0, 0, {w}, {h});
           const px = g.getImageData(0, 0, {w}, {h}).data; const out = [];
           for (let i = 0; i < px.length; i += 4) out.push(px[i], px[i + 1], px[i + 2]);
           done(out);
         }};
         img.onerror = () => done(null);
         img.src = document.getElementById('player').poster;"
    );
    let v = d
        .call(
            reqwest::Method::POST,
            "/execute/async",
            serde_json::json!({"script": script, "args": []}),
        )
        .await;
    v.as_array()
        .unwrap_or_else(|| panic!("no poster: {v}"))
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect()
}

async fn badge(d: &Driver) -> String {
    d.js("return document.querySelector('[data-testid=player-status]').textContent")
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// (a), (b), (c) and (d) for the web player over `transport`.
async fn the_web_player_rides_out_a_bad_link(transport: &str) {
    let r = rig(if transport == "webrtc" {
        &WEBRTC_FAULTS
    } else {
        &FAULTS
    })
    .await;
    let want = |st: &Value| st["state"] == "playing" && st["transport"] == transport;
    open(&r, transport).await;
    wait_stats(&r.d, Duration::from_secs(30), "plays on a clean link", want).await;

    // (a) 600 kbit/s, 3% loss: the sub rendition, and the picture keeps moving.
    r.link.set(Some(600), 3);
    let st = wait_stats(
        &r.d,
        Duration::from_secs(30),
        "moves to the sub rendition",
        |st| want(st) && st["rendition"] == "sub",
    )
    .await;
    eprintln!("{transport} at 600 kbit/s, 3% loss: {st}");
    let (share, stalls) = progress(&r.d, Duration::from_secs(20)).await;
    eprintln!(
        "{transport} at 600 kbit/s, 3% loss: picture advanced {:.0}% of wall time",
        share * 100.0
    );
    assert!(
        share >= 0.8,
        "{transport}: the picture advanced only {share:.2} of wall time; stood still at:\n{}",
        stalls.join("\n")
    );
    let st = stats(&r.d).await;
    assert!(want(&st) && st["rendition"] == "sub", "{transport}: {st}");

    // (b) 150 kbit/s: stills with this camera's provenance, and the badge.
    r.link.set(Some(150), 0);
    let st = wait_stats(
        &r.d,
        Duration::from_secs(45),
        "falls back to stills",
        |st| st["transport"] == "stills" && st["stillsShown"].as_u64().unwrap_or(0) >= 3,
    )
    .await;
    eprintln!("{transport} at 150 kbit/s: {st}");
    assert_eq!(st["lastStill"]["camera"], r.camera.as_str(), "{st}");
    assert_eq!(badge(&r.d).await, "Poor connection");
    let shown = st["stillsShown"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = stats(&r.d).await;
    assert!(
        later["stillsShown"].as_u64().unwrap_or(0) >= shown + 2,
        "{transport}: stills are refreshed about once a second: {st} -> {later}"
    );
    let rgb = poster_rgb(&r.d, 320, 180).await;
    assert_signature(&[rgb], 320, 180, signature_of(&r.camera));

    // (c) The link recovers: main again within 10 s.
    r.link.set(None, 0);
    let started = Instant::now();
    let st = wait_stats(&r.d, Duration::from_secs(10), "back on main", |st| {
        want(st) && st["rendition"] == "main"
    })
    .await;
    eprintln!(
        "{transport}: back on main {:?} after the link recovered: {st}",
        started.elapsed()
    );

    // (d) The faults fired, and the door refused what they brought. They are
    // random: if none fired during the run, ask for stills until one does (each
    // request rolls the hub and still points); every still that is let out is
    // this camera's.
    let blocked = || r.s.log().matches("isolation violation blocked").count();
    let mut statuses = std::collections::BTreeMap::new();
    if blocked() == 0 {
        let a = r.s.login(OWNER_A, PASSWORD).await;
        let g = r.s.grant(&a, &r.camera).await;
        let url = g["snapshot_url"].as_str().unwrap().to_string();
        for _ in 0..300 {
            let (st, body) = get(&url).await;
            *statuses.entry(st).or_insert(0u32) += 1;
            if st == 200 {
                let record = hearth_media::jpeg::find_provenance(&body).expect("a stamped still");
                assert_eq!(
                    record.camera.to_string(),
                    r.camera,
                    "a foreign still was let out"
                );
            }
            if blocked() > 0 {
                break;
            }
        }
    }
    let blocked = blocked();
    eprintln!("{transport}: {blocked} isolation violations blocked at the door");
    assert!(
        blocked > 0,
        "{transport}: the fault injection never fired (still requests by status: {statuses:?})"
    );
    assert_ne!(stats(&r.d).await["state"], "refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_player_over_hls_rides_out_a_bad_link() {
    let _one = ONE_AT_A_TIME.lock().await;
    the_web_player_rides_out_a_bad_link("hls").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_player_over_webrtc_rides_out_a_bad_link() {
    let _one = ONE_AT_A_TIME.lock().await;
    the_web_player_rides_out_a_bad_link("webrtc").await;
}

/// (a) with hls.js: the reference player, given the master playlist behind
/// 600 kbit/s and 3% loss, moves to the sub rendition by itself and keeps
/// playing. (In its low-latency mode on this link, three runs on 2026-12-05:
/// the picture advanced 95% and 110% of wall time in two, but hls.js's ABR,
/// which measures LL parts that the link's token bucket lets through in a
/// burst, went back up to main in one, and in another had chosen no level after
/// 40 s; so the test holds hls.js's standard mode to (a).)
#[tokio::test(flavor = "multi_thread")]
async fn hls_js_moves_to_the_sub_rendition_behind_a_slow_lossy_link() {
    let _one = ONE_AT_A_TIME.lock().await;
    require_tool("chromium");
    let link = Link::new();
    let s = Server::demo_behind(&link, MAIN, SUB, &WEBRTC_FAULTS);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let camera = s.camera_id(&a, "Living room").await;
    let proxy = common::hlsjs::same_origin_proxy(s.base.clone()).await;
    let d = Driver::start().await;
    // Grants last five minutes: one is enough for this test.
    let g = s.grant(&a, &camera).await;
    let master = g["hls_url"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&get(&master).await.1).contains("sub.m3u8") {
        assert!(
            Instant::now() < deadline,
            "the master never listed the sub rendition"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    link.set(Some(600), 3);
    let url = master.replace(&s.base, &proxy);
    d.goto(&format!("{proxy}/hls.html")).await;
    d.js(&format!("startHls({url:?}, {a:?}, false)")).await;
    let level = "const h = window.hls; return h && h.levels.length && h.currentLevel >= 0 \
                 ? [h.levels[h.currentLevel].height, h.levels.length, window.errors] : null";
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let v = d.js(level).await;
        if v[0] == 270 && v[1] == 2 {
            break;
        }
        assert!(
            v.get(2)
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty()),
            "hls.js failed: {v}"
        );
        if Instant::now() >= deadline {
            let seen = d
                .js("return [window.hls.bandwidthEstimate, window.levels, window.trace.slice(-40)]")
                .await;
            panic!(
                "hls.js never moved to the sub rendition: {v}; estimate, switches, trace: {seen}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let t = || async {
        d.js("return document.getElementById('v').currentTime")
            .await
    };
    // Then it plays on: the picture keeps moving, mostly on the sub rendition
    // (hls.js may probe upwards when LL-HLS parts make its bandwidth estimate
    // run high: it must come back).
    let (c0, w0) = (t().await.as_f64().unwrap(), Instant::now());
    let mut heights = Vec::new();
    while w0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        heights.push(d.js(level).await[0].as_u64().unwrap_or(0));
    }
    let share = (t().await.as_f64().unwrap() - c0) / w0.elapsed().as_secs_f64();
    let on_sub = heights.iter().filter(|h| **h == 270).count() as f64 / heights.len() as f64;
    eprintln!(
        "hls.js at 600 kbit/s, 3% loss: on the sub rendition {:.0}% of the time ({heights:?}), picture advanced {:.0}% of wall time",
        on_sub * 100.0,
        share * 100.0
    );
    assert!(
        on_sub >= 0.75,
        "hls.js did not stay on the sub rendition: {heights:?}"
    );
    assert!(
        share >= 0.8,
        "hls.js: the picture advanced only {share:.2} of wall time"
    );
}

/// Whether `f` holds within `timeout` (checked every 100 ms, without blocking
/// the runtime's threads).
async fn until(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

/// One HLS viewer of the storm: reads `playlist` and every new segment, checks
/// each segment's provenance after decrypting it, and counts what it got.
async fn storm_viewer(
    base: String,
    playlist: &'static str,
    session: String,
    camera: String,
    got: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .build()
        .unwrap();
    let mut keys: std::collections::HashMap<String, [u8; 16]> = Default::default();
    let mut last_seq: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        let pl = match http
            .get(format!("{base}/{playlist}"))
            .bearer_auth(&session)
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
            _ => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let mut seq: u64 = pl
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (mut key_uri, mut iv) = (String::new(), [0u8; 16]);
        let mut newest = None;
        for line in pl.lines() {
            if let Some(k) = line.strip_prefix("#EXT-X-KEY:METHOD=AES-128,URI=\"") {
                let (uri, rest) = k.split_once('"').unwrap();
                key_uri = uri.to_string();
                let hex = rest.trim_start_matches(",IV=0x");
                for (i, b) in iv.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                newest = Some((seq, line.to_string(), key_uri.clone(), iv));
                seq += 1;
            }
        }
        if let Some((seq, uri, key_uri, iv)) = newest
            && last_seq != Some(seq)
        {
            let fetch = |u: String| {
                let http = http.clone();
                let session = session.clone();
                async move {
                    match http.get(u).bearer_auth(session).send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.ok(),
                        _ => None,
                    }
                }
            };
            if !keys.contains_key(&key_uri)
                && let Some(k) = fetch(format!("{base}/{key_uri}")).await
                && let Ok(k) = <[u8; 16]>::try_from(&k[..])
            {
                keys.insert(key_uri.clone(), k);
            }
            if let (Some(key), Some(body)) =
                (keys.get(&key_uri), fetch(format!("{base}/{uri}")).await)
            {
                let clear = hearth_media::crypt::decrypt_segment(key, &iv, &body)
                    .unwrap_or_else(|e| panic!("{uri}: does not decrypt: {e}"));
                let record = hearth_media::fmp4::find_provenance(&clear)
                    .unwrap_or_else(|| panic!("{uri}: no provenance"));
                assert_eq!(
                    record.camera.to_string(),
                    camera,
                    "a foreign segment: {uri}"
                );
                last_seq = Some(seq);
                got.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// (e) A reconnect storm: a dozen viewers on a 5% loss link (with the fault
/// injection on) lose the link entirely for five seconds, come back at once, and
/// every one resumes with this camera's segments, checked one by one.
#[tokio::test(flavor = "multi_thread")]
async fn every_viewer_resumes_after_a_reconnect_storm_on_a_lossy_link() {
    let _one = ONE_AT_A_TIME.lock().await;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let link = Link::new();
    let s = Server::demo_behind(&link, MAIN, SUB, &FAULTS);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let camera = s.camera_id(&a, "Living room").await;
    link.set(None, 5);
    let stop = Arc::new(AtomicBool::new(false));
    let mut viewers = Vec::new();
    for i in 0..12 {
        // Each viewer its own grant (logins are rate-limited per address: one
        // session holds them all).
        let session = a.clone();
        let g = s.grant(&session, &camera).await;
        let base = g["hls_url"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap()
            .0
            .to_string();
        let got = Arc::new(AtomicU64::new(0));
        let playlist = if i % 2 == 0 { "live.m3u8" } else { "sub.m3u8" };
        tokio::spawn(storm_viewer(
            base,
            playlist,
            session,
            camera.clone(),
            got.clone(),
            stop.clone(),
        ));
        viewers.push(got);
    }
    let all_got = |n: u64, since: &[u64]| {
        viewers
            .iter()
            .zip(since)
            .all(|(g, s)| g.load(Ordering::Relaxed) >= s + n)
    };
    let zero = vec![0; viewers.len()];
    assert!(
        until(Duration::from_secs(30), || all_got(2, &zero)).await,
        "not every viewer played before the storm"
    );
    // The link goes away entirely, then comes back for everyone at once.
    link.set(None, 100);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before: Vec<u64> = viewers.iter().map(|g| g.load(Ordering::Relaxed)).collect();
    link.set(None, 5);
    let back = Instant::now();
    let resumed = until(Duration::from_secs(30), || all_got(2, &before)).await;
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = viewers.iter().map(|g| g.load(Ordering::Relaxed)).collect();
    assert!(
        resumed,
        "not every viewer resumed after the storm: {before:?} -> {counts:?}"
    );
    eprintln!(
        "storm: all 12 viewers had two new segments {:?} after the link came back ({before:?} -> {counts:?})",
        back.elapsed()
    );
}
