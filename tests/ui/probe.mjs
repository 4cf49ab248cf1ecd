// Measures, inside the page, how long a streamed token takes from arriving at the browser to
// being on the page. probeScript runs before the page's own code (evaluateOnNewDocument):
// it wraps fetch so each chunk of an /api/chat answer is timestamped as it arrives, and a
// MutationObserver timestamps every change of the reply being written. The page renders in
// requestAnimationFrame, so a DOM change is followed by that frame's paint.

export function probeScript() {
  const probe = { chunks: [], mutations: [] };
  const squash = (s) => (s || '').replace(/\s+/g, '');
  window.__hearthProbe = {
    reset() { probe.chunks = []; probe.mutations = []; },
    data() { return probe; },
  };
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
  });
  const realFetch = window.fetch;
  window.fetch = async function (input, init) {
    const res = await realFetch.call(this, input, init);
    const url = typeof input === 'string' ? input : input.url;
    if (!url.endsWith('/api/chat') || !res.body) return res;
    const decoder = new TextDecoder();
    const stamp = new TransformStream({
      transform(chunk, ctl) {
        probe.chunks.push({ t: performance.now(), text: decoder.decode(chunk, { stream: true }) });
        ctl.enqueue(chunk);
      },
    });
    return new Response(res.body.pipeThrough(stamp), { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  const watch = () => {
    const list = document.querySelector('#messages');
    if (!list) return;
    new MutationObserver(() => {
      const bodies = list.querySelectorAll('.message.assistant .body');
      const body = bodies[bodies.length - 1];
      if (body) probe.mutations.push({ t: performance.now(), len: squash(body.textContent).length });
    }).observe(list, { childList: true, subtree: true, characterData: true });
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
}

// Per chunk that added reply text: ms from its arrival to the first DOM state showing it
// (whitespace ignored: Markdown re-flows it).
export function tokenLatencies({ chunks, mutations }) {
  const out = [];
  let buf = '';
  let content = '';
  let shown = 0;
  for (const c of chunks) {
    buf += c.text;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) content += JSON.parse(line).message?.content || '';
    }
    const need = content.replace(/\s+/g, '').length;
    if (need <= shown) continue;
    shown = need;
    const m = mutations.find((x) => x.t >= c.t && x.len >= need);
    out.push(m ? m.t - c.t : Infinity);
  }
  return out;
}

export function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  const r = (x) => Math.round(x * 10) / 10;
  return { median: r(at(0.5)), p95: r(at(0.95)), max: r(v[v.length - 1]) };
}
