// Conversations, kept in the browser (localStorage): each has its messages, model, system
// prompt and options. Saved after each change that matters (not on every streamed token).

const LIST_ITEM = 'hearth.conversations';

export const OPTION_FIELDS = [
  // [option name in /api/chat, label, input attributes]
  ['temperature', 'Temperature', { min: 0, max: 2, step: 0.05 }],
  ['top_p', 'Top-p', { min: 0, max: 1, step: 0.01 }],
  ['top_k', 'Top-k', { min: 0, step: 1 }],
  ['num_ctx', 'Context length', { min: 1, step: 1 }],
  ['num_predict', 'Max tokens', { min: -1, step: 1 }],
  ['seed', 'Seed', { step: 1 }],
];

function newId() {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return Date.now().toString(36) + a[0].toString(36) + a[1].toString(36);
}

export class Conversations {
  constructor() {
    this.list = [];
    try {
      const raw = JSON.parse(localStorage.getItem(LIST_ITEM) || '[]');
      if (Array.isArray(raw)) this.list = raw.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.messages));
    } catch { /* unreadable: start empty */ }
  }

  save() {
    try {
      localStorage.setItem(LIST_ITEM, JSON.stringify(this.list));
    } catch (e) {
      console.warn('hearth: cannot save conversations', e);
    }
  }

  create(model) {
    const now = Date.now();
    const conv = { id: newId(), title: 'New chat', created: now, updated: now, model: model || '', system: '', options: {}, messages: [] };
    this.list.unshift(conv);
    this.save();
    return conv;
  }

  get(id) { return this.list.find((c) => c.id === id) || null; }

  rename(id, title) {
    const c = this.get(id);
    if (!c) return;
    c.title = title.trim() || c.title;
    this.save();
  }

  remove(id) {
    this.list = this.list.filter((c) => c.id !== id);
    this.save();
  }

  touch(conv) {
    conv.updated = Date.now();
    this.list = [conv, ...this.list.filter((c) => c.id !== conv.id)];
    this.save();
  }

  // One conversation as a JSON file download.
  exportJSON(conv) {
    const blob = new Blob([JSON.stringify(conv, null, 2)], { type: 'application/json' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `${(conv.title || 'chat').replace(/[^\w.-]+/g, '_').slice(0, 60)}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
}

// The options object sent with /api/chat: only fields the user set.
export function requestOptions(conv) {
  const out = {};
  for (const [name] of OPTION_FIELDS) {
    const v = conv.options?.[name];
    if (v !== undefined && v !== null && v !== '' && Number.isFinite(Number(v))) out[name] = Number(v);
  }
  return out;
}
