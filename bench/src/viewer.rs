//! A simulated HLS viewer: polls a media playlist and fetches the newest segment on
//! its first poll and every new segment once after that, like a player that starts at
//! the live edge. It also fetches each init segment (`EXT-X-MAP`) and AES-128 key
//! (`EXT-X-KEY`) it needs, once.
//!
//! Against Hearth it first asks for a stream grant and then reads the grant's fMP4
//! (`live.m3u8`) or MPEG-TS (`ts.m3u8`) playlist. Against a plain HLS server (the
//! nginx-rtmp peer) it reads a playlist URL directly, with no grant and no token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// Renew the grant well before its 5 minute lifetime ends.
const GRANT_RENEW_AFTER: Duration = Duration::from_secs(4 * 60);

/// Shared by all viewers of a scenario.
#[derive(Default)]
pub struct Counters {
    pub segments: AtomicU64,
    /// Every body received: segments, init segments, playlists.
    pub bytes: AtomicU64,
    pub playlists: AtomicU64,
    /// AES-128 keys fetched (`EXT-X-KEY` URIs, once each per grant).
    pub keys: AtomicU64,
    pub errors: AtomicU64,
    /// Time to first segment of each viewer that got one, in microseconds, from just
    /// before its grant request (Hearth) or its first playlist request (plain HLS).
    pub ttfs_us: Mutex<Vec<u64>>,
    /// The same, from just before the first playlist request: the grant left out.
    pub ttfs_after_grant_us: Mutex<Vec<u64>>,
    /// A few distinct error descriptions, for the report on stderr.
    pub error_samples: Mutex<Vec<String>>,
}

#[derive(Clone, Copy, Default)]
pub struct Snapshot {
    pub segments: u64,
    pub bytes: u64,
    pub playlists: u64,
    pub keys: u64,
    pub errors: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            segments: self.segments.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            playlists: self.playlists.load(Ordering::Relaxed),
            keys: self.keys.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    pub fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.error_samples.lock().expect("error samples");
        if s.len() < 5 && !s.contains(&what) {
            s.push(what);
        }
    }
}

/// Which of Hearth's media playlists a viewer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavour {
    /// `live.m3u8`: fMP4 segments with an init segment (what the web app plays).
    Fmp4,
    /// `ts.m3u8`: MPEG-TS segments (smart displays; what nginx-rtmp serves).
    Ts,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Fmp4 => "fmp4",
            Flavour::Ts => "ts",
        }
    }
}

/// Where a viewer's playlist comes from.
#[derive(Clone)]
pub enum Source {
    /// Hearth: a stream grant for the camera, then the grant's playlist of `flavour`.
    Hearth {
        base: String,
        camera_id: String,
        token: String,
        flavour: Flavour,
    },
    /// A plain HLS server: the media playlist's URL, no grant and no token.
    Plain { playlist_url: String },
}

pub struct Viewer {
    pub client: reqwest::Client,
    pub counters: Arc<Counters>,
    pub source: Source,
    /// When this viewer presses play.
    pub start: Instant,
    pub poll: Duration,
    /// Fetch segments (and their keys and init segments); `false` polls playlists only.
    pub segments: bool,
}

/// The directory of a URL, against which a playlist's relative URIs resolve.
fn dir_of(url: &str) -> &str {
    url.rsplit_once('/').map_or(url, |(d, _)| d)
}

/// One entry of a media playlist.
#[derive(Debug, PartialEq)]
struct Entry {
    seq: u64,
    uri: String,
    /// The `EXT-X-MAP` in effect for it.
    map: Option<String>,
    /// The `EXT-X-KEY` URI in effect for it (`None` when clear).
    key: Option<String>,
}

/// The value of attribute `name` in an attribute list (URIs hold no commas here).
fn attr(list: &str, name: &str) -> Option<String> {
    list.split(',')
        .find_map(|a| a.trim().strip_prefix(name)?.strip_prefix('='))
        .map(|u| u.trim_matches('"').to_string())
}

