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
    if (auto t = model.file().get_string("tokenizer.chat_template"); t && !t->empty()) return *t;
    return default_chat_template();
}

std::string render_prompt(const Model& model, const Template& tmpl, const PromptSpec& spec) {
    const Tokenizer& tok = model.tokenizer();
    nlohmann::ordered_json ctx;
    ctx["messages"] = spec.messages;
    if (spec.tools.is_array() && !spec.tools.empty()) ctx["tools"] = spec.tools;
    ctx["add_generation_prompt"] = true;
    ctx["bos_token"] = special_text(tok, tok.bos());
    ctx["eos_token"] = special_text(tok, tok.eos());
    try {
        if (spec.template_override) return Template::parse(*spec.template_override).render(ctx);
        return tmpl.render(ctx);
    } catch (const TemplateError& e) {
        std::string where;
        if (e.line() > 0) where = " (line " + std::to_string(e.line()) + ", column " + std::to_string(e.column()) + ")";
        throw PromptError(std::string(spec.template_override ? "template" : "the model's chat template") + ": " + e.what() +
                          where);
    }
}

std::vector<int32_t> build_prompt(const Model& model, const Template& tmpl, const PromptSpec& spec) {
    const Tokenizer& tok = model.tokenizer();
    std::vector<int32_t> ids = spec.prefix;
    for (int32_t id : ids)
        if (id < 0 || id >= tok.n_vocab())
            throw PromptError("context token id " + std::to_string(id) + " is outside the vocabulary (" +
                              std::to_string(tok.n_vocab()) + " tokens)");
    std::string text = spec.raw ? spec.text : render_prompt(model, tmpl, spec);
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
