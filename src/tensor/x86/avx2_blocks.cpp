// AVX2+FMA+F16C kernels for the 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4 (weights)
// and Q8_0, Q8_1 (activations). Per block the integer products are summed exactly in int32
// (maddubs -> madd), converted once and accumulated with an FMA by the block's scale
// product d_w * d_a. Rows go four blocks per step: the eight fp16 scales of a step are
// converted with one vcvtph2ps (per-block scalar conversions would cost more shuffle-port
// uops than the integer work itself), two accumulators hide the FMA latency, and the row
// is reduced once at the end.
#if defined(__x86_64__)

#include "tensor/x86/avx2_common.h"

namespace hearth {
namespace avx2 {
namespace {

// ---- Integer part of one block of each weight type against its activation block:
// eight int32 partial sums of q_w * q_a.

HEARTH_AVX2_INLINE __m256i isum_q4_0(const BlockQ4_0& x, const BlockQ8_0& y) {
    return dot_offset_u8i8(unpack_nibbles_16(x.qs), load32(y.qs), 8);
}
HEARTH_AVX2_INLINE __m256i isum_q4_1(const BlockQ4_1& x, const BlockQ8_1& y) {
    return dot_u8i8(unpack_nibbles_16(x.qs), load32(y.qs));
}
HEARTH_AVX2_INLINE __m256i isum_q5_0(const BlockQ5_0& x, const BlockQ8_0& y) {
    const __m256i q = _mm256_or_si256(unpack_nibbles_16(x.qs), q5_high_bits(x.qh));
    return dot_offset_u8i8(q, load32(y.qs), 16);
}
HEARTH_AVX2_INLINE __m256i isum_q5_1(const BlockQ5_1& x, const BlockQ8_1& y) {
    return dot_u8i8(_mm256_or_si256(unpack_nibbles_16(x.qs), q5_high_bits(x.qh)), load32(y.qs));
}
HEARTH_AVX2_INLINE __m256i isum_q8_0(const BlockQ8_0& x, const BlockQ8_0& y) {
    return dot_i8(load32(x.qs), load32(y.qs));
}

// Products p_w * p_a of four pairs of fp16 fields, with one 8-wide half conversion.
HEARTH_AVX2_INLINE __m128 products4(uint64_t w, uint64_t a) {
    const __m256 f = _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(a), static_cast<long long>(w)));
    return _mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
}

// Scale products d_w * d_a of four consecutive blocks.
template <typename X, typename Y>
HEARTH_AVX2_INLINE __m128 scales4(const X* x, const Y* y) {
    return products4(pack4(x[0].d, x[1].d, x[2].d, x[3].d), pack4(y[0].d, y[1].d, y[2].d, y[3].d));
}

// m_w * s_a of four consecutive blocks (the offset term of Q4_1/Q5_1).
template <typename X, typename Y>
HEARTH_AVX2_INLINE __m128 offsets4(const X* x, const Y* y) {
    return products4(pack4(x[0].m, x[1].m, x[2].m, x[3].m), pack4(y[0].s, y[1].s, y[2].s, y[3].s));
}

// Runs a block kernel over a row, four blocks per step into two accumulators. WithOffset
// adds the sum of m_w * s_a (Q4_1/Q5_1).
template <typename X, typename Y, __m256i (*ISum)(const X&, const Y&), bool WithOffset>
HEARTH_AVX2_INLINE float dot_row(int64_t n, const void* vw, const void* va) {
    const X* x = static_cast<const X*>(vw);
    const Y* y = static_cast<const Y*>(va);
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 offs = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        // Four blocks span 72-144 bytes: prefetch the lines ~2 KiB ahead so DRAM
        // latency overlaps the integer work (the hardware prefetcher alone falls behind).
        _mm_prefetch(reinterpret_cast<const char*>(x + i) + 2048, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(x + i) + 2048 + 64, _MM_HINT_T0);
        if constexpr (sizeof(X) * 4 > 128) _mm_prefetch(reinterpret_cast<const char*>(x + i) + 2048 + 128, _MM_HINT_T0);
        const __m128 d = scales4(x + i, y + i);
        acc0 = _mm256_fmadd_ps(lane(d, 0), _mm256_cvtepi32_ps(ISum(x[i], y[i])), acc0);
        acc1 = _mm256_fmadd_ps(lane(d, 1), _mm256_cvtepi32_ps(ISum(x[i + 1], y[i + 1])), acc1);
        acc0 = _mm256_fmadd_ps(lane(d, 2), _mm256_cvtepi32_ps(ISum(x[i + 2], y[i + 2])), acc0);
        acc1 = _mm256_fmadd_ps(lane(d, 3), _mm256_cvtepi32_ps(ISum(x[i + 3], y[i + 3])), acc1);
        if constexpr (WithOffset) offs = _mm_add_ps(offs, offsets4(x + i, y + i));
    }
    float tail = 0.0f;
    for (; i < nb; ++i) {
        const float d = h2f(x[i].d) * h2f(y[i].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(ISum(x[i], y[i])), acc0);
        if constexpr (WithOffset) tail += h2f(x[i].m) * h2f(y[i].s);
    }
    float s = hsum(_mm256_add_ps(acc0, acc1));
    if constexpr (WithOffset) {
        offs = _mm_add_ps(offs, _mm_movehl_ps(offs, offs));
        offs = _mm_add_ss(offs, _mm_movehdup_ps(offs));
        s += _mm_cvtss_f32(offs) + tail;
    }
    return s;
}

