// The account page's "Home agents" panel: a home agent is Hearth running on a
// computer at home that pulls cameras this server cannot reach (behind the
// home router) and sends them here over TLS. Pairing shows a one-time code
// (valid 10 minutes) and the command that uses it; listed agents show whether
// they are connected and how many cameras they pull, with Remove (its
// credential stops working and its cameras stop at once).
// Plain ES module; app.js hands in its API helper and element builder.

const $ = (id) => document.getElementById(id);

const POLL_MS = 3000;

/** Mounts the panel; returns { leave() }. */
export function mountAgents({ api, el }) {
  const pairButton = $('agent-pair');
  const claim = $('agent-claim');
  const error = $('agents-error');
  const list = $('agents-list');
  const empty = $('agents-empty');
  let alive = true;
  let timer = null;

  claim.hidden = true;
  showError(null);

  function showError(message) {
    error.textContent = message || '';
    error.hidden = !message;
  }

  async function load() {
    try {
      const { data: agents } = await api('GET', '/api/v1/agents');
      if (!alive) return;
      list.replaceChildren(...agents.map(render));
      empty.hidden = agents.length > 0;
      // A code was shown and its agent has paired: the code is used up.
      if (!claim.hidden && agents.length > Number(claim.dataset.before || 0)) claim.hidden = true;
    } catch (e) {
      if (alive && e.status !== 401) showError(`Could not load your home agents: ${e.message}`);
    }
    if (alive) timer = setTimeout(load, POLL_MS);
  }

  function render(a) {
    const remove = el('button', { type: 'button', class: 'btn btn-ghost', text: 'Remove', 'data-testid': 'agent-remove' });
    remove.addEventListener('click', async () => {
      if (!window.confirm(`Remove ${a.name}? Its cameras stop until you pair it again.`)) return;
      remove.disabled = true;
      try {
        await api('DELETE', `/api/v1/agents/${encodeURIComponent(a.id)}`);
      } catch (e) {
        remove.disabled = false;
        showError(`Could not remove ${a.name}: ${e.message}`);
      }
    });
    const state = a.connected ? 'connected' : 'not connected';
    const cams = a.cameras.length === 1 ? '1 camera' : `${a.cameras.length} cameras`;
    return el('li', { 'data-agent-id': a.id, 'data-connected': String(a.connected), 'data-testid': 'agent' },
      el('span', { text: `${a.name} · ${state} · ${cams}` }), remove);
  }

  async function onPair() {
    showError(null);
    pairButton.disabled = true;
    try {
      const before = list.children.length;
      const { data } = await api('POST', '/api/v1/agents/claims', {});
      if (!alive) return;
      $('agent-code').textContent = data.code;
      $('agent-command').textContent = data.command;
      claim.dataset.before = String(before);
      claim.hidden = false;
    } catch (e) {
      if (alive) showError(e.message || 'No pairing code could be made.');
    } finally {
      pairButton.disabled = false;
    }
  }

  pairButton.addEventListener('click', onPair);
  load();
  return {
    leave() {
      alive = false;
      clearTimeout(timer);
      pairButton.removeEventListener('click', onPair);
      claim.hidden = true;
    },
  };
}
