// The conversation view: messages (user text as text, replies as sanitized Markdown with
// collapsible thinking), streaming a reply from /api/chat, Stop, and the numbers under
// each reply (tokens, tokens/s, time to first token) from the final NDJSON object.
import { stream } from './api.js';
import { $, copyText, el } from './dom.js';
import { renderMarkdown, splitThinking } from './markdown.js';
import { requestOptions } from './store.js';

function statsLine(m) {
  const s = m.stats;
  if (!s) return m.stopped ? 'stopped' : '';
  const parts = [];
  if (s.eval_count !== undefined) parts.push(`${s.eval_count} tokens`);
  else if (s.received !== undefined) parts.push(`${s.received} tokens received`);
  if (s.eval_count > 0 && s.eval_duration > 0) parts.push(`${(s.eval_count / (s.eval_duration / 1e9)).toFixed(1)} tok/s`);
  if (s.ttft_ms !== undefined) parts.push(`TTFT ${Math.round(s.ttft_ms)} ms`);
  if (s.prompt_eval_count !== undefined) parts.push(`prompt ${s.prompt_eval_count} tokens`);
  if (s.total_duration > 0) parts.push(`${(s.total_duration / 1e9).toFixed(2)} s`);
  if (s.done_reason && s.done_reason !== 'stop') parts.push(s.done_reason);
  if (m.stopped) parts.push('stopped');
  return parts.join(' · ');
}

function addCopyButtons(root) {
  for (const pre of root.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    const button = el('button', { class: 'copy small', type: 'button', text: 'Copy', title: 'Copy code' });
    button.addEventListener('click', async () => {
      try {
        await copyText(code ? code.textContent : pre.textContent);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Copy failed';
      }
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
    pre.prepend(button);
  }
}

// One message on screen; render() redraws it from the message object.
class MessageView {
  constructor(msg) {
    this.msg = msg;
    this.node = el('article', { class: `message ${msg.role}` });
    this.node.dataset.role = msg.role;
    if (msg.role === 'user') {
      this.node.append(el('div', { class: 'body user-text', text: msg.content }));
      return;
    }
    this.thinking = el('details', { class: 'thinking', hidden: true }, el('summary', { text: 'Thinking' }), el('div', { class: 'thinking-text' }));
    this.body = el('div', { class: 'body markdown' });
    this.error = el('div', { class: 'error-text', hidden: true });
    this.stats = el('div', { class: 'stats' });
    this.copy = el('button', { class: 'small ghost', type: 'button', text: 'Copy reply', onclick: () => copyText(this.msg.content) });
    this.node.append(this.thinking, this.body, this.error, el('footer', {}, this.stats, this.copy));
    this.render();
  }

  render() {
    const m = this.msg;
    if (m.role === 'user') return;
    const split = splitThinking(m.content || '');
    const thinking = (m.thinking || '') + split.thinking;
    this.thinking.hidden = thinking.trim() === '';
    this.thinking.querySelector('.thinking-text').textContent = thinking;
    this.body.replaceChildren(renderMarkdown(split.answer));
    addCopyButtons(this.body);
    this.error.hidden = !m.error;
    this.error.textContent = m.error || '';
    this.stats.textContent = statsLine(m);
    this.node.classList.toggle('streaming', !!m.streaming);
  }
}

export class ChatView {
  constructor({ conversations, models, onError, onBusy }) {
    this.conversations = conversations;
    this.models = models;
    this.onError = onError;
    this.onBusy = onBusy;  // (busy: boolean) -> void
    this.list = $('#messages');
    this.conv = null;
    this.abort = null;
  }

  get busy() { return this.abort !== null; }

  show(conv) {
    this.conv = conv;
    this.list.replaceChildren(...conv.messages.map((m) => new MessageView(m).node));
    if (!conv.messages.length) this.list.append(el('p', { class: 'empty muted', text: 'Pick a model and send a message.' }));
    this.scroll(true);
  }

  scroll(force) {
    const near = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 120;
    if (force || near) this.list.scrollTop = this.list.scrollHeight;
  }

  stop() {
    if (this.abort) this.abort.abort();
  }

  async send(text) {
    const conv = this.conv;
    const model = this.models.value;
    if (!conv || this.busy || !text.trim()) return false;
    if (!model) { this.onError('Choose a model first.'); return false; }
    conv.model = model;
    if (!conv.messages.length) conv.title = text.trim().replace(/\s+/g, ' ').slice(0, 48);
    this.list.querySelector('.empty')?.remove();
    const user = { role: 'user', content: text };
    conv.messages.push(user);
    this.list.append(new MessageView(user).node);
    const reply = { role: 'assistant', content: '', model, streaming: true };
    conv.messages.push(reply);
    const view = new MessageView(reply);
    this.list.append(view.node);
    this.conversations.touch(conv);
    this.scroll(true);

    const history = conv.messages.filter((m) => m !== reply && !m.error).map((m) => ({ role: m.role, content: m.content }));
    if (conv.system && conv.system.trim()) history.unshift({ role: 'system', content: conv.system });
    const body = { model, messages: history, stream: true };
    const options = requestOptions(conv);
    if (Object.keys(options).length) body.options = options;

    this.abort = new AbortController();
    this.onBusy(true);
    const started = performance.now();
    let frame = 0;
    let received = 0;  // streamed objects before the final one: one token each
    const redraw = () => { frame = 0; view.render(); this.scroll(false); };
    try {
      await stream('/api/chat', body, (obj) => {
        const piece = obj.message?.content || '';
        const thought = obj.message?.thinking || '';
        if ((piece || thought) && reply.ttft === undefined) reply.ttft = performance.now() - started;
        if (!obj.done) received += 1;
        reply.content += piece;
        if (thought) reply.thinking = (reply.thinking || '') + thought;
        if (obj.done) {
          reply.stats = {
            eval_count: obj.eval_count, eval_duration: obj.eval_duration, prompt_eval_count: obj.prompt_eval_count,
            total_duration: obj.total_duration, done_reason: obj.done_reason, ttft_ms: reply.ttft,
          };
        }
        // One redraw per animation frame however many tokens came in.
        if (!frame) frame = requestAnimationFrame(redraw);
      }, this.abort.signal);
    } catch (e) {
      if (e.name === 'AbortError') reply.stopped = true;
      else reply.error = e.message;
    } finally {
      if (frame) cancelAnimationFrame(frame);
      delete reply.streaming;
      if (!reply.stats && received > 0) reply.stats = { received, ttft_ms: reply.ttft };
      delete reply.ttft;
      view.render();
      this.scroll(false);
      this.abort = null;
      this.onBusy(false);
      this.conversations.touch(conv);
    }
    return true;
  }
}
