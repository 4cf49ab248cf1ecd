// Tool-call parsing: format detection on the shared templates, each family's output syntax
// (single, parallel, surrounding text, malformed, unknown names, string arguments, unicode,
// reasoning), the stream filter (markers cut across deltas, false alarms, byte-by-byte equality
// with the one-shot parse, including on mutated outputs), and round trips through the shared
// templates: an assistant message with tool calls, rendered, parses back to the same calls.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/paths.h"
#include "template/template.h"
#include "template/tool_calls.h"

namespace hearth {

void PrintTo(const ToolCall& c, std::ostream* os) { *os << c.id << ":" << c.name << c.arguments.dump(); }

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using F = ToolCallFormat;

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

const json& tools() {
    static const json t = json::parse(R"([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
        {"name": "python"}])");
    return t;
}

// Deterministic ids: id1, id2, ...
ParseOptions counted_ids() {
    ParseOptions o;
    o.id_generator = [n = 0]() mutable { return "id" + std::to_string(++n); };
    return o;
}

ParsedOutput parse(F f, std::string_view text, const json& t = tools()) {
    return parse_model_output(f, text, t, counted_ids());
}

ToolCall call(std::string id, std::string name, const char* args) { return {id, name, json::parse(args)}; }

const ToolCall kParis = call("id1", "get_weather", R"({"location": "Paris", "unit": "celsius"})");
const ToolCall kLondon = call("id2", "get_weather", R"({"location": "London"})");

// What parse_model_output infers about an opened <think>.
bool implied_open(std::string_view text) {
    const size_t close = text.find("</think>");
    return close != std::string_view::npos && text.substr(0, close).find("<think>") == std::string_view::npos;
}

// Streams `text` in pieces of the given sizes (cycled) and gathers everything handed out.
ParsedOutput stream(F f, std::string_view text, std::vector<size_t> sizes = {1}, const json& t = tools()) {
    ParseOptions o = counted_ids();
    o.reasoning_open = implied_open(text);
    ToolCallStreamFilter filter(f, t, o);
    ParsedOutput all;
    size_t i = 0, k = 0;
    while (i < text.size()) {
        const size_t n = std::max<size_t>(1, sizes[k++ % sizes.size()]);
        all.content += filter.push(text.substr(i, n));
        all.reasoning += filter.take_reasoning();
        i += n;
    }
    ParsedOutput last = filter.finish();
    all.content += last.content;
    all.reasoning += last.reasoning;
    all.tool_calls = std::move(last.tool_calls);
    return all;
}

// The one-shot parse and the byte-by-byte (and a ragged) stream agree.
void expect_stream_matches(F f, std::string_view text, const json& t = tools()) {
    ParseOptions o = counted_ids();
    o.reasoning_open = implied_open(text);
    const ParsedOutput want = parse_model_output(f, text, t, o);
    for (const auto& sizes : {std::vector<size_t>{1}, std::vector<size_t>{3, 1, 7, 2}, std::vector<size_t>{1000}}) {
        const ParsedOutput got = stream(f, text, sizes, t);
        ASSERT_EQ(got.content, want.content) << tool_call_format_name(f) << " | " << text;
        ASSERT_EQ(got.reasoning, want.reasoning) << text;
        ASSERT_EQ(got.tool_calls, want.tool_calls) << text;
    }
}

// ---- detection

TEST(ToolCallDetect, EverySharedTemplate) {
    const std::map<std::string, F> want{
        {"CohereForAI-c4ai-command-r-plus-tool_use", F::CommandR},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", F::Hermes},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use", F::Hermes},
        {"Qwen-QwQ-32B", F::Hermes},
        {"Qwen-Qwen2.5-7B-Instruct", F::Hermes},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", F::DeepSeekR1},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", F::DeepSeekR1},
        {"fireworks-ai-llama-3-firefunction-v2", F::FireFunctionV2},
        {"google-gemma-2-2b-it", F::None},
        {"llama-cpp-deepseek-r1", F::DeepSeekR1},
        {"meetkai-functionary-medium-v3.1", F::FunctionaryV31},
        {"meta-llama-Llama-3.2-3B-Instruct", F::Llama3Json},
        {"mistralai-Mistral-Nemo-Instruct-2407", F::MistralNemo},
    };
    const fs::path root = test::shared_path("templates");
    if (!fs::exists(root)) GTEST_SKIP() << "no shared templates at " << root;
    size_t seen = 0;
    for (const auto& dir : fs::directory_iterator(root)) {
        const fs::path file = dir.path() / "template.jinja";
        if (!fs::exists(file)) continue;
        const std::string name = dir.path().filename().string();
        ++seen;
        const auto it = want.find(name);
        ASSERT_NE(it, want.end()) << "a new shared template: add it here: " << name;
        EXPECT_EQ(tool_call_format_name(detect_tool_call_format(slurp(file))), tool_call_format_name(it->second))
            << name;
    }
    EXPECT_EQ(seen, want.size());
}

