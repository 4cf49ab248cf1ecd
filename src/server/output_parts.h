// A generation's output as the parts the Anthropic Messages and OpenAI Responses APIs send
// separately (thinking, text, tool calls), split incrementally while streaming or all at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/request.h"
#include "template/tool_calls.h"

namespace hearth::server {

struct OutputPart {
    enum class Kind { Thinking, Text, Call };
    Kind kind = Kind::Text;
    std::string text;  // Thinking / Text
    ToolCall call;     // Call
};

class OutputSplitter {
public:
    // `started`: the request's Started event (template tool syntax, thinking on, prompt opens
    // <think>); `tools`: the offered tools (empty: calls are not parsed).
    OutputSplitter(const Event& started, const nlohmann::json& tools) {
        const bool calls = tools.is_array() && !tools.empty();
        if (!calls && !started.thinking) return;
        ParseOptions opts;
        opts.reasoning_open = started.reasoning_open;
        filter_ =
            std::make_unique<ToolCallStreamFilter>(calls ? started.tool_format : ToolCallFormat::None, tools, opts);
    }
    // The parts decided by this delta, in order: thinking, text, calls.
    std::vector<OutputPart> push(const std::string& delta) {
        if (!filter_) return delta.empty() ? std::vector<OutputPart>{} : std::vector<OutputPart>{text(delta)};
        std::string content = filter_->push(delta);
        return collect(filter_->take_reasoning(), std::move(content), filter_->take_tool_calls());
    }
    // What was held back, at the end of the generation.
    std::vector<OutputPart> finish() {
        if (!filter_) return {};
        ParsedOutput rest = filter_->finish();
        return collect(std::move(rest.reasoning), std::move(rest.content), std::move(rest.tool_calls));
    }
    // Whole output at once (the non-streamed replies).
    std::vector<OutputPart> split(const std::string& whole) {
        std::vector<OutputPart> parts = push(whole);
        for (OutputPart& p : finish()) parts.push_back(std::move(p));
        return parts;
    }

private:
    static OutputPart text(std::string s) { return OutputPart{OutputPart::Kind::Text, std::move(s), {}}; }
    static std::vector<OutputPart> collect(std::string reasoning, std::string content, std::vector<ToolCall> calls) {
        std::vector<OutputPart> out;
        if (!reasoning.empty()) out.push_back(OutputPart{OutputPart::Kind::Thinking, std::move(reasoning), {}});
        if (!content.empty()) out.push_back(text(std::move(content)));
        for (ToolCall& c : calls) out.push_back(OutputPart{OutputPart::Kind::Call, {}, std::move(c)});
        return out;
    }
    std::unique_ptr<ToolCallStreamFilter> filter_;
};

}  // namespace hearth::server
