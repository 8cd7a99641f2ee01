// Hearth live player: a small Media Source Extensions player for live fMP4/CMAF HLS.
//
// Pipeline: master playlist -> CODECS + media playlist URL -> one SourceBuffer ->
// init segment + newest complete segment -> poll the media playlist every
// TARGETDURATION/2 and append new segments by media sequence number.
//
// Design rules:
//  * Every segment is appended at most once, in media sequence order. If we fall
//    behind the sliding window we jump to the newest segment and count it.
//  * Timestamps are kept as the segments carry them, except where they stop being
//    continuous (EXT-X-DISCONTINUITY, new init segment, camera restart, jump):
//    then timestampOffset is set so the new segment starts where the buffer ends.
//  * The URLs carry a short-lived grant. A 403 means "get a new grant"; the owner
//    of the grant (app.js) is asked for one and the playlists are re-fetched.
//  * When destroyed, nothing from this instance touches the <video> again
//    (every await is followed by an `alive` check and fetches are aborted).
//  * Renditions: the master playlist lists the camera's main and sub streams.
//    Each segment's download is timed; when the link cannot carry the main
//    stream (or the picture starves), the player moves to the sub stream, and
//    back when the link has room for main again, continuing from the segment
//    whose date follows what is buffered. When even the sub stream does not fit,
//    it hands over to stills (onPoor; see stills.js).
//  * Provenance (DESIGN.md, isolation layer 1): every init and media segment
//    carries a Hearth `uuid` box naming its camera and binding epoch. Each one is
//    checked after decryption and before it goes anywhere near the SourceBuffer;
//    a segment that is not the camera and epoch of our grant is never appended,
//    the player stops for good ('refused') and reports it once. Chromium's MSE
//    skips unknown top-level boxes (checked in Chromium 156, 32- and 64-bit box
//    sizes: same buffered ranges and frames as without the box), so the box is
//    left in place.

import { HEARTH_UUID, decodeRecord, exactEpoch, grantExpectation, hex2, hexOf, jsonInt } from './provenance.js';

export { HEARTH_UUID, exactEpoch };

const BACK_BUFFER_S = 10;        // keep this much behind currentTime
const MAX_LIVE_LAG_S = 4.5;      // jump forward when further behind the live edge
const LIVE_CUSHION_S = 1.0;      // after a jump, keep at least this much buffered ahead
const OFFLINE_RETRY_MS = 3000;
const FETCH_TIMEOUT_MS = 10000;
const RETRY_AFTER_REFUSAL_MS = 100;
const SUPERVISE_MS = 500;
const DOWN_FACTOR = 1.3;         // main needs this much more than its bandwidth
const UP_FACTOR = 2.0;           // ... and this much to come back to it
const POOR_LOAD = 0.95;          // the sub stream's segments take this share of their
                                 // playing time to download, or more: stills
const MASTER_RECHECK_MS = 3000;  // a one-rendition master older than this is read again before stills
const STARVED_MS = 4000;         // no progress with nothing buffered: too slow