TEST(ToolCallDetect, PlainTemplatesHaveNone) {
    EXPECT_EQ(detect_tool_call_format(default_chat_template()), F::None);
    EXPECT_EQ(detect_tool_call_format(""), F::None);
    // Llama 3 without tool support: headers alone are not enough.
    EXPECT_EQ(detect_tool_call_format("{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
                                      "{{ m.content }}<|eot_id|>{% endfor %}"),
              F::None);
}

TEST(ToolCallDetect, PromptOpensReasoning) {
    EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"));
    EXPECT_TRUE(prompt_opens_reasoning("<｜Assistant｜><think>"));
    EXPECT_FALSE(prompt_opens_reasoning("<｜Assistant｜><think>\n</think>\n\n"));
    EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n"));
}

// ---- every format: the empty output and plain text

TEST(ToolCallParse, EmptyAndPlainTextInEveryFormat) {
    for (F f : {F::None, F::Hermes, F::Llama3Json, F::MistralNemo, F::FunctionaryV31, F::FireFunctionV2, F::CommandR,
                F::DeepSeekR1}) {
        const ParsedOutput e = parse(f, "");
        EXPECT_TRUE(e.content.empty() && e.reasoning.empty() && e.tool_calls.empty());
        const ParsedOutput p = parse(f, "  Paris is sunny today, 21 °C.\n");
        EXPECT_EQ(p.content, "Paris is sunny today, 21 °C.") << tool_call_format_name(f);
        EXPECT_TRUE(p.tool_calls.empty());
        expect_stream_matches(f, "  Paris is sunny today, 21 °C.\n");
    }
}

// ---- Hermes / Qwen

TEST(ToolCallHermes, SingleCall) {
    const auto p = parse(F::Hermes,
                         "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": "
                         "\"celsius\"}}\n</tool_call>");
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.tool_calls.size(), 1u);
    EXPECT_EQ(p.tool_calls[0], kParis);
}

TEST(ToolCallHermes, ParallelCallsAndSurroundingText) {
    const std::string text =
        "Let me check both cities.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": "
        "\"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
        "{\"location\": \"London\"}}\n</tool_call>\nOne moment.";
    const auto p = parse(F::Hermes, text);
    EXPECT_EQ(p.content, "Let me check both cities.\n\n\nOne moment.");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis, kLondon}));
    expect_stream_matches(F::Hermes, text);
}

TEST(ToolCallHermes, MalformedJsonStaysContent) {
    const std::string bad = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": }\n</tool_call>";
    auto p = parse(F::Hermes, bad);
    EXPECT_EQ(p.content, bad);
    EXPECT_TRUE(p.tool_calls.empty());
    // A malformed call does not hide a good one after it.
    p = parse(F::Hermes, bad + "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>");
    EXPECT_EQ(p.content, bad);
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{call("id1", "get_time", "{}")}));
    // Unterminated, not JSON, and a lone marker.
    for (const char* t : {"<tool_call>{\"name\": \"get_weather\", \"argu", "<tool_call>not json at all",
                          "text <tool_call>", "<tool_call>[]</tool_call>", "<tool_call>{\"name\": 42}</tool_call>"}) {
        p = parse(F::Hermes, t);
        EXPECT_EQ(p.content, t);
        EXPECT_TRUE(p.tool_calls.empty()) << t;
        expect_stream_matches(F::Hermes, t);
    }
}

TEST(ToolCallHermes, UnknownToolStaysContent) {
    const std::string text = "<tool_call>{\"name\": \"launch_rockets\", \"arguments\": {}}</tool_call>";
    auto p = parse(F::Hermes, text);
    EXPECT_EQ(p.content, text);
    EXPECT_TRUE(p.tool_calls.empty());
    // Without a tool list every name is accepted.
    p = parse(F::Hermes, text, json());
    ASSERT_EQ(p.tool_calls.size(), 1u);
    EXPECT_EQ(p.tool_calls[0].name, "launch_rockets");
    // One unknown name in a region keeps the whole region as text.
    const std::string mixed = "<tool_call>[{\"name\": \"get_time\"}, {\"name\": \"nope\"}]</tool_call>";
    EXPECT_EQ(parse(F::Hermes, mixed).content, mixed);
}

