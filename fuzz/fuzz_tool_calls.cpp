// libFuzzer target for the tool-call parser (template/tool_calls): model output split into
// content, <think> reasoning and tool calls, for every ToolCallFormat, in one piece and through
// the stream filter.
//
// Input: one control byte, then the model output.
//   bit 0     the tool list: the request's two tools, or none (every name accepted)
//   bit 1     the prompt opened <think> (ParseOptions::reasoning_open)
//   bits 2-7  where the stream's first delta ends: at (bits 2-7) / 64 of the text; the rest
//             follows in deltas of 1 + (the next byte of the text, cycling) % max(7, length / 16)
//             bytes (deltas of a few bytes for short texts, about 32 deltas for long ones: each push
//             rescans the undecided text, and the fuzzer's time is better spent on more inputs)
//
// Checks (the contract in tool_calls.h): nothing throws; for each format the stream filter's
// content, reasoning and calls equal parse_model_output's on the whole text (with the same
// reasoning_open and the same id sequence); every call has a name, an object as arguments and
// an id; a call's name is one of the offered tools when a list is given; the same text parsed
// twice gives the same result. detect_tool_call_format and prompt_opens_reasoning run too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "template/tool_calls.h"

using namespace hearth;
using json = nlohmann::json;

namespace {

constexpr ToolCallFormat kFormats[] = {
    ToolCallFormat::None,           ToolCallFormat::Hermes,         ToolCallFormat::Llama3Json,
    ToolCallFormat::MistralNemo,    ToolCallFormat::FunctionaryV31, ToolCallFormat::FireFunctionV2,
    ToolCallFormat::CommandR,       ToolCallFormat::DeepSeekR1,
};

[[noreturn]] void finding(ToolCallFormat f, const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "fuzz_tool_calls [%s]: %s%s%s\n", tool_call_format_name(f), what, detail.empty() ? "" : ": ",
                 detail.c_str());
    std::abort();
}

const json& offered_tools() {
    static const json tools = json::parse(R"([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"name": "python"}
    ])");
    return tools;
}

// Ids "id1", "id2", ... so that the one-shot and the streamed parse can be compared.
ParseOptions counted(bool reasoning_open) {
    ParseOptions o;
    o.reasoning_open = reasoning_open;
    o.id_generator = [n = 0]() mutable { return "id" + std::to_string(++n); };
    return o;
}

std::string describe(const ParsedOutput& p) {
    std::string s = "content=" + json(p.content).dump(-1, ' ', false, json::error_handler_t::replace) +
                    " reasoning=" + json(p.reasoning).dump(-1, ' ', false, json::error_handler_t::replace) + " calls=[";
    for (const ToolCall& c : p.tool_calls)
        s += c.id + ":" + c.name + c.arguments.dump(-1, ' ', false, json::error_handler_t::replace) + " ";
    return s + "]";
}

void check_calls(ToolCallFormat f, const ParsedOutput& p, bool restricted) {
    for (const ToolCall& c : p.tool_calls) {
        if (c.name.empty()) finding(f, "a call without a name");
        if (c.id.empty()) finding(f, "a call without an id");
        if (!c.arguments.is_object()) finding(f, "arguments that are not an object", c.arguments.dump());
        if (restricted && c.name != "get_weather" && c.name != "python") finding(f, "a call to a tool not offered", c.name);
    }
}

ParsedOutput stream(ToolCallFormat f, std::string_view text, const json& tools, bool reasoning_open, size_t first) {
    ToolCallStreamFilter filter(f, tools, counted(reasoning_open));
    ParsedOutput all;
    const size_t spread = std::max<size_t>(7, text.size() / 16);
    size_t i = 0, k = 0;
    while (i < text.size()) {
        size_t n = i == 0 ? first : 1 + static_cast<unsigned char>(text[k++ % text.size()]) % spread;
        n = std::max<size_t>(1, std::min(n, text.size() - i));
        all.content += filter.push(text.substr(i, n));
        all.reasoning += filter.take_reasoning();
        for (ToolCall& c : filter.take_tool_calls()) all.tool_calls.push_back(std::move(c));
        i += n;
    }
    ParsedOutput last = filter.finish();
    all.content += last.content;
    all.reasoning += last.reasoning;
    for (ToolCall& c : last.tool_calls) all.tool_calls.push_back(std::move(c));
    return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t control = data[0];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    const bool restricted = control & 1;
    const json tools = restricted ? offered_tools() : json::array();
    const size_t first = (control >> 2) * (text.size() + 1) / 64;

    (void)detect_tool_call_format(text);
    (void)prompt_opens_reasoning(text);
    bool reasoning_open = (control & 2) != 0;
    // What parse_model_output infers by itself ("</think>" before any "<think>"); the stream
    // filter cannot look ahead, so it is told.
    if (const size_t close = text.find("</think>");
        close != std::string_view::npos && text.substr(0, close).find("<think>") == std::string_view::npos)
        reasoning_open = true;

    for (ToolCallFormat f : kFormats) {
        const ParsedOutput whole = parse_model_output(f, text, tools, counted(reasoning_open));
        check_calls(f, whole, restricted);
        if (parse_model_output(f, text, tools, counted(reasoning_open)) != whole) finding(f, "two parses differ");
        const ParsedOutput streamed = stream(f, text, tools, reasoning_open, first);
        if (streamed != whole)
            finding(f, "the stream filter disagrees with parse_model_output",
                    "\n  whole:    " + describe(whole) + "\n  streamed: " + describe(streamed));
    }
    return 0;
}