fn parse_playlist(text: &str) -> Vec<Entry> {
    let mut seq = 0;
    let mut map = None;
    let mut key = None;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            map = attr(v, "URI");
        } else if let Some(v) = line.strip_prefix("#EXT-X-KEY:") {
            key = match attr(v, "METHOD").as_deref() {
                Some("NONE") | None => None,
                Some(_) => attr(v, "URI"),
            };
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push(Entry {
                seq,
                uri: line.to_string(),
                map: map.clone(),
                key: key.clone(),
            });
            seq += 1;
        }
    }
    out
}

impl Viewer {
    /// GETs `url`; counts the body's bytes, or an error.
    async fn fetch(&self, url: &str, what: &str) -> Option<usize> {
        let resp = match self.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                self.counters.error(format!("{what}: {e}"));
                return None;
            }
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(b) if status.is_success() => {
                self.counters
                    .bytes
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                Some(b.len())
            }
            Ok(_) => {
                self.counters.error(format!("{what}: HTTP {status}"));
                None
            }
            Err(e) => {
                self.counters.error(format!("{what} body: {e}"));
                None
            }
        }
    }

    /// A GET, with the Hearth session token if there is one.
    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.get(url);
        match &self.source {
            Source::Hearth { token, .. } => req.bearer_auth(token),
            Source::Plain { .. } => req,
        }
    }

    /// The media playlist's URL: for Hearth, from a new grant
    /// (`POST /api/v1/cameras/{id}/streams`); `None` (counted as an error) if that failed.
    async fn playlist_url(&self) -> Option<String> {
        let (base, camera_id, token, flavour) = match &self.source {
            Source::Plain { playlist_url } => return Some(playlist_url.clone()),
            Source::Hearth {
                base,
                camera_id,
                token,
                flavour,
            } => (base, camera_id, token, flavour),
        };
        let resp = self
            .client
            .post(format!("{base}/api/v1/cameras/{camera_id}/streams"))
            .bearer_auth(token)
            .send()
            .await;
        let v: serde_json::Value = match resp {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(v) => v,
                Err(e) => {
                    self.counters.error(format!("grant body: {e}"));
                    return None;
                }
            },
            Ok(r) => {
                self.counters.error(format!("grant: HTTP {}", r.status()));
                return None;
            }
            Err(e) => {
                self.counters.error(format!("grant: {e}"));
                return None;
            }
        };
        let url = match flavour {
            // `hls_url` is the master playlist; the fMP4 media playlist is beside it.
            Flavour::Fmp4 => format!("{}/live.m3u8", dir_of(v["hls_url"].as_str()?)),
            Flavour::Ts => v["hls_ts_url"].as_str()?.to_string(),
        };
        Some(url)
    }

    /// Runs until the task is aborted.
    pub async fn run(self) {
        tokio::time::sleep_until(self.start).await;
        let mut got_first = false;
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is due at once, but the timer's 1 ms resolution can hold it
        // back that long: take t0 after it, just before the first request.
        tick.tick().await;
        let t0 = Instant::now();
        let (mut playlist, mut granted) = loop {
            if let Some(p) = self.playlist_url().await {
                break (p, Instant::now());
            }
            tick.tick().await;
        };
        let t1 = Instant::now();
        let renews = matches!(self.source, Source::Hearth { .. });
        let mut init: Option<String> = None;
        // Key URIs fetched under the current grant; a player fetches each one once.
        let mut keys: std::collections::HashSet<String> = Default::default();
        let mut last_seq: Option<u64> = None;
        loop {
            let renewed = if renews && granted.elapsed() > GRANT_RENEW_AFTER {
                self.playlist_url().await
            } else {
                None
            };
            if let Some(p) = renewed {
                playlist = p;
                granted = Instant::now();
                // A new grant is a new URL space for the same objects.
                init = None;
                keys.clear();
            }
            let media = dir_of(&playlist);
            let text = {
                let resp = self.get(&playlist).send().await;
                match resp {
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(t) => t,
                        Err(e) => {
                            self.counters.error(format!("playlist body: {e}"));
                            tick.tick().await;
                            continue;
                        }
                    },
                    Ok(r) => {
                        self.counters
                            .error(format!("playlist: HTTP {}", r.status()));
                        tick.tick().await;
                        continue;
                    }
                    Err(e) => {
                        self.counters.error(format!("playlist: {e}"));
                        tick.tick().await;
                        continue;
                    }
                }
            };
            self.counters.playlists.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes
                .fetch_add(text.len() as u64, Ordering::Relaxed);
            if !self.segments {
                tick.tick().await;
                continue;
            }
            let entries = parse_playlist(&text);
            // A player joining starts at the newest segment; afterwards it takes every
            // segment it has not had yet.
            let todo: Vec<&Entry> = match last_seq {
                None => entries.last().into_iter().collect(),
                Some(l) => entries.iter().filter(|e| e.seq > l).collect(),
            };
            for e in todo {
                if e.map.is_some() && e.map != init {
                    let map = e.map.as_deref().unwrap_or_default();
                    if self
                        .fetch(&format!("{media}/{map}"), "init")
                        .await
                        .is_none()
                    {
                        break;
                    }
                    init = e.map.clone();
                }
                if let Some(k) = e.key.as_deref().filter(|k| !keys.contains(*k)) {
                    if self.fetch(&format!("{media}/{k}"), "key").await.is_none() {
                        break;
                    }
                    self.counters.keys.fetch_add(1, Ordering::Relaxed);
                    keys.insert(k.to_string());
                }
                last_seq = Some(e.seq);
                if self
                    .fetch(&format!("{media}/{}", e.uri), "segment")
                    .await
                    .is_some()
                {
                    self.counters.segments.fetch_add(1, Ordering::Relaxed);
                    if !got_first {
                        got_first = true;
                        let us = |t: Instant| t.elapsed().as_micros() as u64;
                        self.counters.ttfs_us.lock().expect("ttfs").push(us(t0));
                        let after = &self.counters.ttfs_after_grant_us;
                        after.lock().expect("ttfs").push(us(t1));
                    }
                }
            }
            tick.tick().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sequences_and_maps() {
        let p = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
                 #EXT-X-MAP:URI=\"init-a.mp4\"\n#EXTINF:2.000,\na-7.m4s\n\
                 #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-b.mp4\"\n#EXTINF:2.000,\nb-8.m4s\n";
        let e = parse_playlist(p);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].seq, e[0].uri.as_str()), (7, "a-7.m4s"));
        assert_eq!(e[0].map.as_deref(), Some("init-a.mp4"));
        assert_eq!((e[1].seq, e[1].map.as_deref()), (8, Some("init-b.mp4")));
        assert!(e.iter().all(|e| e.key.is_none()));
    }

    #[test]
    fn parses_keys() {
        let p = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                 #EXT-X-KEY:METHOD=AES-128,URI=\"key-c-1-9.bin\",IV=0x0000000000000003\n\
                 #EXTINF:2.000,\nc-3.m4s\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:2.000,\nc-4.m4s\n";
        let e = parse_playlist(p);
        assert_eq!(e[0].key.as_deref(), Some("key-c-1-9.bin"));
        assert_eq!(e[0].map.as_deref(), Some("init.mp4"));
        assert_eq!(e[1].key, None);
    }

    #[test]
    fn parses_nginx_rtmp_playlists() {
        // As written by libnginx-mod-rtmp 1.2.2 (hls_fragment 2s, hls_playlist_length 10s).
        let p = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-TARGETDURATION:2\n\
                 #EXTINF:2.000,\ncam0-3.ts\n#EXTINF:2.006,\ncam0-4.ts\n";
        let e = parse_playlist(p);
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].seq, e[1].uri.as_str()), (4, "cam0-4.ts"));
        assert!(e.iter().all(|e| e.map.is_none() && e.key.is_none()));
    }

    #[test]
    fn resolves_against_the_playlist_directory() {
        assert_eq!(
            dir_of("http://127.0.0.1:8080/hls/cam3.m3u8"),
            "http://127.0.0.1:8080/hls"
        );
        assert_eq!(
            dir_of("http://127.0.0.1:1/media/tok/ts.m3u8"),
            "http://127.0.0.1:1/media/tok"
        );
    }
}