TEST(ToolCallHermes, ArgumentsVariants) {
    // A JSON string is decoded; absent arguments are {}; OpenAI's nested shape; "parameters".
    auto p = parse(F::Hermes,
                   "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"location\\\": \\\"Paris\\\", "
                   "\\\"unit\\\": \\\"celsius\\\"}\"}</tool_call>"
                   "<tool_call>{\"name\": \"get_time\"}</tool_call>"
                   "<tool_call>{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"arguments\": {\"tz\": "
                   "\"UTC\"}}, \"id\": \"abc\"}</tool_call>"
                   "<tool_call>{\"name\": \"get_time\", \"parameters\": {\"tz\": \"CET\"}}</tool_call>");
    EXPECT_EQ(p.content, "");
    EXPECT_EQ(p.tool_calls,
              (std::vector<ToolCall>{kParis, call("id2", "get_time", "{}"), call("abc", "get_time", R"({"tz": "UTC"})"),
                                     call("id3", "get_time", R"({"tz": "CET"})")}));
    // Arguments that are not an object (nor a string holding one) leave the call as text.
    for (const char* args : {"\"Paris\"", "[1, 2]", "7", "\"[1]\""}) {
        const std::string t =
            std::string("<tool_call>{\"name\": \"get_time\", \"arguments\": ") + args + "}</tool_call>";
        p = parse(F::Hermes, t);
        EXPECT_TRUE(p.tool_calls.empty()) << t;
        EXPECT_EQ(p.content, t);
    }
}

TEST(ToolCallHermes, UnicodeArguments) {
    const auto p = parse(F::Hermes,
                         "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"東京 🗼\", \"note\": "
                         "\"na\\u00efve \\\"q\\\" \\\\ \\ud83c\\udf27\"}}</tool_call>");
    ASSERT_EQ(p.tool_calls.size(), 1u);
    EXPECT_EQ(p.tool_calls[0].arguments["location"], "東京 🗼");
    EXPECT_EQ(p.tool_calls[0].arguments["note"], "naïve \"q\" \\ 🌧");
}

TEST(ToolCallHermes, MissingCloseTag) {
    // Qwen sometimes stops right after the JSON.
    auto p = parse(F::Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"London\"}}\n");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{call("id1", "get_weather", R"({"location": "London"})")}));
    EXPECT_EQ(p.content, "");
    // ... or opens the next call without closing this one.
    const std::string two = "<tool_call>{\"name\": \"get_time\"}\n<tool_call>{\"name\": \"get_time\"}</tool_call>";
    p = parse(F::Hermes, two);
    EXPECT_EQ(p.tool_calls.size(), 2u);
    EXPECT_EQ(p.content, "");
    expect_stream_matches(F::Hermes, two);
}

TEST(ToolCallHermes, ReasoningQwQStyle) {
    // QwQ's prompt ends with "<think>\n": the output carries only the closing tag.
    const std::string text =
        "The user wants Paris weather. I should call get_weather.\n</think>\n\n<tool_call>\n{\"name\": "
        "\"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>";
    auto p = parse(F::Hermes, text);
    EXPECT_EQ(p.reasoning, "The user wants Paris weather. I should call get_weather.");
    EXPECT_EQ(p.content, "");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis}));
    // Explicit <think>, and a tool-call lookalike inside reasoning is not a call.
    p = parse(F::Hermes, "<think>maybe <tool_call>{\"name\": \"get_time\"}</tool_call>?</think>It is noon.");
    EXPECT_EQ(p.reasoning, "maybe <tool_call>{\"name\": \"get_time\"}</tool_call>?");
    EXPECT_EQ(p.content, "It is noon.");
    EXPECT_TRUE(p.tool_calls.empty());
    // Unterminated reasoning is all reasoning.
    p = parse(F::None, "<think>still thinking");
    EXPECT_EQ(p.reasoning, "still thinking");
    EXPECT_EQ(p.content, "");
}

// ---- Llama 3.x JSON

TEST(ToolCallLlama3, BareJsonForms) {
    const char* outputs[] = {
        R"({"name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}})",
        R"(<|python_tag|>{"name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}})",
        R"({"type": "function", "name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}})",
        R"({"name": "get_weather", "parameters": "{\"location\": \"Paris\", \"unit\": \"celsius\"}"})",
        "\n  {\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}  \n",
    };
    for (const char* t : outputs) {
        const auto p = parse(F::Llama3Json, t);
        EXPECT_EQ(p.content, "") << t;
        EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis})) << t;
        expect_stream_matches(F::Llama3Json, t);
    }
}

