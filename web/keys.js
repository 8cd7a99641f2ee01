// The account page's "Players and recorders" panel: viewer keys for tools that
// cannot sign in (VLC, Home Assistant, Frigate, NVRs). A new key's RTSP and HLS
// addresses are shown once (they carry its secret); listed keys show only
// their name and cameras, with Revoke.
// Plain ES module; app.js hands in its API helper, element builder and cameras.

const $ = (id) => document.getElementById(id);

/** Mounts the panel; returns { leave() }. */
export function mountKeys({ api, el, cameras }) {
  const form = $('key-form');
  const boxes = $('key-cameras');
  const error = $('key-error');
  const created = $('key-created');
  const urls = $('key-urls');
  const list = $('keys-list');
  let alive = true;
  let names = new Map();

  form.reset();
  created.hidden = true;
  urls.replaceChildren();
  showError(null);

  function showError(message) {
    error.textContent = message || '';
    error.hidden = !message;
  }

  async function load() {
    try {
      const [cams, { data: keys }] = await Promise.all([cameras(), api('GET', '/api/v1/viewer-keys')]);
      if (!alive) return;
      names = new Map(cams.map((c) => [c.id, c.name]));
      boxes.replaceChildren(el('legend', { text: 'Cameras' }), ...cams.map((c) => el('label', {},
        el('input', { type: 'checkbox', name: 'camera', value: c.id, 'data-testid': 'key-camera' }),
        document.createTextNode(` ${c.name}`))));
      list.replaceChildren(...keys.map(renderKey));
    } catch (e) {
      if (alive && e.status !== 401) showError(`Could not load your keys: ${e.message}`);
    }
  }

  function renderKey(k) {
    const revoke = el('button', { type: 'button', class: 'btn btn-ghost', text: 'Revoke', 'data-testid': 'key-revoke' });
    revoke.addEventListener('click', async () => {
      revoke.disabled = true;
      try {
        await api('DELETE', `/api/v1/viewer-keys/${encodeURIComponent(k.id)}`);
        created.hidden = true;
        await load();
      } catch (e) {
        revoke.disabled = false;
        showError(`Could not revoke ${k.name}: ${e.message}`);
      }
    });
    const cams = k.cameras.map((c) => names.get(c) || 'a camera no longer yours').join(', ');
    return el('li', { 'data-key-id': k.id }, el('span', { text: `${k.name} · ${cams}` }), revoke);
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    showError(null);
    const name = form.elements.name.value.trim();
    const picked = [...boxes.querySelectorAll('input[name=camera]:checked')].map((i) => i.value);
    if (!name) { showError('Give the key a name.'); return; }
    if (!picked.length) { showError('Pick at least one camera.'); return; }
    try {
      const { data } = await api('POST', '/api/v1/viewer-keys', { name, cameras: picked });
      if (!alive) return;
      form.reset();
      urls.replaceChildren(...data.urls.flatMap((u) => [
        el('li', {}, el('span', { text: `${names.get(u.camera) || u.camera}, RTSP: ` }), el('code', { class: 'secret', text: u.rtsp_url || '(RTSP is off on this server)', 'data-testid': 'key-rtsp-url' })),
        el('li', {}, el('span', { text: `${names.get(u.camera) || u.camera}, HLS: ` }), el('code', { class: 'secret', text: u.hls_url, 'data-testid': 'key-hls-url' })),
      ]));
      created.hidden = false;
      await load();
    } catch (e) {
      if (alive) showError(e.message || 'The key could not be created.');
    }
  }

  form.addEventListener('submit', onSubmit);
  load();
  return {
    leave() {
      alive = false;
      form.removeEventListener('submit', onSubmit);
      urls.replaceChildren();
      created.hidden = true;
    },
  };
}
