// Internal to src/tensor/arm/neon_int8*.cpp: the int8 dot kernels (vec_dot and vec_dot_multi)
// of Q4_0, Q8_0 (against Q8_0 activations) and Q4_K, Q6_K (against Q8_K) as templates over
// the number of activation rows NT. The including file defines HEARTH_NEON_DOTPROD: 1 sums
// 16 byte products with one sdot (vdotq_s32; the file compiles it under the dot-product
// extension's target), 0 with smull/smull2 + sadalp (plain ARMv8-A NEON).
//
// Exactness: both give int32 partial sums that are exact for any bytes (a product of two
// int8 fits an int16, the pair sums are widened before they are added), and every block's
// or sub-block's total is formed with pairwise/across-vector integer adds, so the totals the
// float code sees are the same integers in both instances; the float operations that follow
// are one code path, so the two tables' results are bit-identical. Within a table
// vec_dot is rows<1>, so out[t] of vec_dot_multi equals vec_dot for every token: only the
// weight loads and unpacking are shared between tokens.
#pragma once

#if defined(__aarch64__)

#include <cmath>

#include "tensor/arm/neon_common.h"

#if !defined(HEARTH_NEON_DOTPROD)
#error "define HEARTH_NEON_DOTPROD (0 or 1) before including neon_int8_impl.h"
#endif

namespace hearth::neon {
namespace {

// acc + sum of the 16 products a[i] * b[i], spread over four int32 lanes.
HEARTH_NEON_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if HEARTH_NEON_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

// ---- 32-element blocks against Q8_0

struct W32 {
    int8x16_t lo, hi;  // elements 0..15, 16..31 as signed values
};

struct KindQ4_0 {
    using X = BlockQ4_0;
    HEARTH_NEON_INLINE static W32 prep(const X& x) {
        const uint8x16_t v = vld1q_u8(x.qs);
        const int8x16_t eight = vdupq_n_s8(8);
        return {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), eight),
                vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight)};
    }
};

struct KindQ8_0 {
    using X = BlockQ8_0;
    HEARTH_NEON_INLINE static W32 prep(const X& x) { return {vld1q_s8(x.qs), vld1q_s8(x.qs + 16)}; }
};

HEARTH_NEON_INLINE int32x4_t isum32(const W32& w, const int8_t* y) {
    return dot16(dot16(vdupq_n_s32(0), w.lo, vld1q_s8(y)), w.hi, vld1q_s8(y + 16));
}

// Per token: four blocks per step, their exact int32 totals as one vector, converted and
// multiplied into one float accumulator by the scale products d_w * d_a; the last nb % 4
// blocks go through the same step with zero totals and scales in the unused lanes. One
// across-vector add at the end.
template <typename K>
struct BlockRows {
    template <int NT>
    HEARTH_NEON_INLINE static void rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
        using X = typename K::X;
        const X* x = static_cast<const X*>(vw);
        const BlockQ8_0* y[NT];
        float32x4_t acc[NT];
        for (int t = 0; t < NT; ++t) {
            y[t] = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * stride);
            acc[t] = vdupq_n_f32(0.0f);
        }
        const int64_t nb = n / 32;
        int64_t i = 0;
        for (; i + 4 <= nb; i += 4) {
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024);
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 64);
            if constexpr (sizeof(X) * 4 > 128) __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 128);
            const W32 w0 = K::prep(x[i]), w1 = K::prep(x[i + 1]), w2 = K::prep(x[i + 2]), w3 = K::prep(x[i + 3]);
            const float32x4_t dw = halves4(x[i].d, x[i + 1].d, x[i + 2].d, x[i + 3].d);
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_0* a = y[t] + i;
                const float32x4_t d = vmulq_f32(dw, halves4(a[0].d, a[1].d, a[2].d, a[3].d));
                const int32x4_t s = totals4(isum32(w0, a[0].qs), isum32(w1, a[1].qs), isum32(w2, a[2].qs),
                                            isum32(w3, a[3].qs));
                acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(s), d);
            }
        }
        if (i < nb) {
            const int left = static_cast<int>(nb - i);
            W32 w[4];
            fp16_t dwh[4] = {0, 0, 0, 0};
            for (int k = 0; k < left; ++k) {
                w[k] = K::prep(x[i + k]);
                dwh[k] = x[i + k].d;
            }
            const float32x4_t dw = halves4(dwh[0], dwh[1], dwh[2], dwh[3]);
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_0* a = y[t] + i;
                fp16_t dah[4] = {0, 0, 0, 0};
                int32x4_t p[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
                for (int k = 0; k < left; ++k) {
                    dah[k] = a[k].d;
                    p[k] = isum32(w[k], a[k].qs);
                }
                const float32x4_t d = vmulq_f32(dw, halves4(dah[0], dah[1], dah[2], dah[3]));
                acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(totals4(p[0], p[1], p[2], p[3])), d);
            }
        }
        for (int t = 0; t < NT; ++t) out[t] = vaddvq_f32(acc[t]);
    }
};