TEST(ToolCallLlama3, ParallelAndContent) {
    const std::string text =
        R"(I'll look that up. {"name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}}; )"
        R"({"name": "get_weather", "parameters": {"location": "London"}})";
    auto p = parse(F::Llama3Json, text);
    EXPECT_EQ(p.content, "I'll look that up.");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis, kLondon}));
    expect_stream_matches(F::Llama3Json, text);
    // JSON that is not a call stays content: no "parameters", a different "type", unknown name.
    for (const char* t :
         {R"(Here: {"name": "Bob", "age": 3} ok)", R"({"type": "person", "name": "x", "parameters": {}})",
          R"({"name": "rm_rf", "parameters": {}})", R"(code: if (x) { return {"name"}; })",
          R"({"name": "get_weather", "parameters": {"location": "Paris")"}) {
        p = parse(F::Llama3Json, t);
        EXPECT_TRUE(p.tool_calls.empty()) << t;
        EXPECT_EQ(p.content, t);
        expect_stream_matches(F::Llama3Json, t);
    }
}

TEST(ToolCallLlama3, PythonTagCode) {
    auto p = parse(F::Llama3Json, "<|python_tag|>print(sum(range(10)))\n");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{call("id1", "python", R"j({"code": "print(sum(range(10)))"})j")}));
    EXPECT_EQ(p.content, "");
    // Without a python tool the tag and code stay text.
    const json only_weather = json::array({tools()[0]});
    p = parse(F::Llama3Json, "<|python_tag|>brave_search.call(query=\"x\")", only_weather);
    EXPECT_TRUE(p.tool_calls.empty());
    EXPECT_EQ(p.content, "<|python_tag|>brave_search.call(query=\"x\")");
}

// ---- Mistral Nemo

TEST(ToolCallMistral, CallsWithIds) {
    const std::string text =
        R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}, "id": "a1b2c3d4e"}, )"
        R"({"name": "get_weather", "arguments": {"location": "London"}}])";
    const auto p = parse(F::MistralNemo, text);
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.tool_calls.size(), 2u);
    EXPECT_EQ(p.tool_calls[0].id, "a1b2c3d4e");  // the model's own id
    EXPECT_EQ(p.tool_calls[0].arguments, kParis.arguments);
    EXPECT_EQ(p.tool_calls[1].id, "id1");
    expect_stream_matches(F::MistralNemo, text);
}

TEST(ToolCallMistral, ContentStringArgsAndMalformed) {
    auto p = parse(F::MistralNemo,
                   "Checking.[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": \"{\\\"tz\\\": \\\"UTC\\\"}\"}]");
    EXPECT_EQ(p.content, "Checking.");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{call("id1", "get_time", R"({"tz": "UTC"})")}));
    for (const char* t :
         {"[TOOL_CALLS] sorry", "[TOOL_CALLS][{\"name\": \"get_time\",", "[TOOL_CALLS][{\"nam\": 1}]"}) {
        p = parse(F::MistralNemo, t);
        EXPECT_EQ(p.content, t);
        EXPECT_TRUE(p.tool_calls.empty());
    }
}

TEST(ToolCallMistral, GeneratedIdsFitTheTemplate) {
    // Mistral's template refuses ids that are not 9 characters; others look like OpenAI's.
    const auto m =
        parse_model_output(F::MistralNemo, R"([TOOL_CALLS][{"name": "get_time", "arguments": {}}])", tools());
    ASSERT_EQ(m.tool_calls.size(), 1u);
    EXPECT_EQ(m.tool_calls[0].id.size(), 9u);
    const auto h = parse_model_output(F::Hermes, R"(<tool_call>{"name": "get_time"}</tool_call>)", tools());
    ASSERT_EQ(h.tool_calls.size(), 1u);
    EXPECT_TRUE(h.tool_calls[0].id.starts_with("call_"));
    EXPECT_EQ(h.tool_calls[0].id.size(), 5u + 24u);
    for (char c : h.tool_calls[0].id.substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
}

// ---- Functionary v3.1

TEST(ToolCallFunctionary, CallsAndCode) {
    const std::string text =
        R"(<function=get_weather>{"location": "Paris", "unit": "celsius"}</function><function=get_weather>{"location": "London"}</function>)";
    auto p = parse(F::FunctionaryV31, text);
    EXPECT_EQ(p.content, "");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis, kLondon}));
    expect_stream_matches(F::FunctionaryV31, text);
    // The closing tag may be missing; text around is content.
    p = parse(F::FunctionaryV31, "Sure. <function=get_time>{}");
    EXPECT_EQ(p.content, "Sure.");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{call("id1", "get_time", "{}")}));
    p = parse(F::FunctionaryV31, "<|python_tag|>import math\nprint(math.pi)");
    EXPECT_EQ(p.tool_calls,
              (std::vector<ToolCall>{call("id1", "python", R"j({"code": "import math\nprint(math.pi)"})j")}));
    for (const char* t : {"<function=get_time>{bad}</function>", "<function=nope>{}</function>", "<function=a b>{}",
                          "<function=get_time>[1]</function>", "<function=get_time"}) {
        p = parse(F::FunctionaryV31, t);
        EXPECT_EQ(p.content, t);
        EXPECT_TRUE(p.tool_calls.empty()) << t;
        expect_stream_matches(F::FunctionaryV31, t);
    }
}

