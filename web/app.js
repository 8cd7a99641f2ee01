// Hearth web app: login, camera grid with live thumbnails, live player, sharing
// and the access log (sharing.js), the account page (account.js), and the
// account-linking consent page (link.js). Plain ES modules, no dependencies. Hash
// routes: #/ (grid), #/camera/<id> (player), #/camera/<id>/manage (sharing and
// who watched, owners), #/account; the path /oauth/authorize is the consent page.

import { LivePlayer, exactEpoch, checkStill } from './player.js';
import { WebRtcPlayer, webrtcSupported } from './webrtc.js';
import { StillPlayer } from './stills.js';
import { isLinkPage, showConsent, mountIntegrations } from './link.js';
import { showManage, mountInvitations } from './sharing.js';
import { showAccount } from './account.js';
import { showAddCamera, mountCameraSettings, STATUS_TEXT } from './cameras.js';
import { mountKeys } from './keys.js';
import { mountAgents } from './agents.js';

const SESSION_KEY = 'hearth.session';
const SNAPSHOT_INTERVAL_MS = 2000;
const CAMERA_LIST_INTERVAL_MS = 30000;
const GRANT_RENEW_FRACTION = 0.7;
const GRANT_MIN_RENEW_MS = 5000;
const GRANT_FALLBACK_LIFETIME_MS = 60000;
const STILLS_PROBE_MS = 15000;      // stills try video again after this long
const STILLS_PROBE_MAX_MS = 120000; // ... at most, after tries that failed

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// Session

let session = loadSession();
let sessionTimer = null;

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (!s || !s.token) return null;
    if (s.expiresAt && Date.parse(s.expiresAt) <= Date.now()) {
      sessionStorage.removeItem(SESSION_KEY);
      return null;
    }
    return s;
  } catch (_) {
    return null;
  }
}

function saveSession(s) {
  session = s;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  armSessionTimer();
}

function armSessionTimer() {
  clearTimeout(sessionTimer);
  if (!session || !session.expiresAt) return;
  const ms = Date.parse(session.expiresAt) - Date.now();
  // setTimeout overflows above ~24.8 days; the server's 401 covers those anyway.
  if (Number.isFinite(ms) && ms < 2 ** 31 - 1) {
    sessionTimer = setTimeout(() => endSession('Your session has expired. Please sign in again.'), Math.max(0, ms));
  }
}

function endSession(message) {
  clearTimeout(sessionTimer);
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  leaveView();
  grants.clear();
  cameraCache = null;
  // Nothing of this account stays on the page for the next one.
  for (const id of ['camera-grid', 'integrations-list', 'invitations-list', 'share-list', 'access-log-rows', 'sessions-list']) {
    $(id).replaceChildren();
  }
  showLogin(message);
}

