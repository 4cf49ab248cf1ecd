// AVX2+FMA+F16C fast paths: entry point and the float kernels (F32, F16, BF16). The block
// and K-quant kernels live in avx2_blocks.cpp and avx2_kquants.cpp. Compiled without
// -mavx2: every function carries a target attribute and is only reached through the
// kernel table that dispatch.cpp selects after checking CPUID.
#if defined(__x86_64__)

#include "tensor/x86/avx2_common.h"

namespace hearth {
namespace avx2 {
namespace {

// ---- F16 ----

HEARTH_AVX2_INLINE __m256 load_f16x8(const fp16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

HEARTH_AVX2 void to_float_f16(const void* src, float* dst, int64_t n) {
    const fp16_t* x = static_cast<const fp16_t*>(src);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(dst + i, load_f16x8(x + i));
        _mm256_storeu_ps(dst + i + 8, load_f16x8(x + i + 8));
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(x + i));
    for (; i < n; ++i) dst[i] = h2f(x[i]);
}

HEARTH_AVX2 void from_float_f16(const float* src, void* dst, int64_t n) {
    fp16_t* y = static_cast<fp16_t*>(dst);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i h0 = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        const __m128i h1 = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + 8), h1);
    }
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) y[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

// ---- BF16 ----

HEARTH_AVX2_INLINE __m256 load_bf16x8(const bf16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// Eight floats -> eight bf16 in the low 16 bits of each int32 lane, rounded to nearest
// even like fp32_to_bf16 (NaN -> quiet NaN with the sign and top payload bits kept).
HEARTH_AVX2_INLINE __m256i f32_to_bf16_lanes(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                              _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(rounded, quiet, is_nan);
}

HEARTH_AVX2 void to_float_bf16(const void* src, float* dst, int64_t n) {
    const bf16_t* x = static_cast<const bf16_t*>(src);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(dst + i, load_bf16x8(x + i));
        _mm256_storeu_ps(dst + i + 8, load_bf16x8(x + i + 8));
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16x8(x + i));
    for (; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

HEARTH_AVX2 void from_float_bf16(const float* src, void* dst, int64_t n) {
    bf16_t* y = static_cast<bf16_t*>(dst);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i lo = f32_to_bf16_lanes(_mm256_loadu_ps(src + i));
        const __m256i hi = f32_to_bf16_lanes(_mm256_loadu_ps(src + i + 8));
        // packus interleaves the 128-bit lanes (lo0-3 hi0-3 | lo4-7 hi4-7); restore order.
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), packed);
    }
    for (; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

// ---- Dot products of the float types: one template for vec_dot (NT = 1) and
// vec_dot_multi, so a token's result is the same whichever computes it. Per token: four
// accumulators over 32 elements per step, then 8 at a time into the first, one reduction,
// and a scalar FMA per element left over. Only the weight loads and conversions are shared.

struct LoadF32 {
    using T = float;
    static HEARTH_AVX2_INLINE __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
    static HEARTH_AVX2_INLINE float one(float v) { return v; }
};
struct LoadF16 {
    using T = fp16_t;
    static HEARTH_AVX2_INLINE __m256 load8(const fp16_t* p) { return load_f16x8(p); }
    static HEARTH_AVX2_INLINE float one(fp16_t v) { return h2f(v); }
};
struct LoadBF16 {
    using T = bf16_t;
    static HEARTH_AVX2_INLINE __m256 load8(const bf16_t* p) { return load_bf16x8(p); }
    static HEARTH_AVX2_INLINE float one(bf16_t v) { return bf16_to_fp32(v); }
};

// L loads the weights, LA the activations (the same type, or f32 holding F16 activations
// already converted: the same values, so the same results).
template <typename L, int NT, typename LA = L, int Prefetch = 0>
HEARTH_AVX2_INLINE void float_rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
    using T = typename L::T;
    using TA = typename LA::T;
    const T* x = static_cast<const T*>(vw);
    const TA* y[NT];
    __m256 a0[NT], a1[NT], a2[NT], a3[NT];
    for (int t = 0; t < NT; ++t) {
        y[t] = reinterpret_cast<const TA*>(act + static_cast<size_t>(t) * stride);
        a0[t] = a1[t] = a2[t] = a3[t] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        if constexpr (Prefetch > 0) _mm_prefetch(reinterpret_cast<const char*>(x + i) + Prefetch, _MM_HINT_T0);
        const __m256 w0 = L::load8(x + i), w1 = L::load8(x + i + 8), w2 = L::load8(x + i + 16), w3 = L::load8(x + i + 24);
        HEARTH_UNROLL
        for (int t = 0; t < NT; ++t) {
            a0[t] = _mm256_fmadd_ps(w0, LA::load8(y[t] + i), a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, LA::load8(y[t] + i + 8), a1[t]);
            a2[t] = _mm256_fmadd_ps(w2, LA::load8(y[t] + i + 16), a2[t]);
            a3[t] = _mm256_fmadd_ps(w3, LA::load8(y[t] + i + 24), a3[t]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 w = L::load8(x + i);
        for (int t = 0; t < NT; ++t) a0[t] = _mm256_fmadd_ps(w, LA::load8(y[t] + i), a0[t]);
    }
    for (int t = 0; t < NT; ++t) {
        __m128 s = _mm_set_ss(hsum(_mm256_add_ps(_mm256_add_ps(a0[t], a1[t]), _mm256_add_ps(a2[t], a3[t]))));
        for (int64_t j = i; j < n; ++j) s = _mm_fmadd_ss(_mm_set_ss(L::one(x[j])), _mm_set_ss(LA::one(y[t][j])), s);
        out[t] = _mm_cvtss_f32(s);
    }
}

template <typename L>
HEARTH_AVX2 float vec_dot_float(int64_t n, const void* w, const void* a) {
    float out;
    float_rows<L, 1>(n, w, static_cast<const uint8_t*>(a), 0, &out);
    return out;
}

template <typename L>
HEARTH_AVX2 void vec_dot_multi_float(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt, float* out) {
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

}  // namespace

// Bytes ahead of the weight loads to prefetch: decode streams every F16 row once, and the
// hardware prefetchers alone left it ~20% below this (tg 8.6 -> 10-11 t/s on TinyLlama F16,
// 2 threads, measured with 1, 2 and 4 KiB).
constexpr int kF16Prefetch = 4096;

// F16 weights against F16 activations held as f32 (tensor/gemm.h): vec_dot_multi's operations
// without converting every activation again for every row.
HEARTH_AVX2 void vec_dot_multi_f16_f32act(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt, float* out) {
    while (nt > 0) {
        const int k = nt < 2 ? nt : 2;  // 4 accumulators per token stay in registers
        if (k == 1) float_rows<LoadF16, 1, LoadF32, kF16Prefetch>(n, w, act, stride, out);
        else float_rows<LoadF16, 2, LoadF32, kF16Prefetch>(n, w, act, stride, out);
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        out += k;
    }
}
HEARTH_AVX2 float vec_dot_f16_f32act(int64_t n, const void* w, const void* a) {
    float out;
    float_rows<LoadF16, 1, LoadF32, kF16Prefetch>(n, w, static_cast<const uint8_t*>(a), 0, &out);
    return out;
}

void register_float_kernels(KernelTable& t) {
    t[GgmlType::F32].vec_dot = vec_dot_float<LoadF32>;
    t[GgmlType::F32].vec_dot_multi = vec_dot_multi_float<LoadF32>;

    t[GgmlType::F16].to_float = to_float_f16;
    t[GgmlType::F16].from_float = from_float_f16;
    t[GgmlType::F16].vec_dot = vec_dot_float<LoadF16>;
    t[GgmlType::F16].vec_dot_multi = vec_dot_multi_float<LoadF16>;

    t[GgmlType::BF16].to_float = to_float_bf16;
    t[GgmlType::BF16].from_float = from_float_bf16;
    t[GgmlType::BF16].vec_dot = vec_dot_float<LoadBF16>;
    t[GgmlType::BF16].vec_dot_multi = vec_dot_multi_float<LoadBF16>;
}

}  // namespace avx2

void register_avx2_kernels(KernelTable& t) {
    avx2::register_float_kernels(t);
    avx2::register_block_kernels(t);
    avx2::register_kquant_kernels(t);
    register_avx2_multi_kernels(t);
}

}  // namespace hearth

#endif  // __x86_64__
