// Talks to the daemon that served the page (same origin only): JSON calls, NDJSON streams,
// and the API key (sessionStorage) sent as `Authorization: Bearer` once the server asked.

const KEY_ITEM = 'hearth.apiKey';

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let askKey = null;  // async () => key string, or null when the user gives up

// The page shows its key dialog through this hook (set by main.js).
export function onKeyNeeded(fn) { askKey = fn; }

export function apiKey() { return sessionStorage.getItem(KEY_ITEM) || ''; }

function headers(json) {
  const h = {};
  if (json) h['Content-Type'] = 'application/json';
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorOf(res) {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (typeof body.error === 'string') msg = body.error;
    else if (body.error && typeof body.error.message === 'string') msg = body.error.message;
  } catch { /* not JSON */ }
  return new HttpError(res.status, msg);
}

// fetch() on the page's origin; a 401 asks for a key and tries again with it.
export async function call(path, { method = 'GET', body, signal } = {}) {
  for (;;) {
    const res = await fetch(path, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
    if (res.status === 401 && askKey) {
      const given = await askKey(apiKey() !== '');
      if (given === null) throw await errorOf(res);
      sessionStorage.setItem(KEY_ITEM, given);
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }
}

export async function getJSON(path) { return (await call(path)).json(); }
export async function postJSON(path, body) { return (await call(path, { method: 'POST', body })).json(); }

// POSTs `body` and calls onLine(object) for each NDJSON line of the answer as it arrives.
// An {"error"} line becomes a thrown HttpError.
export async function stream(path, body, onLine, signal) {
  const res = await call(path, { method: 'POST', body, signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) deliver(line, onLine);
    }
  }
  buf += decoder.decode();
  if (buf.trim()) deliver(buf.trim(), onLine);
}

function deliver(line, onLine) {
  const obj = JSON.parse(line);
  if (obj.error) throw new HttpError(500, typeof obj.error === 'string' ? obj.error : JSON.stringify(obj.error));
  onLine(obj);
}
