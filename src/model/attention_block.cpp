// The attention blocks of the decoder pass (model/blocks.h): standard multi-head / grouped-
// query attention with its optional pieces (fused Q|K|V, biases, Q/K norms per head or over
// the whole projection, sliding window, sinks), and deepseek2's latent attention.
#include <cstring>

#include "model/blocks.h"
#include "model/ops.h"
#include "model/batch.h"
#include "model/forward.h"
#include "tensor/quants.h"
#include "tensor/repack.h"

namespace hearth {

namespace {

// Appends K and V rows (kv_dim floats per token) to the cache of layer l, converted to its type.
void store_kv(Pass& P, int32_t l, const float* k, const float* v) {
    const HParams& hp = P.hp;
    const size_t kvd = static_cast<size_t>(hp.kv_dim()), hd = static_cast<size_t>(hp.head_dim);
    const auto from_float = kernels(P.kv.type).from_float;
    for (size_t i = 0; i < P.n; ++i) {
        const int32_t seq = P.batch.seq[P.begin + i], pos = P.batch.pos[P.begin + i];
        for (int32_t hh = 0; hh < hp.n_head_kv; ++hh) {
            from_float(k + i * kvd + static_cast<size_t>(hh) * hd, P.kv.k(l, seq, pos, hh), hp.head_dim);
            from_float(v + i * kvd + static_cast<size_t>(hh) * hd, P.kv.v(l, seq, pos, hh), hp.head_dim);
        }
    }
    P.lap(prof::Op::KvStore);
}

const float* rope_cs_of(const Pass& P, const LayerWeights& L) { return L.sliding_window ? P.rope_cs_swa : P.rope_cs; }

}  // namespace

void attention_block(Pass& P, int32_t l, const float* in, float* out) {
    const HParams& hp = P.hp;
    const LayerWeights& L = P.model.weights().layers[static_cast<size_t>(l)];
    ForwardScratch& S = P.S;
    const size_t n = P.n, qd = static_cast<size_t>(hp.q_dim()), kvd = static_cast<size_t>(hp.kv_dim());
    const int64_t nt = static_cast<int64_t>(n);
    const int32_t hd = hp.head_dim;
    float *q = S.q.data(), *k = S.k.data(), *v = S.v.data(), *attn = S.attn.data();

    // Fused Q|K|V: stored so (phi3), or packed / copied back to back at load.
    const MatrixView* wqkv = L.wqkv.data ? &L.wqkv : fused_view(L.wqkv_packed);
    if (wqkv) {
        float* qkv = S.ffn.data();  // [n][qd + 2 kvd]; ffn is free until the FFN block
        const size_t all = qd + 2 * kvd;
        matmul(*wqkv, in, hp.n_embd, nt, qkv, static_cast<int64_t>(all), &P.pool, S.mm);
        for (size_t i = 0; i < n; ++i) {
            std::memcpy(q + i * qd, qkv + i * all, qd * sizeof(float));
            std::memcpy(k + i * kvd, qkv + i * all + qd, kvd * sizeof(float));
            std::memcpy(v + i * kvd, qkv + i * all + qd + kvd, kvd * sizeof(float));
        }
        P.lap.matmul(wqkv->type);
    } else {
        matmul(L.wq, in, hp.n_embd, nt, q, static_cast<int64_t>(qd), &P.pool, S.mm);
        P.lap.matmul(L.wq.type);
        matmul(L.wk, in, hp.n_embd, nt, k, static_cast<int64_t>(kvd), &P.pool, S.mm);
        P.lap.matmul(L.wk.type);
        matmul(L.wv, in, hp.n_embd, nt, v, static_cast<int64_t>(kvd), &P.pool, S.mm);
        P.lap.matmul(L.wv.type);
    }
    add_bias(q, L.bq, n, qd);
    add_bias(k, L.bk, n, kvd);
    add_bias(v, L.bv, n, kvd);
    const float* cs = rope_cs_of(P, L);
    const size_t cs_stride = static_cast<size_t>(hp.rope_dims);
    for (size_t i = 0; i < n; ++i) {
        if (L.q_norm && hp.qk_norm_full) {  // olmo2: over the whole projection
            rms_norm(q + i * qd, L.q_norm, q + i * qd, hp.q_dim(), hp.norm_eps);
            rms_norm(k + i * kvd, L.k_norm, k + i * kvd, hp.kv_dim(), hp.norm_eps);
        } else if (L.q_norm) {  // per head
            for (int32_t hh = 0; hh < hp.n_head; ++hh) {
                float* r = q + i * qd + static_cast<size_t>(hh) * hd;
                rms_norm(r, L.q_norm, r, hd, hp.norm_eps);
            }
            for (int32_t hh = 0; hh < hp.n_head_kv; ++hh) {
                float* r = k + i * kvd + static_cast<size_t>(hh) * hd;
                rms_norm(r, L.k_norm, r, hd, hp.norm_eps);
            }
        }
        rope_apply(q + i * qd, hp.n_head, hd, hp.rope_dims, hp.rope_style, cs + i * cs_stride);
        rope_apply(k + i * kvd, hp.n_head_kv, hd, hp.rope_dims, hp.rope_style, cs + i * cs_stride);
    }
    P.lap(prof::Op::Rope);  // biases, QK-norm and RoPE
    store_kv(P, l, k, v);
    attention(hp, P.kv, l, P.batch, P.begin, P.end, q, attn, L.sliding_window ? hp.sliding_window : 0, P.pool, L.sinks);
    P.lap(prof::Op::Attention);
    matmul(L.wo, attn, static_cast<int64_t>(qd), nt, out, hp.n_embd, &P.pool, S.mm);
    add_bias(out, L.bo, n, static_cast<size_t>(hp.n_embd));
    P.lap.matmul(L.wo.type);
}

void mla_block(Pass& P, int32_t l, const float* in, float* out) {
    const HParams& hp = P.hp;
    const MlaWeights& M = P.model.weights().layers[static_cast<size_t>(l)].mla;
    ForwardScratch& S = P.S;
    const size_t n = P.n;
    const int64_t nt = static_cast<int64_t>(n);
    const int32_t H = hp.n_head, rank = hp.kv_lora_rank, rope = hp.rope_dims, nope = hp.mla_nope_dim, vd = hp.mla_v_dim;
    const size_t qh = static_cast<size_t>(nope + rope);  // per-head width of the query projection
    const size_t hd = static_cast<size_t>(hp.head_dim);  // rank + rope: cache and absorbed-query width
    S.mla_q.resize(std::max(S.mla_q.size(), n * static_cast<size_t>(H) * qh));
    S.mla_c.resize(std::max(S.mla_c.size(), n * static_cast<size_t>(std::max(hp.q_lora_rank, H * vd))));
    float *qf = S.mla_q.data(), *tmp = S.mla_c.data(), *kv = S.k.data(), *q = S.q.data(), *attn = S.attn.data();

    // Queries: through the low-rank bottleneck (normed) or the full projection.
    if (M.wq_a.rows > 0) {
        matmul(M.wq_a, in, hp.n_embd, nt, tmp, hp.q_lora_rank, &P.pool, S.mm);
        P.lap.matmul(M.wq_a.type);
        for (size_t i = 0; i < n; ++i) {
            float* r = tmp + i * static_cast<size_t>(hp.q_lora_rank);
            rms_norm(r, M.q_a_norm, r, hp.q_lora_rank, hp.norm_eps);
        }
        matmul(M.wq_b, tmp, hp.q_lora_rank, nt, qf, H * static_cast<int64_t>(qh), &P.pool, S.mm);
        P.lap.matmul(M.wq_b.type);
    } else {
        matmul(M.wq, in, hp.n_embd, nt, qf, H * static_cast<int64_t>(qh), &P.pool, S.mm);
        P.lap.matmul(M.wq.type);
    }
    // Compressed KV [c (rank), k_pe (rope)] per token: c normed, k_pe roped (one head).
    matmul(M.wkv_a, in, hp.n_embd, nt, kv, static_cast<int64_t>(hd), &P.pool, S.mm);
    P.lap.matmul(M.wkv_a.type);
    const size_t cs_stride = static_cast<size_t>(rope);
    for (size_t i = 0; i < n; ++i) {
        float* r = kv + i * hd;
        rms_norm(r, M.kv_a_norm, r, rank, hp.norm_eps);
        rope_apply(r + rank, 1, rope, rope, hp.rope_style, P.rope_cs + i * cs_stride);
        rope_apply(qf + i * static_cast<size_t>(H) * qh + static_cast<size_t>(nope), H, static_cast<int32_t>(qh), rope,
                   hp.rope_style, P.rope_cs + i * cs_stride);
    }
    P.lap(prof::Op::Rope);
    // Absorbed queries [wk_b[h] . q_nope_h (rank), q_pe_h (rope)] per head.
    const size_t qd = static_cast<size_t>(H) * hd;
    for (int32_t h = 0; h < H; ++h) {
        matmul(M.wk_b[static_cast<size_t>(h)], qf + static_cast<size_t>(h) * qh, H * static_cast<int64_t>(qh), nt,
               q + static_cast<size_t>(h) * hd, static_cast<int64_t>(qd), &P.pool, S.mm);
        for (size_t i = 0; i < n; ++i)
            std::memcpy(q + i * qd + static_cast<size_t>(h) * hd + static_cast<size_t>(rank),
                        qf + i * static_cast<size_t>(H) * qh + static_cast<size_t>(h) * qh + static_cast<size_t>(nope),
                        static_cast<size_t>(rope) * sizeof(float));
    }
    P.lap.matmul(M.wk_b[0].type);
    // The cache's V rows are the same [c, k_pe] rows; the heads' outputs use the c part.
    store_kv(P, l, kv, kv);
    attention(hp, P.kv, l, P.batch, P.begin, P.end, q, attn, 0, P.pool);
    P.lap(prof::Op::Attention);
    for (int32_t h = 0; h < H; ++h)
        matmul(M.wv_b[static_cast<size_t>(h)], attn + static_cast<size_t>(h) * hd, static_cast<int64_t>(qd), nt,
               tmp + static_cast<size_t>(h * vd), static_cast<int64_t>(H) * vd, &P.pool, S.mm);
    P.lap.matmul(M.wv_b[0].type);
    const MatrixView& wo = P.model.weights().layers[static_cast<size_t>(l)].wo;
    matmul(wo, tmp, static_cast<int64_t>(H) * vd, nt, out, hp.n_embd, &P.pool, S.mm);
    P.lap.matmul(wo.type);
}

}  // namespace hearth
