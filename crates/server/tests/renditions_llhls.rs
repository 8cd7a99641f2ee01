//! Main and sub renditions, and LL-HLS, as a player meets them: the demo's
//! cameras publish both streams; the master playlist lists both with their
//! bandwidth and resolution; each media playlist carries LL-HLS parts, a preload
//! hint and blocking reload; every part is its own AES-128 object under its
//! segment's key and IV, carrying the camera's provenance with its rendition.

mod common;
use common::*;
use hearth_media::provenance::ProvenanceRecord;
use hearth_model::Rendition;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const W: u32 = 640;
const H: u32 = 360;

/// The value of `ATTR=` in an attribute list (quoted or not).
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(',').next()?,
    })
}

/// One `EXT-X-PART` with the key and IV in force for it.
#[derive(Debug, Clone)]
struct Listed {
    uri: String,
    duration: f64,
    independent: bool,
    key_uri: String,
    iv: [u8; 16],
}

/// The parts of a media playlist, the hint, and the (msn, part index) of the
/// next part to come.
struct LlPlaylist {
    parts: Vec<Listed>,
    hint: String,
    next: (u64, u32),
    part_target: f64,
}

fn parse_ll(text: &str) -> LlPlaylist {
    let mut msn: u64 = attr_line(text, "#EXT-X-MEDIA-SEQUENCE:")
        .parse()
        .expect("media sequence");
    let (mut key_uri, mut iv) = (String::new(), [0u8; 16]);
    let (mut parts, mut hint, mut part_in_segment) = (Vec::new(), String::new(), 0u32);
    for line in text.lines() {
        if let Some(k) = line.strip_prefix("#EXT-X-KEY:") {
            key_uri = attr(k, "URI").unwrap_or("").to_string();
            if let Some(hex) = attr(k, "IV").and_then(|v| v.strip_prefix("0x")) {
                for (i, b) in iv.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                }
            }
        } else if let Some(p) = line.strip_prefix("#EXT-X-PART:") {
            parts.push(Listed {
                uri: attr(p, "URI").unwrap().to_string(),
                duration: attr(p, "DURATION").unwrap().parse().unwrap(),
                independent: attr(p, "INDEPENDENT") == Some("YES"),
                key_uri: key_uri.clone(),
                iv,
            });
            part_in_segment += 1;
        } else if let Some(h) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            assert_eq!(attr(h, "TYPE"), Some("PART"), "{line}");
            hint = attr(h, "URI").unwrap().to_string();
        } else if !line.starts_with('#') && !line.is_empty() {
            // A complete segment: the next parts are the next segment's.
            msn += 1;
            part_in_segment = 0;
        }
    }
    let part_target = attr_line(text, "#EXT-X-PART-INF:PART-TARGET=")
        .parse()
        .unwrap();
    LlPlaylist {
        parts,
        hint,
        next: (msn, part_in_segment),
        part_target,
    }
}

fn attr_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

