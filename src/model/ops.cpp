#include "model/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/batch.h"
#include "runtime/kv_cache.h"
#include "runtime/threadpool.h"
#include "tensor/quants.h"

namespace hearth {

void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / double(n)) + eps);
    if (w) for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
    else for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
}

void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += x[i];
    const double mean = sum / double(n);
    double var = 0.0;
    for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float scale = static_cast<float>(1.0 / std::sqrt(var / double(n) + double(eps)));
    for (int64_t i = 0; i < n; ++i) {
        float v = static_cast<float>(x[i] - mean) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        out[i] = v;
    }
}

void rope_table(const HParams& hp, const float* freq_factors, int32_t pos, float* cos_sin) {
    const int32_t half = hp.rope_dims / 2;
    const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.rope_dims));
    float theta = static_cast<float>(pos) * hp.rope_freq_scale;
    for (int32_t i = 0; i < half; ++i) {
        const float t = freq_factors ? theta / freq_factors[i] : theta;
        cos_sin[2 * i] = std::cos(t);
        cos_sin[2 * i + 1] = std::sin(t);
        theta *= theta_scale;
    }
}

void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t rope_dims, RopeStyle style, const float* cs) {
    const int32_t half = rope_dims / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        float* v = x + static_cast<size_t>(h) * static_cast<size_t>(head_dim);
        for (int32_t i = 0; i < half; ++i) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const int32_t a = style == RopeStyle::Normal ? 2 * i : i;
            const int32_t b = style == RopeStyle::Normal ? 2 * i + 1 : i + half;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float gelu_tanh(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

void attention(const HParams& hp, const KvCache& kv, int32_t layer, const Batch& batch, size_t begin, size_t end,
               const float* q, float* out, int32_t window, ThreadPool& pool) {
    const int32_t hd = hp.head_dim, n_kv = hp.n_head_kv, group = hp.n_head / hp.n_head_kv;
    const int32_t bs = kv.block_size();
    const GgmlType kt = kv.type();
    const GgmlType qt = traits(kt).vec_dot_type;
    const TypeKernels& kk = kernels(kt);
    const auto q_convert = kernels(qt).from_float;
    const size_t q_row = (row_size(qt, hd) + sizeof(float) - 1) / sizeof(float);  // in floats
    const float scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
    const float cap = hp.attn_softcap;
    const size_t pos_stride = kv.pos_stride(), head_bytes = kv.head_row_bytes();
    const size_t g = static_cast<size_t>(group), d = static_cast<size_t>(hd);
    // One work item = one token's query heads that share a KV head (GQA group): each K/V row
    // is read and each V row converted once for the whole group. Per head, the arithmetic
    // and its order are those of a head on its own.
    const int64_t n_items = static_cast<int64_t>(end - begin) * n_kv;

    // Per-thread buffers: per head converted q, accumulator, running max and sum, block
    // scores; one dequantized V row.
    const size_t per_thread = g * (q_row + d + 2 + static_cast<size_t>(bs)) + d;
    std::vector<float> bufs(per_thread * static_cast<size_t>(pool.size()));

    pool.parallel_for(n_items, 2, [&](int64_t i0, int64_t i1, int ith) {
        float* qcs = bufs.data() + per_thread * static_cast<size_t>(ith);
        float* acc = qcs + g * q_row;
        float* ms = acc + g * d;
        float* ls = ms + g;
        float* scores = ls + g;
        float* vrow = scores + g * static_cast<size_t>(bs);
        for (int64_t item = i0; item < i1; ++item) {
            const size_t t = begin + static_cast<size_t>(item / n_kv);
            const int32_t kvh = static_cast<int32_t>(item % n_kv), h0 = kvh * group;
            const int32_t seq = batch.seq[t], p = batch.pos[t];
            const float* qt0 = q + (t - begin) * static_cast<size_t>(hp.q_dim()) + static_cast<size_t>(h0) * d;
            const uint8_t* qv[64];
            const uint8_t** qvp = group <= 64 ? qv : nullptr;
            std::vector<const uint8_t*> qv_big;
            if (!qvp) {
                qv_big.resize(g);
                qvp = qv_big.data();
            }
            for (size_t j = 0; j < g; ++j) {
                if (qt != GgmlType::F32) {
                    q_convert(qt0 + j * d, qcs + j * q_row, hd);
                    qvp[j] = reinterpret_cast<const uint8_t*>(qcs + j * q_row);
                } else {
                    qvp[j] = reinterpret_cast<const uint8_t*>(qt0 + j * d);
                }
                ms[j] = -INFINITY;
                ls[j] = 0.0f;
            }
            std::fill(acc, acc + g * d, 0.0f);
            const int32_t lo = window > 0 ? std::max(0, p - window + 1) : 0;
            for (int32_t b = lo / bs; b <= p / bs; ++b) {
                const int32_t p0 = std::max(lo, b * bs), p1 = std::min(p, b * bs + bs - 1);
                const uint8_t* kb = kv.k_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                const uint8_t* vb = kv.v_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                for (size_t j = 0; j < g; ++j) {
                    float* sc = scores + j * static_cast<size_t>(bs);
                    float bmax = -INFINITY;
                    for (int32_t pp = p0; pp <= p1; ++pp) {
                        float s = kk.vec_dot(hd, kb + static_cast<size_t>(pp - b * bs) * pos_stride, qvp[j]) * scale;
                        if (cap > 0) s = softcap(s, cap);
                        sc[pp - p0] = s;
                        bmax = std::max(bmax, s);
                    }
                    if (bmax > ms[j]) {
                        const float r = std::exp(ms[j] - bmax);  // 0 on the first block (m = -inf)
                        float* a = acc + j * d;
                        for (size_t k = 0; k < d; ++k) a[k] *= r;
                        ls[j] *= r;
                        ms[j] = bmax;
                    }
                    for (int32_t pp = p0; pp <= p1; ++pp) sc[pp - p0] = std::exp(sc[pp - p0] - ms[j]);
                }
                for (int32_t pp = p0; pp <= p1; ++pp) {
                    kk.to_float(vb + static_cast<size_t>(pp - b * bs) * pos_stride, vrow, hd);
                    for (size_t j = 0; j < g; ++j) {
                        const float wgt = scores[j * static_cast<size_t>(bs) + static_cast<size_t>(pp - p0)];
                        ls[j] += wgt;
                        float* a = acc + j * d;
                        for (size_t k = 0; k < d; ++k) a[k] += wgt * vrow[k];
                    }
                }
            }
            for (size_t j = 0; j < g; ++j) {
                float* o = out + (t - begin) * static_cast<size_t>(hp.q_dim()) + (static_cast<size_t>(h0) + j) * d;
                const float inv = 1.0f / ls[j];
                for (size_t k = 0; k < d; ++k) o[k] = acc[j * d + k] * inv;
            }
        }
    });
}

}  // namespace hearth
