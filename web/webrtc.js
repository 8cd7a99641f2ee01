// Hearth WebRTC player: live video over WHEP, with the in-band provenance of
// every frame checked before the browser decodes it.
//
// Pipeline: grant (whep_url) -> RTCPeerConnection, one receive-only video
// transceiver -> POST the offer (Content-Type: application/sdp, the session as
// Authorization) -> 201 + answer -> ICE/DTLS (Hearth is ICE-lite: it answers
// the browser's checks, so there is nothing to trickle) -> frames.
//
// Design rules:
//  * Provenance (DESIGN.md, isolation layer 1): the server puts each frame's
//    record in an H.264 SEI before its first slice. An encoded transform
//    (RTCRtpScriptTransform in a worker, or Chromium's createEncodedStreams)
//    reads it for every frame before the decoder does; a frame that does not
//    name this camera and epoch is dropped, the player stops for good
//    ('refused') and reports it once, as the HLS player does for segments.
//    A browser that can do neither does not play WebRTC at all (HLS instead).
//  * Instant start: the server sends the current GOP from its keyframe as soon
//    as DTLS is up; the first decoded frame is timed (stats.firstFrameMs, from
//    the POST) and shown at once (playout delay 0).
//  * Fallback: no picture within CONNECT_TIMEOUT_MS of an answered offer on
//    the first try (a reconnect, once a picture was shown, gets
//    RECONNECT_TIMEOUT_MS) (or no picture three times in a row, the connection closing
//    before its first frame included), or a server that takes no more WebRTC
//    viewers (429), hands over to HLS (onFallback). An unreachable
//    or restarting server is not a WebRTC problem: the player keeps trying.
//  * Reconnect by itself: a failed or closed connection, or no frame for
//    STALL_MS, opens a new session (backoff up to 5 s) under a fresh grant if
//    the old one was refused; the state reads 'reconnecting' meanwhile.
//  * Grants are short: when a new one arrives (app.js renews them), a new
//    session is opened under it and replaces the old one once its first frame
//    has been checked (make before break), before the old grant runs out.
//  * A link too poor even for the sub rendition (the server moves a congested
//    viewer to it by itself): fewer than POOR_MIN_FPS frames a second for
//    POOR_WINDOW_MS, or the picture stalling again soon after a reconnect,
//    hands over to stills (onPoor), which come back to video when the link does.
//  * When destroyed, nothing from this instance touches the <video> again.

import { frameCheckStream, grantExpectation, jsonInt } from './provenance.js';

const CONNECT_TIMEOUT_MS = 4000;
/// After this player has shown a picture, a new session (a reconnect on a
/// lossy link: DTLS and the keyframe burst retransmitted) gets longer: only
/// the very first try decides that WebRTC cannot work here.
const RECONNECT_TIMEOUT_MS = 8000;
const STALL_MS = 2500;
const OFFLINE_RETRY_MS = 3000;
const FETCH_TIMEOUT_MS = 10000;
const MAX_FAILURES_BEFORE_FALLBACK = 3;
const POOR_WINDOW_MS = 5000;
const POOR_MIN_FPS = 1.5;
/// A stall this soon after the last one (without a good stretch between) is a poor link.
const POOR_RESTALL_MS = 20000;
/// After a stall, no good picture again within this long is a poor link too
/// (more than one slow reconnect).
const POOR_TROUBLE_MS = 12000;

// Whether frames were coming in at less than 60% of the session's own rate
// in the 3 s before its last frame.
function slowingDown(s) {
  const span = s.lastFrameAt - s.attachedAt;
  if (span < 1000 || s.recent.length < 2) return false; // too short to tell
  if (span < 4000) return s.frames / (span / 1000) < POOR_MIN_FPS;
  const recent = s.recent.filter((t) => t > s.lastFrameAt - 3000).length / 3;
  const overall = Math.min(s.frames, s.recent.length) / Math.min(span / 1000, (s.lastFrameAt - s.recent[0]) / 1000 || 1);
  return recent < 0.6 * overall;
}

