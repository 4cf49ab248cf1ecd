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
    const int32_t hd = hp.head_dim, n_head = hp.n_head, group = hp.n_head / hp.n_head_kv;
    const int32_t bs = kv.block_size();
    const GgmlType kt = kv.type();
    const GgmlType qt = traits(kt).vec_dot_type;
    const TypeKernels& kk = kernels(kt);
    const auto q_convert = kernels(qt).from_float;
    const size_t q_row = row_size(qt, hd);
    const float scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
    const float cap = hp.attn_softcap;
    const size_t pos_stride = kv.pos_stride(), head_bytes = kv.head_row_bytes();
    const int64_t n_items = static_cast<int64_t>(end - begin) * n_head;

    // Per-thread buffers: converted q, accumulator, one dequantized V row, block scores.
    const size_t per_thread = static_cast<size_t>(hd) * 2 + static_cast<size_t>(bs) + q_row / sizeof(float) + 1;
    std::vector<float> bufs(per_thread * static_cast<size_t>(pool.size()));

    pool.parallel_for(n_items, 4, [&](int64_t i0, int64_t i1, int ith) {
        float* acc = bufs.data() + per_thread * static_cast<size_t>(ith);
        float* vrow = acc + hd;
        float* scores = vrow + hd;
        uint8_t* qc = reinterpret_cast<uint8_t*>(scores + bs);
        for (int64_t item = i0; item < i1; ++item) {
            const size_t t = begin + static_cast<size_t>(item / n_head);
            const int32_t h = static_cast<int32_t>(item % n_head), kvh = h / group;
            const int32_t seq = batch.seq[t], p = batch.pos[t];
            const float* qh = q + (t - begin) * static_cast<size_t>(hp.q_dim()) + static_cast<size_t>(h) * hd;
            const uint8_t* qv = reinterpret_cast<const uint8_t*>(qh);
            if (qt != GgmlType::F32) {
                q_convert(qh, qc, hd);
                qv = qc;
            }
            const int32_t lo = window > 0 ? std::max(0, p - window + 1) : 0;
            float m = -INFINITY, l = 0.0f;
            std::fill(acc, acc + hd, 0.0f);
            for (int32_t b = lo / bs; b <= p / bs; ++b) {
                const int32_t p0 = std::max(lo, b * bs), p1 = std::min(p, b * bs + bs - 1);
                const uint8_t* kb = kv.k_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                const uint8_t* vb = kv.v_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                float bmax = -INFINITY;
                for (int32_t pp = p0; pp <= p1; ++pp) {
                    float s = kk.vec_dot(hd, kb + static_cast<size_t>(pp - b * bs) * pos_stride, qv) * scale;
                    if (cap > 0) s = softcap(s, cap);
                    scores[pp - p0] = s;
                    bmax = std::max(bmax, s);
                }
                if (bmax > m) {
                    const float r = std::exp(m - bmax);  // 0 on the first block (m = -inf)
                    for (int32_t d = 0; d < hd; ++d) acc[d] *= r;
                    l *= r;
                    m = bmax;
                }
                for (int32_t pp = p0; pp <= p1; ++pp) {
                    const float wgt = std::exp(scores[pp - p0] - m);
                    l += wgt;
                    kk.to_float(vb + static_cast<size_t>(pp - b * bs) * pos_stride, vrow, hd);
                    for (int32_t d = 0; d < hd; ++d) acc[d] += wgt * vrow[d];
                }
            }
            float* o = out + (t - begin) * static_cast<size_t>(hp.q_dim()) + static_cast<size_t>(h) * hd;
            const float inv = 1.0f / l;
            for (int32_t d = 0; d < hd; ++d) o[d] = acc[d] * inv;
        }
    });
}

}  // namespace hearth
