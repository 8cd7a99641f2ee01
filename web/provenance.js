// Hearth's in-band provenance record, as players read it (DESIGN.md, isolation
// layer 1): every segment, still and WebRTC frame names the camera and binding
// epoch it came from, and a player shows nothing that does not name its own.
//
// The record (version 2, 74 bytes; crates/media/src/provenance.rs) rides in an
// fMP4 `uuid` box, a JPEG APP11 segment, or an H.264 SEI user_data_unregistered
// message (WebRTC frames), always under the same UUID. This module is plain
// functions with no DOM use, so the WebRTC frame-check worker imports it too.

export const HEARTH_UUID = '25ca0d1b351c445a8b156a3a89bd41dc';
const PROVENANCE_RECORD_LEN = 74; // version 2
const PROVENANCE_VERSION = 2;
const RENDITIONS = ['main', 'sub'];

export function hex2(n) { return n.toString(16).padStart(2, '0'); }

export function hexOf(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += hex2(bytes[i]);
  return out;
}

const CAMERA_ID_RE = /^[0-9a-f]{32}$/;

// An epoch from JSON as an exact BigInt, or null (missing, negative, fractional,
// or a number too large to be exact in JavaScript).
export function exactEpoch(v) {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) return BigInt(v);
  return null;
}

// A BigInt as a JSON-safe value: a number when exact, otherwise a decimal string.
export function jsonInt(b) {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
}

/**
 * What a player opened for `cameraId` must find in the media of `grant`:
 * `{ expect: { camera, epoch (BigInt), epochJson }, problem: null }`, or
 * `{ expect: null, problem }` when the grant does not name that camera and an
 * exact epoch (then provenance cannot be checked, and nothing may play).
 */
export function grantExpectation(grant, cameraId) {
  const gotCamera = typeof grant.camera_id === 'string' ? grant.camera_id.toLowerCase() : null;
  const epoch = exactEpoch(grant.epoch);
  let problem = null;
  if (!CAMERA_ID_RE.test(cameraId)) problem = `not a camera id: ${JSON.stringify(cameraId)}`;
  else if (gotCamera === null || epoch === null) problem = `stream grant lacks a camera_id or an exact epoch (${JSON.stringify(grant.epoch)}): cannot check provenance`;
  else if (gotCamera !== cameraId) problem = `stream grant names camera ${gotCamera}, expected ${cameraId}`;
  if (problem !== null) return { expect: null, problem };
  return { expect: { camera: cameraId, epoch, epochJson: grant.epoch }, problem: null };
}

/** `{ record: {camera, epoch, seq, captureTime, rendition}, reason: null }` or `{ record: null, reason }`. */
export function decodeRecord(body) {
  if (body.length !== PROVENANCE_RECORD_LEN) return { record: null, reason: `provenance record of ${body.length} bytes` };
  if (body[0] !== PROVENANCE_VERSION) return { record: null, reason: `unknown provenance version ${body[0]}` };
  const rendition = RENDITIONS[body[41]];
  if (rendition === undefined) return { record: null, reason: `unknown rendition ${body[41]}` };
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return {
    record: {
      camera: hexOf(body.subarray(1, 17)),
      epoch: dv.getBigUint64(17),
      seq: dv.getBigUint64(25),
      captureTime: dv.getBigInt64(33),
      rendition,
    },
    reason: null,
  };
}

// NAL units of an Annex B access unit (3- or 4-byte start codes), as subarrays.
function annexbNals(bytes) {
  const nals = [];
  let start = -1;
  let i = 0;
  while (i + 2 < bytes.length) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        if (end > start && bytes[end - 1] === 0) end--; // 4-byte start code
        nals.push(bytes.subarray(start, end));
      }
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < bytes.length) nals.push(bytes.subarray(start));
  return nals;
}