// ---- FireFunction v2

TEST(ToolCallFireFunction, Calls) {
    const std::string text =
        R"( functools[{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}, {"name": "get_weather", "arguments": {"location": "London"}}])";
    auto p = parse(F::FireFunctionV2, text);
    EXPECT_EQ(p.content, "");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis, kLondon}));
    expect_stream_matches(F::FireFunctionV2, text);
    // The word alone (Python's module) is prose.
    for (const char* t : {"Use functools.partial here.", "functools[{\"name\": \"get_time\",", "functools [oops]"}) {
        p = parse(F::FireFunctionV2, t);
        EXPECT_EQ(p.content, t);
        EXPECT_TRUE(p.tool_calls.empty());
        expect_stream_matches(F::FireFunctionV2, t);
    }
}

// ---- Command-R+

TEST(ToolCallCommandR, ActionBlock) {
    const std::string text =
        "I will look up the weather in both cities.\nAction:\n```json\n[\n    {\n        \"tool_name\": "
        "\"get_weather\",\n        \"parameters\": {\n            \"location\": \"Paris\",\n            \"unit\": "
        "\"celsius\"\n        }\n    },\n    {\n        \"tool_name\": \"get_weather\",\n        \"parameters\": "
        "{\"location\": \"London\"}\n    }\n]```\n";
    auto p = parse(F::CommandR, text);
    EXPECT_EQ(p.content, "I will look up the weather in both cities.");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis, kLondon}));
    expect_stream_matches(F::CommandR, text);
    // directly-answer calls nothing; unfenced arrays work; prose "Action:" stays.
    p = parse(F::CommandR, "Action: ```json\n[{\"tool_name\": \"directly-answer\", \"parameters\": {}}]\n```");
    EXPECT_EQ(p.content, "");
    EXPECT_TRUE(p.tool_calls.empty());
    p = parse(F::CommandR, "Action: [{\"tool_name\": \"get_time\", \"parameters\": {}}]");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{call("id1", "get_time", "{}")}));
    for (const char* t : {"Action: none needed.", "Action:\n```json\n[{\"tool_name\": \"get_time\",]\n```",
                          "Action: ```python\nprint(1)```"}) {
        p = parse(F::CommandR, t);
        EXPECT_EQ(p.content, t);
        EXPECT_TRUE(p.tool_calls.empty());
        expect_stream_matches(F::CommandR, t);
    }
}

// ---- DeepSeek R1

TEST(ToolCallDeepSeek, CallsWithReasoning) {
    const std::string text =
        "Okay, two cities.\n</think>\n\nChecking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
        "get_weather\n```json\n{\"location\": \"Paris\", \"unit\": \"celsius\"}\n```<｜tool▁call▁end｜>\n"
        "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\": \"London\"}\n```"
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    const auto p = parse(F::DeepSeekR1, text);
    EXPECT_EQ(p.reasoning, "Okay, two cities.");
    EXPECT_EQ(p.content, "Checking.");
    EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis, kLondon}));
    expect_stream_matches(F::DeepSeekR1, text);
}

