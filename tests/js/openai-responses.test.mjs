// The official `openai` client's Responses API (`responses.create`, streamed and not),
// unmodified, against `hearth serve`'s stateless /v1/responses: text, a forced function call
// and its output, text.format (json_schema), reasoning items, and the stateless 400s.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

import { HEARTH_URL, PROMPT } from "./support.mjs";
import { BASE_MODEL, THINK_MODEL, TOOLS_MODEL, WEATHER_SCHEMA, makeTemplateModels } from "./models.mjs";

const client = new OpenAI({ baseURL: `${HEARTH_URL}/v1`, apiKey: "unused", maxRetries: 0 });
const N = 8;
const weather = { type: "function", name: "get_weather", description: "The weather in a city", parameters: WEATHER_SCHEMA, strict: true };

describe("openai client, Responses API", () => {
  before(makeTemplateModels);

  test("responses.create: output_text, status and usage", async () => {
    const r = await client.responses.create({ model: BASE_MODEL, input: PROMPT, temperature: 0, max_output_tokens: N });
    assert.equal(r.object, "response");
    assert.match(r.id, /^resp_/);
    assert.equal(r.status, "incomplete");
    assert.equal(r.incomplete_details.reason, "max_output_tokens");
    assert.equal(r.output[0].type, "message");
    assert.ok(r.output_text.length > 0);
    assert.equal(r.usage.output_tokens, N);
    // The same conversation through chat.completions gives the same text.
    const c = await client.chat.completions.create({
      model: BASE_MODEL,
      messages: [{ role: "user", content: PROMPT }],
      temperature: 0,
      max_tokens: N,
    });
    assert.equal(r.output_text, c.choices[0].message.content);
  });

  test("stream: the event stream adds up to the non-streamed response", async () => {
    const params = { model: BASE_MODEL, input: [{ role: "user", content: PROMPT }], temperature: 0, max_output_tokens: N };
    const whole = await client.responses.create(params);
    const types = [];
    let text = "";
    let final;
    for await (const e of await client.responses.create({ ...params, stream: true })) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed" || e.type === "response.incomplete") final = e.response;
    }
    assert.equal(types[0], "response.created");
    assert.ok(types.includes("response.output_item.added"));
    assert.ok(types.includes("response.output_text.done"));
    assert.equal(text, whole.output_text);
    assert.equal(final.output[0].content[0].text, text);
    // The SDK's stream helper accumulates the same response.
    const helper = await client.responses.stream(params).finalResponse();
    assert.equal(helper.output_text, whole.output_text);
  });

  test("function calling: a required call, then its output as input", async () => {
    const params = { model: TOOLS_MODEL, input: "Weather in Paris?", tools: [weather], tool_choice: "required", temperature: 0, max_output_tokens: 160 };
    const r = await client.responses.create(params);
    const call = r.output.find((o) => o.type === "function_call");
    assert.ok(call, JSON.stringify(r.output));
    assert.equal(call.name, "get_weather");
    const args = JSON.parse(call.arguments);
    assert.ok(["Paris", "Oslo"].includes(args.city), call.arguments);

    let streamedArgs = "";
    for await (const e of await client.responses.create({ ...params, stream: true }))
      if (e.type === "response.function_call_arguments.delta") streamedArgs += e.delta;
    assert.deepEqual(JSON.parse(streamedArgs), args);

    const next = await client.responses.create({
      ...params,
      tool_choice: "auto",
      max_output_tokens: N,
      input: [
        { role: "user", content: "Weather in Paris?" },
        call,
        { type: "function_call_output", call_id: call.call_id, output: "Sunny, 21 C" },
      ],
    });
    assert.equal(next.object, "response");
    assert.ok(next.usage.input_tokens > r.usage.input_tokens);
  });

  test("text.format json_schema: the output validates", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer", minimum: 0, maximum: 120 } },
      required: ["name", "age"],
      additionalProperties: false,
    };
    const r = await client.responses.create({
      model: BASE_MODEL,
      input: "A person as JSON.",
      max_output_tokens: 400,
      text: { format: { type: "json_schema", name: "person", schema, strict: true } },
    });
    assert.equal(r.status, "completed");
    const v = JSON.parse(r.output_text);
    assert.equal(typeof v.name, "string");
    assert.ok(v.name.length <= 12);
    assert.ok(Number.isInteger(v.age) && v.age >= 0 && v.age <= 120);
    assert.deepEqual(Object.keys(v).sort(), ["age", "name"]);
  });

  test("reasoning: a reasoning item before the message; effort none turns it off", async () => {
    const params = { model: THINK_MODEL, input: PROMPT, temperature: 0, max_output_tokens: N };
    const r = await client.responses.create(params);
    assert.equal(r.output[0].type, "reasoning");
    const text = r.output[0].content[0].text;
    assert.ok(text.length > 0);
    let streamed = "";
    for await (const e of await client.responses.create({ ...params, stream: true }))
      if (e.type === "response.reasoning_text.delta") streamed += e.delta;
    assert.equal(streamed, text);
    const off = await client.responses.create({ ...params, reasoning: { effort: "none" } });
    assert.equal(off.output[0].type, "message");
  });

  test("stateless: store and previous_response_id are refused with a 400", async () => {
    for (const extra of [{ store: true }, { previous_response_id: "resp_123" }]) {
      await assert.rejects(
        client.responses.create({ model: BASE_MODEL, input: PROMPT, max_output_tokens: N, ...extra }),
        (e) => e instanceof OpenAI.BadRequestError && e.param === Object.keys(extra)[0],
      );
    }
  });
});
