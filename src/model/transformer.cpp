// The decoder forward pass shared by every decoder architecture. Read it top to bottom:
// embed, then per layer an attention block and a feed-forward block (model/blocks.h) with
// their norms and residual adds, then the output head. The architecture files only decide
// which blocks and optional pieces each layer has.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "model/blocks.h"
#include "model/model.h"
#include "model/ops.h"
#include "model/forward.h"
#include "model/profile.h"
#include "tensor/threadpool.h"
#include "tensor/quants.h"
#include "tensor/repack.h"

namespace hearth {

void ForwardScratch::ensure(const HParams& hp, size_t nb) {
    if (x.size() >= nb * static_cast<size_t>(hp.n_embd)) return;
    const size_t d = static_cast<size_t>(hp.n_embd),
                 ff = static_cast<size_t>(std::max({hp.n_ff, hp.n_ff_shexp, hp.n_ff_exp}));
    x.resize(nb * d);
    h.resize(nb * d);
    q.resize(nb * static_cast<size_t>(hp.q_dim()));
    k.resize(nb * static_cast<size_t>(hp.kv_dim()));
    v.resize(nb * static_cast<size_t>(hp.kv_dim()));
    attn.resize(nb * static_cast<size_t>(hp.q_dim()));
    gate.resize(nb * ff);
    up.resize(nb * ff * 2);  // room for a fused gate|up output
    ffn.resize(nb * std::max(d, static_cast<size_t>(hp.q_dim() + 2 * hp.kv_dim())));
}

namespace {

// The model's norm (RMSNorm, or LayerNorm with an optional bias) of every row.
void norm_rows(const Pass& P, const float* x, const float* w, const float* b, float* out) {
    const size_t d = static_cast<size_t>(P.hp.n_embd);
    for_rows(P.pool, P.n, [&](size_t i) {
        if (P.hp.layer_norm) layer_norm(x + i * d, w, b, out + i * d, P.hp.n_embd, P.hp.norm_eps);
        else rms_norm(x + i * d, w, out + i * d, P.hp.n_embd, P.hp.norm_eps);
    });
}

// x += scale * RMSNorm(y) * post_norm (the norm only when post_norm is set).
void residual(const Pass& P, float* x, float* y, const float* post_norm, float scale) {
    const size_t d = static_cast<size_t>(P.hp.n_embd);
    if (post_norm)
        for (size_t i = 0; i < P.n; ++i) rms_norm(y + i * d, post_norm, y + i * d, P.hp.n_embd, P.hp.norm_eps);
    if (scale != 1.0f)
        for (size_t i = 0; i < P.n * d; ++i) x[i] += scale * y[i];
    else
        for (size_t i = 0; i < P.n * d; ++i) x[i] += y[i];
}

}  // namespace

void forward(const Model& model, const Batch& batch, size_t begin, size_t end, const KvView& kv, ThreadPool& pool,
             ForwardScratch& S, float* out, bool hidden, StageIO stage) {
    const HParams& hp = model.hparams();
    const ModelWeights& w = model.weights();
    const size_t n = end - begin, d = static_cast<size_t>(hp.n_embd);
    float *x = S.x.data(), *h = S.h.data(), *ffn = S.ffn.data();
    prof::Lap lap;  // per-op timing for `hearth bench --profile` (off: no clock reads)

    // Token embeddings (a later pipeline stage starts from the previous stage's output).
    const int32_t l0 = model.layer_begin(), l1 = model.layer_end();
    if ((l0 > 0) != (stage.in != nullptr) || (l1 < hp.n_layer) != (stage.out != nullptr))
        throw std::logic_error("forward: the stage's inputs/outputs do not match the model's layer range");
    if (stage.in) {
        std::memcpy(x, stage.in, n * d * sizeof(float));
    } else {
        const auto embd_to_float = kernels(w.tok_embd.type).to_float;
        for (size_t i = 0; i < n; ++i) {
            embd_to_float(w.tok_embd.row(batch.token[begin + i]), x + i * d, hp.n_embd);
            if (hp.embd_scale != 1.0f)
                for (size_t j = 0; j < d; ++j) x[i * d + j] *= hp.embd_scale;
        }
    }
    lap(prof::Op::Embed);

    // RoPE tables, one per token (and a second set when sliding-window layers have their own).
    std::vector<float>& cs = S.rows;
    const size_t cs_stride = static_cast<size_t>(hp.rope_dims);
    cs.resize(std::max(cs.size(), 2 * n * cs_stride));
    float* cs_swa = hp.rope_swa_own ? cs.data() + n * cs_stride : cs.data();
    const RopeParams rope = hp.rope_params(false), rope_swa = hp.rope_params(true);
    for (size_t i = 0; i < n; ++i) {
        rope_table(rope, w.rope_freqs, batch.pos[begin + i], cs.data() + i * cs_stride);
        if (hp.rope_swa_own) rope_table(rope_swa, w.rope_freqs, batch.pos[begin + i], cs_swa + i * cs_stride);
    }
    lap(prof::Op::Rope);

    Pass P{model, hp, batch, begin, end, n, kv, pool, S, lap, cs.data(), cs_swa};
    for (int32_t l = l0; l < l1; ++l) {
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];

        // Attention block: pre-norm (absent in olmo2), attention, post-norm (gemma, olmo2), add.
        const float* in = x;
        if (L.attn_norm) {
            norm_rows(P, x, L.attn_norm, L.attn_norm_b, h);
            in = h;
            lap(prof::Op::Norm);
        }
        if (L.mla.present()) mla_block(P, l, in, h);
        else attention_block(P, l, in, h);
        residual(P, x, h, L.post_attn_norm, hp.residual_scale);
        lap(prof::Op::Residual);

        // Feed-forward block: the same shape, with a dense FFN or the experts.
        in = x;
        if (L.ffn_norm) {
            norm_rows(P, x, L.ffn_norm, L.ffn_norm_b, h);
            in = h;
            lap(prof::Op::Norm);
        }
        if (L.moe.present()) {
            moe_ffn(P, L.moe, in, ffn);
        } else {
            const MatrixView* fused = L.w_gate_up.data ? &L.w_gate_up : fused_view(L.w_gate_up_packed);
            dense_ffn(P, L.w_gate, L.w_up, L.w_down, L.b_up, L.b_down, fused, in, ffn);
        }
        residual(P, x, ffn, L.post_ffn_norm, hp.residual_scale);
        lap(prof::Op::Residual);
    }

