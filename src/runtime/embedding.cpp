#include "runtime/embedding.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace hearth {

namespace {

// Restores the context's logits mode and frees the sequence whatever happens.
struct EmbeddingsScope {
    Context& ctx;
    int32_t seq;
    EmbeddingsScope(Context& c, int32_t s) : ctx(c), seq(s) {
        ctx.clear(seq);
        ctx.set_embeddings_mode(true);
    }
    ~EmbeddingsScope() {
        ctx.set_embeddings_mode(false);
        ctx.clear(seq);
    }
};

}  // namespace

std::vector<float> embed_sequence(Context& ctx, int32_t seq, const std::vector<int32_t>& tokens, Pooling pooling,
                                  bool normalize) {
    if (tokens.empty()) throw std::invalid_argument("input text is empty");
    const int32_t n = static_cast<int32_t>(tokens.size());
    if (n > ctx.n_ctx())
        throw std::invalid_argument("the input has " + std::to_string(n) + " tokens, more than the context length of " +
                                    std::to_string(ctx.n_ctx()));
    const size_t d = static_cast<size_t>(ctx.model().hparams().n_embd);
    if (pooling == Pooling::None) pooling = Pooling::Last;
    std::vector<float> out(d, 0.0f);
    EmbeddingsScope scope(ctx, seq);
    Batch batch;
    for (int32_t b = 0; b < n; b += ctx.n_batch()) {
        const int32_t e = std::min(n, b + ctx.n_batch());
        batch.clear();
        for (int32_t i = b; i < e; ++i) {
            const bool want = pooling == Pooling::Mean || (pooling == Pooling::Last && i == n - 1) ||
                              (pooling == Pooling::Cls && i == 0);
            batch.add(tokens[static_cast<size_t>(i)], i, seq, want);
        }
        const int32_t rows = ctx.decode(batch);
        for (int32_t r = 0; r < rows; ++r) {
            const float* h = ctx.embeddings(r);
            for (size_t j = 0; j < d; ++j) out[j] += h[j];
        }
    }
    if (pooling == Pooling::Mean)
        for (float& v : out) v /= static_cast<float>(n);
    if (normalize) {
        double ss = 0;
        for (float v : out) ss += static_cast<double>(v) * v;
        const float inv = ss > 0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.0f;
        for (float& v : out) v *= inv;
    }
    return out;
}

}  // namespace hearth
