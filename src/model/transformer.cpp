// The decoder forward pass shared by the llama family. Read it top to bottom: embed, then
// per layer attention and feed-forward with residuals, then the output head. The
// architecture files only decide which of the optional pieces exist.
#include <algorithm>
#include <cstring>

#include "model/model.h"
#include "model/ops.h"
#include "runtime/context.h"
#include "runtime/profile.h"
#include "runtime/threadpool.h"
#include "tensor/activation.h"
#include "tensor/quants.h"
#include "tensor/repack.h"

namespace hearth {

namespace {

void add_bias(float* y, const float* b, size_t n_rows, size_t dim) {
    if (!b) return;
    for (size_t i = 0; i < n_rows; ++i)
        for (size_t j = 0; j < dim; ++j) y[i * dim + j] += b[j];
}

void add_rows(float* x, const float* y, size_t count) {
    for (size_t i = 0; i < count; ++i) x[i] += y[i];
}

// fn(i) for every token row i < n: on the pool for batches (prefill), inline for one token.
// Rows are independent, so the results do not depend on the split.
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

}  // namespace

void forward(Context& ctx, const Batch& batch, size_t begin, size_t end, int32_t out_row) {
    const Model& model = ctx.model();
    const HParams& hp = model.hparams();
    const ModelWeights& w = model.weights();
    ForwardScratch& S = ctx.scratch();
    ThreadPool& pool = ctx.pool();
    KvCache& kv = ctx.kv();
    const size_t n = end - begin;
    const size_t d = static_cast<size_t>(hp.n_embd), qd = static_cast<size_t>(hp.q_dim()),
                 kvd = static_cast<size_t>(hp.kv_dim()), ff = static_cast<size_t>(hp.n_ff);
    const int32_t hd = hp.head_dim;
    float *x = S.x.data(), *h = S.h.data(), *q = S.q.data(), *k = S.k.data(), *v = S.v.data();
    float *attn = S.attn.data(), *gate = S.gate.data(), *up = S.up.data(), *ffn = S.ffn.data();

    prof::Lap lap;  // per-op timing for `hearth bench --profile` (off: no clock reads)

    // Token embeddings.
    const auto embd_to_float = kernels(w.tok_embd.type).to_float;
    for (size_t i = 0; i < n; ++i) {
        embd_to_float(w.tok_embd.row(batch.token[begin + i]), x + i * d, hp.n_embd);
        if (hp.embd_scale != 1.0f)
            for (size_t j = 0; j < d; ++j) x[i * d + j] *= hp.embd_scale;
    }
    lap(prof::Op::Embed);

    // RoPE tables, one per token.
    std::vector<float>& cs = S.rows;
    const size_t cs_stride = static_cast<size_t>(hp.rope_dims);
    if (cs.size() < n * cs_stride) cs.resize(n * cs_stride);
    for (size_t i = 0; i < n; ++i) rope_table(hp, w.rope_freqs, batch.pos[begin + i], cs.data() + i * cs_stride);
    lap(prof::Op::Rope);

    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];

        // Attention block.
        for_rows(pool, n, [&](size_t i) { rms_norm(x + i * d, L.attn_norm, h + i * d, hp.n_embd, hp.norm_eps); });
        lap(prof::Op::Norm);
        // Fused Q|K|V: stored so (phi3), or packed back to back at load.
        const MatrixView* wqkv = L.wqkv.data ? &L.wqkv : use_packed(L.wqkv_packed) ? &L.wqkv_packed : nullptr;
        if (wqkv) {
            float* qkv = ffn;  // [n][qd + 2 kvd], ffn is free until the FFN block
            const size_t all = qd + 2 * kvd;
            matmul(*wqkv, h, hp.n_embd, static_cast<int64_t>(n), qkv, static_cast<int64_t>(all), &pool, S.mm);
            for (size_t i = 0; i < n; ++i) {
                std::memcpy(q + i * qd, qkv + i * all, qd * sizeof(float));
                std::memcpy(k + i * kvd, qkv + i * all + qd, kvd * sizeof(float));
                std::memcpy(v + i * kvd, qkv + i * all + qd + kvd, kvd * sizeof(float));
            }
            lap.matmul(wqkv->type);
        } else {
            matmul(L.wq, h, hp.n_embd, static_cast<int64_t>(n), q, static_cast<int64_t>(qd), &pool, S.mm);
            lap.matmul(L.wq.type);
            matmul(L.wk, h, hp.n_embd, static_cast<int64_t>(n), k, static_cast<int64_t>(kvd), &pool, S.mm);
            lap.matmul(L.wk.type);
            matmul(L.wv, h, hp.n_embd, static_cast<int64_t>(n), v, static_cast<int64_t>(kvd), &pool, S.mm);
            lap.matmul(L.wv.type);
        }
        add_bias(q, L.bq, n, qd);
        add_bias(k, L.bk, n, kvd);
        add_bias(v, L.bv, n, kvd);
        for (size_t i = 0; i < n; ++i) {
            if (L.q_norm) {
                for (int32_t hh = 0; hh < hp.n_head; ++hh) {
                    float* r = q + i * qd + static_cast<size_t>(hh) * hd;
                    rms_norm(r, L.q_norm, r, hd, hp.norm_eps);
                }
                for (int32_t hh = 0; hh < hp.n_head_kv; ++hh) {
                    float* r = k + i * kvd + static_cast<size_t>(hh) * hd;
                    rms_norm(r, L.k_norm, r, hd, hp.norm_eps);
                }
            }
            rope_apply(q + i * qd, hp.n_head, hd, hp.rope_dims, hp.rope_style, cs.data() + i * cs_stride);
            rope_apply(k + i * kvd, hp.n_head_kv, hd, hp.rope_dims, hp.rope_style, cs.data() + i * cs_stride);
        }
        lap(prof::Op::Rope);  // biases, QK-norm and RoPE
        // Append K/V to the cache, converted to the cache type.
        const auto kv_from_float = kernels(kv.type()).from_float;
        for (size_t i = 0; i < n; ++i) {
            const int32_t seq = batch.seq[begin + i], pos = batch.pos[begin + i];
            for (int32_t hh = 0; hh < hp.n_head_kv; ++hh) {
                kv_from_float(k + i * kvd + static_cast<size_t>(hh) * hd, kv.k(l, seq, pos, hh), hd);
                kv_from_float(v + i * kvd + static_cast<size_t>(hh) * hd, kv.v(l, seq, pos, hh), hd);
            }
        }
        lap(prof::Op::KvStore);
        const bool swa = L.sliding_window && (!hp.swa_even_layers || l % 2 == 0);
        attention(hp, kv, l, batch, begin, end, q, attn, swa ? hp.sliding_window : 0, pool);
        lap(prof::Op::Attention);
        matmul(L.wo, attn, static_cast<int64_t>(qd), static_cast<int64_t>(n), h, static_cast<int64_t>(d), &pool, S.mm);
        lap.matmul(L.wo.type);
        if (L.post_attn_norm)
            for (size_t i = 0; i < n; ++i) rms_norm(h + i * d, L.post_attn_norm, h + i * d, hp.n_embd, hp.norm_eps);
        add_rows(x, h, n * d);
        lap(prof::Op::Residual);