class StopError extends Error {
  constructor() { super('stopped'); this.name = 'StopError'; }
}

class WhepError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.name = 'WhepError';
    this.status = status;
  }
}

/** Whether this browser can play WebRTC with every frame's provenance checked. */
export function webrtcSupported() {
  if (typeof RTCPeerConnection !== 'function' || typeof RTCRtpReceiver !== 'function') return false;
  return typeof RTCRtpScriptTransform === 'function' || 'createEncodedStreams' in RTCRtpReceiver.prototype;
}

/**
 * @param {object} opts  as for LivePlayer (video, grants, onState, stats,
 *        cameraId, report, authorization), plus
 * @param {(why: string) => void} opts.onFallback  called at most once when
 *        WebRTC cannot play here; the caller then plays HLS instead.
 * @param {boolean} opts.probe  a try of video from stills on a poor link:
 *        WebRTC worked here before, so no picture in time means the link is
 *        still poor (onPoor), not that WebRTC cannot work (onFallback).
 */
export class WebRtcPlayer {
  constructor({ video, grants, onState, stats, cameraId, report, authorization, onFallback, onPoor, probe }) {
    this.video = video;
    this.grants = grants;
    this.onState = onState || (() => {});
    this.report = report || (() => {});
    this.authorization = authorization || (() => null);
    this.onFallback = onFallback || (() => {});
    this.onPoor = onPoor || null;
    this.lastStallAt = -Infinity;
    this.troubleSince = null; // the picture stalled and has not been good since
    this.cameraId = String(cameraId || '').toLowerCase();
    this.stats = stats || {};
    Object.assign(this.stats, {
      transport: 'webrtc', state: 'loading', lastError: null, framesChecked: 0,
      firstFrameMs: null, reconnects: 0, sessions: 0, grantSwitches: 0, latencyMs: null,
      rendition: null,
    });
    this.alive = true;
    this.abort = new AbortController();
    this.current = null;     // the session on screen
    this.everPlayed = false;
    this.probe = !!probe;
    this.reported = false;
    this.wake = null;        // resolves the wait of watch() early (new grant)
    this.unsubscribe = grants.subscribe(() => { if (this.wake) this.wake('renew'); });
    this.run();
  }

  destroy() {
    if (!this.alive) return;
    this.alive = false;
    this.abort.abort();
    this.unsubscribe();
    if (this.wake) this.wake('stop');
    this.close(this.current);
    this.current = null;
    this.video.srcObject = null;
    try { this.video.load(); } catch (_) { /* ignore */ }
  }

  resume() { this.tryPlay(); }

  /** Wall-clock time of the frame on screen is not known here; latency is in stats. */
  currentFrameTime() { return null; }

  setState(state, error) {
    if (!this.alive) return;
    if (error !== undefined) this.stats.lastError = error;
    if (this.stats.state === state && error === undefined) return;
    this.stats.state = state;
    this.onState({ state, error: this.stats.lastError });
  }

  refuse(reason, reportBody) {
    if (!this.alive) return;
    console.error(`[hearth webrtc] refused: ${reason}`);
    this.stats.state = 'refused';
    this.stats.lastError = reason;
    this.onState({ state: 'refused', error: reason });
    this.destroy();
    if (reportBody && !this.reported) {
      this.reported = true;
      try { this.report(reportBody); } catch (e) { console.warn('[hearth webrtc] report failed', e); }
    }
  }

  // The link cannot carry even the sub rendition: stills instead (app.js).
  poor(why) {
    if (!this.alive || !this.onPoor) return false;
    console.warn(`[hearth webrtc] poor connection: ${why}`);
    this.stats.poor = why;
    const onPoor = this.onPoor;
    this.destroy();
    onPoor(why);
    return true;
  }

  fallback(why) {
    if (!this.alive) return;
    console.warn(`[hearth webrtc] falling back to HLS: ${why}`);
    this.stats.fallback = why;
    this.destroy();
    this.onFallback(why);
  }

  expectationFrom(grant) {
    const { expect, problem } = grantExpectation(grant, this.cameraId);
    if (problem !== null) this.refuse(problem);
    return expect;
  }