// ---------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const authed = !!(session && session.token) && path !== '/api/v1/login';
  if (authed) headers.Authorization = `Bearer ${session.token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'Cannot reach the server. Check your connection.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || `Request failed (${res.status})`;
    if (res.status === 401 && authed) {
      endSession('Your session has expired. Please sign in again.');
    }
    throw new ApiError(res.status, msg);
  }
  return { data, res };
}

// ---------------------------------------------------------------------------
// Stream grants: one per camera, shared by the grid and the player, renewed at
// 70% of their lifetime while someone uses them, and on demand after a 403.

class Grants {
  constructor() {
    this.map = new Map();
    this.epoch = 0; // bumped on clear(): answers for an older session are dropped
  }

  entry(id) {
    let e = this.map.get(id);
    if (!e) {
      e = { grant: null, validUntil: 0, fetchedAt: 0, inflight: null, timer: null, refs: 0, listeners: new Set(), failures: 0 };
      this.map.set(id, e);
    }
    return e;
  }

  /** A valid grant for camera `id` (cached or new). */
  current(id) {
    const e = this.entry(id);
    if (e.grant && Date.now() < e.validUntil - 3000) return Promise.resolve(e.grant);
    return this.refresh(id);
  }

  /** Get a new grant (deduplicated; a grant fetched <2 s ago counts as new). */
  refresh(id) {
    const e = this.entry(id);
    if (e.inflight) return e.inflight;
    if (e.grant && Date.now() - e.fetchedAt < 2000 && Date.now() < e.validUntil) return Promise.resolve(e.grant);
    const epoch = this.epoch;
    e.inflight = (async () => {
      try {
        const { data, res } = await api('POST', `/api/v1/cameras/${encodeURIComponent(id)}/streams`);
        if (epoch !== this.epoch) throw new ApiError(0, 'session ended');
        if (!data || !data.hls_url || !data.snapshot_url) throw new ApiError(500, 'malformed grant');
        // Lifetime from the server's own clock (Date header) when possible, so a
        // skewed client clock does not make us renew constantly or too late.
        const exp = Date.parse(data.expires_at);
        const serverNow = Date.parse(res.headers.get('Date') || '');
        let lifetime = exp - (Number.isFinite(serverNow) ? serverNow : Date.now());
        if (!Number.isFinite(lifetime) || lifetime <= 0) lifetime = GRANT_FALLBACK_LIFETIME_MS;
        e.grant = data;
        e.fetchedAt = Date.now();
        e.validUntil = Date.now() + lifetime;
        e.lifetime = lifetime;
        e.failures = 0;
        this.schedule(id);
        for (const fn of e.listeners) {
          try { fn(data); } catch (err) { console.error(err); }
        }
        return data;
      } catch (err) {
        e.failures++;
        if (e.refs > 0 && epoch === this.epoch && err.status !== 401 && err.status !== 404) {
          // Retry in the background; users of the old grant keep going until it expires.
          clearTimeout(e.timer);
          e.timer = setTimeout(() => this.refresh(id).catch(() => {}), Math.min(2000 * e.failures, 15000));
        }
        throw err;
      } finally {
        e.inflight = null;
      }
    })();
    return e.inflight;
  }

  schedule(id) {
    const e = this.entry(id);
    clearTimeout(e.timer);
    e.timer = null;
    if (e.refs <= 0 || !e.grant) return;
    const renewAt = e.fetchedAt + e.lifetime * GRANT_RENEW_FRACTION;
    const delay = Math.max(GRANT_MIN_RENEW_MS, renewAt - Date.now());
    e.timer = setTimeout(() => { e.timer = null; this.refresh(id).catch(() => {}); }, delay);
  }

  acquire(id) {
    const e = this.entry(id);
    e.refs++;
    if (e.grant && !e.timer) {
      if (Date.now() > e.fetchedAt + e.lifetime * GRANT_RENEW_FRACTION) this.refresh(id).catch(() => {});
      else this.schedule(id);
    }
  }

  release(id) {
    const e = this.entry(id);
    e.refs = Math.max(0, e.refs - 1);
    if (e.refs === 0) { clearTimeout(e.timer); e.timer = null; }
  }

  subscribe(id, fn) {
    const e = this.entry(id);
    e.listeners.add(fn);
    return () => e.listeners.delete(fn);
  }

  source(id) {
    return {
      current: () => this.current(id),
      refresh: () => this.refresh(id),
      subscribe: (fn) => this.subscribe(id, fn),
    };
  }

  clear() {
    this.epoch++;
    for (const e of this.map.values()) clearTimeout(e.timer);
    this.map.clear();
  }
}

const grants = new Grants();

// Tell the server that a segment failed the provenance check. Best effort: a
// failure here changes nothing for the user (the stream is already refused), so
// it bypasses api() and its sign-out on 401.
async function postReport(cameraId, body) {
  if (!session || !session.token) return;
  try {
    const res = await fetch(`/api/v1/cameras/${encodeURIComponent(cameraId)}/reports`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${session.token}` },
      body: JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
    if (res.status !== 202) console.warn(`[hearth] report answered ${res.status}`);
  } catch (e) {
    console.warn('[hearth] report not sent', e);
  }
}

// Media URLs are bound to the session that got the grant: every media request
// carries it (an <img src> could not, so stills are fetched, then shown).
function sessionAuthorization() {
  return session && session.token ? `Bearer ${session.token}` : null;
}

