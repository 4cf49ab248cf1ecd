// The named blocks the decoder forward pass (model/transformer.cpp) is built from, chosen
// per layer by what each architecture's binder bound: attention (standard / GQA, sliding
// window, sinks; or latent attention, MLA) and feed-forward (dense gated or plain MLP; or
// mixture of experts, with shared experts). Each block reads its input rows and writes its
// output rows; the skeleton does the norms and residual adds around them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/forward.h"
#include "model/kv_view.h"
#include "model/model.h"
#include "tensor/threadpool.h"
#include "model/profile.h"

namespace hearth {


// What every block of one forward pass shares: the model, the tokens [begin, end) of the
// batch, the cache, the pool, scratch and the profiler.
struct Pass {
    const Model& model;
    const HParams& hp;
    const Batch& batch;
    size_t begin, end, n;
    const KvView& kv;
    ThreadPool& pool;
    ForwardScratch& S;
    prof::Lap& lap;
    const float* rope_cs;      // per token: rope_dims cos/sin values (global layers)
    const float* rope_cs_swa;  // the same for sliding-window layers (may equal rope_cs)
};

// y[i * ld + j] += b[j] for i < n_rows, j < dim (nothing when b is null).
inline void add_bias(float* y, const float* b, size_t n_rows, size_t dim, size_t ld) {
    if (!b) return;
    for (size_t i = 0; i < n_rows; ++i)
        for (size_t j = 0; j < dim; ++j) y[i * ld + j] += b[j];
}
inline void add_bias(float* y, const float* b, size_t n_rows, size_t dim) { add_bias(y, b, n_rows, dim, dim); }

// fn(i) for every token row i < n: on the pool for batches (prefill), inline for a few
// tokens. Rows are independent, so the results do not depend on the split.
template <typename F>
void for_rows(ThreadPool& pool, size_t n, const F& fn) {
    if (n < 4 || pool.size() == 1) {
        for (size_t i = 0; i < n; ++i) fn(i);
        return;
    }
    pool.parallel_for(static_cast<int64_t>(n), 1, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) fn(static_cast<size_t>(i));
    });
}

// Standard attention of layer l: Q/K/V projections (fused or separate, biases, Q/K norms),
// RoPE, K/V appended to the cache, attention over it, output projection (+ bias).
// in: [n][n_embd]; out: [n][n_embd]. May use S.q/k/v/attn/ffn.
void attention_block(Pass& P, int32_t l, const float* in, float* out);

// Multi-head latent attention (deepseek2), absorbed form: the cache holds [c, k_pe] per
// position as one KV head; each head's q_nope goes through its wk_b slice onto c.
void mla_block(Pass& P, int32_t l, const float* in, float* out);

// Dense feed-forward of width ff with the model's activation (gated, or the plain MLP),
// optional biases. in: [n][n_embd]; out: [n][n_embd].
void dense_ffn(Pass& P, const MatrixView& gate, const MatrixView& up, const MatrixView& down, const float* b_up,
               const float* b_down, const MatrixView* fused_gate_up, const float* in, float* out);

// Mixture of experts: route each token to n_expert_used experts, run each expert once over
// all the tokens routed to it, sum each token's expert outputs in routing order (so a
// token's result never depends on the rest of the batch), plus the shared experts.
void moe_ffn(Pass& P, const MoeWeights& E, const float* in, float* out);

// act(g) * u over n values for the gated activations, act(u) for the plain MLP.
void ffn_activation(FfnActivation act, const float* g, const float* u, float* out, int64_t n);

}  // namespace hearth
