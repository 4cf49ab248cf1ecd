#include "server/prompt.h"

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace hearth::server {

namespace {

std::string special_text(const Tokenizer& tok, TokenId id) {
    if (id < 0 || id >= tok.n_vocab()) return "";
    return tok.token_text(id);
}

}  // namespace

std::string model_template_source(const Model& model) {
    return model.file().get_string("tokenizer.chat_template").value_or("");
}

bool template_thinks(std::string_view source) {
    for (std::string_view marker : {"<think>", "</think>", "enable_thinking"})
        if (source.find(marker) != std::string_view::npos) return true;
    return false;
}

std::string legacy_prompt(const nlohmann::ordered_json& messages) {
    // Ollama runs a template without .Messages once per turn with {System, Prompt, Response};
    // `{{ .Prompt }}` keeps only each turn's user text.
    std::string out, prompt, response;
    std::string last_role;
    auto flush = [&] {
        out += prompt;
        prompt.clear();
        response.clear();
    };
    for (const auto& m : messages) {
        const std::string role = m.value("role", "");
        const std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
        if (role == "system") {
            if (!prompt.empty() || !response.empty()) flush();
        } else if (role == "user") {
            if (!response.empty()) flush();
            prompt = (last_role == "user" && !prompt.empty()) ? prompt + "\n\n" + content : content;
        } else if (role == "assistant") {
            response = content;
        }
        last_role = role;
    }
    out += prompt;
    return out;
}

std::string render_prompt(const Model& model, const Template* tmpl, const PromptSpec& spec) {
    if (!spec.template_override && !tmpl) return legacy_prompt(spec.messages);
    const Tokenizer& tok = model.tokenizer();
    nlohmann::ordered_json ctx;
    ctx["messages"] = spec.messages;
    // A turn's earlier thinking: Ollama calls it `thinking`, Jinja templates (Qwen3, R1)
    // read `reasoning_content`.
    for (auto& m : ctx["messages"])
        if (m.is_object() && m.contains("thinking") && !m.contains("reasoning_content")) m["reasoning_content"] = m["thinking"];
    if (spec.tools.is_array() && !spec.tools.empty()) ctx["tools"] = spec.tools;
    ctx["add_generation_prompt"] = true;
    ctx["bos_token"] = special_text(tok, tok.bos());
    ctx["eos_token"] = special_text(tok, tok.eos());
    if (spec.think) ctx["enable_thinking"] = *spec.think;
    if (!spec.think_level.empty()) ctx["reasoning_effort"] = spec.think_level;  // gpt-oss style templates
    try {
        if (spec.template_override) return Template::parse(*spec.template_override).render(ctx);
        return tmpl->render(ctx);
    } catch (const TemplateError& e) {
        std::string where;
        if (e.line() > 0) where = " (line " + std::to_string(e.line()) + ", column " + std::to_string(e.column()) + ")";
        throw PromptError(std::string(spec.template_override ? "template" : "the model's chat template") + ": " + e.what() +
                          where);
    }
}

std::vector<int32_t> build_prompt(const Model& model, const Template* tmpl, const PromptSpec& spec,
                                  std::string* rendered) {
    const Tokenizer& tok = model.tokenizer();
    std::vector<int32_t> ids = spec.prefix;
    for (int32_t id : ids)
        if (id < 0 || id >= tok.n_vocab())
            throw PromptError("context token id " + std::to_string(id) + " is outside the vocabulary (" +
                              std::to_string(tok.n_vocab()) + " tokens)");
    std::string text = spec.raw ? spec.text : render_prompt(model, tmpl, spec);
    if (rendered) *rendered = text;
    if (text.empty()) return ids;
    // BOS only at the very start, and not twice when the rendered text begins with its text.
    bool add_special = ids.empty();
    const std::string bos = special_text(tok, tok.bos());
    if (add_special && !bos.empty() && text.compare(0, bos.size(), bos) == 0) add_special = false;
    std::vector<int32_t> more = tok.encode(text, add_special, /*parse_special=*/true);
    ids.insert(ids.end(), more.begin(), more.end());
    return ids;
}

void add_model_turns(PromptSpec& spec, const ResolvedModel& model) {
    if (spec.messages.empty()) return;
    const bool own_system = spec.messages[0]["role"] == "system";
    if (!model.messages.empty()) {
        const nlohmann::ordered_json turns = nlohmann::ordered_json::parse(model.messages.dump());
        spec.messages.insert(spec.messages.begin(), turns.begin(), turns.end());
    }
    if (model.system && !own_system)
        spec.messages.insert(spec.messages.begin(), nlohmann::ordered_json{{"role", "system"}, {"content", *model.system}});
}

}  // namespace hearth::server
