// Tool calls in model output: which syntax a chat template teaches its model (detected from the
// template source), and a parser that splits generated text into plain content, <think>
// reasoning and structured tool calls, in one piece or incrementally while streaming.
//
// Model output is untrusted: nothing here throws on it. Markup that does not parse, or names a
// tool the request did not offer, stays in the content as the model wrote it.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth {

enum class ToolCallFormat {
    None,            // the template has no tool support: only reasoning is split off
    Hermes,          // <tool_call>{"name": .., "arguments": ..}</tool_call> (Hermes 2 Pro/3, Qwen2.5, QwQ)
    Llama3Json,      // bare {"name": .., "parameters": ..} (or "type": "function" first), optionally
                     // after <|python_tag|>; several may be separated by ';'
    MistralNemo,     // [TOOL_CALLS][{"name": .., "arguments": .., "id": ..}, ...]
    FunctionaryV31,  // <function=NAME>{json}</function>; <|python_tag|>code calls the `python` tool
    FireFunctionV2,  // functools[{"name": .., "arguments": ..}, ...]
    CommandR,        // Action: ```json [{"tool_name": .., "parameters": ..}] ```
    // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{..}\n```<｜tool▁call▁end｜>
    // ...<｜tool▁calls▁end｜> (also V3.1's <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{..}<｜tool▁call▁end｜>)
    DeepSeekR1,
};

const char* tool_call_format_name(ToolCallFormat f);  // "hermes", "llama3-json", ...

// The tool-call syntax a chat template (its Jinja source) renders and so teaches its model,
// from markers distinctive of each family. Templates without tool support give None.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

// True when a rendered prompt ends inside an opened <think> block (R1 and QwQ generation
// prompts end with "<think>\n"): the model's output then starts with reasoning and carries only
// the closing </think>. Pass it as ParseOptions::reasoning_open when streaming.
bool prompt_opens_reasoning(std::string_view rendered_prompt);

struct ToolCall {
    std::string id;  // the model's own id when it wrote one (Mistral), else generated
    std::string name;
    nlohmann::json arguments;  // always an object
    bool operator==(const ToolCall&) const = default;
};

struct ParsedOutput {
    std::string content;    // the text outside reasoning and tool calls, trimmed
    std::string reasoning;  // <think>...</think> text, trimmed
    std::vector<ToolCall> tool_calls;
    bool operator==(const ParsedOutput&) const = default;
};

struct ParseOptions {
    // The output starts inside <think> (see prompt_opens_reasoning). parse_model_output also
    // infers it when "</think>" comes before any "<think>"; the stream filter cannot look ahead.
    bool reasoning_open = false;
    // Makes ids for calls the model gave none. Empty: random alphanumerics, "call_" + 24 chars,
    // or 9 bare characters for Mistral (its template refuses any other length).
    std::function<std::string()> id_generator;
};

// Splits complete model output. `tools` is the request's tool list (OpenAI shape
// [{"type": "function", "function": {"name": ..}}] or bare [{"name": ..}]): a call naming
// anything else stays content. An absent or empty list accepts every name. Arguments the model
// wrote as a JSON string are decoded; a call whose arguments are not an object stays content.
ParsedOutput parse_model_output(ToolCallFormat format, std::string_view text, const nlohmann::json& tools,
                                const ParseOptions& options = {});

// Incremental parse for streaming: push each generated delta, send on what comes back, and call
// finish() at the end. Text that may open a tool call (a marker cut across deltas, a call not
// yet closed) is held back until it is decided, so raw tool-call markup never reaches the
// client: the content from push() followed by finish().content equals parse_model_output's
// content for the whole text (given the same reasoning_open), and likewise for reasoning.
class ToolCallStreamFilter {
public:
    // `tools` and `options` as for parse_model_output (no tools: every name is accepted).
    explicit ToolCallStreamFilter(ToolCallFormat format, nlohmann::json tools = nlohmann::json::array(),
                                  ParseOptions options = {});

    // Appends a delta; returns the content now safe to stream (possibly empty).
    std::string push(std::string_view delta);
    // Reasoning decided since the last call (for reasoning_content / thinking deltas).
    std::string take_reasoning();
    // Calls completed since the last call, in order.
    std::vector<ToolCall> take_tool_calls();
    // Ends the stream: decides the held-back text and returns what was not yet handed out
    // (the rest of the content and reasoning, and the calls not taken). Call once.
    ParsedOutput finish();

private:
    struct Emitter {  // trims the streamed text the way parse_model_output trims it
        std::string out, held_space;
        bool started = false;
        void add(std::string_view s);
        std::string take();
    };
    void advance(bool final);

    ToolCallFormat format_;
    bool any_tool_;  // no tool list given: every name is accepted
    std::vector<std::string> tool_names_;
    ParseOptions options_;
    std::string buffer_;  // the output not yet decided (decided text is dropped)
    size_t done_ = 0;     // always 0 between calls
    bool in_reasoning_;
    Emitter content_, reasoning_;
    std::vector<ToolCall> calls_;
};

}  // namespace hearth
