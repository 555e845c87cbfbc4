// test-server web inbox: one page, hash routes, plain DOM.
//
// Everything shown here comes from an SMTP test server, so every value from the API is
// hostile by assumption. It reaches the page only as text (textContent / text nodes) or in
// a data-* or title attribute; links and frames only ever point at our own /api/v1 URLs or
// #/ routes, with ids checked against ID_RE and encoded. No HTML is ever parsed from data.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const enc = encodeURIComponent;
// Ids as the store makes them ("000001"). No dots allowed: "..", even encoded, is still a
// path segment the URL parser would resolve, climbing out of /api/v1/messages/.
const ID_RE = /^[A-Za-z0-9_-]+$/;
const PART_RE = /^[0-9]+(\.[0-9]+)*$/;
const PAGE_SIZE = 50;

// The only URLs we ever put into href/src.
function safeUrl(url) {
  if (!/^(#\/|\/api\/v1\/)/.test(url)) throw new Error('refusing URL ' + url);
  return url;
}

// el('td', {class: 'from', title: t}, 'text', childNode): strings become text nodes.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (/^on/i.test(k)) throw new Error('no event attributes');
    e.setAttribute(k, k === 'href' || k === 'src' ? safeUrl(v) : v === true ? '' : String(v));
  }
  for (const kid of kids) if (kid != null && kid !== false) e.append(kid);
  return e;
}

const text = (v) => (v == null ? '' : String(v));

// --- API --------------------------------------------------------------------------------

// Requests that change something carry a JSON body: POST and PUT need one (which keeps
// cross-site forms out); DELETE ignores it.
async function api(path, method = 'GET', body) {
  const opts = { method, headers: { Accept: 'application/json' } };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body || {});
  }
  const res = await fetch('/api/v1' + path, opts);
  if (!res.ok) {
    // Errors are {"error": "one sentence"}; anything else falls back to the status line.
    const j = await res.json().catch(() => null);
    throw new Error(j && typeof j.error === 'string' ? j.error : `${res.status} ${res.statusText}`);
  }
  if (res.status === 204) return null;
  return (res.headers.get('Content-Type') || '').includes('json') ? res.json() : res.text();
}

function showError(msg) {
  $('#error-text').textContent = msg instanceof Error ? msg.message : text(msg);
  $('#error').hidden = false;
}
$('#error-close').addEventListener('click', () => { $('#error').hidden = true; });

// --- formatting -------------------------------------------------------------------------

function humanSize(n) {
  n = Number(n) || 0;
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return n.toFixed(1) + ' ' + units[i];
}

function duration(ms) {
  ms = Number(ms) || 0;
  return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
}

// A <time> in local time, the full date and zone in its title.
function timeEl(ms) {
  const d = new Date(Number(ms));
  if (!Number.isFinite(d.getTime())) return el('span', { class: 'muted' }, '—');
  const short = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return el('time', { datetime: d.toISOString(), title: d.toString() }, short);
}

function badges(tls, user, failedAuth) {
  return [
    tls ? el('span', { class: 'badge good' }, 'TLS') : el('span', { class: 'badge' }, 'plain'),
    user != null ? el('span', { class: 'badge', title: 'authenticated as ' + user }, 'AUTH ' + user) : null,
    failedAuth ? el('span', { class: 'badge bad' }, 'auth failed') : null,
  ].filter(Boolean);
}

function idLink(kind, id) {
  return ID_RE.test(text(id)) ? el('a', { href: `#/${kind}/${enc(id)}` }, id) : el('span', null, text(id));
}

function interleave(nodes, sep) {
  return nodes.flatMap((n, i) => (i ? [sep, n] : [n]));
}

// C:/S: prefixes of a transcript line, for colouring.
const lineKind = (l) => (/^C:/.test(l) ? 'client' : /^S:/.test(l) ? 'server' : 'event');

function dlPairs(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
}

const findRow = (tbody, id) => [...tbody.rows].find((tr) => tr.dataset.id === id);

// Rows open on click or Enter, except when the click was on a control inside the row.
function openRows(tbody, route) {
  const open = (ev) => {
    const tr = ev.target.closest('tr[data-id]');
    if (tr && !ev.target.closest('a, button, input, select, label')) location.hash = route(tr.dataset.id);
  };
  tbody.addEventListener('click', open);
  tbody.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && ev.target.matches('tr[data-id]')) open(ev);
  });
}

