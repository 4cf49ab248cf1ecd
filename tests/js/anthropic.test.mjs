// The official `@anthropic-ai/sdk` client, unmodified, against `hearth serve`'s Messages API
// (/v1/messages, /v1/messages/count_tokens): create, stream, a forced tool call round trip,
// count_tokens, thinking blocks and errors.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";

import { HEARTH_URL, PROMPT } from "./support.mjs";
import { BASE_MODEL, THINK_MODEL, TOOLS_MODEL, WEATHER_SCHEMA, makeTemplateModels } from "./models.mjs";

const client = new Anthropic({ baseURL: HEARTH_URL, apiKey: "unused", maxRetries: 0 });
const N = 8;
const messages = [{ role: "user", content: PROMPT }];
const weather = { name: "get_weather", description: "The weather in a city", input_schema: WEATHER_SCHEMA };

describe("@anthropic-ai/sdk client", () => {
  before(makeTemplateModels);

  test("messages.create: a message with the text, stop reason and usage", async () => {
    const m = await client.messages.create({ model: BASE_MODEL, max_tokens: N, temperature: 0, messages });
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.equal(m.model, BASE_MODEL);
    assert.match(m.id, /^msg_/);
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].type, "text");
    assert.ok(m.content[0].text.length > 0);
    assert.equal(m.stop_reason, "max_tokens");
    assert.equal(m.stop_sequence, null);
    assert.equal(m.usage.output_tokens, N);
    assert.ok(m.usage.input_tokens > 0);
  });

  test("messages.stream: the events add up to the non-streamed message", async () => {
    const params = { model: BASE_MODEL, max_tokens: N, temperature: 0, messages };
    const whole = await client.messages.create(params);
    let text = "";
    const stream = client.messages.stream(params).on("text", (delta) => (text += delta));
    const final = await stream.finalMessage();
    assert.equal(text, whole.content[0].text);
    assert.deepEqual(final.content, whole.content);
    assert.equal(final.stop_reason, "max_tokens");
    assert.equal(final.usage.output_tokens, N);

    // The raw event sequence.
    const types = [];
    for await (const event of await client.messages.create({ ...params, stream: true })) types.push(event.type);
    assert.deepEqual(types.slice(0, 2), ["message_start", "content_block_start"]);
    assert.deepEqual(types.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
    assert.ok(types.slice(2, -3).every((t) => t === "content_block_delta"), types.join(","));
  });

  test("tools: a forced tool_use, then its tool_result, streamed and not", async () => {
    const params = {
      model: TOOLS_MODEL,
      max_tokens: 160,
      temperature: 0,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weather],
      tool_choice: { type: "any" },
    };
    const m = await client.messages.create(params);
    assert.equal(m.stop_reason, "tool_use");
    const use = m.content.find((b) => b.type === "tool_use");
    assert.ok(use, JSON.stringify(m.content));
    assert.equal(use.name, "get_weather");
    assert.ok(["Paris", "Oslo"].includes(use.input.city), JSON.stringify(use.input));

    const streamed = await client.messages.stream(params).finalMessage();
    assert.equal(streamed.stop_reason, "tool_use");
    assert.deepEqual(streamed.content.find((b) => b.type === "tool_use").input, use.input);

    const next = await client.messages.create({
      ...params,
      tool_choice: { type: "auto" },
      max_tokens: N,
      messages: [
        ...params.messages,
        { role: "assistant", content: m.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "Sunny, 21 C" }] },
      ],
    });
    assert.equal(next.type, "message");
    assert.ok(next.usage.input_tokens > m.usage.input_tokens);
  });

  test("messages.countTokens: the prompt length create reports", async () => {
    const params = { model: TOOLS_MODEL, system: "You tell stories.", messages };
    const m = await client.messages.create({ ...params, max_tokens: 1 });
    const count = await client.messages.countTokens(params);
    assert.deepEqual(count, { input_tokens: m.usage.input_tokens });
  });

  test("thinking: a thinking block before the text, streamed as thinking deltas", async () => {
    const params = {
      model: THINK_MODEL,
      max_tokens: N,
      temperature: 0,
      messages,
      thinking: { type: "enabled", budget_tokens: 1024 },
    };
    const m = await client.messages.create(params);
    assert.equal(m.content[0].type, "thinking");
    assert.ok(m.content[0].thinking.length > 0);
    let thinking = "";
    const final = await client.messages.stream(params).on("thinking", (delta) => (thinking += delta)).finalMessage();
    assert.equal(thinking, m.content[0].thinking);
    assert.equal(final.content[0].thinking, m.content[0].thinking);
    const off = await client.messages.create({ ...params, thinking: { type: "disabled" } });
    assert.equal(off.content[0].type, "text");
  });

  test("errors: the SDK's error classes with Anthropic's error types", async () => {
    await assert.rejects(
      client.messages.create({ model: "no-such-model", max_tokens: N, messages }),
      (e) => e instanceof Anthropic.NotFoundError && e.status === 404 && e.error?.error?.type === "not_found_error",
    );
    await assert.rejects(
      client.messages.create({ model: BASE_MODEL, max_tokens: N, temperature: 3, messages }),
      (e) => e instanceof Anthropic.BadRequestError && e.error?.error?.type === "invalid_request_error" && /temperature/.test(e.message),
    );
  });
});
