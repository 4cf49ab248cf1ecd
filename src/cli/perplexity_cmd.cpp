// `hearth perplexity`: perplexity over a text file, computed the way llama.cpp's
// llama-perplexity does, so the numbers are comparable.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "cli/commands.h"
#include "cli/engine_common.h"
#include "model/model.h"

namespace hearth::cli {

void add_perplexity_command(CLI::App& app) {
    auto engine = std::make_shared<EngineArgs>();
    auto file = std::make_shared<std::string>();
    engine->ctx = 512;
    CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a model over a text file (like llama-perplexity)");
    engine->add_to(*cmd);
    cmd->add_option("-f,--file", *file, "Text file")->required()->check(CLI::ExistingFile);
    cmd->footer("The text is tokenized once (with BOS) and cut into non-overlapping chunks of --ctx tokens;\n"
                "each chunk starts with BOS when the model adds one, and only the second half of each chunk\n"
                "is scored.");
    cmd->callback([engine, file] {
        std::ifstream in(*file, std::ios::binary);
        const std::string text{std::istreambuf_iterator<char>(in), {}};
        auto model = Model::load(engine->model);
        const Tokenizer& tok = model->tokenizer();
        const std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
        const int n_ctx = engine->ctx;
        if (n_ctx < 8) throw CLI::ValidationError("--ctx", "must be at least 8");
        const int n_chunk = static_cast<int>(tokens.size()) / n_ctx;
        if (n_chunk == 0)
            throw CLI::ValidationError("--file", "the text has " + std::to_string(tokens.size()) + " tokens; at least " +
                                                     std::to_string(n_ctx) + " are needed for one chunk");
        Context ctx(*model, engine->context_params());
        const bool add_bos = tok.add_bos() && tok.bos() >= 0;
        const int first = n_ctx / 2;
        const int32_t nv = ctx.n_vocab();
        double nll = 0, nll2 = 0;
        int64_t count = 0;
        std::fprintf(stderr, "perplexity: %zu tokens, %d chunks of %d\n", tokens.size(), n_chunk, n_ctx);
        for (int c = 0; c < n_chunk; ++c) {
            const size_t start = static_cast<size_t>(c) * static_cast<size_t>(n_ctx);
            Batch b;
            for (int j = 0; j < n_ctx; ++j) {
                int32_t t = tokens[start + static_cast<size_t>(j)];
                if (j == 0 && add_bos) t = tok.bos();
                b.add(t, j, 0, j >= first && j < n_ctx - 1);
            }
            ctx.clear(0);
            ctx.decode(b);
            for (int j = first; j < n_ctx - 1; ++j) {
                const float* l = ctx.logits(j - first);
                float mx = -INFINITY;
                for (int32_t t = 0; t < nv; ++t) mx = std::max(mx, l[t]);
                double sum = 0;
                for (int32_t t = 0; t < nv; ++t) sum += std::exp(double(l[t]) - mx);
                const double lp = double(l[tokens[start + static_cast<size_t>(j) + 1]]) - mx - std::log(sum);
                nll -= lp;
                nll2 += lp * lp;
                ++count;
            }
            std::printf("[%d]%.4f,", c + 1, std::exp(nll / double(count)));
            std::fflush(stdout);
        }
        std::printf("\n");
        const double mean_nll = nll / double(count);
        const double ppl = std::exp(mean_nll);
        double var = nll2 / double(count) - mean_nll * mean_nll;
        const double err = var > 0 && count > 1 ? std::sqrt(var / double(count - 1)) * ppl : 0.0;
        std::printf("PPL = %.4f +/- %.5f\n", ppl, err);
    });
}

}  // namespace hearth::cli
