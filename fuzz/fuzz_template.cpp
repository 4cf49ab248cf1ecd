// libFuzzer target for the chat-template engine (template/): the input is Jinja source. It is
// parsed, then rendered the way the daemon renders a chat (prompt.cpp: messages, tools,
// add_generation_prompt, bos_token, eos_token, enable_thinking) with a fixed, realistic
// conversation, and once more with a small context and lenient undefined lookups.
//
// The limits are the engine's own (step budget, call depth, output cap), with a smaller step
// budget and output cap than the daemon's defaults so that runaway templates end fast: a
// render that still takes seconds means some work escapes the step budget, which libFuzzer's
// -timeout reports. Anything but a TemplateError escaping parse() or render() is a finding,
// and so is a render that differs when repeated or exceeds the output cap.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "template/template.h"

using namespace hearth;
using ojson = nlohmann::ordered_json;

namespace {

constexpr uint64_t kMaxSteps = 200'000;      // the daemon renders with 10'000'000
constexpr size_t kMaxOutput = 1u << 20;      // the daemon allows 16 MiB

[[noreturn]] void finding(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "fuzz_template: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::abort();
}

// The conversation of a tool-using chat, in the shape the routes hand to render_prompt: a
// system prompt, a user turn, an assistant turn with an OpenAI tool call (arguments as an
// object) and earlier reasoning, the tool's result, an assistant answer with its arguments as
// a JSON string, and a last user turn with non-ASCII text.
const ojson& full_context() {
    static const ojson ctx = ojson::parse(R"JSON({
      "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What's the weather like in Paris today?"},
        {"role": "assistant", "content": "", "reasoning_content": "The user wants the weather.",
         "thinking": "The user wants the weather.",
         "tool_calls": [{"id": "call00001", "type": "function",
                         "function": {"name": "get_weather",
                                      "arguments": {"location": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call00001", "name": "get_weather",
         "content": "{\"temperature\": 18, \"unit\": \"celsius\", \"condition\": \"cloudy\"}"},
        {"role": "assistant", "content": "<think>Cloudy, no rain.</think>It is 18 °C and cloudy.",
         "tool_calls": [{"id": "call00002", "type": "function",
                         "function": {"name": "get_time", "arguments": "{\"tz\": \"Europe/Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call00002", "content": "12:00"},
        {"role": "user", "content": [{"type": "text", "text": "Merci ! 天气 🌧 \"quoted\" back\\slash"}]},
        {"role": "user", "content": null, "images": []}
      ],
      "tools": [
        {"type": "function", "function": {
          "name": "get_weather", "description": "Get the current weather in a given city.",
          "parameters": {"type": "object",
            "properties": {"location": {"type": "string", "description": "The city name, e.g. Paris"},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"]}}},
        {"type": "function", "function": {
          "name": "get_time", "description": "The time in a time zone.",
          "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": []}}}
      ],
      "add_generation_prompt": true,
      "bos_token": "<|begin_of_text|>",
      "eos_token": "<|eot_id|>",
      "enable_thinking": true,
      "reasoning_effort": "high"
    })JSON");
    return ctx;
}

// One user message and no generation prompt (no tools: `tools` is undefined).
const ojson& small_context() {
    static const ojson ctx = ojson::parse(R"JSON({
      "messages": [{"role": "user", "content": "Hello"}],
      "add_generation_prompt": false,
      "bos_token": "<s>",
      "eos_token": "</s>"
    })JSON");
    return ctx;
}

RenderOptions options(bool lenient) {
    RenderOptions o;
    o.max_steps = kMaxSteps;
    o.max_output_bytes = kMaxOutput;
    o.lenient_undefined = lenient;
    o.now = RenderOptions::fixed_time(2026, 1, 15);
    return o;
}

// The rendered text, or "\x01" + the error kind when the render failed.
std::string render(const Template& t, const ojson& ctx, bool lenient) {
    try {
        std::string out = t.render(ctx, options(lenient));
        if (out.size() > kMaxOutput) finding("the output exceeds max_output_bytes", std::to_string(out.size()));
        return out;
    } catch (const TemplateError& e) {
        if (e.line() < 0 || e.column() < 0) finding("an error with a negative position", e.what());
        return std::string("\x01") + static_cast<char>('0' + static_cast<int>(e.kind()));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view source(reinterpret_cast<const char*>(data), size);
    Template t;
    try {
        t = Template::parse(source);
    } catch (const TemplateError& e) {
        if (e.kind() != TemplateErrorKind::Syntax && e.kind() != TemplateErrorKind::Limit)
            finding("parse() threw a non-syntax error", e.what());
        return 0;
    }
    const std::string first = render(t, full_context(), false);
    // A parsed template is immutable and the clock fixed: a second render must agree.
    if (render(t, full_context(), false) != first) finding("two renders of the same context differ");
    render(t, small_context(), true);
    return 0;
}