    if (stage.out) {  // not the last stage: the residual stream goes on to the next one
        std::memcpy(stage.out, x, n * d * sizeof(float));
        return;
    }

    // Output head, only for the rows whose logits were asked for.
    size_t n_out = 0;
    float* out_h = hidden ? out : h;
    for (size_t i = 0; i < n; ++i) {
        if (!batch.logits[begin + i]) continue;
        float* o = out_h + (n_out++) * d;
        if (hp.layer_norm) layer_norm(x + i * d, w.output_norm, w.output_norm_b, o, hp.n_embd, hp.norm_eps);
        else rms_norm(x + i * d, w.output_norm, o, hp.n_embd, hp.norm_eps);
    }
    lap(prof::Op::Norm);
    if (n_out == 0 || hidden) return;
    float* logits = out;
    matmul(w.output, h, hp.n_embd, static_cast<int64_t>(n_out), logits, hp.n_vocab, &pool, S.mm);
    lap.matmul(w.output.type);
    const size_t n_logits = n_out * static_cast<size_t>(hp.n_vocab);
    if (hp.logit_scale != 1.0f)
        for (size_t i = 0; i < n_logits; ++i) logits[i] /= hp.logit_scale;
    if (hp.final_softcap > 0)
        for (size_t i = 0; i < n_logits; ++i) logits[i] = softcap(logits[i], hp.final_softcap);
}

}  // namespace hearth