// ---- K-quants against Q8_K: per super-block one exact int32 total (sub-block sums times
// their scales, added up across lanes), then per token two fused multiply-adds in the
// order d * total, then -dmin * mins (Q4_K), into a scalar accumulator.

// Q4_K / Q5_K's 6-bit scales and mins: bytes 0..7 scales, 8..15 mins.
HEARTH_NEON_INLINE void k4_scales_mins(const uint8_t* s, uint8_t out[16]) {
    uint32_t w[3];
    std::memcpy(w, s, 12);
    const uint32_t v[4] = {w[0] & 0x3f3f3f3fu, (w[2] & 0x0f0f0f0fu) | ((w[0] >> 6) & 0x03030303u) << 4,
                           w[1] & 0x3f3f3f3fu, ((w[2] >> 4) & 0x0f0f0f0fu) | ((w[1] >> 6) & 0x03030303u) << 4};
    std::memcpy(out, v, 16);
}

struct KindQ4_K {
    template <int NT>
    HEARTH_NEON_INLINE static void rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
        const BlockQ4_K* x = static_cast<const BlockQ4_K*>(vw);
        const BlockQ8_K* y[NT];
        float acc[NT];
        for (int t = 0; t < NT; ++t) {
            y[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
            acc[t] = 0.0f;
        }
        const uint8x16_t m4 = vdupq_n_u8(0x0f);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024);
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 64);
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 128);
            alignas(16) uint8_t sm[16];
            k4_scales_mins(x[i].scales, sm);
            // Each min covers 32 elements = two bsums: the mins as int16, each twice.
            const uint8x8_t mn = vld1_u8(sm + 8);
            const int16x8_t mins_lo = vreinterpretq_s16_u16(vmovl_u8(vzip1_u8(mn, mn)));
            const int16x8_t mins_hi = vreinterpretq_s16_u16(vmovl_u8(vzip2_u8(mn, mn)));
            int8x16_t q[16];  // sub-block j: q[2j], q[2j + 1]
            HEARTH_NEON_UNROLL
            for (int c = 0; c < 4; ++c) {
                const uint8x16_t v0 = vld1q_u8(x[i].qs + 32 * c), v1 = vld1q_u8(x[i].qs + 32 * c + 16);
                q[4 * c] = vreinterpretq_s8_u8(vandq_u8(v0, m4));
                q[4 * c + 1] = vreinterpretq_s8_u8(vandq_u8(v1, m4));
                q[4 * c + 2] = vreinterpretq_s8_u8(vshrq_n_u8(v0, 4));
                q[4 * c + 3] = vreinterpretq_s8_u8(vshrq_n_u8(v1, 4));
            }
            const float xd = half1(x[i].d), xdmin = half1(x[i].dmin);
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_K& a = y[t][i];
                int32x4_t sumi = vdupq_n_s32(0);
                HEARTH_NEON_UNROLL
                for (int j = 0; j < 8; ++j) {
                    const int32x4_t p = dot16(dot16(vdupq_n_s32(0), q[2 * j], vld1q_s8(a.qs + 32 * j)), q[2 * j + 1],
                                              vld1q_s8(a.qs + 32 * j + 16));
                    sumi = vmlaq_n_s32(sumi, p, sm[j]);
                }
                int32x4_t mp = vmull_s16(vget_low_s16(mins_lo), vld1_s16(a.bsums));
                mp = vmlal_high_s16(mp, mins_lo, vld1q_s16(a.bsums));
                mp = vmlal_s16(mp, vget_low_s16(mins_hi), vld1_s16(a.bsums + 8));
                mp = vmlal_high_s16(mp, mins_hi, vld1q_s16(a.bsums + 8));
                const float d = a.d * xd, dmin = a.d * xdmin;
                acc[t] = std::fma(d, static_cast<float>(vaddvq_s32(sumi)), acc[t]);
                acc[t] = std::fma(-dmin, static_cast<float>(vaddvq_s32(mp)), acc[t]);
            }
        }
        for (int t = 0; t < NT; ++t) out[t] = acc[t];
    }
};