export class HttpError extends Error {
  constructor(status, url, message) {
    super(message || `HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.url = url;
  }
}

class StopError extends Error {
  constructor() { super('stopped'); this.name = 'StopError'; }
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal && signal.aborted) { reject(new StopError()); return; }
  const t = setTimeout(() => { if (signal) signal.removeEventListener('abort', onAbort); resolve(); }, ms);
  const onAbort = () => { clearTimeout(t); reject(new StopError()); };
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
});

// ---------------------------------------------------------------------------
// Playlist parsing

function parseAttributes(s) {
  const out = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

function parseByteRange(s, prevEnd) {
  // "<n>[@<o>]" -> {start, end} (end exclusive)
  const [n, o] = s.split('@');
  const len = parseInt(n, 10);
  const start = o !== undefined ? parseInt(o, 10) : (prevEnd || 0);
  return { start, end: start + len };
}

export function parseMaster(text, baseUrl) {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  if (lines[0] !== '#EXTM3U') throw new Error('not an HLS playlist');
  if (lines.some((l) => l.startsWith('#EXTINF:'))) {
    return { mediaUrl: baseUrl, codecs: null, isMedia: true };
  }
  const variants = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('#EXT-X-STREAM-INF:')) continue;
    const attrs = parseAttributes(lines[i].slice(18));
    let j = i + 1;
    while (j < lines.length && (lines[j] === '' || lines[j].startsWith('#'))) j++;
    if (j < lines.length) {
      variants.push({
        mediaUrl: new URL(lines[j], baseUrl).href,
        codecs: attrs.CODECS || null,
        bandwidth: parseInt(attrs.BANDWIDTH || '0', 10),
      });
    }
  }
  if (!variants.length) throw new Error('master playlist has no variant');
  // The playable ones, most demanding first (main, then sub).
  let playable = variants.filter((v) => !v.codecs || MediaSource.isTypeSupported(mimeFor(v.codecs)));
  if (!playable.length) playable = [variants[0]];
  playable.sort((a, b) => b.bandwidth - a.bandwidth);
  for (const v of playable) v.rendition = /\/sub\.m3u8(\?|$)/.test(v.mediaUrl) ? 'sub' : 'main';
  return { ...playable[0], variants: playable, isMedia: false };
}

export function parseMedia(text, baseUrl) {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  if (lines[0] !== '#EXTM3U') throw new Error('not an HLS playlist');
  const pl = { targetDuration: 2, mediaSequence: 0, endList: false, segments: [] };
  let seq = 0;
  let dseq = 0;
  let map = null;
  let key = null;
  let pending = { discontinuity: false, duration: 0, pdt: null, byteRange: null };
  let lastRangeEnd = 0;
  for (const line of lines) {
    if (!line) continue;
    if (line.startsWith('#')) {
      const colon = line.indexOf(':');
      const tag = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1);
      switch (tag) {
        case '#EXT-X-TARGETDURATION': pl.targetDuration = parseFloat(val) || 2; break;
        case '#EXT-X-MEDIA-SEQUENCE': seq = parseInt(val, 10) || 0; pl.mediaSequence = seq; break;
        case '#EXT-X-DISCONTINUITY-SEQUENCE': dseq = parseInt(val, 10) || 0; break;
        case '#EXT-X-ENDLIST': pl.endList = true; break;
        case '#EXTINF': pending.duration = parseFloat(val) || 0; break;
        case '#EXT-X-DISCONTINUITY': pending.discontinuity = true; dseq++; break;
        case '#EXT-X-PROGRAM-DATE-TIME': {
          const t = Date.parse(val.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
          pending.pdt = Number.isFinite(t) ? t : null;
          break;
        }
        case '#EXT-X-BYTERANGE':
          pending.byteRange = parseByteRange(val, lastRangeEnd);
          break;
        case '#EXT-X-MAP': {
          const a = parseAttributes(val);
          map = {
            uri: a.URI,
            url: new URL(a.URI, baseUrl).href,
            byteRange: a.BYTERANGE ? parseByteRange(a.BYTERANGE, 0) : null,
            key, // an EXT-X-KEY before the MAP also applies to it
          };
          map.id = `${map.uri}|${a.BYTERANGE || ''}`;
          break;
        }
        case '#EXT-X-KEY': {
          const a = parseAttributes(val);
          key = (!a.METHOD || a.METHOD === 'NONE') ? null : {
            method: a.METHOD,
            url: a.URI ? new URL(a.URI, baseUrl).href : null,
            iv: a.IV || null,
          };
          break;
        }
        default: break; // unknown tags are ignored, as the spec requires
      }
      continue;
    }
    // A URI line: one segment.
    if (pending.byteRange) lastRangeEnd = pending.byteRange.end;
    pl.segments.push({
      seq,
      dseq,
      uri: line,
      url: new URL(line, baseUrl).href,
      duration: pending.duration,
      discontinuity: pending.discontinuity,
      pdt: pending.pdt,
      byteRange: pending.byteRange,
      map,
      key,
    });
    seq++;
    pending = { discontinuity: false, duration: 0, pdt: null, byteRange: null };
  }
  return pl;
}

// ---------------------------------------------------------------------------
// Minimal ISO-BMFF reading: codec string from an init segment, timescales,
// and the first decode time of a media segment (for discontinuity alignment).

function readBoxes(view, start, end) {
  const boxes = [];
  let p = start;
  while (p + 8 <= end) {
    let size = view.getUint32(p);
    const type = String.fromCharCode(view.getUint8(p + 4), view.getUint8(p + 5), view.getUint8(p + 6), view.getUint8(p + 7));
    let header = 8;
    if (size === 1) {
      if (p + 16 > end) break;
      size = Number(view.getBigUint64(p + 8));
      header = 16;
    } else if (size === 0) {
      size = end - p;
    }
    if (size < header || p + size > end) break;
    boxes.push({ type, start: p, payload: p + header, end: p + size });
    p += size;
  }
  return boxes;
}

function child(view, box, type) {
  return readBoxes(view, box.payload, box.end).find((b) => b.type === type) || null;
}

function children(view, box, type) {
  return readBoxes(view, box.payload, box.end).filter((b) => b.type === type);
}


export function parseInit(buf) {
  const view = new DataView(buf);
  const top = readBoxes(view, 0, buf.byteLength);
  const moov = top.find((b) => b.type === 'moov');
  const info = { timescales: {}, codecs: [] };
  if (!moov) return info;
  for (const trak of children(view, moov, 'trak')) {
    const tkhd = child(view, trak, 'tkhd');
    const mdia = child(view, trak, 'mdia');
    if (!tkhd || !mdia) continue;
    const tv = view.getUint8(tkhd.payload);
    const trackId = view.getUint32(tkhd.payload + (tv === 1 ? 20 : 12));
    const mdhd = child(view, mdia, 'mdhd');
    if (mdhd) {
      const mv = view.getUint8(mdhd.payload);
      info.timescales[trackId] = view.getUint32(mdhd.payload + (mv === 1 ? 20 : 12));
    }
    const minf = child(view, mdia, 'minf');
    const stbl = minf && child(view, minf, 'stbl');
    const stsd = stbl && child(view, stbl, 'stsd');
    if (!stsd) continue;
    const entries = readBoxes(view, stsd.payload + 8, stsd.end);
    for (const e of entries) {
      if (e.type === 'avc1' || e.type === 'avc3') {
        const inner = readBoxes(view, e.payload + 78, e.end);
        const avcC = inner.find((b) => b.type === 'avcC');
        if (avcC) {
          const p = avcC.payload;
          info.codecs.push(`${e.type}.${hex2(view.getUint8(p + 1))}${hex2(view.getUint8(p + 2))}${hex2(view.getUint8(p + 3))}`);
        }
      } else if (e.type === 'mp4a') {
        info.codecs.push('mp4a.40.2');
      } else if (e.type === 'encv' || e.type === 'enca') {
        info.codecs.push('encrypted');
      }
    }
  }
  return info;
}

// Earliest baseMediaDecodeTime (seconds) over the tracks of the first moof.
export function segmentStartTime(buf, timescales) {
  const view = new DataView(buf);
  const moof = readBoxes(view, 0, buf.byteLength).find((b) => b.type === 'moof');
  if (!moof) return null;
  let best = null;
  for (const traf of children(view, moof, 'traf')) {
    const tfhd = child(view, traf, 'tfhd');
    const tfdt = child(view, traf, 'tfdt');
    if (!tfhd || !tfdt) continue;
    const trackId = view.getUint32(tfhd.payload + 4);
    const scale = timescales[trackId];
    if (!scale) continue;
    const v = view.getUint8(tfdt.payload);
    const t = v === 1 ? Number(view.getBigUint64(tfdt.payload + 4)) : view.getUint32(tfdt.payload + 4);
    const s = t / scale;
    if (best === null || s < best) best = s;
  }
  return best;
}

// ---------------------------------------------------------------------------
// In-band provenance (fMP4 `uuid` box, see crates/media/src/fmp4.rs)

/**
 * The provenance record of a segment, or `{ record: null, reason }`.
 * Same rules as the server's `locate_provenance`: the whole top-level box
 * structure must be well formed (64-bit sizes and size 0 = "to the end"
 * accepted), there must be exactly one Hearth `uuid` box, and its body must be
 * exactly one version-2 record. Never throws.
 */
export function readProvenance(buf) {
  try {
    if (!(buf instanceof ArrayBuffer)) {
      if (buf && buf.buffer instanceof ArrayBuffer) buf = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      else return { record: null, reason: 'not bytes' };
    }
    const view = new DataView(buf);
    const bytes = new Uint8Array(buf);
    const len = buf.byteLength;
    if (len === 0) return { record: null, reason: 'empty segment' };
    let found = null;
    let count = 0;
    let p = 0;
    while (p < len) {
      if (len - p < 8) return { record: null, reason: `truncated box header at ${p}` };
      let size = view.getUint32(p);
      let header = 8;
      if (size === 1) {
        if (len - p < 16) return { record: null, reason: `truncated box size at ${p}` };
        const big = view.getBigUint64(p + 8);
        size = big > BigInt(len - p) ? Infinity : Number(big);
        header = 16;
      } else if (size === 0) {
        size = len - p;
      }
      if (size < header || size > len - p) return { record: null, reason: `bad box size at ${p}` };
      const isUuid = bytes[p + 4] === 0x75 && bytes[p + 5] === 0x75 && bytes[p + 6] === 0x69 && bytes[p + 7] === 0x64; // 'uuid'
      if (isUuid && size >= header + 16 && hexOf(bytes.subarray(p + header, p + header + 16)) === HEARTH_UUID) {
        count++;
        found = { start: p + header + 16, end: p + size };
      }
      p += size;
    }
    if (count === 0) return { record: null, reason: 'no provenance box' };
    if (count > 1) return { record: null, reason: 'more than one provenance box' };
    return decodeRecord(bytes.subarray(found.start, found.end));
  } catch (e) {
    return { record: null, reason: `unreadable (${e && e.message})` };
  }
}

/**
 * Whether a still may be shown as camera `camera` (32 lowercase hex digits) at
 * `epoch` (a BigInt, or null when unknown): `{ record, problem }`, where
 * `problem` is null only when the still's in-band record names exactly those.
 */
export function checkStill(buf, camera, epoch) {
  const { record, reason } = readStillProvenance(buf);
  let problem = null;
  if (!record) problem = reason;
  else if (record.camera !== camera) problem = `camera ${record.camera}, expected ${camera}`;
  else if (epoch === null || record.epoch !== epoch) problem = `epoch ${record.epoch}, expected ${epoch}`;
  return { record, problem };
}

/**
 * The provenance record of a JPEG still, or `{ record: null, reason }`: exactly
 * one APP11 segment starting with the Hearth UUID among the header segments
 * (see crates/media/src/jpeg.rs). Never throws.
 */
export function readStillProvenance(buf) {
  try {
    const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
    if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return { record: null, reason: 'not a JPEG' };
    let p = 2;
    let found = null;
    let count = 0;
    for (;;) {
      if (p + 2 > bytes.length) return { record: null, reason: 'JPEG ends inside its header' };
      if (bytes[p] !== 0xff) return { record: null, reason: `JPEG marker expected at ${p}` };
      const marker = bytes[p + 1];
      if (marker === 0xff) { p += 1; continue; }
      if (marker === 0xda || marker === 0xd9) break; // SOS, EOI
      if (p + 4 > bytes.length) return { record: null, reason: 'JPEG ends inside a marker' };
      const len = (bytes[p + 2] << 8) | bytes[p + 3];
      if (len < 2 || p + 2 + len > bytes.length) return { record: null, reason: `bad JPEG segment length at ${p}` };
      if (marker === 0xeb && len >= 2 + 16 && hexOf(bytes.subarray(p + 4, p + 20)) === HEARTH_UUID) {
        count++;
        found = bytes.subarray(p + 20, p + 2 + len);
      }
      p += 2 + len;
    }
    if (count === 0) return { record: null, reason: 'no provenance segment' };
    if (count > 1) return { record: null, reason: 'more than one provenance segment' };
    return decodeRecord(found);
  } catch (e) {
    return { record: null, reason: `unreadable (${e && e.message})` };
  }
}

// The last path component of a URL ("seg-105.m4s"): names the object in a
// report without the grant that is part of the path.
function objectName(url) {
  try { return decodeURIComponent(new URL(url).pathname.split('/').pop()) || '?'; } catch (_) { return '?'; }
}

export function mimeFor(codecs) {
  return `video/mp4; codecs="${codecs}"`;
}

// "avc1.42c01e,mp4a.40.2" -> "avc1,mp4a": a SourceBuffer survives changes of
// profile/level within a family (the new init segment says so), not of tracks.
export function codecFamilies(codecs) {
  return String(codecs || '').split(',').map((c) => c.trim().split('.')[0].replace('avc3', 'avc1')).filter(Boolean).sort().join(',');
}

// ---------------------------------------------------------------------------

/**
 * @param {object} opts
 * @param {HTMLVideoElement} opts.video
 * @param {{current: () => Promise<object>, refresh: () => Promise<object>, subscribe: (fn) => () => void}} opts.grants
 *        Source of stream grants ({hls_url, snapshot_url, expires_at}) for this camera.
 * @param {(state: object) => void} [opts.onState]
 * @param {object} [opts.stats]  object to mirror state into (window.hearthPlayer)
 * @param {string} opts.cameraId  the camera this player was opened for (32 hex digits);
 *        every segment must name it, and the grant must too.
 * @param {(body: object) => void} [opts.report]  called at most once per player
 *        with a `provenance_mismatch` report body for the server.
 * @param {() => (string|null)} [opts.authorization]  the `Authorization` header of
 *        the session that holds the grants: media URLs are refused without it.
 */
export class LivePlayer {
  constructor({ video, grants, onState, stats, cameraId, report, authorization, onPoor }) {
    this.video = video;
    this.authorization = authorization || (() => null);
    this.grants = grants;
    this.onState = onState || (() => {});
    this.report = report || (() => {});
    this.reported = false;
    this.onPoor = onPoor || null;
    this.variants = [];         // from the master playlist, most demanding first
    this.masterReadAt = 0;      // when it was read (performance.now())
    this.masterStale = false;   // read it again before the next playlist
    this.level = 0;             // index in variants of the one playing
    this.switchPdt = null;      // after a switch: continue from this wall-clock time
    this.samples = [];          // recent segment downloads, bits per second
    this.loads = [];            // ... and download time over playing time
    this.cameraId = String(cameraId || '').toLowerCase();
    this.expect = null;         // { camera, epoch (BigInt), epochJson } from the current grant
    this.stats = stats || {};
    Object.assign(this.stats, {
      state: 'loading', segmentsAppended: 0, lastError: null,
      codecs: null, mediaSequence: null, jumps: 0, skipped: 0, discontinuities: 0,
      quotaRecoveries: 0, grantSwitches: 0, restarts: 0, provenanceChecked: 0,
      rendition: null, levelSwitches: 0, linkBps: null,
    });
    this.abort = new AbortController();
    this.alive = true;
    this.ms = null;
    this.sb = null;
    this.sbCodecs = null;
    this.lastSeq = null;
    this.lastInitId = null;
    this.timescales = {};
    this.tsOffset = 0;
    this.appendedEnd = null;    // end (media time) of what we appended last
    this.resync = true;         // next segment: start at newest, re-append init, realign
    this.grantDirty = false;
    this.keyCache = new Map();
    this.posterUrl = null;     // blob URL of a checked still shown as the poster
    this.segTimes = [];         // [{start, end, pdt}] for wall-clock display
    this.lastProgress = { t: -1, at: performance.now() };
    this.userPaused = false;
    this.unsubscribe = grants.subscribe(() => { this.grantDirty = true; });
    this.onVideoError = () => this.handleVideoError();
    video.addEventListener('error', this.onVideoError);
    this.supervisor = setInterval(() => this.supervise(), SUPERVISE_MS);
    this.run();
  }

  destroy() {
    if (!this.alive) return;
    this.alive = false;
    this.abort.abort();
    clearInterval(this.supervisor);
    this.unsubscribe();
    this.video.removeEventListener('error', this.onVideoError);
    this.teardownMedia();
  }

  // --- state --------------------------------------------------------------

  // Stop for good: nothing more is fetched or appended, the picture is cleared.
  // Only a new player (the user opening the camera again) tries again.
  refuse(reason, reportBody) {
    if (!this.alive) return;
    console.error(`[hearth player] refused: ${reason}`, reportBody ? reportBody.detail : '');
    this.stats.state = 'refused';
    this.stats.lastError = reason;
    this.onState({ state: 'refused', error: reason });
    this.destroy();
    if (reportBody && !this.reported) {
      this.reported = true;
      try { this.report(reportBody); } catch (e) { console.warn('[hearth player] report failed', e); }
    }
  }

  // What segments of this grant must say; refuses (and returns null) when the
  // grant itself does not name our camera and an exact epoch.
  expectationFrom(grant) {
    const { expect, problem } = grantExpectation(grant, this.cameraId);
    if (problem !== null) this.refuse(problem);
    return expect;
  }

  // Checks one fetched (and decrypted) segment; throws StopError after refusing.
  checkProvenance(buf, url) {
    const expect = this.expect;
    const { record, reason } = readProvenance(buf);
    this.stats.provenanceChecked++;
    let problem = null;
    if (!expect) problem = 'no expectation';
    else if (!record) problem = reason;
    else if (record.camera !== expect.camera) problem = `camera ${record.camera}, expected ${expect.camera}`;
    else if (record.epoch !== expect.epoch) problem = `epoch ${record.epoch}, expected ${expect.epoch}`;
    if (problem === null) return;
    const object = objectName(url);
    this.refuse(`provenance check failed for ${object}: ${problem}`, {
      kind: 'provenance_mismatch',
      detail: {
        expected_camera: this.cameraId,
        got_camera: record ? record.camera : null,
        expected_epoch: expect ? expect.epochJson : null,
        got_epoch: record ? jsonInt(record.epoch) : null,
        object,
      },
    });
    throw new StopError();
  }

  setState(state, error) {
    if (!this.alive) return;
    if (error !== undefined) this.stats.lastError = error;
    if (this.stats.state === state && error === undefined) return;
    this.stats.state = state;
    this.onState({ state, error: this.stats.lastError });
  }

  // Wall-clock time (ms since epoch) of the frame on screen, from PROGRAM-DATE-TIME.
  currentFrameTime() {
    const ct = this.video.currentTime;
    for (let i = this.segTimes.length - 1; i >= 0; i--) {
      const s = this.segTimes[i];
      if (s.pdt != null && ct >= s.start - 0.05 && ct < s.end + 0.05) return s.pdt + (ct - s.start) * 1000;
    }
    return null;
  }

  // --- network ------------------------------------------------------------

  // One quick retry when the server refuses (403) or cannot find (404) an
  // object: the door refusing what a server-side fault handed it, or a lookup
  // that missed, is gone on the next request, and a retry costs one round trip
  // where a new grant or a skipped segment costs seconds of picture. A real
  // expiry, revocation or a segment that slid out of the window fails twice
  // and is handled by the caller as before.
  async fetchBytes(url, opts = {}) {
    try {
      return await this.fetchOnce(url, opts);
    } catch (e) {
      if (!(e instanceof HttpError) || (e.status !== 403 && e.status !== 404)) throw e;
      await sleep(RETRY_AFTER_REFUSAL_MS, this.abort.signal);
      return this.fetchOnce(url, opts);
    }
  }

  async fetchOnce(url, { range, text } = {}) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = {};
      if (range) headers.Range = `bytes=${range.start}-${range.end - 1}`;
      const auth = this.authorization();
      if (auth) headers.Authorization = auth;
      const res = await fetch(url, { signal: ctl.signal, cache: 'no-store', credentials: 'omit', headers });
      if (!res.ok) {
        let msg = `HTTP ${res.status}`;
        try { const j = await res.json(); if (j && j.error) msg = j.error; } catch (_) { /* not JSON */ }
        throw new HttpError(res.status, url, msg);
      }
      const body = text ? await res.text() : await res.arrayBuffer();
      return { body, url: res.url || url };
    } catch (e) {
      if (!this.alive) throw new StopError();
      if (e.name === 'AbortError') throw new Error(`timeout fetching ${new URL(url).pathname.split('/').pop()}`);
      throw e;
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onAbort);
    }
  }

  async decrypt(data, key, seq) {
    if (!key) return data;
    if (key.method !== 'AES-128') throw new Error(`unsupported encryption ${key.method}`);
    if (!globalThis.crypto || !crypto.subtle) throw new Error('encrypted stream needs a secure context (https)');
    let k = this.keyCache.get(key.url);
    if (!k) {
      const raw = (await this.fetchBytes(key.url)).body;
      k = await crypto.subtle.importKey('raw', raw, { name: 'AES-CBC' }, false, ['decrypt']);
      this.keyCache.set(key.url, k);
      if (this.keyCache.size > 8) this.keyCache.delete(this.keyCache.keys().next().value);
    }
    const iv = new Uint8Array(16);
    if (key.iv) {
      const hex = key.iv.replace(/^0x/i, '').padStart(32, '0');
      for (let i = 0; i < 16; i++) iv[i] = parseInt(hex.substr(i * 2, 2), 16);
    } else {
      new DataView(iv.buffer).setUint32(12, seq >>> 0);
      new DataView(iv.buffer).setUint32(8, Math.floor(seq / 2 ** 32));
    }
    return crypto.subtle.decrypt({ name: 'AES-CBC', iv }, k, data);
  }

  // --- main loop ----------------------------------------------------------

  async run() {
    this.failures = 0;
    this.grantFailures = 0;
    while (this.alive) {
      try {
        await this.session();
      } catch (e) {
        if (!this.alive || e instanceof StopError) return;
        const status = e instanceof HttpError ? e.status : 0;
        if (status === 403 || status === 401) {
          // Grant expired or revoked: get a new one, then re-fetch the playlists.
          const grantFailures = ++this.grantFailures;
          try {
            await this.grants.refresh();
          } catch (ge) {
            if (ge && ge.status === 404) { this.setState('error', 'camera not available'); }
            else this.stats.lastError = `grant: ${ge.message || ge}`;
          }
          if (grantFailures > 1) {
            if (grantFailures > 3) this.setState('error', 'access denied');
            await this.pause(Math.min(1000 * 2 ** (grantFailures - 2), 10000));
          }
          continue;
        }
        if (status === 404 || status === 503 || e.offline) {
          this.setState('offline', e.message);
          this.resync = true;
          await this.pause(OFFLINE_RETRY_MS);
          continue;
        }
        const failures = ++this.failures;
        console.warn('[hearth player]', e);
        if (e.fatalMedia) {
          this.teardownMedia();
          this.stats.restarts++;
        }
        this.stats.lastError = String(e.message || e);
        if (failures >= 3) this.setState('error', this.stats.lastError);
        await this.pause(Math.min(1000 * failures, 5000));
        continue;
      }
    }
  }

  async pause(ms) {
    try { await sleep(ms, this.abort.signal); } catch (_) { /* stopped */ }
  }

  // The camera's still as the poster while the first segment loads: fetched with
  // the session like every media request, and shown only if its in-band
  // provenance names this camera and epoch (the segments will be checked too).
  async loadPoster(url) {
    try {
      const { body } = await this.fetchBytes(`${url}${url.includes('?') ? '&' : '?'}t=${Date.now()}`);
      const expect = this.expect;
      if (!this.alive || this.stats.segmentsAppended > 0 || this.video.poster || !expect) return;
      if (checkStill(body, expect.camera, expect.epoch).problem !== null) return;
      this.posterUrl = URL.createObjectURL(new Blob([body], { type: 'image/jpeg' }));
      this.video.poster = this.posterUrl;
    } catch (_) { /* no poster: not an error */ }
  }

  async session() {
    const grant = await this.grants.current();
    if (!this.alive) throw new StopError();
    this.grantDirty = false;
    this.expect = this.expectationFrom(grant);
    if (!this.expect) throw new StopError();
    if (!this.video.poster && grant.snapshot_url && this.stats.segmentsAppended === 0) {
      this.loadPoster(grant.snapshot_url);
    }
    const m = await this.fetchBytes(grant.hls_url, { text: true });
    const master = parseMaster(m.body, m.url);
    this.variants = master.variants || [master];
    this.masterReadAt = performance.now();
    this.masterStale = false;
    this.level = Math.min(this.level, this.variants.length - 1);
    let level = this.level;
    let mediaUrl = this.variants[level].mediaUrl;
    this.stats.rendition = this.variants[level].rendition || 'main';
    this.masterCodecs = this.variants[level].codecs;
    if (this.sb && master.codecs && this.sbCodecs && codecFamilies(master.codecs) !== codecFamilies(this.sbCodecs)) {
      // The camera changed its tracks (e.g. audio added): start over with a new MediaSource.
      this.teardownMedia();
      this.stats.restarts++;
    }
    while (this.alive) {
      if (this.grantDirty) {
        // A new grant arrived: re-read the master with the new URLs, keep the buffer.
        this.stats.grantSwitches++;
        return;
      }
      if (this.masterStale) return; // re-read the master, keep the buffer
      if (this.level !== level) {
        // Another rendition: its playlist, from where the buffer ends.
        level = this.level;
        mediaUrl = this.variants[level].mediaUrl;
        this.masterCodecs = this.variants[level].codecs;
        this.stats.rendition = this.variants[level].rendition || 'main';
      }
      const started = performance.now();
      const r = await this.fetchBytes(mediaUrl, { text: true });
      mediaUrl = r.url;
      const pl = parseMedia(r.body, r.url);
      await this.processPlaylist(pl);
      if (pl.endList) {
        const e = new Error('stream ended'); e.offline = true; throw e;
      }
      const wait = Math.max(250, (pl.targetDuration * 1000) / 2 - (performance.now() - started));
      await sleep(wait, this.abort.signal);
    }
    throw new StopError();
  }

  async processPlaylist(pl) {
    const segs = pl.segments;
    if (!segs.length) return;
    // The playlist answers: whatever went wrong before is over.
    this.failures = 0;
    this.grantFailures = 0;
    if (this.stats.state === 'offline' || this.stats.state === 'error') this.setState('loading');
    const newest = segs[segs.length - 1];
    let start;
    if (this.switchPdt !== null) {
      // A new rendition (its own sequence numbers): the first segment that is
      // not already buffered, by date; the newest if the playlist has none.
      const at = segs.findIndex((sg) => sg.pdt !== null && sg.pdt >= this.switchPdt - 250);
      start = at >= 0 ? at : segs.length - 1;
      this.switchPdt = null;
      this.resync = true;
    } else if (this.lastSeq === null || this.resync) {
      start = segs.length - 1;
    } else if (newest.seq < this.lastSeq) {
      // Media sequence went backwards: the stream restarted.
      this.resync = true;
      start = segs.length - 1;
    } else if (segs[0].seq > this.lastSeq + 1) {
      // We fell out of the sliding window: jump to the newest segment.
      this.stats.jumps++;
      this.stats.lastError = `fell behind: jumped from ${this.lastSeq} to ${newest.seq}`;
      console.warn('[hearth player]', this.stats.lastError);
      start = segs.length - 1;
    } else {
      start = segs.findIndex((s) => s.seq > this.lastSeq);
      if (start < 0) return;
    }
    for (let i = start; i < segs.length && this.alive; i++) {
      const seg = segs[i];
      if (this.grantDirty || this.masterStale) return; // pick up new URLs first
      if (this.switchPdt !== null) return; // another rendition from here (supervise)
      try {
        await this.appendSegment(seg, i === start && (this.resync || this.lastSeq === null || seg.seq !== this.lastSeq + 1));
        if (this.adapt()) return; // another rendition (or stills) from here
      } catch (e) {
        if (e instanceof HttpError && e.status === 404 && !this.resync) {
          // Slid out of the window between the playlist and the fetch.
          this.stats.skipped++;
          this.stats.lastError = `segment ${seg.seq} gone (404), skipped`;
          console.warn('[hearth player]', this.stats.lastError);
          this.lastSeq = seg.seq;
          continue;
        }
        throw e;
      }
    }
  }

  async appendSegment(seg, jumped) {
    const [initBuf, dataRaw] = await Promise.all([
      (seg.map && (seg.map.id !== this.lastInitId || this.resync || !this.sb))
        ? this.fetchBytes(seg.map.url, { range: seg.map.byteRange }).then((r) => this.decrypt(r.body, seg.map.key, seg.seq))
        : Promise.resolve(null),
      (async () => {
        const t = performance.now();
        const r = await this.fetchBytes(seg.url, { range: seg.byteRange });
        this.measure(r.body.byteLength, (performance.now() - t) / 1000, seg.duration);
        return r.body;
      })(),
    ]);
    if (!this.alive) throw new StopError();
    const data = await this.decrypt(dataRaw, seg.key, seg.seq);
    if (!this.alive) throw new StopError();
    // Nothing is appended (not even a good init) unless everything fetched checks out.
    if (initBuf) this.checkProvenance(initBuf, seg.map.url);
    this.checkProvenance(data, seg.url);

    if (initBuf) {
      const info = parseInit(initBuf);
      if (info.codecs.includes('encrypted')) throw new Error('sample-encrypted streams are not supported');
      this.timescales = info.timescales;
      let codecs = this.masterCodecs || info.codecs.join(',');
      if (info.codecs.length && codecFamilies(info.codecs.join(',')) !== codecFamilies(codecs)) {
        codecs = info.codecs.join(','); // the init segment is the truth about its tracks
      }
      if (!codecs) throw new Error('cannot determine codecs');
      await this.ensureSourceBuffer(codecs, info.codecs.join(','));
      await this.appendBuffer(initBuf);
      this.lastInitId = seg.map ? seg.map.id : null;
    } else if (!this.sb) {
      throw new Error('media playlist has no EXT-X-MAP init segment');
    }

    // Keep segment timestamps while they are continuous; realign when they are not.
    const t0 = segmentStartTime(data, this.timescales);
    const discontinuous = this.resync || seg.discontinuity || initBuf !== null || jumped;
    if (t0 !== null && this.appendedEnd !== null) {
      const mapped = t0 + this.tsOffset;
      if (discontinuous || Math.abs(mapped - this.appendedEnd) > 1.0) {
        const off = this.appendedEnd - t0;
        if (Math.abs(off - this.tsOffset) > 0.001) {
          this.stats.discontinuities++;
          await this.setTimestampOffset(off);
        }
      }
    }
    this.resync = false;

    await this.appendBuffer(data);
    this.lastSeq = seg.seq;
    this.stats.mediaSequence = seg.seq;
    this.stats.segmentsAppended++;
    const b = this.sb.buffered;
    if (b.length) {
      const start = t0 !== null ? t0 + this.tsOffset : b.end(b.length - 1) - seg.duration;
      this.appendedEnd = b.end(b.length - 1);
      this.segTimes.push({ start, end: start + seg.duration, pdt: seg.pdt });
      if (this.segTimes.length > 40) this.segTimes.shift();
    }
    this.afterAppend();
    await this.trim();
  }

  // --- renditions -----------------------------------------------------------

  // One segment download: its throughput, and how much of the segment's
  // playing time the download took (over 1: the link falls behind).
  measure(bytes, seconds, mediaSeconds) {
    const bps = (bytes * 8) / Math.max(seconds, 0.001);
    this.samples.push(bps);
    if (this.samples.length > 3) this.samples.shift();
    if (mediaSeconds > 0) {
      this.loads.push(seconds / mediaSeconds);
      if (this.loads.length > 3) this.loads.shift();
    }
    this.stats.linkBps = Math.round(bps);
  }

  // Moves to another rendition (or to stills) when the measured link calls for
  // it; true if it did.
  adapt() {
    const n = this.samples.length;
    if (n === 0 || this.variants.length === 0) return false;
    const last = this.samples[n - 1];
    const low = Math.min(...this.samples.slice(-2));
    const bw = (i) => this.variants[i].bandwidth || 0;
    const lowest = this.variants.length - 1;
    if (this.level < lowest && last < DOWN_FACTOR * bw(this.level)) {
      return this.switchLevel(this.level + 1, `link ${Math.round(last / 1000)} kbit/s`);
    }
    if (this.level > 0 && n >= 3 && this.samples.every((b) => b > UP_FACTOR * bw(this.level - 1))) {
      return this.switchLevel(this.level - 1, `link ${Math.round(low / 1000)} kbit/s`);
    }
    // Stills only when the lowest rendition falls behind: the throughput of one
    // small download on a lossy link says less than whether it kept up (a
    // segment's peak BANDWIDTH is above what most segments need).
    const loads = this.loads.slice(-2);
    if (this.level === lowest && loads.length === 2 && Math.min(...loads) > POOR_LOAD) {
      const pct = Math.round(100 * Math.min(...loads));
      return this.lowestTooBig(`link ${Math.round(low / 1000)} kbit/s: a segment takes ${pct}% of its playing time to load`);
    }
    return false;
  }

  // The lowest rendition listed does not fit: stills, unless the master is
  // worth reading again first. A master read when the camera's sub stream was
  // not (yet) live lists main alone; if it is older than a few seconds, read it
  // again (the loop does, keeping the buffer) and decide with what it lists.
  lowestTooBig(why) {
    if (this.variants.length === 1 && performance.now() - this.masterReadAt > MASTER_RECHECK_MS) {
      this.masterStale = true;
      return true;
    }
    return this.poor(why);
  }

  switchLevel(level, why) {
    const from = this.variants[this.level];
    const to = this.variants[level];
    console.info(`[hearth player] ${from.rendition} -> ${to.rendition}: ${why}`);
    const lastTime = this.segTimes[this.segTimes.length - 1];
    this.switchPdt = lastTime && lastTime.pdt !== null ? lastTime.pdt + (lastTime.end - lastTime.start) * 1000 : null;
    if (this.switchPdt === null) this.resync = true;
    this.level = level;
    this.samples = [];
    this.loads = [];
    this.stats.levelSwitches++;
    return true;
  }

  // Even the sub stream does not fit: stills instead (app.js).
  poor(why) {
    if (!this.alive || !this.onPoor) return false;
    console.warn(`[hearth player] poor connection: ${why}`);
    this.stats.poor = why;
    const onPoor = this.onPoor;
    this.destroy();
    onPoor(why);
    return true;
  }

  // --- MSE ----------------------------------------------------------------

  async ensureSourceBuffer(codecs, initCodecs) {
    if (this.sb && codecFamilies(this.sbCodecs) === codecFamilies(codecs)) {
      this.stats.codecs = codecs;
      return;
    }
    if (this.sb) { this.teardownMedia(); this.stats.restarts++; }
    const mime = mimeFor(codecs);
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      const e = new Error(`this browser cannot play ${codecs}`);
      throw e;
    }
    const ms = new MediaSource();
    this.ms = ms;
    const url = URL.createObjectURL(ms);
    await new Promise((resolve, reject) => {
      ms.addEventListener('sourceopen', resolve, { once: true });
      this.abort.signal.addEventListener('abort', () => reject(new StopError()), { once: true });
      this.video.src = url;
    });
    URL.revokeObjectURL(url);
    if (!this.alive || this.ms !== ms) throw new StopError();
    this.sb = ms.addSourceBuffer(mime);
    this.sb.mode = 'segments';
    this.sbCodecs = codecs;
    this.stats.codecs = codecs;
    this.tsOffset = 0;
    this.appendedEnd = null;
    this.segTimes = [];
    ms.addEventListener('sourceclose', () => {
      if (this.alive && this.ms === ms) { this.sb = null; this.ms = null; this.sbCodecs = null; }
    });
    void initCodecs;
  }

  teardownMedia() {
    this.sb = null;
    this.sbCodecs = null;
    this.lastInitId = null;
    this.resync = true;
    this.tsOffset = 0;
    this.appendedEnd = null;
    this.segTimes = [];
    if (this.ms) {
      try { if (this.ms.readyState === 'open') this.ms.endOfStream(); } catch (_) { /* ignore */ }
    }
    this.ms = null;
    // Clear the element so no frame of this stream can stay on screen.
    this.video.removeAttribute('src');
    this.video.removeAttribute('poster');
    if (this.posterUrl) { URL.revokeObjectURL(this.posterUrl); this.posterUrl = null; }
    try { this.video.load(); } catch (_) { /* ignore */ }
  }

  waitIdle(sb) {
    if (!sb.updating) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => { cleanup(); resolve(); };
      const fail = () => { cleanup(); reject(this.mediaError('SourceBuffer error')); };
      const cleanup = () => { sb.removeEventListener('updateend', done); sb.removeEventListener('error', fail); };
      sb.addEventListener('updateend', done);
      sb.addEventListener('error', fail);
    });
  }

  mediaError(msg) {
    const e = new Error(msg);
    e.fatalMedia = true;
    return e;
  }

  async sbOp(fn) {
    const sb = this.sb;
    if (!sb) throw this.mediaError('no SourceBuffer');
    await this.waitIdle(sb);
    if (!this.alive) throw new StopError();
    if (this.sb !== sb) throw this.mediaError('SourceBuffer replaced');
    fn(sb);
    await this.waitIdle(sb);
    if (!this.alive) throw new StopError();
  }

  async setTimestampOffset(off) {
    const sb = this.sb;
    await this.waitIdle(sb);
    sb.timestampOffset = off;
    this.tsOffset = off;
  }

  async appendBuffer(buf) {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.sbOp((sb) => sb.appendBuffer(buf));
        return;
      } catch (e) {
        if (e && e.name === 'QuotaExceededError' && attempt < 3) {
          this.stats.quotaRecoveries++;
          await this.evict(attempt);
          continue;
        }
        if (e && (e.name === 'InvalidStateError' || e.fatalMedia)) throw this.mediaError(`append failed: ${e.message}`);
        throw e;
      }
    }
  }

  // Free space after QuotaExceededError: drop more the more often it happens.
  async evict(attempt) {
    const sb = this.sb;
    if (!sb || !sb.buffered.length) return;
    const ct = this.video.currentTime;
    const keepBehind = [2, 0.5, 0][attempt] ?? 0;
    const start = sb.buffered.start(0);
    let end = ct - keepBehind;
    if (attempt >= 2) {
      // Still full: drop everything, we'll start again from this segment.
      end = sb.buffered.end(sb.buffered.length - 1);
    }
    if (end > start) await this.sbOp((s) => s.remove(start, end));
  }

  async trim() {
    const sb = this.sb;
    if (!sb || !sb.buffered.length) return;
    const ct = this.video.currentTime;
    const start = sb.buffered.start(0);
    if (ct - start > BACK_BUFFER_S + 5) {
      await this.sbOp((s) => s.remove(start, ct - BACK_BUFFER_S));
    }
  }

  // --- playback supervision ----------------------------------------------

  afterAppend() {
    const v = this.video;
    const b = this.sb && this.sb.buffered;
    if (!b || !b.length) return;
    const ct = v.currentTime;
    let inside = false;
    for (let i = 0; i < b.length; i++) if (ct >= b.start(i) - 0.1 && ct < b.end(i)) inside = true;
    if (!inside) {
      // E.g. first segment, or the new data after a discontinuity does not cover
      // the playhead: go to the start of the newest buffered range.
      const target = b.start(b.length - 1);
      if (ct < target || ct >= b.end(b.length - 1)) v.currentTime = target + 0.001;
    }
    if (v.paused && !this.userPaused) this.tryPlay();
  }

  tryPlay() {
    const p = this.video.play();
    if (p && p.catch) {
      p.catch((e) => {
        if (!this.alive) return;
        if (e && e.name === 'NotAllowedError') this.onState({ state: this.stats.state, needsGesture: true });
      });
    }
  }

  resume() {
    this.userPaused = false;
    this.tryPlay();
  }

  supervise() {
    if (!this.alive) return;
    const v = this.video;
    const sb = this.sb;
    const now = performance.now();
    const ct = v.currentTime;
    if (ct !== this.lastProgress.t) {
      const advanced = this.lastProgress.t >= 0 && ct > this.lastProgress.t;
      this.lastProgress = { t: ct, at: now };
      if (advanced && !v.paused && this.stats.state !== 'offline') this.setState('playing', undefined);
    }
    if (!sb || !this.ms || this.ms.readyState !== 'open') return;
    let b;
    try { b = sb.buffered; } catch (_) { return; }
    if (!b.length || sb.updating) return;
    const edge = b.end(b.length - 1);
    let inRange = -1;
    for (let i = 0; i < b.length; i++) if (ct >= b.start(i) - 0.1 && ct <= b.end(i)) inRange = i;

    if (inRange < 0) {
      // Playhead in a gap or outside the data: go to the newest range.
      v.currentTime = b.start(b.length - 1) + 0.001;
      this.lastProgress.at = now;
    } else if (edge - ct > MAX_LIVE_LAG_S) {
      // Too far behind live: jump forward to the newest segment start (a keyframe)
      // that leaves a small cushion.
      let target = Math.max(b.start(b.length - 1), edge - LIVE_CUSHION_S - 0.5);
      for (let i = this.segTimes.length - 1; i >= 0; i--) {
        const s = this.segTimes[i].start;
        if (s > ct && s >= b.start(b.length - 1) && edge - s >= LIVE_CUSHION_S) { target = s + 0.001; break; }
      }
      this.stats.jumps++;
      v.currentTime = target;
      this.lastProgress.at = now;
    } else if (!v.paused && now - this.lastProgress.at > STARVED_MS && edge - ct < 0.3
      && this.stats.segmentsAppended > 0) {
      // Starved: the link does not bring the stream as fast as it plays.
      this.lastProgress.at = now;
      if (this.level < this.variants.length - 1) this.switchLevel(this.level + 1, 'starved');
      else this.lowestTooBig(`starved on the ${this.stats.rendition} stream`);
    } else if (!v.paused && now - this.lastProgress.at > 2000 && edge - ct > 0.5) {
      // Stalled although data is ahead (e.g. a tiny gap): nudge.
      const next = inRange + 1 < b.length ? b.start(inRange + 1) : ct + 0.1;
      v.currentTime = Math.min(next + 0.001, edge - 0.1);
      this.lastProgress.at = now;
    }
    if (v.paused && !this.userPaused && v.readyState >= 2) this.tryPlay();
  }

  handleVideoError() {
    if (!this.alive) return;
    const err = this.video.error;
    if (!err || !this.ms) return; // error from our own teardown (src removed)
    this.stats.lastError = `video error ${err.code}: ${err.message || ''}`.trim();
    console.warn('[hearth player]', this.stats.lastError);
    // Start over with a fresh MediaSource; the run loop continues with the playlist.
    this.teardownMedia();
    this.stats.restarts++;
  }
}