function withCacheBust(url) {
  return `${url}${url.includes('?') ? '&' : '?'}t=${Date.now()}`;
}

// ---------------------------------------------------------------------------
// Time helpers

const timeFormats = new Map();
function formatTime(ms, timeZone) {
  const key = timeZone || '';
  let f = timeFormats.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone: timeZone || undefined });
    } catch (_) {
      f = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    }
    timeFormats.set(key, f);
  }
  return f.format(ms);
}

function formatShortTime(ms, timeZone) {
  try {
    return new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', timeZone: timeZone || undefined }).format(ms);
  } catch (_) {
    return '';
  }
}

/** Under a shared camera's name: who shares it; nothing for the household's own. */
function sharedLabel(cam) {
  return cam.shared_by ? `Shared by ${cam.shared_by}` : '';
}

// ---------------------------------------------------------------------------
// Views

let current = null; // { leave() } of the active view
let cameraCache = null;

function leaveView() {
  if (current) {
    const c = current;
    current = null;
    c.leave();
  }
}

function showOnly(viewId) {
  for (const id of ['login-view', 'grid-view', 'player-view', 'consent-view', 'manage-view', 'account-view', 'add-view']) {
    $(id).hidden = id !== viewId;
  }
  if (viewId === 'account-view') $('account-link').setAttribute('aria-current', 'page');
  else $('account-link').removeAttribute('aria-current');
  const signedIn = !!session;
  $('user-area').hidden = !signedIn;
  $('user-email').textContent = signedIn ? (session.email || '') : '';
}

function focusHeading(id) {
  const el = $(id);
  if (el && document.activeElement !== el) el.focus({ preventScroll: false });
}

// --- Login ------------------------------------------------------------------

function showLogin(message) {
  leaveView();
  showOnly('login-view');
  document.title = 'Sign in · Hearth';
  $('login-lead').textContent = isLinkPage() ? 'Sign in to choose the cameras to link.' : 'Watch your cameras live.';
  const err = $('login-error');
  if (message) {
    err.textContent = message;
    err.hidden = false;
  } else {
    err.hidden = true;
    err.textContent = '';
  }
  $('login-password').value = '';
  $('login-submit').disabled = false;
  $('login-email').focus();
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const email = $('login-email').value.trim();
  const password = $('login-password').value;
  const err = $('login-error');
  err.hidden = true;
  if (!email || !password) {
    err.textContent = 'Enter your email and password.';
    err.hidden = false;
    (email ? $('login-password') : $('login-email')).focus();
    return;
  }
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = 'Signing in…';
  try {
    const { data } = await api('POST', '/api/v1/login', { email, password });
    if (!data || !data.token) throw new ApiError(500, 'Unexpected answer from the server.');
    grants.clear();
    cameraCache = null;
    saveSession({ token: data.token, expiresAt: data.expires_at || null, email });
    $('login-password').value = '';
    route();
  } catch (e) {
    err.textContent = e.status === 401 ? 'Invalid email or password.' : (e.message || 'Sign-in failed.');
    err.hidden = false;
    $('login-password').select();
    $('login-password').focus();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Sign in';
  }
}

// --- Camera list --------------------------------------------------------------

let camerasInflight = null;

/** The camera list (one request at a time: the grid and the panel share it). */
function loadCameras() {
  if (!camerasInflight) {
    camerasInflight = (async () => {
      try {
        const { data: all } = await api('GET', '/api/v1/cameras');
        if (!Array.isArray(all)) throw new ApiError(500, 'Unexpected answer from the server.');
        // A camera on trial ("Test connection") is only on the add page.
        const data = all.filter((c) => !c.draft);
        cameraCache = data;
        return data;
      } finally {
        camerasInflight = null;
      }
    })();
  }
  return camerasInflight;
}

const CAMERA_ICON = 'M4 7a2 2 0 0 1 2-2h8a2 2 0 0 1 2 2v1.5l4-2.5v12l-4-2.5V17a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2z';

function svgIcon(d) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', 'currentColor');
  path.setAttribute('stroke-width', '1.6');
  path.setAttribute('stroke-linejoin', 'round');
  svg.append(path);
  return svg;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...kids.filter(Boolean));
  return e;
}

