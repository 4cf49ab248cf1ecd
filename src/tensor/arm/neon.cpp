// src/tensor/arm/ owns the ARM (aarch64) kernel family: NEON fast paths that replace entries
// of the scalar table, in two instances that give bit-identical results: plain ARMv8-A NEON
// (smull + sadalp) and the ARMv8.2 dot-product extension (sdot), picked at run time from
// HWCAP_ASIMDDP and HEARTH_ISA (neon | neon-dotprod) by tensor/dispatch.cpp. Compiled only
// for aarch64 (CMakeLists.txt); no_x86.cpp holds the stand-ins of the x86 entry points for
// every build without src/tensor/x86/.
//
// This file: the entry point and what needs no integer dot product (the float types' dot
// kernels and the Q8_0 activation quantizer). neon_int8*.cpp: Q4_0, Q8_0, Q4_K and Q6_K.
#if defined(__aarch64__)

#include <cmath>

#include "tensor/arm/neon_common.h"

namespace hearth {
namespace neon {
namespace {

// ---- Dot products of the float types: one template for vec_dot (NT = 1) and vec_dot_multi,
// so a token's result is the same whichever computes it. Per token: four accumulators over 16
// elements per step, then 4 at a time into the first, one reduction, and a scalar fused
// multiply-add per element left over. Only the weight loads and conversions are shared.

struct LoadF32 {
    using T = float;
    static HEARTH_NEON_INLINE float32x4_t load4(const float* p) { return vld1q_f32(p); }
    static HEARTH_NEON_INLINE void load8(const float* p, float32x4_t& lo, float32x4_t& hi) {
        lo = vld1q_f32(p);
        hi = vld1q_f32(p + 4);
    }
    static HEARTH_NEON_INLINE float one(float v) { return v; }
};

struct LoadF16 {
    using T = fp16_t;
    static HEARTH_NEON_INLINE float32x4_t load4(const fp16_t* p) {
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
    }
    static HEARTH_NEON_INLINE void load8(const fp16_t* p, float32x4_t& lo, float32x4_t& hi) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
        lo = vcvt_f32_f16(vget_low_f16(h));
        hi = vcvt_high_f32_f16(h);
    }
    static HEARTH_NEON_INLINE float one(fp16_t v) { return half1(v); }
};

template <typename L, int NT>
HEARTH_NEON_INLINE void float_rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
    using T = typename L::T;
    const T* x = static_cast<const T*>(vw);
    const T* y[NT];
    float32x4_t a0[NT], a1[NT], a2[NT], a3[NT];
    for (int t = 0; t < NT; ++t) {
        y[t] = reinterpret_cast<const T*>(act + static_cast<size_t>(t) * stride);
        a0[t] = a1[t] = a2[t] = a3[t] = vdupq_n_f32(0.0f);
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t w0, w1, w2, w3;
        L::load8(x + i, w0, w1);
        L::load8(x + i + 8, w2, w3);
        HEARTH_NEON_UNROLL
        for (int t = 0; t < NT; ++t) {
            float32x4_t v0, v1, v2, v3;
            L::load8(y[t] + i, v0, v1);
            L::load8(y[t] + i + 8, v2, v3);
            a0[t] = vfmaq_f32(a0[t], w0, v0);
            a1[t] = vfmaq_f32(a1[t], w1, v1);
            a2[t] = vfmaq_f32(a2[t], w2, v2);
            a3[t] = vfmaq_f32(a3[t], w3, v3);
        }
    }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t w = L::load4(x + i);
        for (int t = 0; t < NT; ++t) a0[t] = vfmaq_f32(a0[t], w, L::load4(y[t] + i));
    }
    for (int t = 0; t < NT; ++t) {
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0[t], a1[t]), vaddq_f32(a2[t], a3[t])));
        for (int64_t j = i; j < n; ++j) s = std::fma(L::one(x[j]), L::one(y[t][j]), s);
        out[t] = s;
    }
}

template <typename L>
float vec_dot_float(int64_t n, const void* w, const void* a) {
    float out;
    float_rows<L, 1>(n, w, static_cast<const uint8_t*>(a), 0, &out);
    return out;
}

template <typename L>
void vec_dot_multi_float(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt, float* out) {
    while (nt > 0) {
        const int k = nt < kMultiTokens ? nt : kMultiTokens;
        switch (k) {
            case 1: float_rows<L, 1>(n, w, act, stride, out); break;
            case 2: float_rows<L, 2>(n, w, act, stride, out); break;
            case 3: float_rows<L, 3>(n, w, act, stride, out); break;
            case 4: float_rows<L, 4>(n, w, act, stride, out); break;
            case 5: float_rows<L, 5>(n, w, act, stride, out); break;
            case 6: float_rows<L, 6>(n, w, act, stride, out); break;
            case 7: float_rows<L, 7>(n, w, act, stride, out); break;
            default: float_rows<L, 8>(n, w, act, stride, out); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        out += k;
    }
}

// ---- Q8_0 activation quantizer, byte-identical to the reference: d = amax / 127,
// id = 1 / d, q = roundf(x * id) (fcvtas: nearest, ties away from zero, as roundf).
void from_float_q8_0(const float* src, void* dst, int64_t n) {
    BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
    for (int64_t b = 0; b < n / QK8_0; ++b, src += QK8_0) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; ++k) {
            v[k] = vld1q_f32(src + 4 * k);
            m = vmaxq_f32(m, vabsq_f32(v[k]));
        }
        const float d = vmaxvq_f32(m) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        int16x8_t h[4];
        for (int k = 0; k < 4; ++k) {
            const int32x4_t q0 = vcvtaq_s32_f32(vmulq_n_f32(v[2 * k], id));
            const int32x4_t q1 = vcvtaq_s32_f32(vmulq_n_f32(v[2 * k + 1], id));
            h[k] = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
        }
        vst1q_s8(y[b].qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
        vst1q_s8(y[b].qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    }
}

}  // namespace

void register_float_kernels(KernelTable& t) {
    t[GgmlType::F32].vec_dot = vec_dot_float<LoadF32>;
    t[GgmlType::F32].vec_dot_multi = vec_dot_multi_float<LoadF32>;
    t[GgmlType::F16].vec_dot = vec_dot_float<LoadF16>;
    t[GgmlType::F16].vec_dot_multi = vec_dot_multi_float<LoadF16>;
    t[GgmlType::Q8_0].from_float = from_float_q8_0;
}

}  // namespace neon

void register_neon_kernels(KernelTable& t, bool dotprod) {
    neon::register_float_kernels(t);
    if (dotprod) neon::register_int8_kernels_dotprod(t);
    else neon::register_int8_kernels_plain(t);
}

}  // namespace hearth

#endif  // __aarch64__
