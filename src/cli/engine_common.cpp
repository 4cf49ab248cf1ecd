#include "cli/engine_common.h"

#include <sstream>

#include "cli/commands.h"

namespace hearth::cli {

std::vector<int32_t> parse_ids(const std::string& s) {
    std::vector<int32_t> ids;
    std::string cleaned = s;
    for (char& c : cleaned)
        if (c == ',' || c == '[' || c == ']') c = ' ';
    std::istringstream in(cleaned);
    std::string word;
    while (in >> word) {
        size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(word, &used);
        } catch (...) {
            used = 0;
        }
        if (used != word.size() || v < 0 || v > INT32_MAX) throw CLI::ValidationError("--prompt-ids", "not a token id: '" + word + "'");
        ids.push_back(static_cast<int32_t>(v));
    }
    return ids;
}

std::string join_ids(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
    return s;
}

void EngineArgs::add_to(CLI::App& cmd, bool model_required) {
    auto* m = cmd.add_option("-m,--model", model, "GGUF model file")->check(CLI::ExistingFile);
    if (model_required) m->required();
    cmd.add_option("-t,--threads", threads, "Threads (default: physical cores)");
    cmd.add_option("-c,--ctx", ctx, "Context size in tokens (default: the model's, at most 4096)");
    cmd.add_option("-b,--batch", batch, "Prompt tokens per forward pass")->capture_default_str();
    cmd.add_option("--kv-type", kv_type, "KV cache type: f16, f32, q8_0")->capture_default_str();
}

ContextParams EngineArgs::context_params(int n_seq) const {
    ContextParams p;
    p.n_ctx = ctx;
    p.n_batch = batch;
    p.n_threads = resolve_threads(threads);
    p.n_seq = n_seq;
    const auto t = type_from_name(kv_type);
    if (!t || (*t != GgmlType::F16 && *t != GgmlType::F32 && *t != GgmlType::Q8_0))
        throw CLI::ValidationError("--kv-type", "must be f16, f32 or q8_0");
    p.kv_type = *t;
    return p;
}

}  // namespace hearth::cli
