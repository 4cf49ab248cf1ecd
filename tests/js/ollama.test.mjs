// The official `ollama` npm client, unmodified, against `hearth serve`'s /api routes:
// generate and chat (streamed and not), embed, list, show, ps, structured output and errors,
// on every chat model the runner serves (stories260K and a synthetic model).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Ollama } from "ollama";

import {
  CHAT_MODELS,
  EMBED_MODEL,
  HEARTH_URL,
  PROMPT,
  cosineDistance,
  jsonPrefixState,
  l2norm,
  referenceEmbedding,
} from "./support.mjs";

const ollama = new Ollama({ host: HEARTH_URL });
const N = 8;  // tokens per generation: small, so every answer ends by length

function assertFinal(r, evalCount) {
  assert.equal(r.done, true);
  assert.equal(r.done_reason, "length");
  assert.equal(r.eval_count, evalCount);
  assert.ok(Number.isInteger(r.prompt_eval_count) && r.prompt_eval_count > 0, `prompt_eval_count ${r.prompt_eval_count}`);
  for (const k of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"])
    assert.ok(Number.isInteger(r[k]) && r[k] >= 0, `${k} ${r[k]}`);
  assert.ok(r.total_duration >= r.eval_duration);
}

function isResponseError(status) {
  return (err) => {
    assert.equal(err.name, "ResponseError", `${err}`);
    assert.equal(err.status_code, status);
    assert.equal(typeof err.error, "string");
    return true;
  };
}

for (const model of CHAT_MODELS) {
  describe(`ollama client, model ${model}`, () => {
    const options = { num_predict: N, temperature: 0 };

    test("generate: non-streamed answer with the final statistics", async () => {
      const r = await ollama.generate({ model, prompt: PROMPT, options });
      assert.equal(r.model, model);
      assert.equal(typeof r.response, "string");
      assert.ok(r.response.length > 0, "empty response");
      assert.ok(!Number.isNaN(Date.parse(r.created_at)), `created_at ${r.created_at}`);
      assertFinal(r, N);
      assert.ok(Array.isArray(r.context) && r.context.length > 0);
    });

    test("generate: streamed parts add up to the non-streamed answer", async () => {
      const whole = await ollama.generate({ model, prompt: PROMPT, options });
      const parts = [];
      for await (const part of await ollama.generate({ model, prompt: PROMPT, options, stream: true })) parts.push(part);
      assert.ok(parts.length >= 2, `only ${parts.length} parts`);
      for (const p of parts.slice(0, -1)) assert.equal(p.done, false);
      assertFinal(parts.at(-1), N);
      assert.equal(parts.map((p) => p.response).join(""), whole.response);
    });

    test("chat with a system message, streamed and not", async () => {
      const messages = [
        { role: "system", content: "You are a storyteller." },
        { role: "user", content: PROMPT },
      ];
      const r = await ollama.chat({ model, messages, options });
      assert.equal(r.message.role, "assistant");
      assert.equal(typeof r.message.content, "string");
      assert.ok(r.message.content.length > 0, "empty content");
      assertFinal(r, N);

      const parts = [];
      for await (const part of await ollama.chat({ model, messages, options, stream: true })) parts.push(part);
      assertFinal(parts.at(-1), N);
      for (const p of parts) assert.equal(p.message.role, "assistant");
      assert.equal(parts.map((p) => p.message.content).join(""), r.message.content);

      // Neither model has a chat template: as with Ollama's default `{{ .Prompt }}`, the user's
      // text goes in as it is and the system text is left out, so the reply is generate's.
      const bare = await ollama.chat({ model, messages: messages.slice(1), options });
      assert.equal(bare.prompt_eval_count, r.prompt_eval_count);
      const gen = await ollama.generate({ model, prompt: PROMPT, options });
      assert.equal(gen.response, r.message.content);
      assert.equal(gen.prompt_eval_count, r.prompt_eval_count);
    });

    test("format json: JSON when the model stops, a prefix of JSON when cut by num_predict", async () => {
      for (const seed of [1, 2, 3]) {
        const r = await ollama.generate({
          model,
          prompt: "Give me a JSON object.",
          format: "json",
          options: { seed, temperature: 1, num_predict: 96 },
        });
        assert.match(r.response, /^\s*\{/);
        const state = jsonPrefixState(r.response);
        assert.equal(state, r.done_reason === "stop" ? "complete" : "prefix", r.response);
        if (state === "complete") assert.equal(typeof JSON.parse(r.response), "object");
      }
    });

    test("format schema: the answer validates", async () => {
      const format = {
        type: "object",
        properties: { color: { enum: ["red", "green"] }, size: { type: "integer", minimum: 1, maximum: 9 } },
        required: ["color", "size"],
      };
      const r = await ollama.chat({
        model,
        messages: [{ role: "user", content: "A ball as JSON." }],
        format,
        options: { temperature: 0, num_predict: 128 },
      });
      const v = JSON.parse(r.message.content);
      assert.ok(["red", "green"].includes(v.color), r.message.content);
      assert.ok(Number.isInteger(v.size) && v.size >= 1 && v.size <= 9, r.message.content);
    });

    test("show: details, model_info and template", async () => {
      const r = await ollama.show({ model });
      assert.equal(r.details.format, "gguf");
      assert.equal(r.details.family, "llama");
      assert.equal(r.model_info["general.architecture"], "llama");
      assert.ok(Number.isInteger(r.model_info["llama.block_count"]) && r.model_info["llama.block_count"] > 0);
      assert.equal(typeof r.template, "string");
      assert.ok(Array.isArray(r.capabilities) && r.capabilities.includes("completion"), `${r.capabilities}`);
    });

    test("abort() stops a stream; keep_alive 0 then unloads the model", async () => {
      const stream = await ollama.generate({ model, prompt: PROMPT, stream: true, options: { num_predict: 100000 } });
      let n = 0;
      // The documented way to stop: abort() ends the HTTP request (a bare `break` leaves the
      // client's fetch open, so the server could not know).
      await assert.rejects(
        (async () => {
          for await (const part of stream) {
            assert.equal(part.done, false);
            if (++n === 2) stream.abort();  // parts already received may still come
          }
        })(),
        { name: "AbortError" },
      );
      assert.ok(n >= 2);
      const r = await ollama.generate({ model, prompt: PROMPT, options });
      assertFinal(r, N);
      const unload = await ollama.generate({ model, prompt: "", keep_alive: 0 });
      assert.equal(unload.done_reason, "unload");
      // As in Ollama the unload completes just after the answer: poll /api/ps (up to 10 s).
      const listed = async () => (await ollama.ps()).models.some((m) => m.name.replace(/:latest$/, "") === model);
      for (let i = 0; i < 200 && (await listed()); i++) await new Promise((done) => setTimeout(done, 50));
      assert.equal(await listed(), false, `${model} still in /api/ps`);
    });

    test("ps lists the model after a generate", async () => {
      await ollama.generate({ model, prompt: PROMPT, options: { num_predict: 1 } });
      const r = await ollama.ps();
      const entry = r.models.find((m) => m.name.replace(/:latest$/, "") === model);
      assert.ok(entry, `${model} not in ${r.models.map((m) => m.name)}`);
      assert.ok(entry.size > 0);
      assert.ok(Date.parse(entry.expires_at) > Date.now(), `expires_at ${entry.expires_at}`);
      assert.equal(entry.details.format, "gguf");
    });
  });
}

describe("ollama client, models and errors", () => {
  test("list: the models folder's models appear with details", async () => {
    const r = await ollama.list();
    const names = r.models.map((m) => m.name);
    for (const name of [...CHAT_MODELS, EMBED_MODEL]) {
      const m = r.models.find((x) => x.name === `${name}:latest`);
      assert.ok(m, `${name}:latest not in ${names}`);
      assert.ok(m.size > 0);
      assert.equal(m.details.format, "gguf");
      assert.ok(!Number.isNaN(Date.parse(m.modified_at)), `modified_at ${m.modified_at}`);
    }
    assert.equal(r.models.find((x) => x.name === `${EMBED_MODEL}:latest`).details.family, "bert");
  });

  test("version", async () => {
    const r = await ollama.version();
    assert.match(r.version, /^\d+\.\d+/);
  });

  test("an unknown model is ResponseError 404 (generate, chat, show, embed)", async () => {
    const model = "no-such-model";
    await assert.rejects(ollama.generate({ model, prompt: "hi" }), isResponseError(404));
    await assert.rejects(ollama.generate({ model, prompt: "hi", stream: true }), isResponseError(404));
    await assert.rejects(ollama.chat({ model, messages: [{ role: "user", content: "hi" }] }), isResponseError(404));
    await assert.rejects(ollama.show({ model }), isResponseError(404));
    await assert.rejects(ollama.embed({ model, input: "hi" }), isResponseError(404));
  });

  test("a bad option is ResponseError 400 and the server keeps serving", async () => {
    const [model] = CHAT_MODELS;
    await assert.rejects(
      ollama.generate({ model, prompt: "hi", options: { temperature: -1 } }),
      (err) => isResponseError(400)(err) && /temperature/.test(err.error),
    );
    const r = await ollama.generate({ model, prompt: "hi", options: { num_predict: 1 } });
    assert.equal(r.done, true);
  });
});

describe(`ollama client, embed (${EMBED_MODEL})`, () => {
  test("embed: one normalized vector per input, equal to llama.cpp's", async () => {
    const input = ["hello world", "a"];
    const r = await ollama.embed({ model: EMBED_MODEL, input });
    assert.equal(r.model, EMBED_MODEL);
    assert.ok(Array.isArray(r.embeddings) && r.embeddings.length === 2);
    r.embeddings.forEach((v, i) => {
      assert.ok(Array.isArray(v) && v.length === 64);
      assert.ok(Math.abs(l2norm(v) - 1) < 1e-5, `norm ${l2norm(v)}`);
      const dist = cosineDistance(v, referenceEmbedding(input[i]));
      assert.ok(dist < 1e-4, `cosine distance ${dist} for ${JSON.stringify(input[i])}`);
    });
    assert.ok(r.prompt_eval_count > 0);
  });

  test("legacy embeddings: one raw (unnormalized) vector", async () => {
    const r = await ollama.embeddings({ model: EMBED_MODEL, prompt: "hello world" });
    assert.equal(r.embedding.length, 64);
    const ref = referenceEmbedding("hello world", "embedding_raw");
    assert.ok(Math.abs(l2norm(r.embedding) - l2norm(ref)) < 1e-3 * l2norm(ref), `norm ${l2norm(r.embedding)}`);
    assert.ok(cosineDistance(r.embedding, ref) < 1e-4);
  });

  test("embed with a string input gives one vector", async () => {
    const r = await ollama.embed({ model: EMBED_MODEL, input: "hello world" });
    assert.equal(r.embeddings.length, 1);
    assert.equal(r.embeddings[0].length, 64);
  });
});