// --- router -----------------------------------------------------------------------------

const main = $('#app');
let page = null; // the current page's handlers: { event(type, data) }
let firstRoute = true;

function mount(tpl, title, nav) {
  document.title = 'test-server: ' + title; // fixed words and a route id, never message data
  main.replaceChildren(document.getElementById(tpl).content.cloneNode(true));
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.id === 'nav-' + nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Move focus to the new page's heading, as a screen reader would expect after navigation.
  if (!firstRoute) $('h2', main)?.focus();
}

const routes = [
  [/^\/$/, renderInbox],
  [/^\/messages\/([A-Za-z0-9_-]+)$/, renderMessage],
  [/^\/sessions$/, renderSessions],
  [/^\/sessions\/([A-Za-z0-9_-]+)$/, renderSession],
  [/^\/diff$/, renderDiff],
  [/^\/faults$/, renderFaults],
];

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  $('#error').hidden = true;
  page = null;
  const hit = routes.find(([re]) => re.test(path));
  if (hit) {
    page = hit[1](params, ...hit[0].exec(path).slice(1));
  } else {
    document.title = 'test-server: not found';
    main.replaceChildren(el('p', { class: 'empty' }, 'No such page. ', el('a', { href: '#/' }, 'Go to the inbox')));
  }
  firstRoute = false;
}

// --- inbox ------------------------------------------------------------------------------

// The search lives in the URL (#/?q=...); the message page's "← Inbox" link returns to it.
let inboxHash = '#/';

// Mirrors the server's `q`: any address (envelope or header) or the subject, ignoring case.
function matchesSearch(m, q) {
  if (!q) return true;
  const env = m.envelope || {};
  const hay = [m.subject, m.from, ...(m.to || []), ...(m.cc || []), env.from, ...(env.recipients || [])];
  q = q.toLowerCase();
  return hay.some((s) => typeof s === 'string' && s.toLowerCase().includes(q));
}

function messageRow(m) {
  const env = m.envelope || {};
  const to = [...(m.to || []), ...(m.cc || [])];
  const rcpts = env.recipients || [];
  return el('tr', { class: 'message', 'data-id': m.id, tabindex: 0 },
    el('td', { class: 'from', title: 'MAIL FROM: <' + text(env.from) + '>' }, text(m.from || env.from) || '—'),
    el('td', { class: 'to', title: 'RCPT TO: ' + rcpts.join(', ') }, (to.length ? to : rcpts).join(', ')),
    el('td', { class: 'subject' + (m.subject ? '' : ' muted') }, m.subject ? text(m.subject) : '(no subject)'),
    el('td', { class: 'date' }, timeEl(m.received_unix_ms)),
    el('td', { class: 'size num', title: (Number(m.size) || 0) + ' bytes' }, humanSize(m.size)),
    el('td', { class: 'attachments num', title: (m.attachments || 0) + ' attachment(s)' }, m.attachments ? String(m.attachments) : ''),
    el('td', { class: 'security' }, ...badges(m.tls, m.auth_user)));
}

function renderInbox(params) {
  mount('tpl-inbox', 'inbox', 'inbox');
  inboxHash = location.hash || '#/';
  let searchQ = params.get('q') || '';
  const search = $('#search'), body = $('#inbox tbody'), empty = $('#inbox-empty');
  const count = $('#inbox-count'), more = $('#inbox-more');
  search.value = searchQ;
  let total = 0, seq = 0, timer = 0;

  function sync() {
    const n = body.rows.length;
    empty.hidden = n > 0;
    empty.textContent = searchQ ? 'No message matches the search.' : 'No messages yet: send one to the SMTP port.';
    count.textContent = n ? `${n} of ${total}` : '';
    more.hidden = n >= total;
  }

  async function load(append) {
    const mine = ++seq; // a slower, older answer must not overwrite a newer one
    const offset = append ? body.rows.length : 0;
    try {
      const r = await api(`/messages?q=${enc(searchQ)}&limit=${PAGE_SIZE}&offset=${offset}`);
      if (mine !== seq) return;
      if (!append) body.replaceChildren();
      total = r.total;
      for (const m of r.messages) if (!findRow(body, m.id)) body.append(messageRow(m));
    } catch (e) {
      if (mine === seq) showError(e);
    }
    sync();
  }

  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      searchQ = search.value.trim();
      // Keep the search in the URL without triggering a hashchange (and a re-render).
      inboxHash = searchQ ? '#/?q=' + enc(searchQ) : '#/';
      history.replaceState(null, '', inboxHash);
      load(false);
    }, 250);
  });
  more.addEventListener('click', () => load(true));
  $('#delete-all').addEventListener('click', async () => {
    if (!confirm('Delete all messages?')) return;
    try { await api('/messages', 'DELETE'); } catch (e) { showError(e); }
    load(false);
  });
  openRows(body, (id) => '#/messages/' + enc(id));
  load(false);

  return {
    event(type, d) {
      if (type === 'message' && d && matchesSearch(d, searchQ) && !findRow(body, d.id)) {
        const tr = messageRow(d);
        tr.classList.add('new');
        body.prepend(tr);
        total++;
        sync();
      } else if (type === 'deleted' || type === 'resync') {
        load(false);
      }
    },
  };
}