        // Feed-forward block.
        for_rows(pool, n, [&](size_t i) { rms_norm(x + i * d, L.ffn_norm, h + i * d, hp.n_embd, hp.norm_eps); });
        lap(prof::Op::Norm);
        const MatrixView* wgu =
            L.w_gate_up.data ? &L.w_gate_up : use_packed(L.w_gate_up_packed) ? &L.w_gate_up_packed : nullptr;
        const size_t up_stride = wgu ? 2 * ff : ff;
        if (wgu) {
            // Fused: rows [0, ff) are the gate, [ff, 2ff) the up projection.
            matmul(*wgu, h, hp.n_embd, static_cast<int64_t>(n), up, static_cast<int64_t>(2 * ff), &pool, S.mm);
            lap.matmul(wgu->type);
        } else {
            matmul(L.w_gate, h, hp.n_embd, static_cast<int64_t>(n), gate, static_cast<int64_t>(ff), &pool, S.mm);
            lap.matmul(L.w_gate.type);
            matmul(L.w_up, h, hp.n_embd, static_cast<int64_t>(n), up, static_cast<int64_t>(ff), &pool, S.mm);
            lap.matmul(L.w_up.type);
        }
        const bool gelu = model.activation() == FfnActivation::GeluTanh;
        for_rows(pool, n, [&](size_t i) {
            const float* g = wgu ? up + i * up_stride : gate + i * ff;
            const float* u = wgu ? up + i * up_stride + ff : up + i * ff;
            float* o = gate + i * ff;
            if (gelu)
                for (size_t j = 0; j < ff; ++j) o[j] = gelu_tanh(g[j]) * u[j];
            else
                swiglu(g, u, o, static_cast<int64_t>(ff));
        });
        lap(prof::Op::Activation);
        matmul(L.w_down, gate, static_cast<int64_t>(ff), static_cast<int64_t>(n), ffn, static_cast<int64_t>(d), &pool, S.mm);
        lap.matmul(L.w_down.type);
        if (L.post_ffn_norm)
            for (size_t i = 0; i < n; ++i) rms_norm(ffn + i * d, L.post_ffn_norm, ffn + i * d, hp.n_embd, hp.norm_eps);
        add_rows(x, ffn, n * d);
        lap(prof::Op::Residual);
    }

    // Output head, only for the rows whose logits were asked for.
    size_t n_out = 0;
    float* out_h = ctx.embeddings_mode() ? ctx.embeddings_buffer().data() + static_cast<size_t>(out_row) * d : h;
    for (size_t i = 0; i < n; ++i)
        if (batch.logits[begin + i]) rms_norm(x + i * d, w.output_norm, out_h + (n_out++) * d, hp.n_embd, hp.norm_eps);
    lap(prof::Op::Norm);
    if (n_out == 0 || ctx.embeddings_mode()) return;
    float* logits = ctx.logits_buffer().data() + static_cast<size_t>(out_row) * static_cast<size_t>(hp.n_vocab);
    matmul(w.output, h, hp.n_embd, static_cast<int64_t>(n_out), logits, hp.n_vocab, &pool, S.mm);
    lap.matmul(w.output.type);
    if (hp.final_softcap > 0)
        for (size_t i = 0; i < n_out * static_cast<size_t>(hp.n_vocab); ++i) logits[i] = softcap(logits[i], hp.final_softcap);
}

}  // namespace hearth
