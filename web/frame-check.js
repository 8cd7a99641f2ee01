// The WebRTC frame check, run by the browser in a worker beside the decoder
// (RTCRtpScriptTransform): every encoded frame's in-band provenance must name
// the camera and epoch the player was opened for, or it never reaches the
// decoder. See webrtc.js and provenance.js.

import { frameCheckStream } from './provenance.js';

self.onrtctransform = (event) => {
  const t = event.transformer;
  const o = t.options || {};
  let epoch = null;
  try { epoch = BigInt(o.epoch); } catch (_) { /* refused below */ }
  const check = frameCheckStream(String(o.camera || ''), epoch, (m) => self.postMessage(m));
  t.readable.pipeThrough(check).pipeTo(t.writable).catch(() => {});
};