function setBadge(badge, state) {
  const labels = {
    live: 'Live', offline: 'Offline', loading: 'Connecting', reconnecting: 'Reconnecting', error: 'Error', refused: 'Unavailable', poor: 'Poor connection',
    // A pulled camera's own status (cameras.js says more).
    connecting: 'Connecting', auth_failed: 'Wrong password', unreachable: 'Unreachable', unsupported_codec: 'Unsupported video',
  };
  badge.className = `badge badge-${state}`;
  badge.textContent = labels[state] || state;
  badge.dataset.state = state;
}

function showGrid() {
  leaveView();
  showOnly('grid-view');
  document.title = 'My cameras · Hearth';
  const grid = $('camera-grid');
  const errBox = $('grid-error');
  const summary = $('grid-summary');
  let alive = true;
  const cards = new Map(); // id -> card state
  let snapTimer = null;
  let listTimer = null;
  const invitations = mountInvitations({ api, el, onAccepted: () => loadList(false) });

  const view = {
    leave() {
      alive = false;
      invitations.leave();
      clearInterval(snapTimer);
      clearInterval(listTimer);
      document.removeEventListener('visibilitychange', onVisibility);
      for (const c of cards.values()) { c.gen++; grants.release(c.cam.id); }
      cards.clear();
    },
  };
  current = view;

  const onVisibility = () => { if (document.visibilityState === 'visible') tick(); };
  document.addEventListener('visibilitychange', onVisibility);

  function buildCard(cam) {
    const badge = el('span', { class: 'badge' });
    const placeholder = el('div', { class: 'thumb-placeholder' }, svgIcon(CAMERA_ICON), el('span', { text: cam.online ? 'Loading…' : 'Camera offline' }));
    const thumb = el('div', { class: 'thumb' }, placeholder, badge);
    const title = el('span', { class: 'card-title', text: cam.name });
    const clock = el('span', { class: 'card-clock' });
    const sub = el('span', { class: 'card-sub' }, el('span', { text: sharedLabel(cam) }), clock);
    const link = el('a', {
      class: 'camera-card',
      href: `#/camera/${encodeURIComponent(cam.id)}`,
      'data-testid': 'camera-card',
      'data-camera-id': cam.id,
      'data-camera-name': cam.name,
    }, thumb, el('span', { class: 'card-body' }, title, sub));
    const li = el('li', {}, link);
    const c = { cam, li, link, thumb, badge, placeholder, clock, img: null, loading: false, gen: 0, nextTry: 0, online: !!cam.online, state: cardState(cam) };
    updateCardState(c, c.state);
    grants.acquire(cam.id);
    return c;
  }

  /** live, offline, or what is wrong with a camera Hearth pulls. */
  function cardState(cam) {
    if (cam.online) return 'live';
    return STATUS_TEXT[cam.status] && cam.status !== 'online' ? cam.status : 'offline';
  }

  function updateCardState(c, state) {
    setBadge(c.badge, state);
    const said = state === 'live' ? 'live' : state === 'offline' ? 'offline' : STATUS_TEXT[state];
    c.link.setAttribute('aria-label', `${c.cam.name}, ${said}${c.cam.shared_by ? `, ${sharedLabel(c.cam)}` : ''}. Open live view.`);
    c.link.dataset.state = state;
  }

  function render(list) {
    const seen = new Set();
    const frag = [];
    for (const cam of list) {
      seen.add(cam.id);
      let c = cards.get(cam.id);
      if (c && (c.cam.name !== cam.name || c.cam.shared_by !== cam.shared_by)) {
        // Renamed: rebuild the card (never reuse an image across identities).
        c.gen++; grants.release(c.cam.id); cards.delete(cam.id); c = null;
      }
      if (!c) { c = buildCard(cam); cards.set(cam.id, c); }
      c.online = !!cam.online;
      if (c.state !== cardState(cam)) { c.state = cardState(cam); updateCardState(c, c.state); }
      c.cam = cam;
      frag.push(c.li);
    }
    for (const [id, c] of cards) {
      if (!seen.has(id)) { c.gen++; grants.release(id); cards.delete(id); }
    }
    grid.replaceChildren(...frag);
    $('grid-empty').hidden = list.length > 0;
    const online = list.filter((x) => x.online).length;
    summary.textContent = list.length ? `${list.length} camera${list.length === 1 ? '' : 's'} · ${online} live` : '';
  }

  async function refreshThumb(c) {
    if (c.loading || Date.now() < c.nextTry) return;
    c.loading = true;
    const gen = c.gen;
    const id = c.cam.id;
    try {
      let grant;
      try {
        grant = await grants.current(id);
      } catch (e) {
        if (e.status === 404) c.placeholder.lastChild.textContent = 'Not available';
        c.nextTry = Date.now() + 10000;
        return;
      }
      if (!alive || gen !== c.gen) return;
      const url = withCacheBust(grant.snapshot_url);
      let status = 0;
      let blob = null;
      try {
        const auth = sessionAuthorization();
        const r = await fetch(url, { cache: 'no-store', credentials: 'omit', headers: auth ? { Authorization: auth } : {} });
        status = r.status;
        if (r.ok) blob = await r.blob();
      } catch (_) { status = 0; }
      if (!alive || gen !== c.gen) return;
      if (blob) {
        // Whose picture is this? The still names its camera in-band: anything
        // else is not shown, and is reported.
        const { record, problem } = checkStill(await blob.arrayBuffer(), String(id).toLowerCase(), exactEpoch(grant.epoch));
        if (!alive || gen !== c.gen) return;
        if (problem !== null) {
          console.error(`[hearth] refused a still for ${id}: ${problem}`);
          if (c.img) { URL.revokeObjectURL(c.img.src); c.img.remove(); c.img = null; }
          c.placeholder.hidden = false;
          c.placeholder.lastChild.textContent = 'Picture unavailable';
          if (!c.reported) {
            c.reported = true;
            postReport(id, {
              kind: 'provenance_mismatch',
              detail: {
                expected_camera: id, got_camera: record ? record.camera : null,
                expected_epoch: grant.epoch, got_epoch: record ? Number(record.epoch) : null, object: 'snapshot.jpg',
              },
            });
          }
          c.nextTry = Date.now() + 10000;
          return;
        }
        const img = new Image();
        img.className = 'thumb-img';
        img.alt = `Latest picture from ${c.cam.name}`;
        img.decoding = 'async';
        const src = URL.createObjectURL(blob);
        const ok = await new Promise((resolve) => {
          img.onload = () => resolve(true);
          img.onerror = () => resolve(false);
          img.src = src;
        });
        if (!alive || gen !== c.gen || !ok) { URL.revokeObjectURL(src); if (!alive || gen !== c.gen) return; }
        if (ok) {
          // Swap in the already-decoded image (no flicker).
          if (c.img) { URL.revokeObjectURL(c.img.src); c.img.replaceWith(img); } else c.placeholder.after(img);
          c.img = img;
          c.placeholder.hidden = true;
          if (c.badge.dataset.state !== 'live') updateCardState(c, 'live');
          return;
        }
      }
      // Why not: 401/403 = grant expired or not ours, 404/503 = offline.
      if (status === 403 || status === 401) {
        await grants.refresh(id).catch(() => {});
      } else if (status === 404 || status === 503) {
        if (c.img) { URL.revokeObjectURL(c.img.src); c.img.remove(); c.img = null; }
        c.placeholder.hidden = false;
        c.placeholder.lastChild.textContent = 'Camera offline';
        updateCardState(c, c.cam.online ? 'offline' : cardState(c.cam));
        c.nextTry = Date.now() + 6000; // offline: ask less often
      }
    } finally {
      c.loading = false;
    }
  }

  function tick() {
    if (!alive) return;
    const now = Date.now();
    for (const c of cards.values()) {
      c.clock.textContent = c.cam.timezone ? formatShortTime(now, c.cam.timezone) : '';
      c.clock.title = c.cam.timezone ? `Local time (${c.cam.timezone})` : '';
    }
    if (document.visibilityState !== 'visible') return;
    for (const c of cards.values()) refreshThumb(c);
  }

  async function loadList(first) {
    try {
      const list = await loadCameras();
      if (!alive) return;
      errBox.hidden = true;
      render(list);
      if (first) tick();
    } catch (e) {
      if (!alive || e.status === 401) return;
      errBox.textContent = `Could not load your cameras: ${e.message}`;
      errBox.hidden = false;
    }
  }

  if (cameraCache) { render(cameraCache); tick(); }
  loadList(!cameraCache);
  snapTimer = setInterval(tick, SNAPSHOT_INTERVAL_MS);
  listTimer = setInterval(() => { loadList(false); invitations.reload(); }, CAMERA_LIST_INTERVAL_MS);
  return view;
}