// Removes emulation-prevention bytes (00 00 03 -> 00 00).
function unescapeRbsp(ebsp) {
  const out = new Uint8Array(ebsp.length);
  let n = 0;
  let zeros = 0;
  for (let i = 0; i < ebsp.length; i++) {
    const b = ebsp[i];
    if (zeros >= 2 && b === 3) { zeros = 0; continue; }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}

// The Hearth payloads of one SEI NAL unit's user_data_unregistered messages.
function seiPayloads(nal, found) {
  const rbsp = unescapeRbsp(nal.subarray(1));
  let p = 0;
  // Messages until the rbsp_trailing_bits (0x80) byte.
  while (p < rbsp.length && rbsp[p] !== 0x80) {
    let type = 0;
    while (p < rbsp.length && rbsp[p] === 0xff) { type += 255; p++; }
    if (p >= rbsp.length) return false;
    type += rbsp[p++];
    let size = 0;
    while (p < rbsp.length && rbsp[p] === 0xff) { size += 255; p++; }
    if (p >= rbsp.length) return false;
    size += rbsp[p++];
    if (p + size > rbsp.length) return false;
    if (type === 5 && size >= 16 && hexOf(rbsp.subarray(p, p + 16)) === HEARTH_UUID) {
      found.push(rbsp.subarray(p + 16, p + size));
    }
    p += size;
  }
  return true;
}

/**
 * The provenance record of one H.264 access unit in Annex B form (what a
 * WebRTC encoded transform sees), or `{ record: null, reason }`. There must be
 * exactly one Hearth record among its SEI messages, and it must come before the
 * first slice (where the server puts it). Never throws.
 */
export function readFrameProvenance(bytes) {
  try {
    const found = [];
    let sliceSeen = false;
    for (const nal of annexbNals(bytes)) {
      if (!nal.length) continue;
      const type = nal[0] & 0x1f;
      if (type >= 1 && type <= 5) { sliceSeen = true; continue; }
      if (type !== 6) continue;
      if (sliceSeen) return { record: null, reason: 'provenance after a slice' };
      if (!seiPayloads(nal, found)) return { record: null, reason: 'malformed SEI' };
    }
    if (!sliceSeen) return { record: null, reason: 'no slice in frame' };
    if (found.length === 0) return { record: null, reason: 'no provenance in frame' };
    if (found.length > 1) return { record: null, reason: 'more than one provenance record' };
    return decodeRecord(found[0]);
  } catch (e) {
    return { record: null, reason: `unreadable (${e && e.message})` };
  }
}

/**
 * Whether a frame may be shown as camera `camera` (32 lowercase hex digits) at
 * `epoch` (a BigInt): `{ record, problem }`, `problem` null only when it may.
 */
export function checkFrame(bytes, camera, epoch) {
  const { record, reason } = readFrameProvenance(bytes);
  let problem = null;
  if (!record) problem = reason;
  else if (record.camera !== camera) problem = `camera ${record.camera}, expected ${camera}`;
  else if (record.epoch !== epoch) problem = `epoch ${record.epoch}, expected ${epoch}`;
  return { record, problem };
}

/**
 * The per-frame check as a TransformStream of encoded video frames (a WebRTC
 * encoded transform): frames that name `camera` and `epoch` (a BigInt) pass;
 * the first one whose record names anything else is dropped with every frame
 * after it. A frame with no readable record (on a lossy link the browser may
 * assemble a frame whose first packets, the record's, never came) is dropped
 * alone: never decoded, but no evidence of another camera either. `onEvent`
 * hears `{kind: 'frame', captureTime, rendition}` for each frame let through,
 * `{kind: 'dropped', problem}` for each frame without a record, and, once,
 * `{kind: 'refused', problem, camera, epoch}` (epoch as a decimal string).
 */
export function frameCheckStream(camera, epoch, onEvent) {
  let refused = false;
  return new TransformStream({
    transform(frame, controller) {
      if (refused) return;
      const { record, problem } = checkFrame(new Uint8Array(frame.data), camera, epoch);
      if (problem !== null && record === null) {
        onEvent({ kind: 'dropped', problem });
        return;
      }
      if (problem !== null) {
        refused = true;
        onEvent({ kind: 'refused', problem, camera: record ? record.camera : null, epoch: record ? String(record.epoch) : null });
        return;
      }
      onEvent({ kind: 'frame', captureTime: Number(record.captureTime), rendition: record.rendition });
      controller.enqueue(frame);
    },
  });
}
