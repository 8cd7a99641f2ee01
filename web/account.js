// Hearth account page (#/account): where the account is signed in, with Sign out
// for each session, and the change-password form. (The smart displays panel on
// the same page is link.js's.)
// Plain ES module; app.js hands in its API helper and element builder. Text from
// the server only ever goes in as text (el's `text`, text nodes).

const $ = (id) => document.getElementById(id);

/** Keep in step with the server's rule (hearth_access::password::MIN_PASSWORD_CHARS). */
const MIN_PASSWORD_CHARS = 8;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function timeEl(el, iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return el('span', { text: 'an unknown time' });
  return el('time', { datetime: iso, text: dateTime.format(t) });
}

/** "Chrome on Linux" from a User-Agent; something short and honest otherwise. */
export function describeClient(ua) {
  if (!ua) return 'Unknown browser or app';
  const browser = /Edg\//.test(ua) ? 'Edge'
    : /Firefox\//.test(ua) ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua) ? 'Chrome'
        : /Safari\//.test(ua) ? 'Safari' : null;
  const os = /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS'
      : /Windows/.test(ua) ? 'Windows'
        : /CrOS/.test(ua) ? 'ChromeOS'
          : /Mac OS X/.test(ua) ? 'macOS'
            : /Linux/.test(ua) ? 'Linux' : null;
  if (browser && os) return `${browser} on ${os}`;
  if (browser || os) return browser || os;
  return ua.length > 60 ? `${ua.slice(0, 60)}…` : ua;
}

/**
 * Fills the (already visible) account view; returns { leave() }.
 * `deps`: { api, el, signOutHere() (signs this browser out, as the top bar's button) }.
 */
export function showAccount({ api, el, signOutHere }) {
  const list = $('sessions-list');
  const sessionsStatus = $('sessions-status');
  const sessionsError = $('sessions-error');
  const form = $('password-form');
  const current = $('password-current');
  const next = $('password-new');
  const confirm = $('password-confirm');
  const submit = $('password-submit');
  const pwError = $('password-error');
  const pwStatus = $('password-status');
  let alive = true;
  let gen = 0;

  list.replaceChildren();
  sessionsStatus.textContent = '';
  showSessionsError(null);
  form.reset();
  showPasswordError(null);
  pwStatus.textContent = '';

  function showSessionsError(message) {
    sessionsError.textContent = message || '';
    sessionsError.hidden = !message;
  }

  function showPasswordError(message, field) {
    pwError.textContent = message || '';
    pwError.hidden = !message;
    for (const f of [current, next, confirm]) f.removeAttribute('aria-invalid');
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  // --- sessions ---

  async function loadSessions(after) {
    const g = ++gen;
    try {
      const { data } = await api('GET', '/api/v1/sessions');
      if (!alive || g !== gen) return;
      if (!Array.isArray(data)) throw new Error('Unexpected answer from the server.');
      showSessionsError(null);
      // This browser first, then the newest.
      const sorted = [...data].sort((a, b) => Number(!!b.current) - Number(!!a.current));
      list.replaceChildren(...sorted.map(renderSession));
      list.dataset.count = String(data.length);
      if (after) after();
    } catch (e) {
      if (!alive || g !== gen || e.status === 401) return;
      showSessionsError(`Could not load your sessions: ${e.message}`);
    }
  }

  function renderSession(s) {
    const here = !!s.current;
    const name = describeClient(s.client);
    const titleEl = el('span', { class: 'row-title', text: name });
    if (s.client) titleEl.title = String(s.client);
    const where = s.address ? el('span', {}, ' from ', el('span', { class: 'mono', text: String(s.address) })) : null;
    const button = el('button', {
      type: 'button',
      class: 'btn btn-ghost btn-danger',
      'data-testid': 'session-end',
      'data-session-id': s.id,
      text: here ? 'Sign out here' : 'Sign out',
      'aria-label': here ? 'Sign out of this browser' : `Sign out ${name}, signed in ${dateTime.format(Date.parse(s.created_at) || 0)}`,
    });
    const rowError = el('p', { class: 'form-error', role: 'alert', hidden: true });
    button.addEventListener('click', async () => {
      if (here) { signOutHere(); return; }
      button.disabled = true;
      rowError.hidden = true;
      try {
        await api('DELETE', `/api/v1/sessions/${encodeURIComponent(s.id)}`);
        if (!alive) return;
        sessionsStatus.textContent = `Signed out: ${name}.`;
        loadSessions(() => $('sessions-title').focus());
      } catch (e) {
        if (!alive || e.status === 401) return;
        if (e.status === 404) { loadSessions(); return; } // ended meanwhile
        button.disabled = false;
        rowError.textContent = `Could not sign it out: ${e.message}`;
        rowError.hidden = false;
      }
    });
    return el('li', {
      class: 'row',
      'data-testid': 'session',
      'data-session-id': s.id,
      'data-current': here ? 'true' : 'false',
    },
    el('div', { class: 'row-main' },
      el('span', { class: 'row-title-line' }, titleEl, here ? el('span', { class: 'pill pill-ok', 'data-testid': 'session-current', text: 'This browser' }) : null),
      el('span', { class: 'row-meta' }, 'Signed in ', timeEl(el, s.created_at), where, ' · until ', timeEl(el, s.expires_at))),
    button,
    rowError);
  }

  // --- password ---

  async function onSubmit(ev) {
    ev.preventDefault();
    pwStatus.textContent = '';
    showPasswordError(null);
    if (!current.value) { showPasswordError('Enter your current password.', current); return; }
    if ([...next.value].length < MIN_PASSWORD_CHARS) {
      showPasswordError(`The new password needs at least ${MIN_PASSWORD_CHARS} characters.`, next);
      return;
    }
    if (next.value !== confirm.value) { showPasswordError('The two new passwords are not the same.', confirm); return; }
    submit.disabled = true;
    submit.textContent = 'Changing…';
    try {
      await api('POST', '/api/v1/password', { current_password: current.value, new_password: next.value });
      if (!alive) return;
      form.reset();
      sessionsStatus.textContent = '';
      pwStatus.textContent = 'Password changed. Every other session was signed out; this one stays signed in.';
      loadSessions();
    } catch (e) {
      if (!alive || e.status === 401) return;
      if (e.status === 403) {
        current.value = '';
        showPasswordError('Your current password is not correct.', current);
      } else if (e.status === 429) {
        showPasswordError('Too many attempts. Wait a minute, then try again.', current);
      } else {
        showPasswordError(`Could not change the password: ${e.message}`, e.status === 400 ? next : null);
      }
    } finally {
      submit.disabled = false;
      submit.textContent = 'Change password';
    }
  }

  form.addEventListener('submit', onSubmit);
  loadSessions();

  return {
    leave() {
      alive = false;
      gen++;
      form.removeEventListener('submit', onSubmit);
      form.reset();
    },
  };
}