// --- one message ------------------------------------------------------------------------

function htmlFrame(base, remote) {
  const f = document.createElement('iframe');
  f.id = 'message-html';
  // An empty sandbox: no scripts, no same-origin, no forms, no popups, no top navigation.
  // Set before src so the very first load is already sandboxed.
  f.setAttribute('sandbox', '');
  f.setAttribute('referrerpolicy', 'no-referrer');
  f.title = 'HTML part of the message';
  f.src = safeUrl(base + '/html' + (remote ? '?remote=1' : ''));
  return f;
}

function partNode(node, base) {
  const kids = node.children || [];
  const bits = [node.content_type || 'unknown type', node.filename, humanSize(node.size), node.disposition];
  const li = el('li', { 'data-part': node.part },
    el('code', null, text(node.part)), ' ', bits.filter((b) => b != null && b !== '').map(text).join(' · '));
  if (!kids.length && PART_RE.test(text(node.part))) {
    li.append(' ', el('a', { class: 'part-link', href: `${base}/parts/${enc(node.part)}`, download: '' }, 'download'));
  }
  if (kids.length) li.append(el('ul', null, ...kids.map((k) => partNode(k, base))));
  return li;
}

const ENVELOPE_LABELS = {
  from: 'MAIL FROM', recipients: 'RCPT TO', mail_parameters: 'MAIL parameters',
  rcpt_parameters: 'RCPT parameters', auth_user: 'AUTH user', tls: 'TLS', peer: 'Peer',
  helo: 'EHLO/HELO', bdat: 'BDAT', chunk_sizes: 'BDAT chunk sizes', binarymime: 'BINARYMIME',
};

function fmtValue(v) {
  if (v == null || v === '') return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.length ? v.map((x) => (Array.isArray(x) ? x.join(' ') || '—' : fmtValue(x))).join('\n') : '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function fillTranscriptPre(pre, t) {
  pre.replaceChildren(...text(t).split('\n').map((l) => el('span', { class: lineKind(l) }, l + '\n')));
}

