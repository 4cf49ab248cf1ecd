#include "model/ops.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "model/batch.h"
#include "tensor/threadpool.h"
#include "tensor/attention.h"
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

namespace {

// YaRN's correction range: the pair index where `n_rot` rotations fit the original context.
float yarn_corr_dim(int32_t n_dims, int32_t n_ctx_orig, float n_rot, float base) {
    return static_cast<float>(n_dims) * std::log(static_cast<float>(n_ctx_orig) / (n_rot * 2.0f * 3.14159265358979323846f)) /
           (2.0f * std::log(base));
}

}  // namespace

void rope_table(const RopeParams& rp, const float* freq_factors, int32_t pos, float* cos_sin) {
    const int32_t half = rp.dims / 2;
    const float theta_scale = std::pow(rp.freq_base, -2.0f / static_cast<float>(rp.dims));
    float low = 0.0f, high = 0.0f, mscale = rp.attn_factor;
    if (rp.ext_factor != 0.0f) {
        low = std::max(0.0f, std::floor(yarn_corr_dim(rp.dims, rp.n_ctx_orig, rp.beta_fast, rp.freq_base)));
        high = std::min(static_cast<float>(rp.dims - 1), std::ceil(yarn_corr_dim(rp.dims, rp.n_ctx_orig, rp.beta_slow, rp.freq_base)));
        mscale *= 1.0f + 0.1f * std::log(1.0f / rp.freq_scale);
    }
    float theta_base = static_cast<float>(pos);
    for (int32_t i = 0; i < half; ++i) {
        const float extrap = freq_factors ? theta_base / freq_factors[i] : theta_base;
        const float interp = rp.freq_scale * extrap;
        float theta = interp;
        if (rp.ext_factor != 0.0f) {
            // Pairs below `low` keep the unscaled angle, above `high` the scaled one; a ramp between.
            const float y = (static_cast<float>(i) - low) / std::max(0.001f, high - low);
            const float mix = (1.0f - std::min(1.0f, std::max(0.0f, y))) * rp.ext_factor;
            theta = interp * (1.0f - mix) + extrap * mix;
        }
        cos_sin[2 * i] = std::cos(theta) * mscale;
        cos_sin[2 * i + 1] = std::sin(theta) * mscale;
        theta_base *= theta_scale;
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

float gelu_f16_table(float x) {
    // One entry per F16 bit pattern, built once: a lookup instead of a tanh per element.
    static const std::vector<uint16_t> table = [] {
        std::vector<uint16_t> t(65536);
        for (uint32_t h = 0; h < 65536; ++h) t[h] = fp32_to_fp16(gelu_tanh(fp16_to_fp32(static_cast<fp16_t>(h))));
        return t;
    }();
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return fp16_to_fp32(table[fp32_to_fp16(x)]);
}

float gelu_tanh(float x) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

// KV blocks attention() prefetches ahead of the one it works on.
constexpr int32_t kPrefetchBlocks = 4;

void attention(const HParams& hp, const KvView& kv, int32_t layer, const Batch& batch, size_t begin, size_t end,
               const float* q, float* out, int32_t window, ThreadPool& pool, const float* sinks) {
    const int32_t hd = hp.head_dim, n_kv = hp.n_head_kv, group = hp.n_head / hp.n_head_kv;
    const int32_t bs = kv.block_size;
    const GgmlType kt = kv.type;
    const GgmlType qt = traits(kt).vec_dot_type;
    const TypeKernels& kk = kernels(kt);
    const TypeKernels& qk = kernels(qt);
    const AttnKernel& ak = attn_kernel(hd);
    const bool f16_fast = kt == GgmlType::F16 && ak.load_f16 != nullptr;
    const size_t q_bytes = row_size(qt, hd);
    const float scale = hp.attn_scale > 0 ? hp.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
    const float cap = hp.attn_softcap;
    const size_t pos_stride = kv.pos_bytes, head_bytes = kv.head_row_bytes;
    const size_t g = static_cast<size_t>(group), d = static_cast<size_t>(hd), qd = static_cast<size_t>(hp.q_dim());
    const size_t tile = static_cast<size_t>(kAttnTile);
    auto first_pos = [window](int32_t p) { return window > 0 ? std::max(0, p - window + 1) : 0; };

    // Work item = a run of up to `run_max` consecutive batch tokens of one sequence, times
    // one KV head: each K/V tile is converted to f32 (and K packed) once for the run, then
    // every token of the run whose range meets the tile applies it to its own query heads
    // (the GQA group). A token's arithmetic (its q, its tiles in ascending order, the
    // kernel) does not depend on the run it is in, the other tokens, or the thread.
    const size_t run_max = std::clamp<size_t>(4096 / (g * d), 1, 8);
    std::vector<std::pair<size_t, size_t>> runs;
    for (size_t t = begin; t < end; ++t) {
        if (runs.empty() || batch.seq[t] != batch.seq[t - 1] || t - runs.back().first >= run_max) runs.emplace_back(t, t + 1);
        else runs.back().second = t + 1;
    }
    const int64_t n_items = static_cast<int64_t>(runs.size()) * n_kv;

    // Per-thread buffers: K rows, packed K, V rows of one tile; per token of a run: q (f32,
    // rounded), accumulators, running max and sum; one q row in the vec_dot type.
    const size_t state = g * (2 * d + 2);
    const size_t per_thread = 3 * tile * d + run_max * state + (q_bytes + sizeof(float) - 1) / sizeof(float) + 16;
    std::vector<float> bufs(per_thread * static_cast<size_t>(pool.size()));

    pool.parallel_for(n_items, 1, [&](int64_t i0, int64_t i1, int ith) {
        float* kf = bufs.data() + per_thread * static_cast<size_t>(ith);
        float* kp = kf + tile * d;
        float* vf = kp + tile * d;
        float* st = vf + tile * d;
        void* qtmp = st + run_max * state;
        for (int64_t item = i0; item < i1; ++item) {
            const auto [t0, t1] = runs[static_cast<size_t>(item / n_kv)];
            const size_t nt = t1 - t0;
            const int32_t kvh = static_cast<int32_t>(item % n_kv), h0 = kvh * group;
            const int32_t seq = batch.seq[t0];
            int32_t lo_all = INT32_MAX, hi_all = -1;
            for (size_t r = 0; r < nt; ++r) {
                const size_t t = t0 + r;
                float* qs = st + r * state;
                float* acc = qs + g * d;
                float* ms = acc + g * d;
                float* ls = ms + g;
                const float* src = q + (t - begin) * qd + static_cast<size_t>(h0) * d;
                for (size_t j = 0; j < g; ++j) {
                    if (qt != GgmlType::F32) {
                        qk.from_float(src + j * d, qtmp, hd);  // q as the dot product would see it
                        qk.to_float(qtmp, qs + j * d, hd);
                    } else {
                        std::copy(src + j * d, src + (j + 1) * d, qs + j * d);
                    }
                    ms[j] = -INFINITY;
                    ls[j] = 0.0f;
                }
                std::fill(acc, acc + g * d, 0.0f);
                lo_all = std::min(lo_all, first_pos(batch.pos[t]));
                hi_all = std::max(hi_all, batch.pos[t]);
            }
            // Blocks of one layer are n_layer blocks apart in the pool, beyond the hardware
            // prefetcher's reach: fetch this head's rows a few blocks ahead.
            const int32_t b_first = lo_all / bs, b_last = hi_all / bs;
            auto prefetch = [&](int32_t b) {
                if (b > b_last) return;
                const uint8_t* kb = kv.k_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                const uint8_t* vb = kv.v_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                for (int32_t i = 0; i < bs; ++i)
                    for (size_t o = 0; o < head_bytes; o += 64) {
                        __builtin_prefetch(kb + static_cast<size_t>(i) * pos_stride + o);
                        __builtin_prefetch(vb + static_cast<size_t>(i) * pos_stride + o);
                    }
            };
            for (int32_t b = b_first; b < b_first + kPrefetchBlocks; ++b) prefetch(b);
            for (int32_t b = b_first; b <= b_last; ++b) {
                prefetch(b + kPrefetchBlocks);
                const uint8_t* kb = kv.k_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                const uint8_t* vb = kv.v_block(layer, seq, b) + static_cast<size_t>(kvh) * head_bytes;
                for (int32_t s0 = 0; s0 < bs; s0 += kAttnTile) {
                    const int32_t base = b * bs + s0, n_pos = std::min(kAttnTile, bs - s0);
                    // Tile positions [u0, u1) any token of the run needs.
                    int32_t u0 = kAttnTile, u1 = 0;
                    for (size_t r = 0; r < nt; ++r) {
                        const int32_t p = batch.pos[t0 + r], lo = first_pos(p);
                        const int32_t a = std::max(lo - base, 0), e = std::min(p - base + 1, n_pos);
                        if (a < e) {
                            u0 = std::min(u0, a);
                            u1 = std::max(u1, e);
                        }
                    }
                    if (u0 >= u1) continue;
                    const size_t off0 = static_cast<size_t>(s0) * pos_stride;
                    if (f16_fast) {
                        ak.load_f16(kb + off0, vb + off0, pos_stride, hd, u0, u1, kp, vf);
                    } else {
                        for (int32_t i = u0; i < u1; ++i) {
                            const size_t off = off0 + static_cast<size_t>(i) * pos_stride;
                            kk.to_float(kb + off, kf + static_cast<size_t>(i) * d, hd);
                            kk.to_float(vb + off, vf + static_cast<size_t>(i) * d, hd);
                        }
                        ak.pack_k(kf, hd, u0, u1, kp);
                    }
                    for (size_t r = 0; r < nt; ++r) {
                        const int32_t p = batch.pos[t0 + r], lo = first_pos(p);
                        const int32_t a = std::max(lo - base, 0), e = std::min(p - base + 1, n_pos);
                        if (a >= e) continue;
                        float* qs = st + r * state;
                        float* acc = qs + g * d;
                        float* ms = acc + g * d;
                        ak.block(qs, group, hd, kp, vf, a, e, scale, cap, ms, ms + g, acc);
                    }
                }
            }
            for (size_t r = 0; r < nt; ++r) {
                const float* acc = st + r * state + g * d;
                const float* ms = acc + g * d;
                const float* ls = ms + g;
                float* o = out + (t0 + r - begin) * qd + static_cast<size_t>(h0) * d;
                for (size_t j = 0; j < g; ++j) {
                    // A sink adds exp(S - m) to the denominator (acc and l are relative to m).
                    const float l = sinks ? ls[j] + std::exp(sinks[h0 + static_cast<int32_t>(j)] - ms[j]) : ls[j];
                    const float inv = 1.0f / l;
                    for (size_t k = 0; k < d; ++k) o[j * d + k] = acc[j * d + k] * inv;
                }
            }
        }
    });
}

}  // namespace hearth