TEST(ToolCallDeepSeek, Variants) {
    // No outer end marker (the distilled templates' own rendering); V3.1's NAME<sep>{json};
    // a bare call without the outer begin marker.
    const char* outputs[] = {
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\": "
        "\"Paris\", \"unit\": \"celsius\"}\n```<｜tool▁call▁end｜>",
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"location\": \"Paris\", \"unit\": "
        "\"celsius\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
        "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n{\"location\": \"Paris\", \"unit\": "
        "\"celsius\"}<｜tool▁call▁end｜>",
    };
    for (const char* t : outputs) {
        const auto p = parse(F::DeepSeekR1, t);
        EXPECT_EQ(p.content, "") << t;
        EXPECT_EQ(p.tool_calls, (std::vector<ToolCall>{kParis})) << t;
        expect_stream_matches(F::DeepSeekR1, t);
    }
    for (const char* t :
         {"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{oops}\n```"
          "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
          "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>nope\n```json\n{}\n```"
          "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
          "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{"}) {
        const auto p = parse(F::DeepSeekR1, t);
        EXPECT_EQ(p.content, t);
        EXPECT_TRUE(p.tool_calls.empty());
        expect_stream_matches(F::DeepSeekR1, t);
    }
}

// ---- the stream filter

TEST(ToolCallStream, ContentBeforeACallIsStreamedAtOnce) {
    ToolCallStreamFilter f(F::Hermes, tools(), counted_ids());
    EXPECT_EQ(f.push("Let me check "), "Let me check");  // trailing space held until more text
    EXPECT_EQ(f.push("the weather.\n"), " the weather.");
    EXPECT_EQ(f.push("<tool_"), "");
    EXPECT_EQ(f.push("call>\n{\"name\": \"get_weather\", "), "");
    EXPECT_TRUE(f.take_tool_calls().empty());
    EXPECT_EQ(f.push("\"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>"), "");
    EXPECT_EQ(f.take_tool_calls(), (std::vector<ToolCall>{kParis}));  // available before the end
    const ParsedOutput last = f.finish();
    EXPECT_EQ(last.content, "");
    EXPECT_TRUE(last.tool_calls.empty());
}

TEST(ToolCallStream, FalseAlarmPrefixesAreReleased) {
    ToolCallStreamFilter f(F::Hermes, tools());
    EXPECT_EQ(f.push("a <tool"), "a");
    EXPECT_EQ(f.push("box> b"), " <toolbox> b");
    ToolCallStreamFilter m(F::MistralNemo, tools());
    EXPECT_EQ(m.push("x [TOOL_"), "x");
    EXPECT_EQ(m.push("RESULTS]"), " [TOOL_RESULTS]");
    ToolCallStreamFilter l(F::Llama3Json, tools());
    EXPECT_EQ(l.push("f() {"), "f()");
    EXPECT_EQ(l.push(" return 1; }"), " { return 1; }");
    ToolCallStreamFilter d(F::DeepSeekR1, tools());
    EXPECT_EQ(d.push("<｜tool▁"), "");
    EXPECT_EQ(d.push("x"), "<｜tool▁x");
    EXPECT_EQ(d.finish().content, "");
}

TEST(ToolCallStream, HeldTextComesOutAtFinish) {
    // A marker that never completes, and malformed markup, come out as content at the end.
    ToolCallStreamFilter f(F::Hermes, tools());
    EXPECT_EQ(f.push("Done. <tool_ca"), "Done.");
    EXPECT_EQ(f.finish().content, " <tool_ca");
    ToolCallStreamFilter g(F::Hermes, tools());
    EXPECT_EQ(g.push("<tool_call>{\"name\": \"get_weather\", \"arguments\": {"), "");
    const ParsedOutput last = g.finish();
    EXPECT_EQ(last.content, "<tool_call>{\"name\": \"get_weather\", \"arguments\": {");
    EXPECT_TRUE(last.tool_calls.empty());
}

TEST(ToolCallStream, ReasoningIsSeparated) {
    ParseOptions o;
    o.reasoning_open = true;
    ToolCallStreamFilter f(F::DeepSeekR1, tools(), o);
    EXPECT_EQ(f.push("\nHmm, the user "), "");
    EXPECT_EQ(f.take_reasoning(), "Hmm, the user");
    EXPECT_EQ(f.push("asks.</th"), "");
    EXPECT_EQ(f.take_reasoning(), " asks.");
    EXPECT_EQ(f.push("ink>\n\nIt is "), "It is");
    EXPECT_EQ(f.push("sunny."), " sunny.");
    const ParsedOutput last = f.finish();
    EXPECT_EQ(last.reasoning, "");
    EXPECT_EQ(last.content, "");
}

// Every sample output of every family, byte by byte, then every prefix and random mutations:
// the stream and the one-shot parse always agree, and nothing throws.
struct Sample {
    F format;
    std::string text;
};