function renderMessage(params, id) {
  mount('tpl-message', 'message ' + id, 'inbox');
  const base = '/api/v1/messages/' + enc(id);
  const tabs = [...main.querySelectorAll('[role=tab]')];
  let rawLoaded = false;

  function select(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1; // roving tabindex: Tab enters the list, arrows move in it
      document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (tab.id === 'tab-raw' && !rawLoaded) {
      rawLoaded = true;
      api(`/messages/${enc(id)}/raw`)
        .then((raw) => { $('#message-raw').textContent = text(raw); })
        .catch((e) => { $('#message-raw').textContent = ''; rawLoaded = false; showError(e); });
    }
  }
  for (const t of tabs) t.addEventListener('click', () => select(t));
  $('.tabs', main).addEventListener('keydown', (ev) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
    if (!step) return;
    const next = tabs[(tabs.indexOf(document.activeElement) + step + tabs.length) % tabs.length];
    next.focus();
    select(next);
  });

  $('a[href="#/"]', main).setAttribute('href', safeUrl(inboxHash));
  const rawLink = $('#message-raw-link');
  rawLink.setAttribute('href', safeUrl(base + '/raw'));
  rawLink.setAttribute('download', `message-${id}.eml`); // id matched ID_RE in the route

  $('#delete-message').addEventListener('click', async () => {
    try {
      await api('/messages/' + enc(id), 'DELETE');
      location.hash = inboxHash;
    } catch (e) { showError(e); }
  });

  $('#remote-images').addEventListener('change', (ev) => {
    const old = $('#message-html');
    // A fresh iframe rather than a new src, so the sandbox applies from its first load.
    if (old) old.replaceWith(htmlFrame(base, ev.target.checked));
  });

  api('/messages/' + enc(id)).then((m) => {
    const env = m.envelope || {};
    $('#message-subject').textContent = m.subject ? text(m.subject) : '(no subject)';
    $('#message-from').textContent = text(m.from || env.from) || '—';
    $('#message-to').textContent = [...(m.to || []), ...(m.cc || []).map((c) => 'cc: ' + c)].join(', ') || '—';
    $('#message-date').textContent = m.date ? text(m.date) : '—';
    $('#message-received').replaceChildren(timeEl(m.received_unix_ms));
    $('#message-size').textContent = humanSize(m.size);
    $('#message-size').title = m.size + ' bytes';
    $('#message-security').replaceChildren(...badges(m.tls, m.auth_user));
    if (m.session && ID_RE.test(m.session)) {
      const a = $('#message-session');
      a.setAttribute('href', safeUrl('#/sessions/' + enc(m.session)));
      a.textContent = 'Session ' + m.session;
      a.hidden = false;
    }

    const pre = $('#message-text');
    pre.textContent = m.text == null ? '(no text/plain part)' : text(m.text);
    pre.classList.toggle('muted', m.text == null);

    if (m.html) $('#html-holder').replaceChildren(htmlFrame(base, false));
    else {
      $('#html-holder').replaceChildren(el('p', { class: 'empty' }, 'This message has no HTML part.'));
      $('#remote-images').disabled = true;
    }

    $('#headers-table tbody').replaceChildren(...(m.headers || []).map(([k, v]) =>
      el('tr', null, el('th', { scope: 'row' }, text(k)), el('td', null, text(v)))));

    if (m.parts) $('#mime-tree').replaceChildren(partNode(m.parts, base));

    const atts = m.attachments || [];
    $('#tab-attachments .count').textContent = atts.length ? `(${atts.length})` : '';
    $('#attachments-empty').hidden = atts.length > 0;
    $('#attachment-list').replaceChildren(...atts.map((a) => {
      const name = text(a.filename) || 'part ' + text(a.part);
      // download="" lets the server's Content-Disposition pick the (safe) file name.
      const link = PART_RE.test(text(a.part))
        ? el('a', { class: 'attachment', href: `${base}/parts/${enc(a.part)}`, download: '' }, name)
        : el('span', null, name);
      return el('li', null, link, ' ', el('span', { class: 'muted' }, `${text(a.content_type)} · ${humanSize(a.size)}`));
    }));

    dlPairs($('#envelope'), Object.entries(env).map(([k, v]) =>
      [ENVELOPE_LABELS[k] || k, k === 'from' && v === '' ? '<> (null reverse-path)' : fmtValue(v)]));

    fillTranscriptPre($('#message-transcript'), m.transcript);

    // Start on the text part; an HTML-only message starts on its HTML.
    select(m.text == null && m.html ? $('#tab-html') : $('#tab-text'));
  }).catch((e) => {
    $('#message-subject').textContent = 'Message ' + id + ' is not available';
    showError(e);
  });

  return {
    event(type, d) {
      if (type === 'deleted' && d && (d.all || (d.ids || []).includes(id))) showError('This message has been deleted.');
    },
  };
}

// --- sessions ---------------------------------------------------------------------------

function sessionRow(s) {
  return el('tr', { class: 'session' + (s.ok ? '' : ' failed'), 'data-id': s.id, 'data-reason': s.reason, 'data-ok': String(!!s.ok), tabindex: 0 },
    el('td', { class: 'pick-cell' }, el('input', { type: 'checkbox', class: 'pick', title: 'pick session ' + text(s.id) + ' for a diff' })),
    el('td', { class: 'id' }, text(s.id)),
    el('td', { class: 'peer' }, text(s.peer)),
    el('td', { class: 'helo' }, text(s.helo) || '—'),
    el('td', { class: 'started' }, timeEl(s.started_unix_ms)),
    el('td', { class: 'duration num' }, duration(s.duration_ms)),
    el('td', { class: 'reason', title: text(s.reason) }, text(s.reason_text || s.reason)),
    el('td', { class: 'messages' }, ...interleave((s.messages || []).map((m) => idLink('messages', m)), ' ')),
    el('td', { class: 'security' }, ...badges(s.tls, s.auth_user, s.failed_auth)));
}

