// The encoder forward pass (bert, nomic-bert): every token attends to every token, then the
// final hidden states are pooled into one embedding. Learned positions (bert) or RoPE
// (nomic-bert, which has no position table); separate or fused Q|K|V; a GELU MLP or SwiGLU.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/encoder.h"
#include "model/ops.h"
#include "tensor/threadpool.h"
#include "tensor/activation.h"
#include "tensor/quants.h"

namespace hearth {

std::vector<float> encode_embedding(const Model& model, const std::vector<int32_t>& tokens, ThreadPool& pool,
                                    bool normalize) {
    if (!model.is_encoder()) throw std::invalid_argument("model '" + model.hparams().arch + "' is not an embedding model");
    const HParams& hp = model.hparams();
    const ModelWeights& w = model.weights();
    const size_t n = tokens.size();
    if (n == 0) throw std::invalid_argument("nothing to embed: the input has no tokens");
    if (n > static_cast<size_t>(hp.n_ctx_train))
        throw std::invalid_argument("the input has " + std::to_string(n) + " tokens, more than the model's context of " +
                                    std::to_string(hp.n_ctx_train));
    const size_t d = static_cast<size_t>(hp.n_embd), ff = static_cast<size_t>(hp.n_ff), hd = static_cast<size_t>(hp.head_dim);
    std::vector<float> x(n * d), q(n * d), k(n * d), v(n * d), attn(n * d), h(n * d), up(n * ff), gate;
    std::vector<float> qkv, cs;
    const bool rope = w.pos_embd == nullptr;
    if (rope) {  // RoPE tables, one per position
        cs.resize(n * static_cast<size_t>(hp.rope_dims));
        for (size_t i = 0; i < n; ++i)
            rope_table(hp.rope_params(false), nullptr, static_cast<int32_t>(i), cs.data() + i * static_cast<size_t>(hp.rope_dims));
    }
    MatmulScratch mm;
    const auto embd_to_float = kernels(w.tok_embd.type).to_float;
    for (size_t i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= hp.n_vocab) throw std::invalid_argument("token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
        float* xi = x.data() + i * d;
        embd_to_float(w.tok_embd.row(tokens[i]), xi, hp.n_embd);
        for (size_t j = 0; j < d; ++j) {
            if (w.pos_embd) xi[j] += w.pos_embd[i * d + j];
            if (w.token_types) xi[j] += w.token_types[j];  // token type 0
        }
        layer_norm(xi, w.embd_norm, w.embd_norm_b, xi, hp.n_embd, hp.norm_eps);
    }
    auto bias = [](float* y, const float* b, size_t rows, size_t dim) {
        if (b) for (size_t i = 0; i < rows; ++i) for (size_t j = 0; j < dim; ++j) y[i * dim + j] += b[j];
    };
    const int64_t nt = static_cast<int64_t>(n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (const LayerWeights& L : w.layers) {
        if (L.wqkv.data) {
            qkv.resize(n * 3 * d);
            matmul(L.wqkv, x.data(), hp.n_embd, nt, qkv.data(), 3 * hp.n_embd, &pool, mm);
            for (size_t i = 0; i < n; ++i) {
                std::copy(qkv.begin() + static_cast<std::ptrdiff_t>(i * 3 * d), qkv.begin() + static_cast<std::ptrdiff_t>(i * 3 * d + d), q.begin() + static_cast<std::ptrdiff_t>(i * d));
                std::copy(qkv.begin() + static_cast<std::ptrdiff_t>(i * 3 * d + d), qkv.begin() + static_cast<std::ptrdiff_t>(i * 3 * d + 2 * d), k.begin() + static_cast<std::ptrdiff_t>(i * d));
                std::copy(qkv.begin() + static_cast<std::ptrdiff_t>(i * 3 * d + 2 * d), qkv.begin() + static_cast<std::ptrdiff_t>(i * 3 * d + 3 * d), v.begin() + static_cast<std::ptrdiff_t>(i * d));
            }
        } else {
            matmul(L.wq, x.data(), hp.n_embd, nt, q.data(), hp.n_embd, &pool, mm);
            matmul(L.wk, x.data(), hp.n_embd, nt, k.data(), hp.n_embd, &pool, mm);
            matmul(L.wv, x.data(), hp.n_embd, nt, v.data(), hp.n_embd, &pool, mm);
        }
        bias(q.data(), L.bq, n, d);
        bias(k.data(), L.bk, n, d);
        bias(v.data(), L.bv, n, d);
        if (rope)
            for (size_t i = 0; i < n; ++i) {
                const float* c = cs.data() + i * static_cast<size_t>(hp.rope_dims);
                rope_apply(q.data() + i * d, hp.n_head, hp.head_dim, hp.rope_dims, hp.rope_style, c);
                rope_apply(k.data() + i * d, hp.n_head, hp.head_dim, hp.rope_dims, hp.rope_style, c);
            }
        // Bidirectional attention, one (token, head) pair per item.
        pool.parallel_for(nt * hp.n_head, 1, [&](int64_t i0, int64_t i1, int) {
            std::vector<float> s(n);
            for (int64_t item = i0; item < i1; ++item) {
                const size_t t = static_cast<size_t>(item / hp.n_head), hh = static_cast<size_t>(item % hp.n_head);
                const float* qi = q.data() + t * d + hh * hd;
                float mx = -INFINITY;
                for (size_t j = 0; j < n; ++j) {
                    const float* kj = k.data() + j * d + hh * hd;
                    float dot = 0;
                    for (size_t e = 0; e < hd; ++e) dot += qi[e] * kj[e];
                    s[j] = dot * scale;
                    mx = std::max(mx, s[j]);
                }
                float sum = 0;
                for (size_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
                float* o = attn.data() + t * d + hh * hd;
                std::fill(o, o + hd, 0.0f);
                for (size_t j = 0; j < n; ++j) {
                    const float p = s[j] / sum;
                    const float* vj = v.data() + j * d + hh * hd;
                    for (size_t e = 0; e < hd; ++e) o[e] += p * vj[e];
                }
            }
        });
        matmul(L.wo, attn.data(), hp.n_embd, nt, h.data(), hp.n_embd, &pool, mm);
        bias(h.data(), L.bo, n, d);
        for (size_t i = 0; i < n * d; ++i) x[i] += h[i];
        for (size_t i = 0; i < n; ++i)
            layer_norm(x.data() + i * d, L.attn_out_norm, L.attn_out_norm_b, x.data() + i * d, hp.n_embd, hp.norm_eps);
        matmul(L.w_up, x.data(), hp.n_embd, nt, up.data(), hp.n_ff, &pool, mm);
        bias(up.data(), L.b_up, n, ff);
        if (L.w_gate.data) {  // SwiGLU
            gate.resize(n * ff);
            matmul(L.w_gate, x.data(), hp.n_embd, nt, gate.data(), hp.n_ff, &pool, mm);
            swiglu(gate.data(), up.data(), up.data(), static_cast<int64_t>(n * ff));
        } else {
            for (float& u : up) u = gelu_f16_table(u);
        }
        matmul(L.w_down, up.data(), hp.n_ff, nt, h.data(), hp.n_embd, &pool, mm);
        bias(h.data(), L.b_down, n, d);
        for (size_t i = 0; i < n * d; ++i) x[i] += h[i];
        for (size_t i = 0; i < n; ++i)
            layer_norm(x.data() + i * d, L.layer_out_norm, L.layer_out_norm_b, x.data() + i * d, hp.n_embd, hp.norm_eps);
    }

    std::vector<float> out(d, 0.0f);
    switch (model.pooling()) {
        case Pooling::Mean:
            for (size_t i = 0; i < n; ++i)
                for (size_t j = 0; j < d; ++j) out[j] += x[i * d + j];
            for (float& o : out) o /= static_cast<float>(n);
            break;
        case Pooling::Cls:
        case Pooling::None:  // no pooling declared: use the first token, like CLS
            std::copy(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(d), out.begin());
            break;
        case Pooling::Last:
            std::copy(x.end() - static_cast<std::ptrdiff_t>(d), x.end(), out.begin());
            break;
    }
    if (normalize) {
        double norm = 0;
        for (float o : out) norm += double(o) * o;
        norm = std::sqrt(norm);
        if (norm > 0)
            for (float& o : out) o = static_cast<float>(o / norm);
    }
    return out;
}

}  // namespace hearth
