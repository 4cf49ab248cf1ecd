// Store models made for the API-fidelity tests with /api/create (plain fetch: ollama-js refuses
// a local path in `from`): stories260K
// (from the shared test data) with a ChatML template that offers tools in the Hermes
// <tool_call> syntax, and with a Qwen3-style thinking template (its generation prompt opens
// <think> unless enable_thinking is false, so the model's output is its thinking).
import { join } from "node:path";

import { HEARTH_URL, SHARED_DIR } from "./support.mjs";

export const TOOLS_MODEL = "js-stories-tools";
export const THINK_MODEL = "js-stories-think";
export const BASE_MODEL = "stories260K";  // no template: prompts go in as they are

const TOOLS_TEMPLATE =
  "{%- if tools %}<|im_start|>system\nTools:{% for t in tools %} {{ t.function.name }}{% endfor %}. " +
  'Call one as <tool_call>{"name": N, "arguments": A}</tool_call><|im_end|>\n{% endif %}' +
  "{%- for m in messages %}<|im_start|>{{ m.role }}\n" +
  "{%- if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} " +
  "{{ c.function.arguments | tojson }}</tool_call>{% endfor %}{% else %}{{ m.content }}{% endif %}" +
  "<|im_end|>\n{% endfor %}<|im_start|>assistant\n";

const THINK_TEMPLATE =
  "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
  "<|im_start|>assistant\n" +
  "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n" +
  "{% else %}<think>\n{% endif %}";

let made;
// Creates both models once per process (creating again is harmless).
export function makeTemplateModels() {
  made ??= (async () => {
    const from = join(SHARED_DIR, "models/stories260K.gguf");
    for (const [model, template] of [[TOOLS_MODEL, TOOLS_TEMPLATE], [THINK_MODEL, THINK_TEMPLATE]]) {
      const r = await fetch(`${HEARTH_URL}/api/create`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model, from, template, stream: false }),
      });
      if (!r.ok) throw new Error(`creating ${model}: ${r.status} ${await r.text()}`);
    }
  })();
  return made;
}

export const WEATHER_SCHEMA = {
  type: "object",
  properties: { city: { type: "string", enum: ["Paris", "Oslo"] } },
  required: ["city"],
};
