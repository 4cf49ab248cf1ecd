// Turning a request's prompt into token ids: chat messages rendered with the model's chat
// template (or the request's), raw prompts tokenized as they are.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "server/request.h"
#include "template/template.h"

namespace hearth {
class Model;
}

namespace hearth::server {

// A prompt the request got wrong (bad template, template raised): reported as a 400.
class PromptError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The model's chat template source: its tokenizer.chat_template; "" when it has none.
std::string model_template_source(const Model& model);

// True when a chat template has a thinking section: it writes, opens or strips <think>
// blocks or reads `enable_thinking` (Qwen3, DeepSeek-R1, QwQ): the "thinking" capability.
bool template_thinks(std::string_view source);

// Ollama's default template for a model without one, `{{ .Prompt }}`: the user messages go in
// as they are (consecutive ones joined by a blank line); system and assistant text is dropped.
std::string legacy_prompt(const nlohmann::ordered_json& messages);

// Renders spec.messages (with tools, add_generation_prompt, bos_token, eos_token and, when
// the request sets `think`, enable_thinking, and a named level as reasoning_effort) through
// spec.template_override when set, else `tmpl`; a null `tmpl` is Ollama's `{{ .Prompt }}`
// default (legacy_prompt).
std::string render_prompt(const Model& model, const Template* tmpl, const PromptSpec& spec);

// Puts a store model's MESSAGE turns before the request's messages and its SYSTEM prompt
// first unless the request starts with a system message of its own (Ollama's order).
void add_model_turns(PromptSpec& spec, const ResolvedModel& model);

// The prompt's ids: spec.prefix, then the raw text or the rendered messages, tokenized with
// special-token parsing and the vocabulary's BOS (not doubled when the text starts with it).
// `rendered`, when given, receives the text that was tokenized.
std::vector<int32_t> build_prompt(const Model& model, const Template* tmpl, const PromptSpec& spec,
                                  std::string* rendered = nullptr);

}  // namespace hearth::server