// --- Player -------------------------------------------------------------------

function showPlayer(id) {
  leaveView();
  showOnly('player-view');
  const nameEl = $('player-name');
  const metaEl = $('player-meta');
  const statusEl = $('player-status');
  const overlay = $('video-overlay');
  const overlayText = $('video-overlay-text');
  const playBtn = $('play-button');
  const foot = $('player-foot');
  const manageLink = $('manage-link');
  const video = $('player');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;

  let alive = true;
  let player = null;
  let cam = (cameraCache || []).find((c) => c.id === id) || null;
  let clockTimer = null;
  const stats = { cameraId: id, state: 'loading', segmentsAppended: 0, lastError: null };
  window.hearthPlayer = stats;

  nameEl.textContent = cam ? cam.name : 'Camera';
  document.title = `${cam ? cam.name : 'Camera'} · Hearth`;
  manageLink.hidden = true;
  metaEl.textContent = '';
  foot.textContent = '';

  function setStatus(state, error, needsGesture) {
    const map = { loading: 'loading', playing: 'live', reconnecting: 'reconnecting', offline: 'offline', error: 'error', refused: 'refused', poor: 'poor' };
    setBadge(statusEl, map[state] || 'loading');
    statusEl.dataset.state = state;
    overlay.classList.toggle('is-offline', state === 'offline' || state === 'refused');
    overlay.classList.toggle('is-error', state === 'error');
    overlay.classList.toggle('is-refused', state === 'refused');
    // Refused: the player has stopped for good; the details are in the console.
    if (state === 'refused') needsGesture = false;
    playBtn.hidden = !needsGesture;
    if ((state === 'playing' || state === 'poor') && !needsGesture) {
      // Poor connection: the newest still is the picture, the badge says why.
      overlay.hidden = true;
    } else {
      overlay.hidden = false;
      overlayText.textContent = state === 'refused' ? 'Stream unavailable'
        : needsGesture ? 'Press play to start the live view.'
        : state === 'offline' ? 'The camera is offline. Retrying…'
        : state === 'reconnecting' ? 'Reconnecting…'
          : state === 'error' ? `Cannot play this camera${error ? `: ${error}` : ''}. Retrying…`
            : 'Connecting to the camera…';
    }
  }
  setStatus('loading');

  const onPlay = () => { if (player) player.resume(); };
  playBtn.addEventListener('click', onPlay);

  function updateClock() {
    if (!alive) return;
    const tz = cam && cam.timezone;
    const parts = [];
    if (cam && cam.shared_by) parts.push(sharedLabel(cam));
    if (tz) parts.push(`${formatShortTime(Date.now(), tz)} local time`);
    metaEl.textContent = parts.join(' · ');
    const ft = player && stats.state === 'playing' ? player.currentFrameTime() : null;
    if (ft) {
      const delay = Math.max(0, (Date.now() - ft) / 1000);
      foot.textContent = `Picture from ${formatTime(ft, tz)}${tz ? ` (${tz})` : ''} · about ${delay.toFixed(1)} s behind real time`;
    } else if (player && stats.transport === 'stills' && stats.lastStill) {
      foot.textContent = `Poor connection: still picture from ${formatTime(stats.lastStill.captureTime, tz)} · the video comes back when the connection does`;
    } else if (player && stats.transport === 'webrtc' && stats.state === 'playing') {
      foot.textContent = stats.latencyMs !== null && stats.latencyMs !== undefined
        ? `Live over WebRTC · about ${stats.latencyMs} ms behind the camera`
        : 'Live over WebRTC';
    } else {
      foot.textContent = '';
    }
  }

  const view = {
    leave() {
      alive = false;
      clearInterval(clockTimer);
      playBtn.removeEventListener('click', onPlay);
      if (player) { player.destroy(); player = null; }
      grants.release(id);
      video.removeAttribute('src');
      video.removeAttribute('poster');
      video.load();
      overlay.hidden = true;
    },
  };
  current = view;

  function start() {
    if (!alive) return;
    nameEl.textContent = cam.name;
    nameEl.dataset.cameraId = cam.id;
    // Sharing and the access log are the camera's household's business.
    manageLink.href = `#/camera/${encodeURIComponent(cam.id)}/manage`;
    manageLink.hidden = cam.access !== 'owner';
    document.title = `${cam.name} · Hearth`;
    video.setAttribute('aria-label', `Live video from ${cam.name}`);
    if (!cam.online) setStatus('offline');
    grants.acquire(id);
    const opts = {
      video,
      grants: grants.source(id),
      stats,
      cameraId: id,
      report: (body) => { postReport(id, body); },
      authorization: sessionAuthorization,
      onState: ({ state, error, needsGesture }) => { if (alive) setStatus(state, error, needsGesture); },
    };
    let useHls = !webrtcSupported() || localStorage.getItem('hearth.transport') === 'hls';
    const playHls = () => {
      if (!alive) return;
      useHls = true;
      player = new LivePlayer({ ...opts, onPoor: playStills });
      stats.transport = 'hls';
    };
    // WebRTC first (lowest latency, every frame's provenance checked in the
    // browser); HLS when WebRTC cannot connect here or this browser cannot check
    // frames. `localStorage['hearth.transport'] = 'hls'` forces HLS.
    // Stills try video again after a while (a still's download says little of
    // what a stream would get); a try that ends in stills again within a minute
    // doubles the wait, from 15 s up to 2 minutes.
    let probeMs = STILLS_PROBE_MS;
    let probedAt = null;
    const playVideo = (probe) => {
      if (!alive) return;
      probedAt = probe ? performance.now() : null;
      if (useHls) playHls();
      // Back from stills (`probe` says whether by timer or by measurement):
      // WebRTC worked here, so no picture in time means the link, not WebRTC.
      else player = new WebRtcPlayer({ ...opts, onFallback: playHls, onPoor: playStills, probe: probe !== undefined });
    };
    // A link too poor even for the sub stream: checked stills, about one a
    // second, until the link can carry video again.
    function playStills() {
      if (!alive) return;
      stats.stillFallbacks = (stats.stillFallbacks || 0) + 1;
      const failedTry = probedAt !== null && performance.now() - probedAt < 60000;
      probeMs = failedTry ? Math.min(probeMs * 2, STILLS_PROBE_MAX_MS) : STILLS_PROBE_MS;
      player = new StillPlayer({ ...opts, onRecovered: playVideo, probeAfterMs: probeMs });
    }
    playVideo();
    updateClock();
    clockTimer = setInterval(updateClock, 1000);
  }

  if (cam) {
    start();
  } else {
    loadCameras().then((list) => {
      if (!alive) return;
      cam = list.find((c) => c.id === id) || null;
      if (!cam) {
        nameEl.textContent = 'Camera not found';
        stats.state = 'error';
        stats.lastError = 'camera not found';
        setStatus('error', 'this camera is not in your account');
        return;
      }
      start();
    }).catch((e) => {
      if (!alive || e.status === 401) return;
      stats.state = 'error';
      stats.lastError = e.message;
      setStatus('error', e.message);
    });
  }
  focusHeading('player-name');
  return view;
}

