// Shared settings and helpers for the npm client tests: where the daemon is and which models
// to use, as scripts/test-js-clients.sh exports them, plus the embedding reference vectors
// from the shared test data.
import { readFileSync } from "node:fs";
import { join } from "node:path";

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through scripts/test-js-clients.sh HEARTH_BINARY`);
  return v;
}

export const HEARTH_URL = required("HEARTH_URL");
export const CHAT_MODELS = required("HEARTH_CHAT_MODELS").split(",").filter(Boolean);
export const EMBED_MODEL = required("HEARTH_EMBED_MODEL");
export const SHARED_DIR = required("HEARTH_SHARED_DIR");
// The prompt every generation test starts from (stories260K continues it with a story).
export const PROMPT = "Once upon a time";

// llama.cpp's embedding of `text` (`key`: "embedding_normalized" or "embedding_raw") from the
// bert mean-pooling file the daemon serves as EMBED_MODEL (../shared/README.md, "BERT
// embedding models").
export function referenceEmbedding(text, key = "embedding_normalized") {
  const refs = JSON.parse(readFileSync(join(SHARED_DIR, "models/synthetic/bert-embeddings.json"), "utf8"));
  const ref = refs.find((r) => r.file === "models/synthetic/bert-mean-f32.gguf" && r.text === text);
  if (!ref) throw new Error(`no reference embedding for ${JSON.stringify(text)}`);
  return ref[key];
}

export function l2norm(v) {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

export function cosineDistance(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return 1 - dot / (l2norm(a) * l2norm(b));
}

// Checks that `text` is valid JSON ("complete") or the start of some valid JSON text
// ("prefix": generation stopped by length); throws a SyntaxError naming the offset otherwise.
// This is what a grammar-enforced `format: "json"` guarantees whatever the model is.
export function jsonPrefixState(text) {
  class Incomplete extends Error {}
  let i = 0;
  const peek = () => {
    if (i >= text.length) throw new Incomplete();
    return text[i];
  };
  const fail = (what) => {
    throw new SyntaxError(`${what} at offset ${i} of ${JSON.stringify(text)}`);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const expect = (c) => {
    if (peek() !== c) fail(`expected ${JSON.stringify(c)}`);
    i++;
  };
  const literal = (word) => {
    for (const c of word) expect(c);
  };
  const string = () => {
    expect('"');
    for (;;) {
      const c = peek();
      i++;
      if (c === '"') return;
      if (c < " ") fail("control character in a string");
      if (c !== "\\") continue;
      const e = peek();
      i++;
      if (e === "u") {
        for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(peek())) fail("bad \\u escape");
      } else if (!'"\\/bfnrt'.includes(e)) {
        fail("bad escape");
      }
    }
  };
  const digits = () => {
    if (!/[0-9]/.test(peek())) fail("expected a digit");
    while (i < text.length && /[0-9]/.test(text[i])) i++;
  };
  const number = () => {
    if (peek() === "-") i++;
    if (peek() === "0") i++;
    else digits();
    if (i < text.length && text[i] === ".") {
      i++;
      digits();
    }
    if (i < text.length && "eE".includes(text[i])) {
      i++;
      if ("+-".includes(peek())) i++;
      digits();
    }
  };
  const value = () => {
    ws();
    const c = peek();
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (peek() === close) return void i++;
      for (;;) {
        ws();
        if (close === "}") {
          string();
          ws();
          expect(":");
        }
        value();
        ws();
        if (peek() === close) return void i++;
        expect(",");
      }
    }
    if (c === '"') return string();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    if (c === "-" || /[0-9]/.test(c)) return number();
    fail(`unexpected ${JSON.stringify(c)}`);
  };
  try {
    value();
  } catch (e) {
    if (e instanceof Incomplete) return "prefix";
    throw e;
  }
  ws();
  if (i !== text.length) fail("text after the value");
  return "complete";
}