const olderFirst = (x, y) => (x.started_unix_ms - y.started_unix_ms) || (x.id < y.id ? -1 : 1);

function renderSessions() {
  mount('tpl-sessions', 'sessions', 'sessions');
  const body = $('#sessions tbody'), btn = $('#diff-picked');
  const known = new Map();
  let picked = [], total = 0;

  function add(s, front) {
    if (!s || findRow(body, s.id)) return;
    known.set(s.id, s);
    const tr = sessionRow(s);
    if (front) { tr.classList.add('new'); body.prepend(tr); } else body.append(tr);
  }
  function sync() {
    $('#sessions-empty').hidden = body.rows.length > 0;
    $('#sessions-count').textContent = body.rows.length ? `${body.rows.length} of ${total}` : '';
  }

  // At most two picks: ticking a third unticks the earliest.
  body.addEventListener('change', (ev) => {
    if (!ev.target.matches('input.pick')) return;
    const id = ev.target.closest('tr').dataset.id;
    picked = picked.filter((p) => p !== id);
    if (ev.target.checked) picked.push(id);
    while (picked.length > 2) {
      const box = findRow(body, picked.shift())?.querySelector('input.pick');
      if (box) box.checked = false;
    }
    btn.disabled = picked.length !== 2;
  });
  btn.addEventListener('click', () => {
    const [a, b] = picked.map((id) => known.get(id)).sort(olderFirst);
    location.hash = `#/diff?a=${enc(a.id)}&b=${enc(b.id)}`;
  });
  openRows(body, (id) => '#/sessions/' + enc(id));

  function load() {
    api('/sessions?limit=100').then((r) => {
      total = r.total;
      body.replaceChildren();
      for (const s of r.sessions) add(s, false);
      for (const id of picked) { const box = findRow(body, id)?.querySelector('input.pick'); if (box) box.checked = true; }
    }).catch(showError).finally(sync);
  }
  load();

  return {
    event(type, d) {
      if (type === 'session' && d && !findRow(body, d.id)) { add(d, true); total++; sync(); }
      if (type === 'resync') load();
    },
  };
}

// --- one session ------------------------------------------------------------------------

const LINE_KINDS = ['client', 'server', 'event', 'note'];
const STATUSES = ['pass', 'fail', 'not-applicable'];

// Explain notes sit under their line (or check) in a smaller, muted list.
const notesList = (notes) => (notes?.length ? el('ul', { class: 'explain' }, ...notes.map((n) => el('li', null, text(n)))) : null);

function lineItem(l) {
  const kind = LINE_KINDS.includes(l.kind) ? l.kind : 'event';
  return el('li', { class: 'line ' + kind }, el('code', null, text(l.text)), notesList(l.explain));
}

function checkItem(c) {
  const st = STATUSES.includes(c.status) ? c.status : 'not-applicable';
  return el('li', { class: 'check ' + st, 'data-id': c.id },
    el('span', { class: 'status' }, st === 'not-applicable' ? 'n/a' : st), ' ',
    el('strong', null, text(c.title)), ' ', el('span', { class: 'muted' }, text(c.rfc)),
    c.detail ? el('p', null, text(c.detail)) : null,
    c.evidence && c.evidence !== c.detail ? el('pre', { class: 'evidence' }, text(c.evidence)) : null,
    c.fix ? el('p', { class: 'fix' }, 'Fix: ' + text(c.fix)) : null, notesList(c.explain));
}