// MXFP4: the 32 codes of a block looked up as their doubled E2M1 values (signed int8).
HEARTH_AVX2_INLINE __m256i mxfp4_values(const uint8_t* qs) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kMxfp4Values)));
    return _mm256_shuffle_epi8(table, unpack_nibbles_16(qs));
}

// MXFP4 x Q8_0: the block's exponent is a byte, not an fp16, so its scale product is formed
// per block; the integer part is the signed int8 dot of the looked-up values.
HEARTH_AVX2 float vec_dot_mxfp4(int64_t n, const void* vw, const void* va) {
    const BlockMXFP4* x = static_cast<const BlockMXFP4*>(vw);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(va);
    const int64_t nb = n / QK_MXFP4;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        _mm_prefetch(reinterpret_cast<const char*>(x + i) + 1024, _MM_HINT_T0);
        const float d0 = mxfp4_half_scale(x[i].e) * h2f(y[i].d), d1 = mxfp4_half_scale(x[i + 1].e) * h2f(y[i + 1].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0), _mm256_cvtepi32_ps(dot_i8(mxfp4_values(x[i].qs), load32(y[i].qs))), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1), _mm256_cvtepi32_ps(dot_i8(mxfp4_values(x[i + 1].qs), load32(y[i + 1].qs))), acc1);
    }
    for (; i < nb; ++i) {
        const float d = mxfp4_half_scale(x[i].e) * h2f(y[i].d);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(dot_i8(mxfp4_values(x[i].qs), load32(y[i].qs))), acc0);
    }
    return hsum(_mm256_add_ps(acc0, acc1));
}

HEARTH_AVX2 float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    return dot_row<BlockQ4_0, BlockQ8_0, isum_q4_0, false>(n, w, a);
}
HEARTH_AVX2 float vec_dot_q4_1(int64_t n, const void* w, const void* a) {
    return dot_row<BlockQ4_1, BlockQ8_1, isum_q4_1, true>(n, w, a);
}
HEARTH_AVX2 float vec_dot_q5_0(int64_t n, const void* w, const void* a) {
    return dot_row<BlockQ5_0, BlockQ8_0, isum_q5_0, false>(n, w, a);
}
HEARTH_AVX2 float vec_dot_q5_1(int64_t n, const void* w, const void* a) {
    return dot_row<BlockQ5_1, BlockQ8_1, isum_q5_1, true>(n, w, a);
}
HEARTH_AVX2 float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    return dot_row<BlockQ8_0, BlockQ8_0, isum_q8_0, false>(n, w, a);
}

// ---- Activation quantizers (byte-identical to the reference: d = amax/127, id = 1/d,
// q = roundf(x * id)).

struct Q8Block32 {
    float d;
    __m256i q0, q1, q2, q3;  // int32 quants of elements 0-7, 8-15, 16-23, 24-31
};

HEARTH_AVX2_INLINE Q8Block32 quantize_32(const float* x) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)), _mm256_max_ps(abs_ps(v2), abs_ps(v3)));
    const float amax = hmax(m);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 mul = _mm256_set1_ps(id);
    Q8Block32 r;
    r.d = d;
    r.q0 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v0, mul)));
    r.q1 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v1, mul)));
    r.q2 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v2, mul)));
    r.q3 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v3, mul)));
    return r;
}

HEARTH_AVX2 void from_float_q8_0(const float* src, void* dst, int64_t n) {
    BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i) {
        const Q8Block32 b = quantize_32(src + i * QK8_0);
        y[i].d = _cvtss_sh(b.d, _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), pack_i32_to_i8(b.q0, b.q1, b.q2, b.q3));
    }
}

HEARTH_AVX2 void from_float_q8_1(const float* src, void* dst, int64_t n) {
    BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; ++i) {
        const Q8Block32 b = quantize_32(src + i * QK8_1);
        y[i].d = _cvtss_sh(b.d, _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), pack_i32_to_i8(b.q0, b.q1, b.q2, b.q3));
        const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(b.q0, b.q1), _mm256_add_epi32(b.q2, b.q3));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        const int sum = _mm_cvtsi128_si32(s);
        y[i].s = _cvtss_sh(static_cast<float>(sum) * b.d, _MM_FROUND_TO_NEAREST_INT);
    }
}

