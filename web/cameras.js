// Hearth's "Add a camera" page (#/add): an IP camera Hearth pulls over RTSP
// (its address, user name and password), or a camera or app that pushes over
// RTMP (its address with the key is shown once, with a QR code for camera
// apps), or an IP camera at home that a paired home agent pulls for Hearth.
// After adding an RTSP camera the page follows its status until it is live or
// says what is wrong (wrong password, unreachable, unsupported video).
// Plain ES module; app.js hands in its API helper and element builder.

const $ = (id) => document.getElementById(id);

const STATUS_POLL_MS = 1000;

/** What a pulled camera's status means to its owner. */
export const STATUS_TEXT = {
  online: 'Live',
  offline: 'Offline',
  connecting: 'Connecting…',
  auth_failed: 'The camera refused the user name or password',
  unreachable: 'Nothing answers at that address',
  unsupported_codec: 'The camera sends video Hearth cannot play (it needs H.264)',
};

/** Fills the (already visible) add view; returns { leave() }. `checkedStill(id)`
 * resolves to an object URL of the camera's newest still, checked to be its. */
export function showAddCamera({ api, checkedStill, onAdded }) {
  const form = $('add-form');
  const rtspFields = $('add-rtsp-fields');
  const error = $('add-error');
  const submit = $('add-submit');
  const result = $('add-result');
  const status = $('add-status');
  const push = $('add-push');
  const watch = $('add-watch');
  const testButton = $('add-test');
  const trial = $('add-trial');
  const trialStatus = $('add-trial-status');
  const trialPicture = $('add-trial-picture');
  const trialSave = $('add-trial-save');
  const trialDiscard = $('add-trial-discard');
  let alive = true;
  let timer = null;
  let trialCam = null; // a camera on trial, until saved or discarded

  form.reset();
  form.hidden = false;
  trial.hidden = true;
  clearPicture();
  result.hidden = true;
  push.hidden = true;
  watch.hidden = true;
  $('add-ingest-url').textContent = '';
  $('add-ingest-qr').removeAttribute('src');
  showError(null);

  const kind = () => form.elements.kind.value;
  const onKind = () => {
    rtspFields.hidden = kind() === 'rtmp';
    testButton.hidden = kind() === 'rtmp';
    $('add-agent-field').hidden = kind() !== 'agent';
  };
  form.addEventListener('change', onKind);
  onKind();
  loadAgents();

  /** The household's home agents, for cameras Hearth reaches through one. */
  async function loadAgents() {
    const radio = form.querySelector('input[name=kind][value=agent]');
    const select = $('add-agent');
    try {
      const { data: agents } = await api('GET', '/api/v1/agents');
      if (!alive) return;
      select.replaceChildren(...agents.map((a) => {
        const o = document.createElement('option');
        o.value = a.id;
        o.textContent = `${a.name}${a.connected ? '' : ' (not connected)'}`;
        return o;
      }));
      radio.disabled = agents.length === 0;
      $('add-agent-hint').textContent = agents.length ? '' : '(pair one first, under Account)';
    } catch (_) {
      radio.disabled = true;
    }
  }

  function showError(message) {
    error.textContent = message || '';
    error.hidden = !message;
  }

  /** The request the form says, or null (and the reason shown). */
  function requestBody() {
    const f = form.elements;
    const body = { name: f.name.value.trim() };
    if (!body.name) { showError('Give the camera a name.'); f.name.focus(); return null; }
    if (kind() === 'rtsp' || kind() === 'agent') {
      body.rtsp_url = f.rtsp_url.value.trim();
      if (!body.rtsp_url) { showError('Enter the camera’s stream address.'); f.rtsp_url.focus(); return null; }
      if (f.rtsp_sub_url.value.trim()) body.rtsp_sub_url = f.rtsp_sub_url.value.trim();
      body.rtsp_username = f.rtsp_username.value;
      body.rtsp_password = f.rtsp_password.value;
      if (kind() === 'agent') {
        if (!f.agent.value) { showError('Pick the home agent that reaches the camera.'); return null; }
        body.agent = f.agent.value;
      }
    }
    return body;
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    showError(null);
    const f = form.elements;
    const body = requestBody();
    if (!body) return;
    submit.disabled = true;
    try {
      const { data: cam } = await api('POST', '/api/v1/cameras', body);
      if (!alive) return;
      // The password leaves the page with the request.
      f.rtsp_password.value = '';
      form.hidden = true;
      result.hidden = false;
      watch.href = `#/camera/${encodeURIComponent(cam.id)}`;
      if (onAdded) onAdded();
      if (cam.ingest_url) {
        push.hidden = false;
        $('add-ingest-url').textContent = cam.ingest_url;
        if (cam.ingest_qr_svg) $('add-ingest-qr').src = `data:image/svg+xml;base64,${btoa(cam.ingest_qr_svg)}`;
        status.textContent = `${cam.name} is added. It shows live once it sends its picture.`;
        watch.hidden = false;
      } else {
        follow(cam);
      }
    } catch (e) {
      if (alive) showError(e.message || 'The camera could not be added.');
    } finally {
      submit.disabled = false;
    }
  }

  /** Shows the pulled camera's status until it is live, or says why not. */
  function follow(cam) {
    const show = (c) => {
      const text = STATUS_TEXT[c.status] || c.status;
      const detail = c.status !== 'online' && c.source && c.source.last_error ? ` (${c.source.last_error})` : '';
      status.textContent = `${c.name}: ${text}${detail}`;
      status.dataset.status = c.status;
      watch.hidden = c.status !== 'online';
    };
    show(cam);
    const poll = async () => {
      if (!alive) return;
      try {
        const { data: list } = await api('GET', '/api/v1/cameras');
        const c = list.find((x) => x.id === cam.id);
        if (c && alive) show(c);
      } catch (_) { /* the next poll tries again */ }
      if (alive) timer = setTimeout(poll, STATUS_POLL_MS);
    };
    timer = setTimeout(poll, STATUS_POLL_MS);
  }

  // --- Test connection: the camera on trial, its first picture, then save or discard.

  function clearPicture() {
    if (trialPicture.src) URL.revokeObjectURL(trialPicture.src);
    trialPicture.removeAttribute('src');
    trialPicture.hidden = true;
  }

  async function onTest() {
    showError(null);
    const body = requestBody();
    if (!body) return;
    body.test = true;
    testButton.disabled = true;
    try {
      const { data: cam } = await api('POST', '/api/v1/cameras', body);
      if (!alive) { api('DELETE', `/api/v1/cameras/${encodeURIComponent(cam.id)}`).catch(() => {}); return; }
      form.elements.rtsp_password.value = '';
      trialCam = cam;
      form.hidden = true;
      trial.hidden = false;
      trialSave.disabled = true;
      clearPicture();
      followTrial(cam);
    } catch (e) {
      if (alive) showError(e.message || 'The camera could not be tested.');
    } finally {
      testButton.disabled = false;
    }
  }

  /** Shows the trial camera's status until its first picture is here. */
  function followTrial(cam) {
    const poll = async () => {
      if (!alive || trialCam !== cam) return;
      try {
        const { data: list } = await api('GET', '/api/v1/cameras');
        const c = list.find((x) => x.id === cam.id);
        if (c && alive && trialCam === cam) {
          const detail = c.status !== 'online' && c.source && c.source.last_error ? ` (${c.source.last_error})` : '';
          trialStatus.dataset.status = c.status;
          if (c.status !== 'online' || !trialPicture.hidden) {
            trialStatus.textContent = `${c.name}: ${STATUS_TEXT[c.status] || c.status}${detail}`;
          }
          if (c.online && trialPicture.hidden) {
            try {
              const src = await checkedStill(cam.id);
              if (!alive || trialCam !== cam) { URL.revokeObjectURL(src); return; }
              trialPicture.src = src;
              trialPicture.hidden = false;
              trialSave.disabled = false;
              trialStatus.textContent = `${c.name} works: this is its picture now. Save it to keep it.`;
              return;
            } catch (_) { /* no still yet: the next poll tries again */ }
          }
        }
      } catch (_) { /* the next poll tries again */ }
      if (alive && trialCam === cam) timer = setTimeout(poll, STATUS_POLL_MS);
    };
    trialStatus.textContent = `${cam.name}: ${STATUS_TEXT.connecting}`;
    timer = setTimeout(poll, 250);
  }

  async function onSave() {
    const cam = trialCam;
    if (!cam) return;
    trialSave.disabled = true;
    try {
      await api('PATCH', `/api/v1/cameras/${encodeURIComponent(cam.id)}`, { save: true });
      if (!alive) return;
      trialCam = null;
      clearTimeout(timer);
      trial.hidden = true;
      result.hidden = false;
      status.textContent = `${cam.name} is saved.`;
      status.dataset.status = 'online';
      watch.href = `#/camera/${encodeURIComponent(cam.id)}`;
      watch.hidden = false;
      if (onAdded) onAdded();
    } catch (e) {
      trialSave.disabled = false;
      if (alive) trialStatus.textContent = e.message || 'The camera could not be saved.';
    }
  }

  async function discard() {
    const cam = trialCam;
    trialCam = null;
    clearTimeout(timer);
    clearPicture();
    if (cam) await api('DELETE', `/api/v1/cameras/${encodeURIComponent(cam.id)}`).catch(() => {});
  }

  async function onDiscard() {
    await discard();
    if (!alive) return;
    trial.hidden = true;
    form.hidden = false;
  }

  form.addEventListener('submit', onSubmit);
  testButton.addEventListener('click', onTest);
  trialSave.addEventListener('click', onSave);
  trialDiscard.addEventListener('click', onDiscard);
  return {
    leave() {
      alive = false;
      clearTimeout(timer);
      // A camera on trial that was not saved goes with the page.
      discard();
      form.removeEventListener('submit', onSubmit);
      form.removeEventListener('change', onKind);
      testButton.removeEventListener('click', onTest);
      trialSave.removeEventListener('click', onSave);
      trialDiscard.removeEventListener('click', onDiscard);
      form.reset();
    },
  };
}

