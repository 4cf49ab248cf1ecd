// The feed-forward blocks of the decoder pass (model/blocks.h): the dense FFN (gated with
// SiLU / tanh-GELU / gpt-oss's clamped SwiGLU, or starcoder2's plain GELU MLP) and the
// mixture of experts (router, top-k, per-expert FFNs over the tokens routed to them,
// shared experts).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/blocks.h"
#include "model/ops.h"
#include "model/forward.h"
#include "tensor/threadpool.h"
#include "tensor/activation.h"
#include "tensor/repack.h"

namespace hearth {

void ffn_activation(FfnActivation act, const float* g, const float* u, float* out, int64_t n) {
    switch (act) {
        case FfnActivation::SiLU:
            swiglu(g, u, out, n);
            break;
        case FfnActivation::GeluTanh:
            for (int64_t j = 0; j < n; ++j) out[j] = gelu_f16_table(g[j]) * u[j];
            break;
        case FfnActivation::GeluMlp:
            for (int64_t j = 0; j < n; ++j) out[j] = gelu_f16_table(u[j]);
            break;
        case FfnActivation::SwigluOai:
            for (int64_t j = 0; j < n; ++j) {
                const float x = std::min(g[j], 7.0f), y = std::clamp(u[j], -7.0f, 7.0f);
                out[j] = x / (1.0f + std::exp(-1.702f * x)) * (y + 1.0f);
            }
            break;
    }
}

void dense_ffn(Pass& P, const MatrixView& gate, const MatrixView& up, const MatrixView& down, const float* b_up,
               const float* b_down, const MatrixView* fused, const float* in, float* out) {
    const HParams& hp = P.hp;
    ForwardScratch& S = P.S;
    const FfnActivation act = P.model.activation();
    const size_t n = P.n, ff = static_cast<size_t>(down.cols);
    const int64_t nt = static_cast<int64_t>(n);
    float *g = S.gate.data(), *u = S.up.data();
    size_t g_ld = ff, u_ld = ff;
    const float* u_rows = u;
    if (fused) {
        // Fused: rows [0, ff) are the gate, [ff, 2ff) the up projection.
        matmul(*fused, in, hp.n_embd, nt, u, static_cast<int64_t>(2 * ff), &P.pool, S.mm);
        P.lap.matmul(fused->type);
        g_ld = u_ld = 2 * ff;
        u_rows = u + ff;
    } else {
        if (act != FfnActivation::GeluMlp) {
            matmul(gate, in, hp.n_embd, nt, g, static_cast<int64_t>(ff), &P.pool, S.mm);
            P.lap.matmul(gate.type);
        }
        matmul(up, in, hp.n_embd, nt, u, static_cast<int64_t>(ff), &P.pool, S.mm);
        P.lap.matmul(up.type);
        add_bias(u, b_up, n, ff, ff);
    }
    const float* g_rows = fused ? u : g;
    auto row = [&](size_t i) {
        ffn_activation(act, g_rows + i * g_ld, u_rows + i * u_ld, g + i * ff, static_cast<int64_t>(ff));
    };
    for_rows(P.pool, n, row);
    P.lap(prof::Op::Activation);
    matmul(down, g, static_cast<int64_t>(ff), nt, out, hp.n_embd, &P.pool, S.mm);
    add_bias(out, b_down, n, static_cast<size_t>(hp.n_embd), static_cast<size_t>(hp.n_embd));
    P.lap.matmul(down.type);
}

void moe_ffn(Pass& P, const MoeWeights& E, const float* in, float* out) {
    const HParams& hp = P.hp;
    ForwardScratch& S = P.S;
    MoeScratch& M = S.moe;
    const size_t n = P.n, d = static_cast<size_t>(hp.n_embd), ne = static_cast<size_t>(hp.n_expert),
                 k = static_cast<size_t>(hp.n_expert_used), ff = static_cast<size_t>(hp.n_ff_exp);
    const int64_t nt = static_cast<int64_t>(n);

    // Router: logits per expert, then each token's top-k experts and their weights.
    M.logits.resize(std::max(M.logits.size(), n * ne));
    matmul(E.router, in, hp.n_embd, nt, M.logits.data(), static_cast<int64_t>(ne), &P.pool, S.mm);
    P.lap.matmul(E.router.type);
    add_bias(M.logits.data(), E.router_b, n, ne, ne);
    M.chosen.resize(std::max(M.chosen.size(), n * k));
    M.weight.resize(std::max(M.weight.size(), n * k));
    std::vector<float>& probs = M.probs;
    std::vector<int32_t>& order = M.order;
    probs.resize(ne);
    order.resize(ne);
    for (size_t i = 0; i < n; ++i) {
        const float* lg = M.logits.data() + i * ne;
        if (hp.expert_gating == ExpertGating::Sigmoid) {
            for (size_t e = 0; e < ne; ++e) probs[e] = 1.0f / (1.0f + std::exp(-lg[e]));
        } else {
            const float mx = *std::max_element(lg, lg + ne);
            float sum = 0.0f;
            for (size_t e = 0; e < ne; ++e) sum += (probs[e] = std::exp(lg[e] - mx));
            for (size_t e = 0; e < ne; ++e) probs[e] /= sum;
        }
        std::iota(order.begin(), order.end(), 0);
        // Highest score first (the probability, plus the selection bias where the model has
        // one); ties to the lower expert id.
        auto score = [&](int32_t e) { return probs[static_cast<size_t>(e)] + (E.select_b ? E.select_b[e] : 0.0f); };
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                          [&](int32_t a, int32_t b) { return score(a) > score(b) || (score(a) == score(b) && a < b); });
        float sum = 0.0f;
        for (size_t j = 0; j < k; ++j) {
            M.chosen[i * k + j] = order[j];
            sum += (M.weight[i * k + j] = probs[static_cast<size_t>(order[j])]);
        }
        for (size_t j = 0; j < k; ++j) {
            if (hp.expert_weights_norm) M.weight[i * k + j] /= sum;
            M.weight[i * k + j] *= hp.expert_weights_scale;
        }
    }
    P.lap(prof::Op::Other);