  // --- main loop ------------------------------------------------------------

  async run() {
    let failures = 0;
    let webrtcFailures = 0;
    while (this.alive) {
      try {
        const grant = await this.grants.current();
        if (!this.alive) return;
        const expect = this.expectationFrom(grant);
        if (!expect) return;
        if (!grant.whep_url) { this.fallback('the grant has no whep_url'); return; }
        const s = await this.open(grant, expect);
        try {
          await this.firstFrame(s);
        } catch (e) {
          this.close(s);
          if (!(e instanceof StopError)) e.webrtcFailed = true;
          throw e;
        }
        if (!this.alive) { this.close(s); return; }
        this.attach(s);
        failures = 0;
        webrtcFailures = 0;
        const why = await this.watch(s);
        if (!this.alive) return;
        // A new session starts on the sub rendition when the link just starved
        // this one or it was on sub already; the server moves it up when it can.
        this.preferSub = why === 'poor' || why === 'no video for a while' || this.stats.rendition === 'sub';
        if (why === 'renew') { this.stats.grantSwitches++; continue; }
        if (why === 'poor' && this.poor('too few frames arrive')) return;
        // From a dropped session on, a picture must come back within
        // POOR_TROUBLE_MS (a camera that went offline is answered 503 and
        // waited for instead). A stall soon after another counts against the
        // link only if the picture was slowing down before it (a camera or
        // server restart stops it abruptly).
        if (this.troubleSince === null) this.troubleSince = performance.now();
        if (why === 'no video for a while' && slowingDown(s)) {
          const now = performance.now();
          const again = now - this.lastStallAt < POOR_RESTALL_MS;
          this.lastStallAt = now;
          if (again && this.poor('the picture keeps stalling')) return;
        }
        // Dropped: the old picture stays until a new session replaces it.
        this.stats.reconnects++;
        this.stats.lastError = why;
        console.warn(`[hearth webrtc] ${why}; reconnecting`);
        this.setState('reconnecting', why);
      } catch (e) {
        if (!this.alive || e instanceof StopError) return;
        failures++;
        const status = e instanceof WhepError ? e.status : (e && e.status) || 0;
        this.stats.lastError = String(e.message || e);
        if (status === 401 || status === 403) {
          try { await this.grants.refresh(); } catch (ge) {
            if (ge && ge.status === 404) this.setState('error', 'camera not available');
          }
          if (failures > 1) await this.pause(Math.min(1000 * 2 ** (failures - 2), 10000));
          continue;
        }
        if (status === 404 || status === 503) {
          // The camera is offline (or gone): not a WebRTC problem, keep trying.
          this.setState('offline', e.message);
          this.troubleSince = null;
          failures = 0;
          await this.pause(OFFLINE_RETRY_MS);
          continue;
        }
        if (status === 429 || status === 415) {
          // The server takes no more WebRTC viewers (or no SDP): HLS will do.
          this.fallback(this.stats.lastError);
          return;
        }
        // Stalled on this link and not back since: too poor for video.
        if (this.troubleSince !== null && performance.now() - this.troubleSince > POOR_TROUBLE_MS
          && this.poor(`no picture again after a stall: ${this.stats.lastError}`)) return;
        if (e.webrtcFailed) {
          // The offer was answered but no picture came: UDP blocked, say. Once
          // at the start, or a few times in a row later, means HLS instead.
          // A connection the server closed before the first frame (its door
          // refused the session, say) is worth another try or two.
          webrtcFailures++;
          if (this.probe && !this.everPlayed && e.timedOut
            && this.poor(`no picture on the way back from stills: ${this.stats.lastError}`)) return;
          if ((!this.everPlayed && e.timedOut) || webrtcFailures >= MAX_FAILURES_BEFORE_FALLBACK) {
            this.fallback(this.stats.lastError);
            return;
          }
        }
        // Otherwise (the server unreachable or restarting): keep trying.
        this.setState('reconnecting', this.stats.lastError);
        await this.pause(Math.min(250 * 2 ** failures, 5000));
      }
    }
  }

