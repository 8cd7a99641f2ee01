//! HLS playlists (RFC 8216) as text.
//!
//! Pure functions from segment lists to playlist text; the server decides the
//! window and URIs. Media playlists always carry `EXT-X-INDEPENDENT-SEGMENTS`
//! (every segment starts with an IDR) and `EXT-X-PROGRAM-DATE-TIME` per segment,
//! formatted here from unix milliseconds (ISO 8601, UTC, millisecond precision)
//! with a civil-from-days conversion, so the crate needs no date library.
//!
//! Encrypted segments ([`crate::crypt`]) are listed with [`media_playlist_keyed`]:
//! an `EXT-X-KEY:METHOD=AES-128` with an explicit IV is written whenever the key
//! (URI or IV) differs from the one in force, which with per-segment IVs means
//! before every segment. Init segments stay clear: an `EXT-X-KEY` applies to
//! every `EXT-X-MAP` after it (RFC 8216 §4.3.2.4), so a map that follows a key
//! is preceded by `METHOD=NONE`. `PlaylistEntry` itself has no key field so
//! that existing callers keep compiling; keys ride in [`KeyedEntry`].

use std::fmt::Write as _;

/// Ends a playlist whose stream is over (append to a media playlist's text).
pub const ENDLIST: &str = "#EXT-X-ENDLIST\n";

/// One segment line in a media playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistEntry<'a> {
    /// Segment URI as written.
    pub uri: &'a str,
    /// Duration, ms (`EXTINF` with millisecond precision).
    pub duration_ms: u32,
    /// Wall-clock time of the segment's first frame, unix ms.
    pub program_date_time_ms: i64,
    /// Emit `EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
}

/// A media playlist entry together with the init segment (`EXT-X-MAP`) it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedEntry<'a> {
    /// URI of the fMP4 init segment for this entry.
    pub map_uri: &'a str,
    /// The segment.
    pub entry: PlaylistEntry<'a>,
}

/// The decryption key of a segment (`EXT-X-KEY:METHOD=AES-128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    /// Key URI as written (quoted); must not contain `"` or a line break.
    pub uri: &'a str,
    /// The explicit AES-128-CBC IV of the segment.
    pub iv: [u8; 16],
}

/// A media playlist entry with its optional init segment and optional key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedEntry<'a> {
    /// URI of the fMP4 init segment (`EXT-X-MAP`), `None` for MPEG-TS. A `None`
    /// after a `Some` keeps the earlier map in force.
    pub map_uri: Option<&'a str>,
    /// Key of an encrypted segment, `None` for a clear one.
    pub key: Option<KeyRef<'a>>,
    /// The segment.
    pub entry: PlaylistEntry<'a>,
}

/// The smallest valid `EXT-X-TARGETDURATION` for these durations: each `EXTINF`
/// rounded to the nearest second must not exceed it (RFC 8216 §4.3.3.1). At least 1.
pub fn target_duration_s(durations_ms: impl IntoIterator<Item = u32>) -> u32 {
    durations_ms
        .into_iter()
        .map(|d| (u64::from(d) + 500) / 1000)
        .max()
        .unwrap_or(1)
        .max(1) as u32
}

/// A live media playlist. With `map_uri` (fMP4) the playlist is version 7 and
/// carries one `EXT-X-MAP`; without it (MPEG-TS) version 3. For streams whose init
/// segment changes, use [`media_playlist_mapped`].
pub fn media_playlist(
    target_duration_s: u32,
    media_sequence: u64,
    discontinuity_sequence: u64,
    map_uri: Option<&str>,
    entries: &[PlaylistEntry<'_>],
) -> String {
    let mut out = header(
        target_duration_s,
        media_sequence,
        discontinuity_sequence,
        if map_uri.is_some() { 7 } else { 3 },
    );
    if let Some(map) = map_uri {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{map}\"");
    }
    for e in entries {
        entry(&mut out, e, None);
    }
    out
}