/** The manage view's "Camera" panel (owners): rename, and remove after a
 * confirmation. `onRemoved` runs once the server has removed it. */
export function mountCameraSettings({ api, cameraId, onChanged, onRemoved }) {
  const form = $('rename-form');
  const input = $('rename-name');
  const status = $('settings-status');
  const error = $('settings-error');
  const remove = $('camera-remove');
  const path = `/api/v1/cameras/${encodeURIComponent(cameraId)}`;
  let alive = true;

  status.textContent = '';
  showError(null);
  api('GET', '/api/v1/cameras').then(({ data }) => {
    const cam = alive && data.find((c) => c.id === cameraId);
    if (cam) input.value = cam.name;
  }).catch(() => {});

  function showError(message) {
    error.textContent = message || '';
    error.hidden = !message;
  }

  async function onRename(ev) {
    ev.preventDefault();
    showError(null);
    const name = input.value.trim();
    if (!name) { showError('Give the camera a name.'); return; }
    try {
      await api('PATCH', path, { name });
      if (!alive) return;
      status.textContent = `Renamed to ${name}.`;
      if (onChanged) onChanged();
    } catch (e) {
      if (alive) showError(e.message || 'The camera could not be renamed.');
    }
  }

  async function onRemove() {
    if (!window.confirm(`Remove ${input.value || 'this camera'}? Its stream stops for everyone.`)) return;
    remove.disabled = true;
    try {
      await api('DELETE', path);
      if (alive && onRemoved) onRemoved();
    } catch (e) {
      if (alive) showError(e.message || 'The camera could not be removed.');
    } finally {
      remove.disabled = false;
    }
  }

  form.addEventListener('submit', onRename);
  remove.addEventListener('click', onRemove);
  return {
    leave() {
      alive = false;
      form.removeEventListener('submit', onRename);
      remove.removeEventListener('click', onRemove);
    },
  };
}