std::vector<Sample> samples() {
    return {
        {F::Hermes,
         "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>"},
        {F::Hermes, "<think>\nhm\n</think>\n<tool_call>{\"name\": \"get_time\"}</tool_call> after"},
        {F::Llama3Json,
         "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"get_weather\", \"parameters\": "
         "{\"location\": \"Oslo\"}}"},
        {F::MistralNemo, "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {}, \"id\": \"abcdefghi\"}]"},
        {F::FunctionaryV31, "ok <function=get_time>{\"tz\": \"UTC\"}</function> <|python_tag|>print(1)"},
        {F::FireFunctionV2, "x functools[{\"name\": \"get_time\", \"arguments\": {}}]"},
        {F::CommandR, "Plan.\nAction: ```json\n[{\"tool_name\": \"get_time\", \"parameters\": {}}]\n```"},
        {F::DeepSeekR1,
         "r</"
         "think>c<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<"
         "｜tool▁call▁end｜><｜tool▁calls▁end｜>"},
    };
}

TEST(ToolCallStream, StreamEqualsOneShotOnPrefixesAndMutations) {
    std::mt19937 rng(1234);
    const std::string noise[] = {"<",
                                 ">",
                                 "{",
                                 "}",
                                 "[",
                                 "]",
                                 "\"",
                                 "\\",
                                 ";",
                                 "`",
                                 " ",
                                 "\n",
                                 "\xE6",
                                 "é",
                                 "<think>",
                                 "</think>",
                                 "<tool_call>",
                                 "</tool_call>",
                                 "<|python_tag|>",
                                 "[TOOL_CALLS]",
                                 "<function=get_time>",
                                 "</function>",
                                 "functools",
                                 "Action:",
                                 "```",
                                 "```json",
                                 "<｜tool▁calls▁begin｜>",
                                 "<｜tool▁call▁begin｜>",
                                 "<｜tool▁sep｜>",
                                 "<｜tool▁call▁end｜>",
                                 "<｜tool▁calls▁end｜>",
                                 "{\"name\"",
                                 "get_time",
                                 "{\"name\": \"get_time\", \"parameters\": {}}"};
    const F all[] = {F::None,           F::Hermes,         F::Llama3Json, F::MistralNemo,
                     F::FunctionaryV31, F::FireFunctionV2, F::CommandR,   F::DeepSeekR1};
    for (const Sample& s : samples()) {
        expect_stream_matches(s.format, s.text);
        for (size_t n = 0; n <= s.text.size(); ++n) expect_stream_matches(s.format, s.text.substr(0, n));
        for (int round = 0; round < 50; ++round) {
            std::string t = s.text;
            for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
                const size_t at = rng() % (t.size() + 1);
                if (rng() % 2)
                    t.insert(at, noise[rng() % std::size(noise)]);
                else
                    t.erase(at, 1 + rng() % 4);
            }
            for (F f : all) expect_stream_matches(f, t);
        }
    }
}

TEST(ToolCallParse, DeepNestingIsRefusedNotFatal) {
    const std::string deep = "<tool_call>{\"name\": \"get_time\", \"arguments\": {\"a\": " + std::string(5000, '[') +
                             std::string(5000, ']') + "}}</tool_call>";
    const auto p = parse(F::Hermes, deep);
    EXPECT_TRUE(p.tool_calls.empty());
    EXPECT_EQ(p.content, deep);
}

// ---- round trips through the shared templates

struct RoundTrip {
    const char* name;
    const char* turn_start;              // where the assistant turn starts in the render
    std::vector<std::string> turn_ends;  // where it ends (the earliest; else the end of the text)
    bool string_args = false;            // the template concatenates arguments as a string
    bool null_content = false;           // it renders calls only when content is null
    bool drop_tools = false;             // it fails whenever tools are given
    bool single_call = false;            // it refuses parallel calls
};

