// The official `openai` npm client, unmodified, against `hearth serve`'s /v1 API: chat
// (plain, streamed, structured, seeded), completions, embeddings, models and errors, on
// every chat model the runner serves (stories260K and a synthetic model).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

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

const client = new OpenAI({ baseURL: `${HEARTH_URL}/v1`, apiKey: "unused", timeout: 60_000 });
const MAX = 8;  // tokens per generation: small, so every answer ends by length

function assertUsage(usage, completionTokens) {
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0, `prompt_tokens ${usage.prompt_tokens}`);
  assert.equal(usage.completion_tokens, completionTokens);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

for (const model of CHAT_MODELS) {
  describe(`openai client, model ${model}`, () => {
    const messages = [
      { role: "system", content: "You are a storyteller." },
      { role: "user", content: PROMPT },
    ];

    test("chat.completions.create ends by length with consistent usage", async () => {
      const r = await client.chat.completions.create({ model, messages, max_tokens: MAX, temperature: 0 });
      assert.equal(r.object, "chat.completion");
      assert.match(r.id, /^chatcmpl-/);
      assert.equal(r.model, model);
      assert.equal(r.choices.length, 1);
      const [c] = r.choices;
      assert.equal(c.index, 0);
      assert.equal(c.message.role, "assistant");
      assert.equal(typeof c.message.content, "string");
      assert.ok(c.message.content.length > 0, "empty content");
      assert.equal(c.finish_reason, "length");
      assertUsage(r.usage, MAX);
    });

    test("streamed chat: deltas add up to the non-streamed answer, usage chunk last", async () => {
      const params = { model, messages, max_tokens: MAX, temperature: 0 };
      const whole = await client.chat.completions.create(params);
      const chunks = await collect(
        await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }),
      );
      assert.ok(chunks.length >= 3, `only ${chunks.length} chunks`);
      for (const ch of chunks) {
        assert.equal(ch.object, "chat.completion.chunk");
        assert.equal(ch.id, chunks[0].id);
      }
      assert.equal(chunks[0].choices[0].delta.role, "assistant");
      const usageChunk = chunks.at(-1);
      assert.deepEqual(usageChunk.choices, []);
      assertUsage(usageChunk.usage, MAX);
      const withChoices = chunks.filter((ch) => ch.choices.length > 0);
      assert.equal(withChoices.at(-1).choices[0].finish_reason, "length");
      for (const ch of withChoices.slice(0, -1)) assert.equal(ch.choices[0].finish_reason, null);
      const text = withChoices.map((ch) => ch.choices[0].delta.content ?? "").join("");
      assert.equal(text, whole.choices[0].message.content);
    });

    test("the client's stream helper assembles the same completion", async () => {
      const params = { model, messages, max_tokens: MAX, temperature: 0 };
      const whole = await client.chat.completions.create(params);
      const stream = client.chat.completions.stream({ ...params, stream_options: { include_usage: true } });
      const deltas = [];
      stream.on("content", (delta) => deltas.push(delta));
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
      assert.equal(deltas.join(""), whole.choices[0].message.content);
      assert.equal(final.choices[0].finish_reason, "length");
      assertUsage(final.usage, MAX);
    });

    test("streamed chat without include_usage has no usage chunk", async () => {
      const chunks = await collect(
        await client.chat.completions.create({ model, messages, max_tokens: 2, temperature: 0, stream: true }),
      );
      assert.ok(chunks.every((ch) => ch.choices.length === 1 && !ch.usage));
      assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
    });

    test("completions.create, plain and streamed", async () => {
      const r = await client.completions.create({ model, prompt: PROMPT, max_tokens: MAX, temperature: 0 });
      assert.equal(r.object, "text_completion");
      assert.match(r.id, /^cmpl-/);
      const [c] = r.choices;
      assert.equal(typeof c.text, "string");
      assert.ok(c.text.length > 0, "empty text");
      assert.equal(c.finish_reason, "length");
      assertUsage(r.usage, MAX);

      const chunks = await collect(
        await client.completions.create({ model, prompt: PROMPT, max_tokens: MAX, temperature: 0, stream: true }),
      );
      assert.equal(chunks.map((ch) => ch.choices[0].text).join(""), c.text);
      assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
    });

    test("seed makes sampling repeatable; temperature 0 is greedy", async () => {
      const params = { model, messages, max_tokens: MAX, seed: 1234 };
      const [a, b] = [
        await client.chat.completions.create({ ...params, temperature: 1.5 }),
        await client.chat.completions.create({ ...params, temperature: 1.5 }),
      ];
      assert.equal(a.choices[0].message.content, b.choices[0].message.content);
      const [g1, g2] = [
        await client.chat.completions.create({ ...params, temperature: 0 }),
        await client.chat.completions.create({ ...params, seed: 99, temperature: 0 }),
      ];
      assert.equal(g1.choices[0].message.content, g2.choices[0].message.content);
    });

    test("stop cuts the answer before the stop string", async () => {
      const params = { model, messages, max_tokens: MAX, temperature: 0 };
      const full = (await client.chat.completions.create(params)).choices[0].message.content;
      const stop = full.trim().slice(2, 4);  // two characters from inside the answer
      assert.equal(stop.length, 2, `answer too short: ${JSON.stringify(full)}`);
      const r = await client.chat.completions.create({ ...params, stop: [stop] });
      assert.equal(r.choices[0].finish_reason, "stop");
      assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
    });

    test("logprobs: one entry per generated token with its top alternatives", async () => {
      const r = await client.chat.completions.create({
        model, messages, max_completion_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3,
      });
      const { content } = r.choices[0].logprobs;
      assert.equal(content.length, r.usage.completion_tokens);
      assert.equal(content.map((t) => t.token).join(""), r.choices[0].message.content);
      for (const t of content) {
        assert.ok(t.logprob <= 0, `logprob ${t.logprob}`);
        assert.equal(t.top_logprobs.length, 3);
        // Greedy: the chosen token is the most likely one.
        assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6, JSON.stringify(t));
      }
    });

    test("response_format json_schema yields JSON that matches the schema", async () => {
      const schema = {
        type: "object",
        properties: {
          name: { type: "string", maxLength: 12 },
          age: { type: "integer", minimum: 0, maximum: 120 },
          pet: { enum: ["cat", "dog", "fish"] },
        },
        required: ["name", "age", "pet"],
        additionalProperties: false,
      };
      const r = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Describe a person as JSON." }],
        max_tokens: 200,
        temperature: 0,
        response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } },
      });
      assert.equal(r.choices[0].finish_reason, "stop");
      const value = JSON.parse(r.choices[0].message.content);
      assert.deepEqual(Object.keys(value).sort(), ["age", "name", "pet"]);
      assert.equal(typeof value.name, "string");
      assert.ok(value.name.length <= 12);
      assert.ok(Number.isInteger(value.age) && value.age >= 0 && value.age <= 120, `age ${value.age}`);
      assert.ok(["cat", "dog", "fish"].includes(value.pet));
    });

    test("response_format json_object yields JSON (or a prefix of it when cut by max_tokens)", async () => {
      const r = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Reply with a JSON object." }],
        max_tokens: 64,
        temperature: 0,
        response_format: { type: "json_object" },
      });
      const { content } = r.choices[0].message;
      assert.match(content, /^\s*\{/);
      assert.equal(jsonPrefixState(content), r.choices[0].finish_reason === "stop" ? "complete" : "prefix", content);
    });

    test("models.retrieve", async () => {
      const m = await client.models.retrieve(model);
      assert.equal(m.id, model);
      assert.equal(m.object, "model");
      assert.ok(Number.isInteger(m.created) && m.created > 0);
    });
  });
}

