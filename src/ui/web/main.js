// The chat page's entry point: wires the sidebar (conversations, models, theme), the
// settings panel (system prompt and options per conversation), the composer (Enter sends,
// Shift+Enter new line, Esc stops) and the API key dialog shown when the server answers 401.
import { onKeyNeeded } from './api.js';
import { ChatView } from './chat.js';
import { $, el } from './dom.js';
import { Models } from './models.js';
import { Conversations, OPTION_FIELDS } from './store.js';

const THEME_ITEM = 'hearth.theme';
const conversations = new Conversations();
let current = null;

function showError(text) {
  const box = $('#error');
  $('#error-text').textContent = text;
  box.hidden = false;
}
$('#error-close').addEventListener('click', () => { $('#error').hidden = true; });

// ---- API key dialog (one at a time, however many requests got a 401)
let pendingKey = null;
onKeyNeeded((retry) => {
  if (pendingKey) return pendingKey;
  const dialog = $('#key-dialog');
  const input = $('#key-input');
  $('#key-message').textContent = retry
    ? 'That key was not accepted. Enter a valid API key.'
    : 'This server needs an API key (one of HEARTH_API_KEYS).';
  input.value = '';
  pendingKey = new Promise((resolve) => {
    const finish = (value) => {
      dialog.close();
      pendingKey = null;
      $('#key-ok').removeEventListener('click', ok);
      $('#key-cancel').removeEventListener('click', cancel);
      input.removeEventListener('keydown', enter);
      dialog.removeEventListener('cancel', cancel);
      resolve(value);
    };
    const ok = () => { if (input.value.trim()) finish(input.value.trim()); };
    const cancel = (e) => { e?.preventDefault(); finish(null); };
    const enter = (e) => { if (e.key === 'Enter') { e.preventDefault(); ok(); } };
    $('#key-ok').addEventListener('click', ok);
    $('#key-cancel').addEventListener('click', cancel);
    input.addEventListener('keydown', enter);
    dialog.addEventListener('cancel', cancel);
    dialog.showModal();
    input.focus();
  });
  return pendingKey;
});

// ---- theme
function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem(THEME_ITEM));
$('#theme').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  const next = dark ? 'light' : 'dark';
  localStorage.setItem(THEME_ITEM, next);
  applyTheme(next);
});

// ---- sidebar on small screens
const app = $('#app');
$('#menu').addEventListener('click', () => app.classList.toggle('sidebar-open'));
$('#scrim').addEventListener('click', () => app.classList.remove('sidebar-open'));

// ---- models and chat
const models = new Models({
  onError: showError,
  onChange: (name) => { if (current) { current.model = name; conversations.save(); } },
});
const chat = new ChatView({
  conversations,
  models,
  onError: showError,
  onBusy: (busy) => {
    $('#send').hidden = busy;
    $('#stop').hidden = !busy;
    app.classList.toggle('busy', busy);
    if (!busy) { renderList(); models.refresh(); }
  },
});

// ---- settings (per conversation)
const optionInputs = {};
$('#options').append(...OPTION_FIELDS.map(([name, label, attrs]) => {
  const input = el('input', { type: 'number', id: `opt-${name}`, name, placeholder: 'default', ...attrs });
  input.addEventListener('change', () => {
    if (!current) return;
    if (input.value === '') delete current.options[name];
    else current.options[name] = Number(input.value);
    conversations.save();
  });
  optionInputs[name] = input;
  return el('label', { class: 'option' }, el('span', { text: label }), input);
}));
$('#system').addEventListener('change', () => {
  if (!current) return;
  current.system = $('#system').value;
  conversations.save();
});
$('#settings-toggle').addEventListener('click', () => {
  const panel = $('#settings');
  panel.hidden = !panel.hidden;
  $('#settings-toggle').setAttribute('aria-expanded', String(!panel.hidden));
});

function fillSettings(conv) {
  $('#system').value = conv.system || '';
  for (const [name] of OPTION_FIELDS) optionInputs[name].value = conv.options?.[name] ?? '';
}

// ---- conversation list
function renderList() {
  const list = $('#conversations');
  list.replaceChildren(...conversations.list.map((c) => {
    const item = el('li', { class: c === current ? 'active' : '' });
    const open = el('button', { class: 'conv-title', type: 'button', text: c.title || 'Untitled', title: c.title, onclick: () => select(c) });
    const rename = el('button', { class: 'small ghost', type: 'button', text: 'Rename', title: 'Rename', onclick: () => {
      const input = el('input', { class: 'rename', type: 'text', value: c.title, 'aria-label': 'Conversation name' });
      const done = (save) => { if (save) conversations.rename(c.id, input.value); renderList(); };
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') done(true);
        else if (e.key === 'Escape') { e.stopPropagation(); done(false); }
      });
      input.addEventListener('blur', () => done(true));
      open.replaceWith(input);
      input.focus();
      input.select();
    } });
    const exp = el('button', { class: 'small ghost', type: 'button', text: 'Export', title: 'Export as JSON', onclick: () => conversations.exportJSON(c) });
    const del = el('button', { class: 'small ghost danger', type: 'button', text: 'Delete', title: 'Delete', onclick: () => {
      if (!confirm(`Delete "${c.title}"?`)) return;
      if (chat.busy && c === current) chat.stop();
      conversations.remove(c.id);
      select(conversations.list[0] || conversations.create(models.value));
    } });
    item.append(open, el('span', { class: 'conv-actions' }, rename, exp, del));
    return item;
  }));
}

function select(conv) {
  if (chat.busy) chat.stop();
  current = conv;
  if (conv.model) models.value = conv.model;
  fillSettings(conv);
  chat.show(conv);
  renderList();
  app.classList.remove('sidebar-open');
}

$('#new-chat').addEventListener('click', () => {
  const empty = conversations.list.find((c) => !c.messages.length);
  select(empty || conversations.create(models.value));
  $('#prompt').focus();
});

// ---- composer
const prompt = $('#prompt');
async function send() {
  const text = prompt.value;
  if (!text.trim() || chat.busy) return;
  prompt.value = '';
  const sent = await chat.send(text);
  if (!sent && !prompt.value) prompt.value = text;
}
prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
$('#send').addEventListener('click', send);
$('#stop').addEventListener('click', () => chat.stop());
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && chat.busy && !$('#key-dialog').open) chat.stop();
});

// ---- start
select(conversations.list[0] || conversations.create(''));
models.refresh().then(() => {
  if (current && current.model) models.value = current.model;
  else if (!models.value && models.tags.length === 1) models.value = models.tags[0].name;
});
prompt.focus();