    // Each expert once over the tokens routed to it: gather their rows, run the FFN, keep
    // each (token, slot) output apart so the sum below follows the routing order.
    M.slot_out.resize(std::max(M.slot_out.size(), n * k * d));
    M.rows.resize(std::max(M.rows.size(), n * d));
    M.g.resize(std::max(M.g.size(), n * ff));
    M.u.resize(std::max(M.u.size(), n * ff));
    M.gu.resize(std::max(M.gu.size(), n * 2 * ff));
    M.y.resize(std::max(M.y.size(), n * d));
    // The (token, slot) pairs grouped by expert in one pass (a counting sort): expert e's are
    // slots[start[e] .. start[e + 1]), in token order.
    M.start.assign(ne + 1, 0);
    for (size_t s = 0; s < n * k; ++s) ++M.start[static_cast<size_t>(M.chosen[s]) + 1];
    for (size_t e = 0; e < ne; ++e) M.start[e + 1] += M.start[e];
    M.slots.resize(n * k);
    M.fill.assign(M.start.begin(), M.start.end() - 1);
    for (size_t s = 0; s < n * k; ++s) M.slots[M.fill[static_cast<size_t>(M.chosen[s])]++] = s;
    for (size_t e = 0; e < ne; ++e) {
        const size_t* slots = M.slots.data() + M.start[e];
        const size_t c = M.start[e + 1] - M.start[e];
        if (c == 0) continue;
        for (size_t r = 0; r < c; ++r) std::copy(in + slots[r] / k * d, in + slots[r] / k * d + d, M.rows.data() + r * d);
        const int64_t ct = static_cast<int64_t>(c);
        // Gate and up: one matmul when packed or copied back to back (rows [0, ff) gate, [ff, 2ff) up).
        const bool fused = e < E.gate_up_packed.size() && fused_view(E.gate_up_packed[e]);
        float *g = M.g.data(), *u = M.u.data();
        size_t ld = ff;
        if (fused) {
            matmul(E.gate_up_packed[e], M.rows.data(), hp.n_embd, ct, M.gu.data(), static_cast<int64_t>(2 * ff), &P.pool, S.mm);
            g = M.gu.data();
            u = g + ff;
            ld = 2 * ff;
        } else {
            matmul(E.gate[e], M.rows.data(), hp.n_embd, ct, g, static_cast<int64_t>(ff), &P.pool, S.mm);
            matmul(E.up[e], M.rows.data(), hp.n_embd, ct, u, static_cast<int64_t>(ff), &P.pool, S.mm);
        }
        P.lap.matmul(E.gate[e].type);
        if (E.b_gate) add_bias(g, E.b_gate + e * ff, c, ff, ld);
        if (E.b_up) add_bias(u, E.b_up + e * ff, c, ff, ld);
        for (size_t r = 0; r < c; ++r)
            ffn_activation(P.model.activation(), g + r * ld, u + r * ld, M.g.data() + r * ff, static_cast<int64_t>(ff));
        P.lap(prof::Op::Activation);
        matmul(E.down[e], M.g.data(), static_cast<int64_t>(ff), ct, M.y.data(), hp.n_embd, &P.pool, S.mm);
        P.lap.matmul(E.down[e].type);
        if (E.b_down) add_bias(M.y.data(), E.b_down + e * d, c, d, d);
        for (size_t r = 0; r < c; ++r) {
            const float wgt = M.weight[slots[r]];
            const float* y = M.y.data() + r * d;
            float* o = M.slot_out.data() + slots[r] * d;
            for (size_t j = 0; j < d; ++j) o[j] = wgt * y[j];
        }
    }
    for (size_t i = 0; i < n; ++i) {
        float* o = out + i * d;
        std::copy(M.slot_out.data() + i * k * d, M.slot_out.data() + i * k * d + d, o);
        for (size_t j = 1; j < k; ++j) {
            const float* y = M.slot_out.data() + (i * k + j) * d;
            for (size_t c = 0; c < d; ++c) o[c] += y[c];
        }
    }
    P.lap(prof::Op::Residual);

    // Shared experts (deepseek2): a dense FFN over every token, added to the routed sum.
    if (E.shared_down.rows > 0) {
        M.shared.resize(std::max(M.shared.size(), n * d));
        dense_ffn(P, E.shared_gate, E.shared_up, E.shared_down, nullptr, nullptr, nullptr, in, M.shared.data());
        for (size_t i = 0; i < n * d; ++i) out[i] += M.shared[i];
    }
}

}  // namespace hearth