describe("openai client, models and errors", () => {
  test("models.list names every served model", async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, "model");
      ids.push(m.id.replace(/:latest$/, ""));
    }
    for (const name of [...CHAT_MODELS, EMBED_MODEL]) assert.ok(ids.includes(name), `${name} not in ${ids}`);
  });

  test("an unknown model is NotFoundError 404 (chat, completions, retrieve)", async () => {
    const isNotFound = (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, `${err?.constructor?.name}: ${err}`);
      assert.equal(err.status, 404);
      return true;
    };
    await assert.rejects(
      client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
      (err) => isNotFound(err) && err.code === "model_not_found" && /no-such-model/.test(err.message),
    );
    await assert.rejects(client.completions.create({ model: "no-such-model", prompt: "hi" }), isNotFound);
    await assert.rejects(client.models.retrieve("no-such-model"), isNotFound);
  });

  test("a bad parameter is BadRequestError 400 naming it", async () => {
    const [model] = CHAT_MODELS;
    await assert.rejects(
      client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], temperature: 5 }),
      (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, 400);
        assert.equal(err.param, "temperature");
        return true;
      },
    );
    await assert.rejects(client.chat.completions.create({ model, messages: [] }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.param, "messages");
      return true;
    });
    // The server keeps serving after the errors.
    const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
    assert.equal(r.usage.completion_tokens, 1);
  });
});

describe(`openai client, embeddings (${EMBED_MODEL})`, () => {
  const texts = ["hello world", "The quick brown fox jumps over the lazy dog.", "a"];

  test("float vectors: one per input, normalized, equal to llama.cpp's", async () => {
    const r = await client.embeddings.create({ model: EMBED_MODEL, input: texts, encoding_format: "float" });
    assert.equal(r.object, "list");
    assert.equal(r.model, EMBED_MODEL);
    assert.equal(r.data.length, texts.length);
    r.data.forEach((d, i) => {
      assert.equal(d.object, "embedding");
      assert.equal(d.index, i);
      assert.ok(Array.isArray(d.embedding));
      assert.equal(d.embedding.length, 64);
      assert.ok(Math.abs(l2norm(d.embedding) - 1) < 1e-5, `norm ${l2norm(d.embedding)}`);
      const dist = cosineDistance(d.embedding, referenceEmbedding(texts[i]));
      assert.ok(dist < 1e-4, `cosine distance ${dist} to the reference for ${JSON.stringify(texts[i])}`);
    });
    assert.ok(r.usage.prompt_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
  });

  test("base64: the client's own decoding and an explicit request match the floats", async () => {
    const input = "hello world";
    const floats = (await client.embeddings.create({ model: EMBED_MODEL, input, encoding_format: "float" })).data[0]
      .embedding;
    // Without encoding_format the client asks for base64 and decodes it itself.
    const decoded = (await client.embeddings.create({ model: EMBED_MODEL, input })).data[0].embedding;
    assert.deepEqual(decoded, floats.map(Math.fround));
    // With an explicit base64 the string comes back as is: little-endian float32.
    const raw = (await client.embeddings.create({ model: EMBED_MODEL, input, encoding_format: "base64" })).data[0]
      .embedding;
    assert.equal(typeof raw, "string");
    const buf = Buffer.from(raw, "base64");
    assert.equal(buf.length, 64 * 4);
    const fromRaw = Array.from({ length: 64 }, (_, i) => buf.readFloatLE(i * 4));
    assert.deepEqual(fromRaw, decoded);
  });

  test("a bad encoding_format is BadRequestError", async () => {
    await assert.rejects(
      client.embeddings.create({ model: EMBED_MODEL, input: "x", encoding_format: "int8" }),
      (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.param === "encoding_format",
    );
  });
});
