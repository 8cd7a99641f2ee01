// Hearth sharing: an owner's page for one camera (invite by email; the accepted
// and pending shares, each with Revoke or Withdraw; "Who watched", the camera's
// access log a page at a time), and the invitations panel above the camera grid
// where a recipient accepts or declines.
// Plain ES module; app.js hands in its API helper and element builder. Text from
// the server (emails, names) only ever goes in as text (el's `text`, text nodes).

const $ = (id) => document.getElementById(id);

/** Entries per page of the access log. */
export const ACCESS_LOG_PAGE = 50;

const THROUGH = { app: 'Web app', api: 'API', google: 'Google Home', alexa: 'Alexa' };

const WHAT = {
  grant_issued: 'Opened the live view',
  view_start: 'Started watching',
  view_end: 'Watched',
  snapshot_served: 'Still picture',
  share_invited: 'Sent an invitation',
  share: 'Accepted an invitation',
  unshare: 'Revoked a share',
  camera_renamed: 'Renamed the camera',
  client_report: 'A player reported a problem',
  isolation_violation: 'Blocked a picture of another camera',
};

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** A <time> for an RFC 3339 instant (with seconds unless `dayOnly`). */
function timeEl(el, iso, dayOnly) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return el('span', { text: '—' });
  return el('time', { datetime: iso, text: (dayOnly ? dateOnly : dateTime).format(t) });
}

/** "45 s", "3 min 5 s", "1 h 20 min". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 1) return 'under a second';
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

/** A banner-style message element's setter: null hides it. */
function messenger(node) {
  return (message) => {
    node.textContent = message || '';
    node.hidden = !message;
  };
}

// ---------------------------------------------------------------------------
// The owner's page for one camera: #/camera/<id>/manage

/**
 * Fills the (already visible) manage view for camera `cameraId`; returns { leave() }.
 * `deps`: { api, el, cameras() -> Promise<camera list>, me (the user's email) }.
 */