std::vector<RoundTrip> round_trips() {
    const char* llama_turn = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return {
        {"CohereForAI-c4ai-command-r-plus-tool_use",
         "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
         {"<|START_OF_TURN_TOKEN|>"}},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "<|im_start|>assistant", {"<|im_end|>"}},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "<|im_start|>assistant", {"<|im_end|>"}},
        {"Qwen-QwQ-32B", "<|im_start|>assistant", {"<|im_end|>"}},
        {"Qwen-Qwen2.5-7B-Instruct", "<|im_start|>assistant", {"<|im_end|>"}},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "<｜Assistant｜>", {"<｜end▁of▁sentence｜>"}, true, true},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "<｜Assistant｜>", {"<｜end▁of▁sentence｜>"}, true, true},
        {"llama-cpp-deepseek-r1", "<｜Assistant｜>", {"<｜end▁of▁sentence｜>"}, true, true, true},
        {"fireworks-ai-llama-3-firefunction-v2", llama_turn, {"<|eot_id|>"}, true},
        {"meetkai-functionary-medium-v3.1", llama_turn, {"<|eom_id|>", "<|eot_id|>"}, true},
        {"meta-llama-Llama-3.2-3B-Instruct", llama_turn, {"<|eot_id|>"}, false, false, false, true},
        {"mistralai-Mistral-Nemo-Instruct-2407", "[/INST]", {"</s>"}},
    };
}

TEST(ToolCallRoundTrip, SharedTemplatesRenderCallsThatParseBack) {
    const fs::path root = test::shared_path("templates");
    if (!fs::exists(root)) GTEST_SKIP() << "no shared templates at " << root;
    RenderOptions opts;
    opts.now = RenderOptions::fixed_time(2026, 1, 15);
    size_t checked = 0;
    for (const RoundTrip& rt : round_trips()) {
        const fs::path dir = root / rt.name;
        const Template tmpl = Template::parse(slurp(dir / "template.jinja"));
        const F format = detect_tool_call_format(slurp(dir / "template.jinja"));
        for (const char* case_name : {"tool_call", "tool_call_string_args", "parallel_tool_calls"}) {
            SCOPED_TRACE(std::string(rt.name) + " / " + case_name);
            ojson ctx = ojson::parse(slurp(dir / "cases" / (std::string(case_name) + ".json")));
            // Just the user turn and the assistant's calls; the template closes the turn itself.
            ojson messages = ojson::array({ctx["messages"][0], ctx["messages"][1]});
            ojson& assistant = messages[1];
            if (rt.single_call && assistant["tool_calls"].size() != 1) continue;
            const bool null_content = assistant["content"].is_null();
            if (rt.null_content) assistant["content"] = nullptr;
            std::vector<ToolCall> want;
            for (ojson& tc : assistant["tool_calls"]) {
                // Arguments keep the case's shape (object, or a JSON string the parser decodes)
                // unless the template can only concatenate a string.
                ojson& args = tc["function"]["arguments"];
                const ojson object = args.is_string() ? ojson::parse(args.get<std::string>()) : args;
                want.push_back({tc["id"].get<std::string>(), tc["function"]["name"].get<std::string>(),
                                json::parse(object.dump())});
                if (rt.string_args && !args.is_string()) args = object.dump();
            }
            ctx["messages"] = messages;
            ctx["add_generation_prompt"] = false;
            if (rt.drop_tools) ctx.erase("tools");
            const std::string out = tmpl.render(ctx, opts);

            const std::string user = ctx["messages"][0]["content"];
            const size_t start = out.find(rt.turn_start, out.find(user) + user.size());
            ASSERT_NE(start, std::string::npos) << out;
            const size_t body = start + std::string_view(rt.turn_start).size();
            size_t end = out.size();
            for (const std::string& e : rt.turn_ends) end = std::min(end, out.find(e, body));
            const std::string turn = out.substr(body, end - body);

            const ParsedOutput p =
                parse_model_output(format, turn, ctx.contains("tools") ? json::parse(ctx["tools"].dump()) : json());
            ASSERT_EQ(p.tool_calls.size(), want.size()) << turn;
            for (size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ(p.tool_calls[i].name, want[i].name);
                EXPECT_EQ(p.tool_calls[i].arguments, want[i].arguments) << turn;
                if (format == F::MistralNemo)
                    EXPECT_EQ(p.tool_calls[i].id, want[i].id);
                else
                    EXPECT_FALSE(p.tool_calls[i].id.empty());
            }
            // Command-R+ prints Python's None for null content; otherwise nothing is left over.
            EXPECT_EQ(p.content, format == F::CommandR && null_content ? "None" : "") << turn;
            // The stream filter sees the same.
            const ParsedOutput s = stream(format, turn, {1}, json::parse(ctx.value("tools", ojson::array()).dump()));
            EXPECT_EQ(s.content, p.content);
            EXPECT_EQ(s.tool_calls.size(), want.size());
            ++checked;
        }
    }
    EXPECT_EQ(checked, 12u * 3u - 1u);  // every template and case but Llama 3.2's parallel calls
}

}  // namespace
}  // namespace hearth