/// An fMP4 media playlist where entries may need different init segments: an
/// `EXT-X-MAP` is written before the first entry and wherever the map changes.
pub fn media_playlist_mapped(
    target_duration_s: u32,
    media_sequence: u64,
    discontinuity_sequence: u64,
    entries: &[MappedEntry<'_>],
) -> String {
    let mut out = header(target_duration_s, media_sequence, discontinuity_sequence, 7);
    let mut current = None;
    for e in entries {
        let map = (current != Some(e.map_uri)).then_some(e.map_uri);
        current = Some(e.map_uri);
        entry(&mut out, &e.entry, map);
    }
    out
}

/// A media playlist whose entries may be encrypted and (fMP4) may change init
/// segment. Version 7 if any entry has a map (fMP4), else 3 (MPEG-TS; explicit
/// IVs need version 2). Without keys the output equals [`media_playlist_mapped`]
/// (fMP4) or [`media_playlist`] without a map (TS).
pub fn media_playlist_keyed(
    target_duration_s: u32,
    media_sequence: u64,
    discontinuity_sequence: u64,
    entries: &[KeyedEntry<'_>],
) -> String {
    let entries: Vec<LlEntry<'_>> = entries
        .iter()
        .map(|e| LlEntry {
            segment: *e,
            parts: &[],
            complete: true,
        })
        .collect();
    media_playlist_ll(
        target_duration_s,
        media_sequence,
        discontinuity_sequence,
        None,
        &entries,
    )
}

/// What makes a media playlist a Low-Latency HLS one (RFC 8216bis §4.4.3.7–8,
/// §4.4.5.3): parts, their target, the hold-back and the preload hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowLatency<'a> {
    /// `EXT-X-PART-INF:PART-TARGET`: no part is longer.
    pub part_target_ms: u32,
    /// `PART-HOLD-BACK` of `EXT-X-SERVER-CONTROL` (at least twice the part target).
    pub part_hold_back_ms: u32,
    /// URI of the next part, before it exists (`EXT-X-PRELOAD-HINT:TYPE=PART`).
    pub preload_hint: Option<&'a str>,
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry<'a> {
    pub uri: &'a str,
    pub duration_ms: u32,
    /// Starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// A segment with its parts. An incomplete one (the segment being recorded) is
/// listed by its parts only: its discontinuity, map, key and date, then the
/// parts, and no `EXTINF`/URI yet (its `entry.uri` and duration are unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlEntry<'a> {
    pub segment: KeyedEntry<'a>,
    pub parts: &'a [PartEntry<'a>],
    pub complete: bool,
}

/// A media playlist as [`media_playlist_keyed`], with parts and the LL-HLS tags
/// when `ll` is given. A key in force applies to the parts after it as to
/// segments, so each segment's `EXT-X-KEY` (with its IV) comes before its
/// first part: every part is encrypted on its own with its segment's key and IV.
pub fn media_playlist_ll(
    target_duration_s: u32,
    media_sequence: u64,
    discontinuity_sequence: u64,
    ll: Option<&LowLatency<'_>>,
    entries: &[LlEntry<'_>],
) -> String {
    let version = if entries.iter().any(|e| e.segment.map_uri.is_some()) {
        7
    } else {
        3
    };
    let mut out = header(
        target_duration_s,
        media_sequence,
        discontinuity_sequence,
        version,
    );
    if let Some(ll) = ll {
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}\n#EXT-X-PART-INF:PART-TARGET={}",
            seconds(ll.part_hold_back_ms),
            seconds(ll.part_target_ms)
        );
    }
    let mut map_in_force = None;
    let mut key_in_force: Option<KeyRef<'_>> = None;
    for ll_entry in entries {
        let e = &ll_entry.segment;
        if e.entry.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(map) = e.map_uri.filter(|m| map_in_force != Some(*m)) {
            if key_in_force.is_some() {
                // Keep the init segment clear: a key in force would apply to it.
                out.push_str("#EXT-X-KEY:METHOD=NONE\n");
                key_in_force = None;
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{map}\"");
            map_in_force = Some(map);
        }
        if e.key != key_in_force {
            match &e.key {
                Some(k) => key_tag(&mut out, k),
                None => out.push_str("#EXT-X-KEY:METHOD=NONE\n"),
            }
            key_in_force = e.key;
        }
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            iso8601_utc_ms(e.entry.program_date_time_ms)
        );
        for p in ll_entry.parts {
            let _ = write!(
                out,
                "#EXT-X-PART:DURATION={},URI=\"{}\"",
                seconds(p.duration_ms),
                p.uri
            );
            out.push_str(if p.independent {
                ",INDEPENDENT=YES\n"
            } else {
                "\n"
            });
        }
        if ll_entry.complete {
            let _ = writeln!(
                out,
                "#EXTINF:{},\n{}",
                seconds(e.entry.duration_ms),
                e.entry.uri
            );
        }
    }
    if let Some(hint) = ll.and_then(|ll| ll.preload_hint) {
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
    }
    out
}

/// Milliseconds as decimal seconds with three places (`0.334`).
fn seconds(ms: u32) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn key_tag(out: &mut String, k: &KeyRef<'_>) {
    let _ = write!(out, "#EXT-X-KEY:METHOD=AES-128,URI=\"{}\",IV=0x", k.uri);
    for b in k.iv {
        let _ = write!(out, "{b:02X}");
    }
    out.push('\n');
}

fn header(target: u32, seq: u64, disc_seq: u64, version: u8) -> String {
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-MEDIA-SEQUENCE:{seq}\n"
    );
    if disc_seq > 0 {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{disc_seq}");
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    out
}

