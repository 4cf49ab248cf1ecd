// The model side panel: the picker (from /api/tags, marked loaded from /api/ps), pulling a
// model by name with a progress bar (/api/pull stream), and the loaded models with unload.
import { getJSON, postJSON, stream } from './api.js';
import { $, el, formatBytes } from './dom.js';

export class Models {
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange;  // the picked model changed (by the user)
    this.select = $('#model');
    this.info = $('#model-info');
    this.loadedList = $('#loaded');
    this.tags = [];
    this.loaded = [];
    this.select.addEventListener('change', () => { this.showInfo(); this.onChange(this.select.value); });
    $('#pull-form-button').addEventListener('click', () => this.pull());
    $('#pull-name').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); this.pull(); } });
    $('#refresh-models').addEventListener('click', () => this.refresh());
  }

  get value() { return this.select.value; }

  set value(name) {
    if (name && !this.tags.some((m) => m.name === name)) this.select.append(el('option', { value: name, text: `${name} (missing)` }));
    if (name) this.select.value = name;
    this.showInfo();
  }

  async refresh() {
    try {
      const [tags, ps] = await Promise.all([getJSON('/api/tags'), getJSON('/api/ps')]);
      this.tags = tags.models || [];
      this.loaded = ps.models || [];
    } catch (e) {
      this.onError(`Cannot list models: ${e.message}`);
      return;
    }
    const keep = this.select.value;
    const loadedNames = new Set(this.loaded.map((m) => m.name));
    this.select.replaceChildren(
      el('option', { value: '', text: this.tags.length ? 'Choose a model…' : 'No models: pull one', disabled: true }),
      ...this.tags.map((m) => {
        const q = m.details?.quantization_level;
        const label = `${m.name} · ${formatBytes(m.size)}${q ? ` · ${q}` : ''}${loadedNames.has(m.name) ? ' · loaded' : ''}`;
        return el('option', { value: m.name, text: label });
      }),
    );
    this.select.value = keep && this.tags.some((m) => m.name === keep) ? keep : '';
    this.showInfo();
    this.renderLoaded();
  }

  showInfo() {
    const m = this.tags.find((t) => t.name === this.select.value);
    if (!m) { this.info.textContent = ''; return; }
    const d = m.details || {};
    const loaded = this.loaded.some((l) => l.name === m.name);
    this.info.textContent = [d.family, d.parameter_size, d.quantization_level, formatBytes(m.size), loaded ? 'loaded' : 'not loaded']
      .filter(Boolean).join(' · ');
  }

  renderLoaded() {
    if (!this.loaded.length) {
      this.loadedList.replaceChildren(el('li', { class: 'muted', text: 'No model loaded' }));
      return;
    }
    this.loadedList.replaceChildren(...this.loaded.map((m) => {
      const until = m.expires_at ? new Date(m.expires_at) : null;
      const left = until ? Math.round((until - Date.now()) / 60000) : null;
      return el('li', { class: 'loaded-model' },
        el('span', { class: 'name', text: m.name }),
        el('span', { class: 'muted', text: `${formatBytes(m.size)}${left !== null && left < 1e6 ? ` · ${Math.max(left, 0)} min` : ''}` }),
        el('button', { class: 'small', type: 'button', text: 'Unload', title: `Unload ${m.name}`, onclick: () => this.unload(m.name) }));
    }));
  }

  async unload(name) {
    try {
      await postJSON('/api/generate', { model: name, keep_alive: 0 });
    } catch (e) {
      this.onError(`Cannot unload ${name}: ${e.message}`);
    }
    await this.refresh();
  }

  async pull() {
    const input = $('#pull-name');
    const name = input.value.trim();
    if (!name) return;
    const bar = $('#pull-progress');
    const status = $('#pull-status');
    const button = $('#pull-form-button');
    button.disabled = true;
    bar.hidden = false;
    bar.removeAttribute('value');
    status.textContent = `Pulling ${name}…`;
    try {
      await stream('/api/pull', { model: name, stream: true }, (p) => {
        if (p.total > 0) {
          bar.max = p.total;
          bar.value = p.completed || 0;
          status.textContent = `${p.status} · ${formatBytes(p.completed || 0)} / ${formatBytes(p.total)}`;
        } else {
          status.textContent = p.status || '';
        }
      });
      status.textContent = `Pulled ${name}`;
      input.value = '';
      await this.refresh();
      this.value = this.tags.find((m) => m.name === name || m.name === `${name}:latest`)?.name || this.value;
    } catch (e) {
      status.textContent = `Pull failed: ${e.message}`;
    } finally {
      button.disabled = false;
      bar.hidden = true;
    }
  }
}