function renderSession(params, id) {
  mount('tpl-session', 'session ' + id, 'sessions');
  $('#session-title').textContent = 'Session ' + id;
  const ol = $('#transcript'), explain = $('#explain'), profile = $('#profile');
  explain.addEventListener('change', () => ol.classList.toggle('hide-explain', !explain.checked));

  api('/sessions/' + enc(id)).then((s) => {
    const reason = $('#session-reason');
    reason.textContent = text(s.reason_text || s.reason) + (s.ok ? '' : ' — failed session');
    reason.title = text(s.reason);
    reason.classList.toggle('error', !s.ok);
    dlPairs($('#session-meta'), [
      ['Peer', text(s.peer)], ['EHLO/HELO', text(s.helo) || '—'], ['Started', timeEl(s.started_unix_ms)],
      ['Took', duration(s.duration_ms)], ['Security', el('span', null, ...badges(s.tls, s.auth_user, s.failed_auth))],
      ['Messages', el('span', null, ...(s.messages?.length ? interleave(s.messages.map((m) => idLink('messages', m)), ' ') : ['none']))],
    ]);
    const lines = Array.isArray(s.lines) ? s.lines
      : text(s.transcript).split('\n').map((t) => ({ kind: lineKind(t), text: t }));
    ol.replaceChildren(...lines.map(lineItem));
  }).catch((e) => {
    $('#session-reason').textContent = 'Session ' + id + ' is not available.';
    showError(e);
  });

  let seq = 0;
  async function loadScorecard() {
    const mine = ++seq, verdict = $('#score-verdict'), list = $('#checks');
    const p = profile.value;
    try {
      const sc = await api(`/sessions/${enc(id)}/scorecard` + (p ? '?profile=' + enc(p) : ''));
      if (mine !== seq) return;
      const checks = sc.checks || [];
      const failed = checks.filter((c) => c.status === 'fail').length;
      verdict.textContent = `${text(sc.profile)}: ${sc.passed ? 'passed' : 'failed'} — ${checks.length} checks, ${failed} failed`;
      verdict.className = sc.passed ? 'good' : 'error';
      list.replaceChildren(...checks.map(checkItem));
    } catch (e) {
      if (mine !== seq) return;
      verdict.textContent = 'No scorecard: ' + e.message;
      verdict.className = 'error';
      list.replaceChildren();
    }
  }
  profile.addEventListener('change', loadScorecard);
  loadScorecard();
  return null;
}

// --- diff -------------------------------------------------------------------------------

const DIFF_KINDS = ['equal', 'delete', 'insert', 'replace'];

function diffRow(r) {
  const kind = DIFF_KINDS.includes(r.kind) ? r.kind : 'replace';
  const cell = (side, t) => el('td', { class: side + (t == null ? ' blank' : '') },
    t == null ? null : el('code', { class: lineKind(text(t)) }, text(t)));
  return el('tr', { class: 'diff-row ' + kind }, cell('left', r.left), cell('right', r.right));
}

function sessionLabel(s, withId = true) {
  const d = new Date(Number(s.started_unix_ms));
  const when = Number.isFinite(d.getTime()) ? d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }) : '';
  return [withId ? s.id : '', s.peer, s.reason, when].map(text).filter(Boolean).join(' · ');
}

function renderDiff(params) {
  mount('tpl-diff', 'diff', 'diff');
  const selA = $('#diff-a'), selB = $('#diff-b'), verdict = $('#diff-verdict'), body = $('#diff tbody');
  let a = params.get('a') || '', b = params.get('b') || '', seq = 0;

  function head(th, side, s) {
    th.replaceChildren(side + ': ', idLink('sessions', s.id), ' ', el('span', { class: 'muted' }, sessionLabel(s, false)));
  }
  async function loadDiff() {
    const mine = ++seq;
    $('#diff-hint').hidden = Boolean(a && b);
    if (!a || !b) { body.replaceChildren(); verdict.textContent = ''; return; }
    try {
      const d = await api(`/diff?a=${enc(a)}&b=${enc(b)}`);
      if (mine !== seq) return;
      const n = d.rows.filter((r) => r.kind !== 'equal').length;
      verdict.textContent = d.identical ? 'identical' : `${n} lines differ`;
      verdict.className = d.identical ? 'good' : 'error';
      head($('#diff-head-a'), 'A', d.a);
      head($('#diff-head-b'), 'B', d.b);
      body.replaceChildren(...d.rows.map(diffRow));
    } catch (e) {
      if (mine !== seq) return;
      verdict.textContent = '';
      body.replaceChildren();
      showError(e);
    }
  }
  function changed() {
    a = selA.value; b = selB.value;
    history.replaceState(null, '', `#/diff?a=${enc(a)}&b=${enc(b)}`);
    loadDiff();
  }
  selA.addEventListener('change', changed);
  selB.addEventListener('change', changed);

  api('/sessions?limit=100').then((r) => {
    const opts = (wanted) => {
      const list = r.sessions.map((s) => el('option', { value: s.id }, sessionLabel(s)));
      // A session older than the hundred listed still gets an entry when the URL names it.
      if (wanted && !r.sessions.some((s) => s.id === wanted)) list.unshift(el('option', { value: wanted }, wanted));
      return list;
    };
    selA.append(...opts(a));
    selB.append(...opts(b));
    selA.value = a;
    selB.value = b;
  }).catch(showError);
  loadDiff();
  return null;
}

