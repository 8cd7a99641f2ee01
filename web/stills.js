// Hearth still fallback: when the link cannot carry even the camera's sub
// rendition, the viewer sees the newest still, refreshed about once a second,
// under a "Poor connection" badge, and returns to video when the link recovers.
//
// Design rules:
//  * Each still is the sub rendition's (`sub-snapshot.jpg`: a small JPEG; the
//    main still when the camera has no sub stream), fetched with the session
//    like every media request, and shown only if its in-band provenance names
//    this camera and epoch (checkStill, as the poster is). A still that does not
//    is refused and reported once, and the player stops for good.
//  * The link is measured on the stills themselves (bytes over fetch time). A
//    few in a row fast enough for the sub rendition with room to spare
//    (RECOVER_FACTOR times its bandwidth, from the master playlist) hand back
//    to video (onRecovered); the caller starts its normal player again.
//  * A still's download says little of what a stream would get on a lossy link,
//    so after `probeAfterMs` the stills hand back to video anyway, to try
//    (onRecovered(true)); the caller lengthens the wait when a try fails.
//  * Never more than one request in flight; a slow still delays the next one.

import { checkStill } from './player.js';
import { grantExpectation, jsonInt } from './provenance.js';

const REFRESH_MS = 1000;
const FETCH_TIMEOUT_MS = 8000;
const RECOVER_FACTOR = 2.0;
const RECOVER_SAMPLES = 3;
/// Used when the master playlist cannot be read: a typical sub stream.
const DEFAULT_SUB_BPS = 400000;

class StopError extends Error {
  constructor() { super('stopped'); this.name = 'StopError'; }
}

/**
 * @param {object} opts  as for LivePlayer (video, grants, onState, stats,
 *        cameraId, report, authorization), plus
 * @param {(probe: boolean) => void} opts.onRecovered  called once when the
 *        link can carry video again (probe false), or when it is time to try
 *        video again (probe true); the caller then starts its video player.
 * @param {number} [opts.probeAfterMs]  when to try video again regardless.
 */
export class StillPlayer {
  constructor({ video, grants, onState, stats, cameraId, report, authorization, onRecovered, probeAfterMs }) {
    this.probeAt = probeAfterMs ? performance.now() + probeAfterMs : null;
    this.video = video;
    this.grants = grants;
    this.onState = onState || (() => {});
    this.report = report || (() => {});
    this.authorization = authorization || (() => null);
    this.onRecovered = onRecovered || (() => {});
    this.cameraId = String(cameraId || '').toLowerCase();
    this.stats = stats || {};
    Object.assign(this.stats, {
      transport: 'stills', state: 'poor', stillsShown: 0, lastStill: null, linkBps: null,
    });
    this.alive = true;
    this.abort = new AbortController();
    this.url = null;          // the current still's blob URL
    this.samples = [];        // recent link measurements, bits per second
    this.subBps = null;
    this.reported = false;
    // The stills go in the poster of an element with no media attached.
    this.video.srcObject = null;
    this.video.removeAttribute('src');
    try { this.video.load(); } catch (_) { /* ignore */ }
    this.onState({ state: 'poor' });
    this.run();
  }

  destroy() {
    if (!this.alive) return;
    this.alive = false;
    this.abort.abort();
    // The still stays as the poster until the video player replaces it.
  }

  resume() {}

  currentFrameTime() { return this.stats.lastStill ? this.stats.lastStill.captureTime : null; }

  refuse(reason, reportBody) {
    if (!this.alive) return;
    console.error(`[hearth stills] refused: ${reason}`);
    this.stats.state = 'refused';
    this.stats.lastError = reason;
    this.video.removeAttribute('poster');
    if (this.url) { URL.revokeObjectURL(this.url); this.url = null; }
    this.onState({ state: 'refused', error: reason });
    this.destroy();
    if (reportBody && !this.reported) {
      this.reported = true;
      try { this.report(reportBody); } catch (e) { console.warn('[hearth stills] report failed', e); }
    }
  }

