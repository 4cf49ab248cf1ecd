// The ollama and openai clients on what issue 14 changed: a base model's generate at
// temperature 0 is llama.cpp's greedy continuation (the prompt goes in as it is), and a
// thinking model's thinking comes back apart from its answer (ollama `think` /
// message.thinking, openai chat reasoning_content), streamed and not.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ollama } from "ollama";
import OpenAI from "openai";

import { HEARTH_URL, PROMPT, SHARED_DIR } from "./support.mjs";
import { BASE_MODEL, THINK_MODEL, makeTemplateModels } from "./models.mjs";

const ollama = new Ollama({ host: HEARTH_URL });
const openai = new OpenAI({ baseURL: `${HEARTH_URL}/v1`, apiKey: "unused", maxRetries: 0 });
const N = 8;
const messages = [{ role: "user", content: PROMPT }];

describe("prompt defaults and thinking", () => {
  before(makeTemplateModels);

  test("generate on a base model at temperature 0 is llama.cpp's greedy continuation", async () => {
    const refs = JSON.parse(readFileSync(join(SHARED_DIR, "models/stories260K.reference.json"), "utf8"));
    for (const ref of refs.filter((r) => r.prompt !== "").slice(0, 4)) {
      const r = await ollama.generate({ model: BASE_MODEL, prompt: ref.prompt, options: { temperature: 0, num_predict: 30 } });
      assert.equal(r.prompt_eval_count, ref.prompt_ids.length, ref.prompt);
      assert.deepEqual(r.context.slice(0, ref.prompt_ids.length), ref.prompt_ids);
      assert.ok(r.response.length > 0);
      assert.equal(ref.generated_text.slice(0, r.response.length), r.response, ref.prompt);
    }
  });

  test("ollama chat: think splits message.thinking off the content, streamed too", async () => {
    const options = { temperature: 0, num_predict: N };
    const r = await ollama.chat({ model: THINK_MODEL, messages, think: true, options });
    assert.ok(r.message.thinking.length > 0);
    assert.equal(r.message.content, "");
    let thinking = "";
    for await (const part of await ollama.chat({ model: THINK_MODEL, messages, think: true, options, stream: true }))
      thinking += part.message.thinking ?? "";
    assert.equal(thinking, r.message.thinking);
    const off = await ollama.chat({ model: THINK_MODEL, messages, think: false, options });
    assert.equal(off.message.thinking, undefined);
    assert.ok(off.message.content.length > 0);
    const g = await ollama.generate({ model: THINK_MODEL, prompt: PROMPT, think: true, options });
    assert.equal(g.thinking, r.message.thinking);
    const show = await ollama.show({ model: THINK_MODEL });
    assert.ok(show.capabilities.includes("thinking"), show.capabilities.join(","));
    await assert.rejects(ollama.chat({ model: BASE_MODEL, messages, think: true, options }), (e) => e.status_code === 400);
  });

  test("openai chat: reasoning_content, streamed too; reasoning_effort none turns it off", async () => {
    const params = { model: THINK_MODEL, messages, temperature: 0, max_tokens: N };
    const r = await openai.chat.completions.create(params);
    const reasoning = r.choices[0].message.reasoning_content;
    assert.ok(reasoning.length > 0);
    let streamed = "";
    for await (const chunk of await openai.chat.completions.create({ ...params, stream: true }))
      streamed += chunk.choices[0]?.delta?.reasoning_content ?? "";
    assert.equal(streamed, reasoning);
    const off = await openai.chat.completions.create({ ...params, reasoning_effort: "none" });
    assert.equal(off.choices[0].message.reasoning_content, undefined);
  });

  test("openai: a logit_bias id outside the vocabulary is a 400 naming the field", async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: BASE_MODEL, messages, max_tokens: 2, logit_bias: { 512: 1 } }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === "logit_bias",
    );
  });
});