// ---- Dequantizers (exactly the reference's roundings: q * d, or q * d + m unfused).

HEARTH_AVX2_INLINE void store_scaled_u8(const __m256i q, __m256 d, float* y) {
    // 32 bytes of small unsigned/signed-in-range values -> 32 floats times d.
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
}

HEARTH_AVX2_INLINE void store_scaled_offset(const __m256i q, __m256 d, __m256 m, float* y) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
        const __m256 p = no_contract(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k])), d));
        _mm256_storeu_ps(y + 8 * k, _mm256_add_ps(p, m));
    }
}

HEARTH_AVX2 void to_float_q4_0(const void* src, float* dst, int64_t n) {
    const BlockQ4_0* x = static_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        const __m256i q = _mm256_sub_epi8(unpack_nibbles_16(x[i].qs), _mm256_set1_epi8(8));
        store_scaled_u8(q, _mm256_set1_ps(h2f(x[i].d)), dst + i * QK4_0);
    }
}

HEARTH_AVX2 void to_float_q4_1(const void* src, float* dst, int64_t n) {
    const BlockQ4_1* x = static_cast<const BlockQ4_1*>(src);
    for (int64_t i = 0; i < n / QK4_1; ++i)
        store_scaled_offset(unpack_nibbles_16(x[i].qs), _mm256_set1_ps(h2f(x[i].d)), _mm256_set1_ps(h2f(x[i].m)),
                            dst + i * QK4_1);
}

HEARTH_AVX2 void to_float_q5_0(const void* src, float* dst, int64_t n) {
    const BlockQ5_0* x = static_cast<const BlockQ5_0*>(src);
    for (int64_t i = 0; i < n / QK5_0; ++i) {
        const __m256i q = _mm256_or_si256(unpack_nibbles_16(x[i].qs), q5_high_bits(x[i].qh));
        store_scaled_u8(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), _mm256_set1_ps(h2f(x[i].d)), dst + i * QK5_0);
    }
}

HEARTH_AVX2 void to_float_q5_1(const void* src, float* dst, int64_t n) {
    const BlockQ5_1* x = static_cast<const BlockQ5_1*>(src);
    for (int64_t i = 0; i < n / QK5_1; ++i) {
        const __m256i q = _mm256_or_si256(unpack_nibbles_16(x[i].qs), q5_high_bits(x[i].qh));
        store_scaled_offset(q, _mm256_set1_ps(h2f(x[i].d)), _mm256_set1_ps(h2f(x[i].m)), dst + i * QK5_1);
    }
}

HEARTH_AVX2 void to_float_mxfp4(const void* src, float* dst, int64_t n) {
    const BlockMXFP4* x = static_cast<const BlockMXFP4*>(src);
    for (int64_t i = 0; i < n / QK_MXFP4; ++i)
        store_scaled_u8(mxfp4_values(x[i].qs), _mm256_set1_ps(mxfp4_half_scale(x[i].e)), dst + i * QK_MXFP4);
}

HEARTH_AVX2 void to_float_q8_0(const void* src, float* dst, int64_t n) {
    const BlockQ8_0* x = static_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i) store_scaled_u8(load32(x[i].qs), _mm256_set1_ps(h2f(x[i].d)), dst + i * QK8_0);
}

}  // namespace

void register_block_kernels(KernelTable& t) {
    t[GgmlType::Q4_0].vec_dot = vec_dot_q4_0;
    t[GgmlType::Q4_0].to_float = to_float_q4_0;
    t[GgmlType::Q4_1].vec_dot = vec_dot_q4_1;
    t[GgmlType::Q4_1].to_float = to_float_q4_1;
    t[GgmlType::Q5_0].vec_dot = vec_dot_q5_0;
    t[GgmlType::Q5_0].to_float = to_float_q5_0;
    t[GgmlType::Q5_1].vec_dot = vec_dot_q5_1;
    t[GgmlType::Q5_1].to_float = to_float_q5_1;
    t[GgmlType::Q8_0].vec_dot = vec_dot_q8_0;
    t[GgmlType::Q8_0].to_float = to_float_q8_0;
    t[GgmlType::Q8_0].from_float = from_float_q8_0;
    t[GgmlType::Q8_1].from_float = from_float_q8_1;
    t[GgmlType::MXFP4].vec_dot = vec_dot_mxfp4;
    t[GgmlType::MXFP4].to_float = to_float_mxfp4;
}

}  // namespace avx2
}  // namespace hearth

#endif  // __x86_64__