// --- Sharing and who watched (sharing.js) --------------------------------------

function showManageView(id) {
  leaveView();
  showOnly('manage-view');
  document.title = 'Sharing · Hearth';
  const manage = showManage({
    api,
    el,
    cameraId: id,
    cameras: () => loadCameras(),
    me: session && session.email,
  });
  const settings = mountCameraSettings({
    api,
    cameraId: id,
    onChanged: () => { cameraCache = null; },
    onRemoved: () => { cameraCache = null; location.hash = '#/'; },
  });
  current = {
    leave() {
      manage.leave();
      settings.leave();
    },
  };
  focusHeading('manage-title');
}

// --- Account (account.js, and link.js's smart displays panel) -------------------

function showAccountView() {
  leaveView();
  showOnly('account-view');
  document.title = 'Account · Hearth';
  $('account-email').textContent = session && session.email ? `Signed in as ${session.email}` : '';
  $('password-username').value = (session && session.email) || '';
  const account = showAccount({ api, el, signOutHere: signOut });
  const displays = mountIntegrations({
    api,
    el,
    cameras: () => (cameraCache ? Promise.resolve(cameraCache) : loadCameras()),
  });
  const keys = mountKeys({
    api,
    el,
    cameras: () => (cameraCache ? Promise.resolve(cameraCache) : loadCameras()),
  });
  const agents = mountAgents({ api, el });
  current = {
    leave() {
      account.leave();
      displays.leave();
      keys.leave();
      agents.leave();
    },
  };
  focusHeading('account-title');
}