// --- faults -----------------------------------------------------------------------------

function renderFaults() {
  mount('tpl-faults', 'faults', 'faults');
  const list = $('#fault-list'), input = $('#fault-input'), err = $('#fault-error');
  let current = [];

  function show(r) {
    current = r.faults || [];
    list.replaceChildren(...current.map((f) => el('li', { class: 'fault', 'data-fault': f },
      el('code', null, text(f)), ' ', el('button', { type: 'button', class: 'remove', title: 'remove ' + text(f) }, 'Remove'))));
    $('#fault-empty').hidden = current.length > 0;
    if (!r.available) return;
    $('#fault-syntaxes').replaceChildren(...r.available.map((a) => el('option', { value: a.syntax })));
    $('#fault-available tbody').replaceChildren(...r.available.map((a) => el('tr', null,
      el('td', null, el('code', null, text(a.name))), el('td', null, el('code', null, text(a.syntax))),
      el('td', null, text(a.description)),
      el('td', null, el('button', { type: 'button', class: 'use', 'data-syntax': a.syntax }, 'Use')))));
  }

  // Every change answers like GET /faults; if one answers with nothing, ask again.
  async function change(method, body) {
    err.hidden = true;
    try {
      const r = await api('/faults', method, body);
      show(r && Array.isArray(r.faults) ? r : await api('/faults'));
      return true;
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      return false;
    }
  }

  async function addFault() {
    const f = input.value.trim();
    if (!f) { err.textContent = 'Type a fault first, such as one of the syntaxes below.'; err.hidden = false; return; }
    if (await change('POST', { fault: f })) input.value = '';
  }
  $('#fault-add').addEventListener('click', addFault);
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') addFault(); });
  $('#fault-clear').addEventListener('click', () => change('DELETE'));
  list.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.remove');
    if (!btn) return;
    const i = [...list.children].indexOf(btn.closest('li')); // by position: duplicates are allowed
    change('PUT', { faults: current.filter((_, j) => j !== i) });
  });
  $('#fault-available').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button.use');
    if (btn) { input.value = btn.dataset.syntax; input.focus(); }
  });

  const load = () => api('/faults').then(show).catch((e) => { err.textContent = e.message; err.hidden = false; });
  load();
  return {
    event(type, d) {
      if (type === 'faults' && d && Array.isArray(d.faults)) show(d);
      if (type === 'resync') load();
    },
  };
}

// --- live updates -----------------------------------------------------------------------

function connectEvents(missedSome = false) {
  const live = $('#live');
  const status = (on) => {
    live.textContent = on ? 'live' : 'offline — reconnecting';
    live.classList.toggle('on', on);
  };
  const es = new EventSource('/api/v1/events');
  let dropped = missedSome;
  es.onopen = () => {
    status(true);
    // Events sent while we were away are lost: have the page reload its list.
    if (dropped) page?.event?.('resync', {});
    dropped = false;
  };
  es.onerror = () => {
    status(false);
    dropped = true;
    // EventSource retries by itself, except after an HTTP error or a wrong content type,
    // when it gives up for good (CLOSED): then start a new one.
    if (es.readyState === EventSource.CLOSED) setTimeout(() => connectEvents(true), 5000);
  };
  // "resync": the server dropped events for us (we fell behind); reload like a reconnect.
  for (const type of ['message', 'session', 'deleted', 'faults', 'resync']) {
    es.addEventListener(type, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch { return; }
      page?.event?.(type, data);
    });
  }
}

api('/server').then((s) => {
  const info = $('#server-info');
  info.textContent = `v${text(s.version)} · SMTP ${text(s.smtp)}` + (s.smtp_tls ? ` · TLS ${text(s.smtp_tls)}` : '');
  info.title = `${text(s.hostname)} — store ${text(s.store)}`;
}).catch(showError);

window.addEventListener('hashchange', route);
route();
connectEvents();