fn entry(out: &mut String, e: &PlaylistEntry<'_>, map: Option<&str>) {
    if e.discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if let Some(map) = map {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{map}\"");
    }
    segment_lines(out, e);
}

fn segment_lines(out: &mut String, e: &PlaylistEntry<'_>) {
    let _ = writeln!(
        out,
        "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{}.{:03},\n{}",
        iso8601_utc_ms(e.program_date_time_ms),
        e.duration_ms / 1000,
        e.duration_ms % 1000,
        e.uri
    );
}

/// A multivariant playlist with one variant.
pub fn master_playlist(
    variant_uri: &str,
    bandwidth: u64,
    codecs: &str,
    resolution: Option<(u32, u32)>,
) -> String {
    multivariant_playlist(&[VariantEntry {
        uri: variant_uri,
        bandwidth,
        codecs,
        resolution,
    }])
}

/// One variant of a multivariant playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantEntry<'a> {
    pub uri: &'a str,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: &'a str,
    pub resolution: Option<(u32, u32)>,
}

/// A multivariant playlist listing `variants` in order (a player starts with
/// the first unless it measures otherwise).
pub fn multivariant_playlist(variants: &[VariantEntry<'_>]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"",
            v.bandwidth, v.codecs
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        let _ = writeln!(out, "\n{}", v.uri);
    }
    out
}

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso8601_utc_ms(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_latency_playlist_lists_parts_keys_and_the_hint() {
        let key = |iv: u8| KeyRef {
            uri: "key-1.bin",
            iv: [iv; 16],
        };
        let seg = |uri, seq: i64, iv| KeyedEntry {
            map_uri: Some("init.mp4"),
            key: Some(key(iv)),
            entry: PlaylistEntry {
                uri,
                duration_ms: 2000,
                program_date_time_ms: 1_700_000_000_000 + seq * 2000,
                discontinuity: false,
            },
        };
        let p = |uri, independent| PartEntry {
            uri,
            duration_ms: 333,
            independent,
        };
        let done = [p("p0.m4s", true), p("p1.m4s", false)];
        let open = [p("p2.m4s", true)];
        let text = media_playlist_ll(
            2,
            7,
            0,
            Some(&LowLatency {
                part_target_ms: 334,
                part_hold_back_ms: 1002,
                preload_hint: Some("p3.m4s"),
            }),
            &[
                LlEntry {
                    segment: seg("s7.m4s", 0, 1),
                    parts: &done,
                    complete: true,
                },
                LlEntry {
                    segment: seg("", 1, 2),
                    parts: &open,
                    complete: false,
                },
            ],
        );
        let iv = |b: &str| b.repeat(16);
        assert_eq!(
            text,
            format!(
                "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
                 #EXT-X-INDEPENDENT-SEGMENTS\n\
                 #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n\
                 #EXT-X-PART-INF:PART-TARGET=0.334\n\
                 #EXT-X-MAP:URI=\"init.mp4\"\n\
                 #EXT-X-KEY:METHOD=AES-128,URI=\"key-1.bin\",IV=0x{}\n\
                 #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n\
                 #EXT-X-PART:DURATION=0.333,URI=\"p0.m4s\",INDEPENDENT=YES\n\
                 #EXT-X-PART:DURATION=0.333,URI=\"p1.m4s\"\n\
                 #EXTINF:2.000,\ns7.m4s\n\
                 #EXT-X-KEY:METHOD=AES-128,URI=\"key-1.bin\",IV=0x{}\n\
                 #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n\
                 #EXT-X-PART:DURATION=0.333,URI=\"p2.m4s\",INDEPENDENT=YES\n\
                 #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p3.m4s\"\n",
                iv("01"),
                iv("02")
            )
        );
    }

    #[test]
    fn dates() {
        assert_eq!(iso8601_utc_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_utc_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(iso8601_utc_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            iso8601_utc_ms(4_107_542_399_999),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(iso8601_utc_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn fmp4_media_playlist_text() {
        let entries = [
            PlaylistEntry {
                uri: "s10.m4s",
                duration_ms: 2000,
                program_date_time_ms: 1_700_000_000_000,
                discontinuity: false,
            },
            PlaylistEntry {
                uri: "s11.m4s",
                duration_ms: 2040,
                program_date_time_ms: 1_700_000_002_000,
                discontinuity: true,
            },
        ];
        let text = media_playlist(2, 10, 3, Some("init.mp4"), &entries);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2.000,\ns10.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n#EXTINF:2.040,\ns11.m4s\n"
        );
    }

    #[test]
    fn ts_playlist_and_maps() {
        let e = PlaylistEntry {
            uri: "0.ts",
            duration_ms: 1999,
            program_date_time_ms: 0,
            discontinuity: false,
        };
        let text = media_playlist(2, 0, 0, None, &[e]);
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"));
        assert!(!text.contains("EXT-X-MAP") && !text.contains("DISCONTINUITY-SEQUENCE"));
        assert!(text.ends_with("#EXTINF:1.999,\n0.ts\n"));

        let m = |map, uri, disc| MappedEntry {
            map_uri: map,
            entry: PlaylistEntry {
                uri,
                duration_ms: 2000,
                program_date_time_ms: 0,
                discontinuity: disc,
            },
        };
        let text = media_playlist_mapped(
            2,
            0,
            0,
            &[
                m("i0.mp4", "a", false),
                m("i0.mp4", "b", false),
                m("i1.mp4", "c", true),
            ],
        );
        assert_eq!(text.matches("#EXT-X-MAP").count(), 2);
        let disc = text.find("#EXT-X-DISCONTINUITY\n").unwrap();
        let map1 = text.find("i1.mp4").unwrap();
        assert!(disc < map1 && map1 < text.find("\nc\n").unwrap());
    }

    #[test]
    fn master_and_target_duration() {
        assert_eq!(
            master_playlist(
                "live.m3u8",
                2_500_000,
                "avc1.64001f,mp4a.40.2",
                Some((1280, 720))
            ),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720\nlive.m3u8\n"
        );
        assert!(!master_playlist("v.m3u8", 1, "avc1.42c01f", None).contains("RESOLUTION"));
        assert_eq!(target_duration_s([2000, 2499, 1000]), 2);
        assert_eq!(target_duration_s([2500]), 3);
        assert_eq!(target_duration_s([]), 1);
    }

    fn pe(uri: &str, disc: bool) -> PlaylistEntry<'_> {
        PlaylistEntry {
            uri,
            duration_ms: 2000,
            program_date_time_ms: 0,
            discontinuity: disc,
        }
    }

    #[test]
    fn keyed_without_keys_equals_the_plain_writers() {
        let es = [pe("a", false), pe("b", true)];
        let keyed: Vec<_> = es
            .iter()
            .map(|&entry| KeyedEntry {
                map_uri: None,
                key: None,
                entry,
            })
            .collect();
        assert_eq!(
            media_playlist_keyed(2, 5, 1, &keyed),
            media_playlist(2, 5, 1, None, &es)
        );
        let maps = ["i0.mp4", "i1.mp4"];
        let keyed: Vec<_> = es
            .iter()
            .zip(maps)
            .map(|(&entry, m)| KeyedEntry {
                map_uri: Some(m),
                key: None,
                entry,
            })
            .collect();
        let mapped: Vec<_> = es
            .iter()
            .zip(maps)
            .map(|(&entry, map_uri)| MappedEntry { map_uri, entry })
            .collect();
        assert_eq!(
            media_playlist_keyed(2, 5, 1, &keyed),
            media_playlist_mapped(2, 5, 1, &mapped)
        );
    }

    #[test]
    fn keys_are_written_when_they_change_and_maps_stay_clear() {
        let iv = |n: u8| {
            let mut iv = [0u8; 16];
            iv[15] = n;
            iv[0] = 0xab;
            iv
        };
        let k = |uri, n| Some(KeyRef { uri, iv: iv(n) });
        let e = |map, key, uri, disc| KeyedEntry {
            map_uri: Some(map),
            key,
            entry: pe(uri, disc),
        };
        let text = media_playlist_keyed(
            2,
            0,
            0,
            &[
                e("i0.mp4", k("k0", 1), "s1", false),
                e("i0.mp4", k("k0", 2), "s2", false), // new IV
                e("i0.mp4", k("k0", 2), "s3", false), // same key+IV: no tag
                e("i1.mp4", k("k1", 4), "s4", true),  // new map after a key
                e("i1.mp4", None, "s5", false),       // clear segment
            ],
        );
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"i0.mp4\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k0\",IV=0xAB000000000000000000000000000001\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000,\ns1\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k0\",IV=0xAB000000000000000000000000000002\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000,\ns2\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000,\ns3\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-KEY:METHOD=NONE\n#EXT-X-MAP:URI=\"i1.mp4\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k1\",IV=0xAB000000000000000000000000000004\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000,\ns4\n\
             #EXT-X-KEY:METHOD=NONE\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000,\ns5\n"
        );
        // TS flavour: version 3, first entry always carries its key.
        let ts = media_playlist_keyed(
            2,
            9,
            0,
            &[KeyedEntry {
                map_uri: None,
                key: k("key.bin", 9),
                entry: pe("9.ts", false),
            }],
        );
        assert!(ts.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"));
        assert!(ts.contains(
            "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0xAB000000000000000000000000000009\n"
        ));
        assert!(!ts.contains("EXT-X-MAP"));
        assert_eq!(
            media_playlist_keyed(1, 0, 0, &[])
                .matches("EXT-X-KEY")
                .count(),
            0
        );
    }
}