  async fetchTimed(url) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = {};
      const auth = this.authorization();
      if (auth) headers.Authorization = auth;
      const started = performance.now();
      const res = await fetch(url, { signal: ctl.signal, cache: 'no-store', credentials: 'omit', headers });
      const body = res.ok ? await res.arrayBuffer() : null;
      return { status: res.status, body, seconds: (performance.now() - started) / 1000, text: null };
    } catch (e) {
      if (!this.alive) throw new StopError();
      return { status: 0, body: null, seconds: FETCH_TIMEOUT_MS / 1000 };
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onAbort);
    }
  }

  // The sub rendition's bandwidth, from the master playlist (once).
  async learnSubBandwidth(grant) {
    if (this.subBps !== null) return;
    this.subBps = DEFAULT_SUB_BPS;
    try {
      const r = await this.fetchTimed(`${grant.hls_url}`);
      if (!r.body) return;
      const text = new TextDecoder().decode(r.body);
      const bws = [...text.matchAll(/BANDWIDTH=(\d+)/g)].map((m) => parseInt(m[1], 10)).filter((n) => n > 0);
      if (bws.length) this.subBps = Math.min(...bws);
    } catch (e) {
      if (e instanceof StopError) throw e;
    }
  }

  async run() {
    let useSub = true;
    while (this.alive) {
      const started = performance.now();
      try {
        const grant = await this.grants.current();
        if (!this.alive) return;
        const { expect, problem } = grantExpectation(grant, this.cameraId);
        if (problem !== null) { this.refuse(problem); return; }
        await this.learnSubBandwidth(grant);
        const main = grant.snapshot_url;
        const url = useSub ? main.replace(/snapshot\.jpg$/, 'sub-snapshot.jpg') : main;
        const r = await this.fetchTimed(`${url}?t=${Date.now()}`);
        if (!this.alive) return;
        if (r.status === 401 || r.status === 403) {
          await this.grants.refresh().catch(() => {});
        } else if (r.status === 503 && useSub) {
          useSub = false; // no sub stream: the main still will do
        } else if (r.body) {
          this.show(r.body, expect, url);
          if (!this.alive) return;
          this.measure(r.body.byteLength, r.seconds);
          const recovered = this.recovered();
          if (recovered || (this.probeAt !== null && performance.now() >= this.probeAt)) {
            this.destroy();
            this.onRecovered(!recovered);
            return;
          }
        }
      } catch (e) {
        if (!this.alive || e instanceof StopError) return;
        this.stats.lastError = String(e.message || e);
      }
      const wait = Math.max(0, REFRESH_MS - (performance.now() - started));
      await new Promise((resolve) => {
        const t = setTimeout(resolve, wait);
        this.abort.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
  }

  show(body, expect, url) {
    const { record, problem } = checkStill(body, expect.camera, expect.epoch);
    if (problem !== null) {
      this.refuse(`provenance check failed for a still: ${problem}`, {
        kind: 'provenance_mismatch',
        detail: {
          expected_camera: this.cameraId,
          got_camera: record ? record.camera : null,
          expected_epoch: expect.epochJson,
          got_epoch: record ? jsonInt(record.epoch) : null,
          object: url.split('/').pop(),
        },
      });
      return;
    }
    const next = URL.createObjectURL(new Blob([body], { type: 'image/jpeg' }));
    this.video.poster = next;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = next;
    this.stats.stillsShown++;
    this.stats.lastStill = {
      camera: record.camera,
      epoch: jsonInt(record.epoch),
      rendition: record.rendition,
      captureTime: Number(record.captureTime),
    };
    if (this.stats.state !== 'poor') {
      this.stats.state = 'poor';
      this.onState({ state: 'poor' });
    }
  }

  measure(bytes, seconds) {
    const bps = (bytes * 8) / Math.max(seconds, 0.001);
    this.samples.push(bps);
    if (this.samples.length > RECOVER_SAMPLES) this.samples.shift();
    this.stats.linkBps = Math.round(bps);
  }

  recovered() {
    if (this.samples.length < RECOVER_SAMPLES) return false;
    const need = RECOVER_FACTOR * (this.subBps || DEFAULT_SUB_BPS);
    return this.samples.every((b) => b >= need);
  }
}