// --- Adding a camera (cameras.js) ---------------------------------------------

/** The camera's newest still as an object URL, shown only if its in-band
 * provenance names the camera (it comes through the door like any other). */
async function checkedStill(id) {
  const { data: grant } = await api('POST', `/api/v1/cameras/${encodeURIComponent(id)}/streams`);
  const auth = sessionAuthorization();
  const r = await fetch(withCacheBust(grant.snapshot_url), {
    cache: 'no-store', credentials: 'omit', headers: auth ? { Authorization: auth } : {},
  });
  if (!r.ok) throw new ApiError(r.status, `No picture yet (${r.status})`);
  const bytes = await r.arrayBuffer();
  const { problem } = checkStill(bytes, String(id).toLowerCase(), exactEpoch(grant.epoch));
  if (problem !== null) throw new ApiError(0, `A picture that is not this camera's was refused: ${problem}`);
  return URL.createObjectURL(new Blob([bytes], { type: 'image/jpeg' }));
}

function showAddView() {
  leaveView();
  showOnly('add-view');
  document.title = 'Add a camera · Hearth';
  current = showAddCamera({ api, checkedStill, onAdded: () => { cameraCache = null; } });
  focusHeading('add-title');
}

/** Signs this browser out: the server ends the session (its token and every
 * stream grant it holds stop working); it is forgotten here whatever the answer. */
