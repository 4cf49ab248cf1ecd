// Helpers shared by the in-process engine commands (generate, bench, perplexity, dev).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/context.h"

namespace hearth::cli {

// "1 403 407" or "1,403,407" -> ids. Throws CLI::ValidationError on junk.
std::vector<int32_t> parse_ids(const std::string& s);
std::string join_ids(const std::vector<int32_t>& ids);

// Options every engine command takes: model path, threads, context, batch, KV type.
struct EngineArgs {
    std::string model;
    int threads = 0;
    int ctx = 0;
    int batch = 512;
    std::string kv_type = "f16";
    void add_to(CLI::App& cmd, bool model_required = true);
    ContextParams context_params(int n_seq = 1) const;
};

}  // namespace hearth::cli
