// Hearth account linking (Google Home, Alexa): the consent page that a smart
// display's OAuth flow opens (the server serves this same app at
// /oauth/authorize), and the "Smart displays" panel of the account page.
// Plain ES module; app.js hands in its API helper and element builder.

const $ = (id) => document.getElementById(id);

export const LINK_PATH = '/oauth/authorize';

/** True when this page is the OAuth authorization page, not the camera app. */
export function isLinkPage() {
  return location.pathname === LINK_PATH;
}

// The authorization request's fields that the consent answer repeats, taken from
// the page's own query string (null when absent: the server decides what is required).
const REQUEST_FIELDS = ['client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method', 'scope'];

/** The absolute http(s) URL the server told us to continue at, or null. */
function redirectTarget(data) {
  if (!data || typeof data.redirect !== 'string') return null;
  try {
    const url = new URL(data.redirect);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

function checkedValues(container) {
  return [...container.querySelectorAll('input[type=checkbox]')].filter((c) => c.checked).map((c) => c.value);
}

// ---------------------------------------------------------------------------
// Consent: "<display name> wants to show your cameras", one checkbox per camera,
// Allow / Cancel. Both answers end with the server's redirect back to the display.

/**
 * Fills the (already visible) consent view and returns the view ({ leave() }).
 * `deps`: { api(method, path, body), el(tag, attrs, ...kids) } from app.js.
 */
export function showConsent({ api, el }) {
  const form = $('consent-form');
  const title = $('consent-title');
  const lead = $('consent-lead');
  const fieldset = $('consent-cameras');
  const list = $('consent-camera-list');
  const none = $('consent-none');
  const err = $('consent-error');
  const actions = $('consent-actions');
  const allow = $('consent-allow');
  const deny = $('consent-deny');
  const params = new URLSearchParams(location.search);
  let alive = true;
  let busy = false;
  let loaded = false;

  document.title = 'Link your cameras · Hearth';
  title.textContent = 'Link your cameras';
  lead.textContent = 'Checking the request…';
  list.replaceChildren();
  fieldset.hidden = true;
  actions.hidden = true;
  none.hidden = true;
  resetButtons();
  showError(null);

  function showError(message) {
    err.textContent = message || '';
    err.hidden = !message;
  }

  function resetButtons() {
    allow.textContent = 'Allow';
    deny.textContent = 'Cancel';
    deny.disabled = false;
    updateAllow();
  }

  function updateAllow() {
    const n = checkedValues(list).length;
    allow.disabled = busy || !loaded || n === 0;
    none.hidden = !loaded || n > 0;
  }

  async function answer(approve) {
    if (busy || !loaded) return;
    const cameras = approve ? checkedValues(list) : [];
    if (approve && cameras.length === 0) { updateAllow(); return; }
    busy = true;
    allow.disabled = true;
    deny.disabled = true;
    (approve ? allow : deny).textContent = approve ? 'Linking…' : 'Cancelling…';
    showError(null);
    const body = {};
    for (const k of REQUEST_FIELDS) body[k] = params.get(k);
    body.cameras = cameras;
    body.approve = approve;
    try {
      const { data } = await api('POST', '/api/v1/oauth/authorize', body);
      if (!alive) return;
      const target = redirectTarget(data);
      if (!target) throw new Error('Unexpected answer from the server.');
      // Back to the display's app; the buttons stay disabled while the page leaves.
      location.assign(target);
    } catch (e) {
      if (!alive || e.status === 401) return; // 401: app.js signs out and asks again
      busy = false;
      resetButtons();
      showError(e.message || 'Linking failed. Please try again.');
    }
  }

  const onSubmit = (ev) => { ev.preventDefault(); answer(true); };
  const onDeny = () => { answer(false); };
  const onChange = () => updateAllow();
  form.addEventListener('submit', onSubmit);
  deny.addEventListener('click', onDeny);
  list.addEventListener('change', onChange);

  function render(data) {
    const name = data.display_name || 'A smart display';
    title.textContent = `${name} wants to show your cameras`;
    document.title = `Link ${name} · Hearth`;
    const cams = data.cameras;
    list.replaceChildren(...cams.map((cam, i) => {
      const box = el('input', {
        type: 'checkbox',
        id: `consent-cam-${i}`,
        name: 'camera',
        value: cam.id,
        checked: true,
        'data-testid': 'consent-camera',
      });
      const label = el('label', { for: box.id },
        el('span', { class: 'choice-name', text: cam.name }),
        cam.online ? null : el('span', { class: 'muted', text: ' (offline)' }));
      return el('li', { class: 'choice' }, box, label);
    }));
    if (cams.length) {
      lead.textContent = `Choose the cameras ${name} may show. You can change this or unlink it at any time under Account, Smart displays, in Hearth.`;
      fieldset.hidden = false;
    } else {
      lead.textContent = `You have no cameras that ${name} could show.`;
    }
    loaded = true;
    actions.hidden = false;
    updateAllow();
  }

  // The page's own query string goes to the server unchanged: it checks the client,
  // redirect URI, PKCE challenge and scope, and names the display and our cameras.
  api('GET', `/api/v1/oauth/request${location.search}`)
    .then(({ data }) => {
      if (!alive) return;
      if (!data || !Array.isArray(data.cameras)) throw new Error('Unexpected answer from the server.');
      render(data);
    })
    .catch((e) => {
      if (!alive || e.status === 401) return;
      lead.textContent = 'This link request cannot be completed.';
      showError(e.message || 'The request could not be checked.');
    });

  title.focus();

  return {
    leave() {
      alive = false;
      form.removeEventListener('submit', onSubmit);
      deny.removeEventListener('click', onDeny);
      list.removeEventListener('change', onChange);
    },
  };
}

// ---------------------------------------------------------------------------
// Smart displays panel: each linked integration with the cameras it may show,
// a camera chooser (Save) and Unlink.

/**
 * Loads the panel on the account page and returns { leave() }.
 * `deps`: { api, el, cameras() -> Promise<the user's camera list> } from app.js.
 */
export function mountIntegrations({ api, el, cameras }) {
  const list = $('integrations-list');
  const empty = $('integrations-empty');
  const err = $('integrations-error');
  let alive = true;
  let gen = 0; // answers for an older load are dropped

  function showError(message) {
    err.textContent = message || '';
    err.hidden = !message;
  }

  /** (Re)loads the panel; `after` runs once it is rendered (focus, notes). */
  async function load(after) {
    const g = ++gen;
    try {
      const [{ data }, cams] = await Promise.all([
        api('GET', '/api/v1/integrations'),
        cameras().catch(() => []),
      ]);
      if (!alive || g !== gen) return;
      if (!Array.isArray(data)) throw new Error('Unexpected answer from the server.');
      showError(null);
      list.replaceChildren(...data.map((link) => renderLink(link, Array.isArray(cams) ? cams : [])));
      empty.hidden = data.length > 0;
      if (after) after();
    } catch (e) {
      if (!alive || g !== gen || e.status === 401) return;
      showError(`Could not load your smart displays: ${e.message}`);
    }
  }

  function renderLink(link, cams) {
    const key = String(link.integration);
    const name = link.display_name || key;
    const linked = Array.isArray(link.cameras) ? link.cameras : [];
    const shared = new Set(linked.map((c) => c.id));
    // Every camera of the user, plus any linked camera no longer in that list.
    const all = cams.map((c) => ({ id: c.id, name: c.name }));
    for (const c of linked) if (!all.some((x) => x.id === c.id)) all.push(c);

    const titleId = `link-${key}-title`;
    const since = Date.parse(link.linked_at);
    const meta = Number.isFinite(since)
      ? el('p', { class: 'muted' }, 'Linked ', el('time', {
        datetime: link.linked_at,
        text: new Date(since).toLocaleDateString(undefined, { dateStyle: 'medium' }),
      }))
      : null;
    const showing = linked.length
      ? el('ul', { class: 'chips', 'aria-label': `Cameras ${name} shows`, 'data-testid': `link-cameras-${key}` },
        ...linked.map((c) => el('li', { class: 'chip', 'data-camera-id': c.id, text: c.name })))
      : el('p', { class: 'muted', 'data-testid': `link-cameras-${key}`, text: `${name} shows no cameras.` });

    const boxes = el('ul', {}, ...all.map((c, i) => {
      const box = el('input', {
        type: 'checkbox',
        id: `link-${key}-cam-${i}`,
        value: c.id,
        checked: shared.has(c.id),
        'data-testid': `link-camera-${key}`,
      });
      return el('li', { class: 'choice' }, box, el('label', { for: box.id, text: c.name }));
    }));
    const status = el('p', { class: 'muted', role: 'status', 'data-testid': `link-status-${key}` });
    const rowErr = el('p', { class: 'form-error', role: 'alert', hidden: true });
    const save = el('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': `link-save-${key}`, text: 'Save' });
    const unlink = el('button', { type: 'button', class: 'btn btn-ghost btn-danger', 'data-testid': `unlink-${key}`, text: 'Unlink' });
    save.setAttribute('aria-describedby', titleId);
    unlink.setAttribute('aria-describedby', titleId);

    function setBusy(b) { save.disabled = b; unlink.disabled = b; }
    function fail(message) { rowErr.textContent = message; rowErr.hidden = false; }

    boxes.addEventListener('change', () => { status.textContent = ''; });

    save.addEventListener('click', async () => {
      setBusy(true);
      rowErr.hidden = true;
      status.textContent = 'Saving…';
      try {
        await api('PUT', `/api/v1/integrations/${encodeURIComponent(key)}/cameras`, { cameras: checkedValues(boxes) });
        if (!alive) return;
        load(() => {
          const again = list.querySelector(`[data-testid="link-save-${key}"]`);
          const note = list.querySelector(`[data-testid="link-status-${key}"]`);
          if (note) note.textContent = 'Saved.';
          if (again) again.focus();
        });
      } catch (e) {
        if (!alive || e.status === 401) return;
        status.textContent = '';
        setBusy(false);
        fail(`Could not save: ${e.message}`);
      }
    });

    unlink.addEventListener('click', async () => {
      setBusy(true);
      rowErr.hidden = true;
      unlink.textContent = 'Unlinking…';
      try {
        await api('DELETE', `/api/v1/integrations/${encodeURIComponent(key)}`);
        if (!alive) return;
        load(() => $('integrations-title').focus());
      } catch (e) {
        if (!alive || e.status === 401) return;
        unlink.textContent = 'Unlink';
        setBusy(false);
        fail(`Could not unlink: ${e.message}`);
      }
    });

    const chooser = el('fieldset', { class: 'choice-list' },
      el('legend', { text: `Cameras ${name} may show` }),
      all.length ? boxes : el('p', { class: 'muted', text: 'No cameras.' }));

    return el('li', { class: 'integration-card', 'data-testid': `integration-${key}`, 'data-integration': key },
      el('div', { class: 'integration-head' },
        el('h3', { id: titleId, text: name }),
        meta),
      showing,
      chooser,
      rowErr,
      el('div', { class: 'actions' }, status, save, unlink));
  }

  load();

  return {
    leave() {
      alive = false;
      gen++;
    },
  };
}
