// AVX2+FMA+F16C fast paths: entry point and the float kernels (F32, F16, BF16). The block
// and K-quant kernels live in avx2_blocks.cpp and avx2_kquants.cpp. Compiled without
// -mavx2: every function carries a target attribute and is only reached through the
// kernel table that dispatch.cpp selects after checking CPUID.
#if defined(__x86_64__)

#include "tensor/x86/avx2_common.h"

namespace hearth {
namespace avx2 {
namespace {

// ---- F32 ----

HEARTH_AVX2 float vec_dot_f32(int64_t n, const void* vw, const void* va) {
    const float* x = static_cast<const float*>(vw);
    const float* y = static_cast<const float*>(va);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += x[i] * y[i];
    return s;
}

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

HEARTH_AVX2 float vec_dot_f16(int64_t n, const void* vw, const void* va) {
    const fp16_t* x = static_cast<const fp16_t*>(vw);
    const fp16_t* y = static_cast<const fp16_t*>(va);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), load_f16x8(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), load_f16x8(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), load_f16x8(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += h2f(x[i]) * h2f(y[i]);
    return s;
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

HEARTH_AVX2 float vec_dot_bf16(int64_t n, const void* vw, const void* va) {
    const bf16_t* x = static_cast<const bf16_t*>(vw);
    const bf16_t* y = static_cast<const bf16_t*>(va);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_bf16x8(x + i + 16), load_bf16x8(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_bf16x8(x + i + 24), load_bf16x8(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; ++i) s += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
    return s;
}

}  // namespace

void register_float_kernels(KernelTable& t) {
    t[GgmlType::F32].vec_dot = vec_dot_f32;

    t[GgmlType::F16].to_float = to_float_f16;
    t[GgmlType::F16].from_float = from_float_f16;
    t[GgmlType::F16].vec_dot = vec_dot_f16;

    t[GgmlType::BF16].to_float = to_float_bf16;
    t[GgmlType::BF16].from_float = from_float_bf16;
    t[GgmlType::BF16].vec_dot = vec_dot_bf16;
}

}  // namespace avx2

void register_avx2_kernels(KernelTable& t) {
    avx2::register_float_kernels(t);
    avx2::register_block_kernels(t);
    avx2::register_kquant_kernels(t);
}

}  // namespace hearth

#endif  // __x86_64__