  async pause(ms) {
    await new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.abort.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  // --- one session ------------------------------------------------------------

  // A peer connection with a checked receive-only video track, its offer POSTed
  // and the answer applied. Resolves once the answer is set.
  async open(grant, expect) {
    const s = {
      pc: null, worker: null, location: null, grant, stream: null,
      postAt: performance.now(), lastFrameAt: 0, frames: 0, dropped: null,
      firstFrame: null, onFirstFrame: null, recent: [], attachedAt: 0,
    };
    s.firstFrame = new Promise((resolve) => { s.onFirstFrame = resolve; });
    const onEvent = (m) => this.frameEvent(s, m, expect);
    const scriptTransform = typeof RTCRtpScriptTransform === 'function';
    const config = { iceServers: Array.isArray(grant.ice_servers) ? grant.ice_servers : [] };
    if (!scriptTransform) config.encodedInsertableStreams = true;
    const pc = new RTCPeerConnection(config);
    s.pc = pc;
    this.stats.sessions++;
    try {
      const tr = pc.addTransceiver('video', { direction: 'recvonly' });
      if (scriptTransform) {
        s.worker = new Worker('/frame-check.js', { type: 'module' });
        s.worker.onmessage = (ev) => onEvent(ev.data);
        s.worker.onerror = () => { s.dropped = s.dropped || 'frame check failed'; };
        tr.receiver.transform = new RTCRtpScriptTransform(s.worker, { camera: expect.camera, epoch: String(expect.epoch) });
      } else {
        const { readable, writable } = tr.receiver.createEncodedStreams();
        readable.pipeThrough(frameCheckStream(expect.camera, expect.epoch, onEvent)).pipeTo(writable).catch(() => {});
      }
      pc.ontrack = (ev) => {
        s.stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
        if (!this.current && this.alive) this.show(s); // nothing on screen yet: show it at once
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed') s.dropped = s.dropped || `connection ${pc.connectionState}`;
        if (s.poke) s.poke();
      };
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      s.postAt = performance.now();
      const url = this.preferSub ? `${grant.whep_url}${grant.whep_url.includes('?') ? '&' : '?'}rendition=sub` : grant.whep_url;
      const { answer, location } = await this.post(url, pc.localDescription.sdp);
      s.location = location ? new URL(location, grant.whep_url).href : null;
      if (!this.alive) throw new StopError();
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      return s;
    } catch (e) {
      this.close(s);
      throw e;
    }
  }

  frameEvent(s, m, expect) {
    if (!this.alive || !m) return;
    if (m.kind === 'refused') {
      s.dropped = 'refused';
      this.refuse(`provenance check failed for a WebRTC frame: ${m.problem}`, {
        kind: 'provenance_mismatch',
        detail: {
          expected_camera: this.cameraId,
          got_camera: m.camera,
          expected_epoch: expect.epochJson,
          got_epoch: m.epoch === null ? null : jsonInt(BigInt(m.epoch)),
          object: 'webrtc frame',
        },
      });
      return;
    }
    if (m.kind === 'dropped') {
      // Not decoded: a frame without its record (lost packets), not a foreign one.
      this.stats.framesDropped = (this.stats.framesDropped || 0) + 1;
      return;
    }
    if (m.kind !== 'frame') return;
    s.frames++;
    s.lastFrameAt = performance.now();
    s.recent.push(s.lastFrameAt);
    if (s.recent.length > 256) s.recent.shift();
    if (s === this.current) {
      this.stats.framesChecked++;
      if (m.rendition) this.stats.rendition = m.rendition;
      if (Number.isFinite(m.captureTime)) {
        const l = Date.now() - m.captureTime;
        this.stats.latencyMs = l >= 0 && l < 60000 ? Math.round(l) : null;
      }
    }
    if (s.frames === 1) s.onFirstFrame();
  }

  async post(url, sdp) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = { 'Content-Type': 'application/sdp' };
      const auth = this.authorization();
      if (auth) headers.Authorization = auth;
      const res = await fetch(url, { method: 'POST', body: sdp, headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' });
      if (res.status !== 201) {
        let msg = `WHEP ${res.status}`;
        try { const j = await res.json(); if (j && j.error) msg = j.error; } catch (_) { /* not JSON */ }
        throw new WhepError(res.status, msg);
      }
      return { answer: await res.text(), location: res.headers.get('Location') };
    } catch (e) {
      if (!this.alive) throw new StopError();
      if (e.name === 'AbortError') throw new Error('timeout posting the WebRTC offer');
      throw e;
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onAbort);
    }
  }

