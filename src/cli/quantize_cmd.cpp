#include <chrono>
#include <cstdio>
#include <unistd.h>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "model/quantize.h"
#include "tensor/threadpool.h"

namespace hearth::cli {

int resolve_threads(int requested) { return requested > 0 ? requested : physical_core_count(); }

void add_quantize_command(CLI::App& app) {
    struct Args {
        std::string input, output, type;
        int threads = 0;
    };
    auto args = std::make_shared<Args>();
    std::string types;
    for (const auto& m : quant_mixes()) types += (types.empty() ? "" : ", ") + std::string(m.name);
    CLI::App* cmd = app.add_subcommand("quantize", "Convert a GGUF model to another tensor type");
    cmd->add_option("input", args->input, "Input GGUF file")->required()->check(CLI::ExistingFile);
    cmd->add_option("output", args->output, "Output GGUF file")->required();
    cmd->add_option("type", args->type, "Target type: " + types)->required();
    cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)");
    cmd->footer("Per-tensor types follow llama.cpp's mixes: the output matrix gets q6_K, and the _M mixes\n"
                "give more bits to some attn_v and ffn_down tensors.");
    cmd->callback([args] {
        const auto mix = find_quant_mix(args->type);
        if (!mix) throw CLI::ValidationError("type", "unknown type '" + args->type + "'");
        QuantizeOptions opts;
        opts.input = args->input;
        opts.output = args->output;
        opts.mix = *mix;
        opts.threads = resolve_threads(args->threads);
        if (isatty(STDERR_FILENO)) opts.progress = [](size_t i, size_t n, const std::string& name, GgmlType t) {
            std::fprintf(stderr, "\r[%4zu/%4zu] %-40s -> %-5s", i + 1, n, name.c_str(), type_name(t));
            std::fflush(stderr);
        };
        const auto start = std::chrono::steady_clock::now();
        const QuantizeResult r = quantize_model(opts);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
        std::printf("quantized %zu of %zu tensors to %s: %.2f MB -> %.2f MB in %.1f s\n", r.n_quantized, r.n_tensors,
                    mix->name, double(r.input_bytes) / 1e6, double(r.output_bytes) / 1e6, secs);
    });
}

}  // namespace hearth::cli