function signOut() {
  const token = session && session.token;
  if (token) {
    fetch('/api/v1/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'same-origin' })
      .catch((e) => console.warn('[hearth] logout not sent', e));
  }
  endSession();
  if (location.hash !== '#/') history.replaceState(null, '', '#/');
}

// ---------------------------------------------------------------------------
// Router

function route() {
  if (!session) { showLogin(); return; }
  if (isLinkPage()) {
    leaveView();
    showOnly('consent-view');
    current = showConsent({ api, el });
    return;
  }
  const m = location.hash.match(/^#\/camera\/([^/?#]+)(\/manage)?(?:$|\?)/);
  if (m) {
    let id;
    try { id = decodeURIComponent(m[1]); } catch (_) { id = m[1]; }
    if (m[2]) showManageView(id);
    else showPlayer(id);
  } else if (location.hash === '#/account') {
    showAccountView();
  } else if (location.hash === '#/add') {
    showAddView();
  } else {
    if (location.hash !== '#/' && location.hash !== '') history.replaceState(null, '', '#/');
    showGrid();
    focusHeading('grid-title');
  }
}

function init() {
  $('login-form').addEventListener('submit', onLoginSubmit);
  $('logout-button').addEventListener('click', signOut);
  // The consent page has no hash routes: its state is in the query string.
  if (!isLinkPage()) window.addEventListener('hashchange', route);
  armSessionTimer();
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