struct KindQ6_K {
    template <int NT>
    HEARTH_NEON_INLINE static void rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
        const BlockQ6_K* x = static_cast<const BlockQ6_K*>(vw);
        const BlockQ8_K* y[NT];
        float acc[NT];
        for (int t = 0; t < NT; ++t) {
            y[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
            acc[t] = 0.0f;
        }
        const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(0x03);
        const int8x16_t k32 = vdupq_n_s8(32);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024);
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 64);
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 128);
            __builtin_prefetch(reinterpret_cast<const char*>(x + i) + 1024 + 192);
            // q[k]: elements 16k..16k+15 as signed q - 32 (scale k).
            int8x16_t q[16];
            HEARTH_NEON_UNROLL
            for (int h = 0; h < 2; ++h) {
                HEARTH_NEON_UNROLL
                for (int l = 0; l < 2; ++l) {
                    const uint8x16_t a = vld1q_u8(x[i].ql + 64 * h + 16 * l);
                    const uint8x16_t b = vld1q_u8(x[i].ql + 64 * h + 32 + 16 * l);
                    const uint8x16_t hb = vld1q_u8(x[i].qh + 32 * h + 16 * l);
                    const uint8x16_t v0 = vorrq_u8(vandq_u8(a, m4), vshlq_n_u8(vandq_u8(hb, m3), 4));
                    const uint8x16_t v1 = vorrq_u8(vandq_u8(b, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4));
                    const uint8x16_t v2 = vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4));
                    const uint8x16_t v3 = vorrq_u8(vshrq_n_u8(b, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
                    q[8 * h + l] = vsubq_s8(vreinterpretq_s8_u8(v0), k32);
                    q[8 * h + 2 + l] = vsubq_s8(vreinterpretq_s8_u8(v1), k32);
                    q[8 * h + 4 + l] = vsubq_s8(vreinterpretq_s8_u8(v2), k32);
                    q[8 * h + 6 + l] = vsubq_s8(vreinterpretq_s8_u8(v3), k32);
                }
            }
            const int8_t* sc = x[i].scales;
            const float xd = half1(x[i].d);
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_K& a = y[t][i];
                int32x4_t sumi = vdupq_n_s32(0);
                HEARTH_NEON_UNROLL
                for (int k = 0; k < 16; ++k)
                    sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), q[k], vld1q_s8(a.qs + 16 * k)), sc[k]);
                acc[t] = std::fma(a.d * xd, static_cast<float>(vaddvq_s32(sumi)), acc[t]);
            }
        }
        for (int t = 0; t < NT; ++t) out[t] = acc[t];
    }
};

// ---- Entry points: vec_dot is one row; vec_dot_multi goes in groups of up to kMultiTokens.

template <typename K>
float vec_dot(int64_t n, const void* w, const void* a) {
    float out;
    K::template rows<1>(n, w, static_cast<const uint8_t*>(a), 0, &out);
    return out;
}

template <typename K>
void vec_dot_multi(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt, float* out) {
    while (nt > 0) {
        const int k = nt < kMultiTokens ? nt : kMultiTokens;
        switch (k) {
            case 1: K::template rows<1>(n, w, act, stride, out); break;
            case 2: K::template rows<2>(n, w, act, stride, out); break;
            case 3: K::template rows<3>(n, w, act, stride, out); break;
            case 4: K::template rows<4>(n, w, act, stride, out); break;
            case 5: K::template rows<5>(n, w, act, stride, out); break;
            case 6: K::template rows<6>(n, w, act, stride, out); break;
            case 7: K::template rows<7>(n, w, act, stride, out); break;
            default: K::template rows<8>(n, w, act, stride, out); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        out += k;
    }
}

static_assert(kMultiTokens == 8, "vec_dot_multi's switch covers 1..8 rows");

inline void register_int8_kernels_impl(KernelTable& t) {
    t[GgmlType::Q4_0].vec_dot = vec_dot<BlockRows<KindQ4_0>>;
    t[GgmlType::Q4_0].vec_dot_multi = vec_dot_multi<BlockRows<KindQ4_0>>;
    t[GgmlType::Q8_0].vec_dot = vec_dot<BlockRows<KindQ8_0>>;
    t[GgmlType::Q8_0].vec_dot_multi = vec_dot_multi<BlockRows<KindQ8_0>>;
    t[GgmlType::Q4_K].vec_dot = vec_dot<KindQ4_K>;
    t[GgmlType::Q4_K].vec_dot_multi = vec_dot_multi<KindQ4_K>;
    t[GgmlType::Q6_K].vec_dot = vec_dot<KindQ6_K>;
    t[GgmlType::Q6_K].vec_dot_multi = vec_dot_multi<KindQ6_K>;
}

}  // namespace
}  // namespace hearth::neon

#endif  // __aarch64__