  // Resolves at the session's first checked frame; rejects if it does not come
  // within CONNECT_TIMEOUT_MS or the connection fails first.
  firstFrame(s) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const e = new Error('WebRTC did not connect in time');
        e.timedOut = true;
        finish(e);
      }, this.everPlayed || this.probe ? RECONNECT_TIMEOUT_MS : CONNECT_TIMEOUT_MS);
      const finish = (err) => {
        clearTimeout(timer);
        s.poke = null;
        if (err) reject(err); else resolve();
      };
      s.poke = () => { if (s.dropped) finish(new Error(s.dropped)); };
      s.firstFrame.then(() => finish(null));
      this.abort.signal.addEventListener('abort', () => finish(new StopError()), { once: true });
    });
  }

  show(s) {
    this.video.srcObject = s.stream;
    const v = this.video;
    if (typeof v.requestVideoFrameCallback === 'function' && this.stats.firstFrameMs === null) {
      v.requestVideoFrameCallback(() => {
        if (this.alive && this.stats.firstFrameMs === null) this.stats.firstFrameMs = Math.round(performance.now() - s.postAt);
      });
    }
    this.tryPlay();
  }

  // Puts `s` on screen and ends the session it replaces.
  attach(s) {
    const old = this.current;
    this.current = s;
    s.attachedAt = performance.now();
    if (this.video.srcObject !== s.stream) this.show(s);
    if (old && old !== s) this.close(old);
    this.everPlayed = true;
    this.setState('playing', null);
  }

  // Waits while `s` plays; resolves with why it stopped ('renew' for a new grant).
  watch(s) {
    return new Promise((resolve) => {
      let done = false;
      const finish = (why) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        this.wake = null;
        s.poke = null;
        resolve(why);
      };
      this.wake = finish;
      s.poke = () => { if (s.dropped) finish(s.dropped); };
      const timer = setInterval(() => {
        if (!this.alive) return finish('stop');
        if (s.dropped) return finish(s.dropped);
        const now = performance.now();
        if (now - s.lastFrameAt > STALL_MS) return finish('no video for a while');
        if (now - s.attachedAt > POOR_WINDOW_MS + 1000) {
          const n = s.recent.filter((t) => now - t < POOR_WINDOW_MS).length;
          if (n < (POOR_MIN_FPS * POOR_WINDOW_MS) / 1000) return finish('poor');
        }
        // A good stretch forgives an earlier stall.
        if (now - s.attachedAt > POOR_RESTALL_MS) this.lastStallAt = -Infinity;
        if (now - s.attachedAt > POOR_WINDOW_MS) this.troubleSince = null;
        if (this.video.paused) this.tryPlay();
      }, 250);
    });
  }

  // Ends a session: DELETE its resource (best effort) and close the peer.
  close(s) {
    if (!s || s.closed) return;
    s.closed = true;
    try { s.pc.close(); } catch (_) { /* ignore */ }
    if (s.worker) s.worker.terminate();
    if (s.location) {
      const headers = {};
      const auth = this.authorization();
      if (auth) headers.Authorization = auth;
      fetch(s.location, { method: 'DELETE', headers, credentials: 'omit', keepalive: true }).catch(() => {});
    }
  }

  tryPlay() {
    const p = this.video.play();
    if (p && p.catch) {
      p.catch((e) => {
        if (this.alive && e && e.name === 'NotAllowedError') this.onState({ state: this.stats.state, needsGesture: true });
      });
    }
  }
}