export function showManage({ api, el, cameraId, cameras, me }) {
  const title = $('manage-title');
  const lead = $('manage-lead');
  const body = $('manage-body');
  const form = $('share-form');
  const input = $('share-email');
  const submit = $('share-submit');
  const shareStatus = $('share-status');
  const shareError = messenger($('share-error'));
  const shareList = $('share-list');
  const shareEmpty = $('share-empty');
  const logTable = $('access-log');
  const logRows = $('access-log-rows');
  const logEmpty = $('access-log-empty');
  const logError = messenger($('access-log-error'));
  const logMore = $('access-log-more');
  const logRefresh = $('access-log-refresh');
  const logStatus = $('access-log-status');
  const base = `/api/v1/cameras/${encodeURIComponent(cameraId)}`;
  let alive = true;
  let shareGen = 0;
  let logGen = 0;
  let cursor = null; // the next page's `before`, from x-next-page
  let entries = 0; // access-log entries loaded
  let lastRow = null; // the last row, to fold runs of still pictures into one

  title.textContent = 'Camera';
  lead.textContent = 'Sharing and who watched';
  body.hidden = true;
  input.value = '';
  shareStatus.textContent = '';
  shareError(null);
  logError(null);
  shareList.replaceChildren();
  shareEmpty.hidden = true;
  resetLog();

  // --- sharing ---

  async function loadShares(after) {
    const g = ++shareGen;
    try {
      const { data } = await api('GET', `${base}/shares`);
      if (!alive || g !== shareGen) return;
      if (!Array.isArray(data)) throw new Error('Unexpected answer from the server.');
      shareList.replaceChildren(...data.map(renderShare));
      shareEmpty.hidden = data.length > 0;
      if (after) after();
    } catch (e) {
      if (!alive || g !== shareGen || e.status === 401) return;
      shareError(`Could not load who this camera is shared with: ${e.message}`);
    }
  }

  function renderShare(share) {
    const email = String(share.email || '');
    const accepted = share.status === 'accepted';
    const button = el('button', {
      type: 'button',
      class: 'btn btn-ghost btn-danger',
      'data-testid': accepted ? 'share-revoke' : 'share-withdraw',
      text: accepted ? 'Revoke' : 'Withdraw',
      'aria-label': `${accepted ? 'Revoke the share with' : 'Withdraw the invitation to'} ${email}`,
    });
    const rowError = el('p', { class: 'form-error', role: 'alert', hidden: true });
    button.addEventListener('click', async () => {
      button.disabled = true;
      rowError.hidden = true;
      const path = accepted
        ? `${base}/shares/${encodeURIComponent(share.user)}`
        : `${base}/invitations/${encodeURIComponent(email)}`;
      try {
        await api('DELETE', path);
        if (!alive) return;
        shareStatus.textContent = accepted
          ? `${email} can no longer watch this camera.`
          : `The invitation to ${email} is withdrawn.`;
        loadShares(() => input.focus());
      } catch (e) {
        if (!alive || e.status === 401) return;
        button.disabled = false;
        rowError.textContent = `Could not ${accepted ? 'revoke' : 'withdraw'}: ${e.message}`;
        rowError.hidden = false;
      }
    });
    return el('li', {
      class: 'row',
      'data-testid': 'share-row',
      'data-email': email,
      'data-status': accepted ? 'accepted' : 'pending',
    },
    el('div', { class: 'row-main' },
      el('span', { class: 'row-title', text: email }),
      el('span', { class: 'row-meta' },
        el('span', { class: `pill ${accepted ? 'pill-ok' : 'pill-wait'}`, text: accepted ? 'Can watch' : 'Invited, not accepted yet' }),
        ' · since ', timeEl(el, share.created_at, true))),
    button,
    rowError);
  }

  async function onInvite(ev) {
    ev.preventDefault();
    const email = input.value.trim();
    shareStatus.textContent = '';
    shareError(null);
    if (!email || !email.includes('@')) {
      shareError('Enter the email address of the person to invite.');
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api('POST', `${base}/shares`, { email });
      if (!alive) return;
      input.value = '';
      // The same answer whether or not someone has an account with that email.
      shareStatus.textContent = `Invitation sent to ${email}. They can accept it when they sign in to Hearth.`;
      loadShares();
    } catch (e) {
      if (!alive || e.status === 401) return;
      shareError(`Could not invite: ${e.message}`);
    } finally {
      submit.disabled = false;
    }
  }

  // --- who watched ---

  function resetLog() {
    logGen++;
    cursor = null;
    entries = 0;
    lastRow = null;
    logRows.replaceChildren();
    logTable.dataset.entries = '0';
    logTable.hidden = true;
    logEmpty.hidden = true;
    logMore.hidden = true;
    logStatus.textContent = '';
  }

  async function loadLog(more) {
    if (!more) resetLog();
    const g = logGen;
    logMore.disabled = true;
    logRefresh.disabled = true;
    logStatus.textContent = 'Loading…';
    const q = new URLSearchParams({ limit: String(ACCESS_LOG_PAGE) });
    if (more && cursor) q.set('before', cursor);
    try {
      const { data, res } = await api('GET', `${base}/access-log?${q}`);
      if (!alive || g !== logGen) return;
      if (!Array.isArray(data)) throw new Error('Unexpected answer from the server.');
      logError(null);
      for (const entry of data) addEntry(entry);
      entries += data.length;
      cursor = res.headers.get('x-next-page');
      logTable.dataset.entries = String(entries);
      logTable.hidden = entries === 0;
      logEmpty.hidden = entries > 0;
      logMore.hidden = !cursor;
      logStatus.textContent = entries ? `${entries} entr${entries === 1 ? 'y' : 'ies'} shown${cursor ? '' : ', the oldest included'}.` : '';
    } catch (e) {
      if (!alive || g !== logGen || e.status === 401) return;
      logStatus.textContent = '';
      logError(`Could not load who watched: ${e.message}`);
    } finally {
      if (alive && g === logGen) {
        logMore.disabled = false;
        logRefresh.disabled = false;
      }
    }
  }

  function who(entry) {
    const v = entry.viewer ? String(entry.viewer) : '';
    if (!v) return '—';
    return me && v.toLowerCase() === String(me).toLowerCase() ? `${v} (you)` : v;
  }

  function through(entry) {
    return entry.integration ? (THROUGH[entry.integration] || String(entry.integration)) : '—';
  }

  function what(entry) {
    const d = entry.detail && typeof entry.detail === 'object' ? entry.detail : {};
    if (entry.kind === 'share_invited' && d.email) return `Invited ${d.email}`;
    if (entry.kind === 'view_end' && d.closed_by) return 'Watched (stopped by Hearth)';
    return WHAT[entry.kind] || String(entry.kind || '');
  }

  function howLong(entry) {
    const d = entry.detail && typeof entry.detail === 'object' ? entry.detail : {};
    if (entry.kind === 'view_end' && Number.isFinite(d.started_at) && Number.isFinite(d.last_at)) {
      return formatDuration(d.last_at - d.started_at);
    }
    return '';
  }

  function addEntry(entry) {
    const viewer = who(entry);
    const way = through(entry);
    // A grid of thumbnails fetches a still every few seconds: one row per run.
    if (entry.kind === 'snapshot_served' && lastRow && lastRow.kind === 'snapshot_served'
      && lastRow.viewer === viewer && lastRow.way === way) {
      lastRow.count++;
      lastRow.oldest = Date.parse(entry.at);
      lastRow.whatCell.textContent = `Still pictures (${lastRow.count})`;
      lastRow.howCell.textContent = formatDuration(lastRow.newest - lastRow.oldest);
      lastRow.tr.dataset.count = String(lastRow.count);
      return;
    }
    const whatCell = el('td', { text: what(entry) });
    const howCell = el('td', { text: howLong(entry) });
    const tr = el('tr', { 'data-testid': 'access-log-row', 'data-kind': entry.kind, 'data-count': '1' },
      el('td', {}, timeEl(el, entry.at)),
      el('td', { class: 'log-who', text: viewer }),
      el('td', { text: way }),
      whatCell,
      howCell);
    logRows.append(tr);
    const at = Date.parse(entry.at);
    lastRow = { kind: entry.kind, viewer, way, count: 1, newest: at, oldest: at, tr, whatCell, howCell };
  }

  // --- the page ---

  const onMore = () => loadLog(true);
  const onRefresh = () => { loadLog(false); loadShares(); };
  // Back from another tab: someone may have accepted meanwhile.
  const onVisible = () => { if (document.visibilityState === 'visible' && !body.hidden) loadShares(); };
  form.addEventListener('submit', onInvite);
  logMore.addEventListener('click', onMore);
  logRefresh.addEventListener('click', onRefresh);
  document.addEventListener('visibilitychange', onVisible);

  cameras().then((list) => {
    if (!alive) return;
    const cam = (list || []).find((c) => c.id === cameraId);
    if (!cam) {
      title.textContent = 'Camera not found';
      lead.textContent = 'This camera is not in your account.';
      return;
    }
    title.textContent = cam.name;
    document.title = `${cam.name}: sharing · Hearth`;
    $('manage-player-link').href = `#/camera/${encodeURIComponent(cam.id)}`;
    if (cam.access !== 'owner') {
      lead.textContent = `Shared with you by ${cam.shared_by || 'another household'}: only its household manages sharing.`;
      return;
    }
    body.hidden = false;
    loadShares();
    loadLog(false);
  }).catch((e) => {
    if (!alive || e.status === 401) return;
    lead.textContent = `Could not load the camera: ${e.message}`;
  });

  return {
    leave() {
      alive = false;
      shareGen++;
      logGen++;
      form.removeEventListener('submit', onInvite);
      logMore.removeEventListener('click', onMore);
      logRefresh.removeEventListener('click', onRefresh);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}

// ---------------------------------------------------------------------------
// Invitations to the signed-in user, above the camera grid.

/**
 * Loads the invitations panel; returns { reload(), leave() }.
 * `deps`: { api, el, onAccepted() (the camera list changed) }.
 */
export function mountInvitations({ api, el, onAccepted }) {
  const panel = $('invitations-panel');
  const list = $('invitations-list');
  const status = $('invitations-status');
  const error = messenger($('invitations-error'));
  let alive = true;
  let gen = 0;

  list.replaceChildren();
  status.textContent = '';
  error(null);
  panel.hidden = true;

  async function load() {
    const g = ++gen;
    try {
      const { data } = await api('GET', '/api/v1/invitations');
      if (!alive || g !== gen) return;
      if (!Array.isArray(data)) throw new Error('Unexpected answer from the server.');
      list.replaceChildren(...data.map(render));
      // Keep the panel while it says what just happened.
      panel.hidden = data.length === 0 && !status.textContent;
    } catch (e) {
      if (!alive || g !== gen || e.status === 401) return;
      error(`Could not load your invitations: ${e.message}`);
      panel.hidden = false;
    }
  }

  function render(inv) {
    const camera = String(inv.camera_name || 'a camera');
    const by = String(inv.shared_by || 'Another household');
    const accept = el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'invitation-accept', text: 'Accept' });
    const decline = el('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'invitation-decline', text: 'Decline' });
    accept.setAttribute('aria-label', `Accept: watch ${camera}, shared by ${by}`);
    decline.setAttribute('aria-label', `Decline the invitation to ${camera}`);
    const rowError = el('p', { class: 'form-error', role: 'alert', hidden: true });
    const path = `/api/v1/invitations/${encodeURIComponent(inv.camera_id)}`;

    async function answer(yes) {
      accept.disabled = true;
      decline.disabled = true;
      rowError.hidden = true;
      try {
        await api(yes ? 'POST' : 'DELETE', yes ? `${path}/accept` : path);
        if (!alive) return;
        status.textContent = yes ? `You can now watch ${camera}.` : `You declined the invitation to ${camera}.`;
        load();
        if (yes && onAccepted) onAccepted();
      } catch (e) {
        if (!alive || e.status === 401) return;
        accept.disabled = false;
        decline.disabled = false;
        rowError.textContent = e.status === 404 ? 'This invitation is no longer open.' : `Could not answer: ${e.message}`;
        rowError.hidden = false;
      }
    }
    accept.addEventListener('click', () => answer(true));
    decline.addEventListener('click', () => answer(false));

    return el('li', { class: 'row', 'data-testid': 'invitation', 'data-camera-id': inv.camera_id },
      el('div', { class: 'row-main' },
        el('span', { class: 'row-text' }, el('strong', { text: by }), ' invites you to watch ', el('strong', { text: camera })),
        el('span', { class: 'row-meta' }, 'Sent ', timeEl(el, inv.created_at, true))),
      el('div', { class: 'actions' }, decline, accept),
      rowError);
  }

  load();

  return {
    reload: load,
    leave() {
      alive = false;
      gen++;
    },
  };
}