/// Fetches a part (or segment) and its key, decrypts it as a player does, and
/// returns its in-band provenance record.
async fn open_object(
    http: &reqwest::Client,
    base: &str,
    keys: &mut HashMap<String, [u8; 16]>,
    p: &Listed,
) -> ProvenanceRecord {
    let url = format!("{base}/{}", p.uri);
    let r = media_get(http, &url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let body = r.bytes().await.unwrap();
    if !keys.contains_key(&p.key_uri) {
        let key_url = format!("{base}/{}", p.key_uri);
        let k = media_get(http, &key_url).send().await.unwrap();
        assert_eq!(k.status(), 200, "{key_url}");
        keys.insert(
            p.key_uri.clone(),
            k.bytes().await.unwrap()[..].try_into().unwrap(),
        );
    }
    let clear = hearth_media::crypt::decrypt_segment(&keys[&p.key_uri], &p.iv, &body)
        .unwrap_or_else(|e| panic!("{}: does not decrypt alone: {e}", p.uri));
    hearth_media::fmp4::find_provenance(&clear)
        .unwrap_or_else(|| panic!("{}: no provenance box", p.uri))
}

async fn text(url: &str) -> (u16, String) {
    let (s, b) = get(url).await;
    (s, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn both_renditions_are_listed_and_served_as_ll_hls() {
    // A busy picture: video, not the audio both renditions carry, sets each
    // rendition's bandwidth, so main's is surely above sub's.
    let s = Server::demo_with(W, H, &["--busy"], &[]);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &living).await;
    let master_url = g["hls_url"].as_str().unwrap().to_string();
    let base = master_url.rsplit_once('/').unwrap().0.to_string();
    let epoch = g["epoch"].as_u64().unwrap();

    // The master playlist lists the sub rendition once it has a segment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let master = loop {
        let (st, m) = text(&master_url).await;
        assert_eq!(st, 200, "{m}");
        if m.contains("sub.m3u8") || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let variants: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    assert_eq!(variants[0].1, "live.m3u8", "{master}");
    assert_eq!(variants[1].1, "sub.m3u8", "{master}");
    assert_eq!(
        attr(variants[0].0, "RESOLUTION"),
        Some("640x360"),
        "{master}"
    );
    assert_eq!(
        attr(variants[1].0, "RESOLUTION"),
        Some("320x180"),
        "{master}"
    );
    let bw = |l: &str| attr(l, "BANDWIDTH").unwrap().parse::<u64>().unwrap();
    assert!(
        bw(variants[0].0) > bw(variants[1].0),
        "main must need more than sub: {master}"
    );

    let http = client();
    let mut keys = HashMap::new();
    for (rendition, playlist) in [(Rendition::Main, "live.m3u8"), (Rendition::Sub, "sub.m3u8")] {
        let url = format!("{base}/{playlist}");
        let (st, pl) = text(&url).await;
        assert_eq!(st, 200, "{pl}");
        assert!(
            pl.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK="),
            "{pl}"
        );
        let ll = parse_ll(&pl);
        assert!(ll.part_target <= 0.5, "parts of at most 500 ms: {pl}");
        assert!(ll.parts.len() >= 3, "{pl}");
        for p in &ll.parts {
            assert!(p.duration <= ll.part_target + 1e-9, "{p:?} in\n{pl}");
            assert!(!p.key_uri.is_empty(), "parts are encrypted: {pl}");
            let sub = p.uri.starts_with("sub-");
            assert_eq!(sub, rendition == Rendition::Sub, "{}", p.uri);
        }
        assert!(ll.parts.iter().any(|p| p.independent), "{pl}");
        // Each part decrypts alone and names the camera, epoch and rendition.
        for p in ll.parts.iter().rev().take(4) {
            let record = open_object(&http, &base, &mut keys, p).await;
            assert_eq!(record.camera.to_string(), living, "{}", p.uri);
            assert_eq!(record.epoch.0, epoch, "{}", p.uri);
            assert_eq!(record.rendition, rendition, "{}", p.uri);
        }

        // Blocking reload: ask for the next part; the answer comes when it
        // exists (about one part target later), and lists it.
        let (msn, part) = ll.next;
        let started = Instant::now();
        let (st, next) = text(&format!("{url}?_HLS_msn={msn}&_HLS_part={part}")).await;
        let waited = started.elapsed();
        assert_eq!(st, 200, "{next}");
        let next_ll = parse_ll(&next);
        assert!(
            next_ll.next > ll.next,
            "the blocking reload lists the part asked for: {:?} -> {:?}\n{next}",
            ll.next,
            next_ll.next
        );
        assert!(
            next_ll.parts.iter().any(|p| p.uri == ll.hint),
            "the part hinted before is listed now: {}\n{next}",
            ll.hint
        );
        assert!(
            waited < Duration::from_secs(2),
            "a blocking reload waits for one part, not {waited:?}"
        );
        // The hinted part: asked for before it exists, answered when it does.
        let hinted = Listed {
            uri: next_ll.hint.clone(),
            ..next_ll.parts.last().unwrap().clone()
        };
        let started = Instant::now();
        let url_hint = format!("{base}/{}", hinted.uri);
        let r = media_get(&http, &url_hint).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url_hint}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Malformed or far-ahead requests are refused, not held.
        for q in [
            "_HLS_msn=x",
            "_HLS_part=1",
            &format!("_HLS_msn={}", msn + 50),
        ] {
            let (st, body) = text(&format!("{url}?{q}")).await;
            assert_eq!(st, 400, "{q}: {body}");
        }
    }

    // Players without LL-HLS play the same playlists' segments: ffmpeg decodes
    // the sub rendition, and it is the Living room camera.
    let sub_url = format!("{base}/sub.m3u8");
    let frames = tokio::task::spawn_blocking(move || decode_rgb(&sub_url, 2.0, 320, 180))
        .await
        .unwrap();
    assert!(frames.len() >= 15, "{} frames", frames.len());
    assert_signature(&frames, 320, 180, signature_of(&living));
}
