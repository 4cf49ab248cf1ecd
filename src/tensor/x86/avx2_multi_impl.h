// Internal to src/tensor/x86/avx2_multi*.cpp: the multi-token dot kernels (vec_dot_multi) as
// templates over the number of activation rows NT. Each including file first defines
// HEARTH_MULTI_TARGET (its target attribute) and HEARTH_MULTI_VNNI (0 or 1), so this one
// source yields both the AVX2 and the AVX-VNNI instances.
//
// Bit-identity with vec_dot: every token keeps exactly the float operations of the
// single-row kernel (the same accumulators, FMAs in the same order with the same operands,
// the same final reduction); only the weight row's loads, unpacking and fp16 scale
// conversions are shared between tokens. Integer partial sums may come from other
// instructions where the int32 result is provably the same: VNNI's vpdpbusd sums four byte
// products per int32 lane, exactly the grouping of maddubs + madd, and vpdpwssd is madd +
// add in one instruction; the ranges noted below rule out saturation and overflow.
#pragma once

#if defined(__x86_64__)

#include <type_traits>

#include "tensor/x86/avx2_common.h"

#if !defined(HEARTH_MULTI_TARGET) || !defined(HEARTH_MULTI_VNNI)
#error "define HEARTH_MULTI_TARGET and HEARTH_MULTI_VNNI before including avx2_multi_impl.h"
#endif

#define HEARTH_MT __attribute__((target(HEARTH_MULTI_TARGET)))
#define HEARTH_MT_INLINE __attribute__((target(HEARTH_MULTI_TARGET), always_inline)) inline

namespace hearth::avx2 {
namespace {

// ---- Integer parts of the 32-element block types against a Q8_0 activation block.

// A weight block prepared once for all tokens.
struct WBlock {
    __m256i a, b;
};

#if HEARTH_MULTI_VNNI
// Signed weights s against activations y: vpdpbusd wants an unsigned left operand, so it
// gets y + 128 (y ^ 0x80 as a byte) and starts from -128 * sum(s) per lane, which depends
// on the weights only. Per lane |4 * 255 * 128| fits easily; the result is sum(s * y)
// exactly, for any y.
HEARTH_MT_INLINE WBlock signed_block(__m256i s) {
    const __m256i k80 = _mm256_set1_epi8(static_cast<char>(0x80));
    const __m256i c = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), k80, s);
    return {s, _mm256_sub_epi32(_mm256_setzero_si256(), c)};
}
HEARTH_MT_INLINE __m256i signed_isum(const WBlock& w, __m256i y) {
    return _mm256_dpbusd_avx_epi32(w.b, _mm256_xor_si256(y, _mm256_set1_epi8(static_cast<char>(0x80))), w.a);
}
#endif

struct KindQ4_0 {
    using X = BlockQ4_0;
#if HEARTH_MULTI_VNNI
    HEARTH_MT_INLINE static WBlock prep(const X& x) {
        return signed_block(_mm256_sub_epi8(unpack_nibbles_16(x.qs), _mm256_set1_epi8(8)));
    }
    HEARTH_MT_INLINE static __m256i isum(const WBlock& w, __m256i y) { return signed_isum(w, y); }
#else
    HEARTH_MT_INLINE static WBlock prep(const X& x) { return {unpack_nibbles_16(x.qs), _mm256_setzero_si256()}; }
    HEARTH_MT_INLINE static __m256i isum(const WBlock& w, __m256i y) { return dot_offset_u8i8(w.a, y, 8); }
#endif
};

struct KindQ5_0 {
    using X = BlockQ5_0;
    HEARTH_MT_INLINE static __m256i quants(const X& x) {
        return _mm256_or_si256(unpack_nibbles_16(x.qs), q5_high_bits(x.qh));
    }
#if HEARTH_MULTI_VNNI
    HEARTH_MT_INLINE static WBlock prep(const X& x) {
        return signed_block(_mm256_sub_epi8(quants(x), _mm256_set1_epi8(16)));
    }
    HEARTH_MT_INLINE static __m256i isum(const WBlock& w, __m256i y) { return signed_isum(w, y); }
#else
    HEARTH_MT_INLINE static WBlock prep(const X& x) { return {quants(x), _mm256_setzero_si256()}; }
    HEARTH_MT_INLINE static __m256i isum(const WBlock& w, __m256i y) { return dot_offset_u8i8(w.a, y, 16); }
#endif
};

struct KindQ8_0 {
    using X = BlockQ8_0;
#if HEARTH_MULTI_VNNI
    HEARTH_MT_INLINE static WBlock prep(const X& x) { return signed_block(load32(x.qs)); }
    HEARTH_MT_INLINE static __m256i isum(const WBlock& w, __m256i y) { return signed_isum(w, y); }
#else
    // dot_i8 with |x| shared: a = |x|, b = x (whose signs move onto y per token).
    HEARTH_MT_INLINE static WBlock prep(const X& x) {
        const __m256i q = load32(x.qs);
        return {_mm256_sign_epi8(q, q), q};
    }
    HEARTH_MT_INLINE static __m256i isum(const WBlock& w, __m256i y) {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(w.a, _mm256_sign_epi8(y, w.b)), _mm256_set1_epi16(1));
    }
#endif
};

// The float side of avx2_blocks.cpp's dot_row (WithOffset = false), per token: four
// blocks per step into two accumulators, scale products d_w * d_a from fp16, blocks past
// the last full step into acc0 with a scalar scale product, one reduction at the end.
template <typename K>
struct BlockRows {
    template <int NT>
    HEARTH_MT_INLINE static void rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
        using X = typename K::X;
        const X* x = static_cast<const X*>(vw);
        const BlockQ8_0* y[NT];
        __m256 acc0[NT], acc1[NT];
        for (int t = 0; t < NT; ++t) {
            y[t] = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * stride);
            acc0[t] = _mm256_setzero_ps();
            acc1[t] = _mm256_setzero_ps();
        }
        const int64_t nb = n / 32;
        int64_t i = 0;
        for (; i + 4 <= nb; i += 4) {
            _mm_prefetch(reinterpret_cast<const char*>(x + i) + 2048, _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(x + i) + 2048 + 64, _MM_HINT_T0);
            if constexpr (sizeof(X) * 4 > 128)
                _mm_prefetch(reinterpret_cast<const char*>(x + i) + 2048 + 128, _MM_HINT_T0);
            const WBlock w0 = K::prep(x[i]), w1 = K::prep(x[i + 1]), w2 = K::prep(x[i + 2]), w3 = K::prep(x[i + 3]);
            const uint64_t wd = pack4(x[i].d, x[i + 1].d, x[i + 2].d, x[i + 3].d);
            const __m128 dw = _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(wd)));
            HEARTH_UNROLL
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_0* a = y[t] + i;
                const __m128 da =
                    _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(pack4(a[0].d, a[1].d, a[2].d, a[3].d))));
                const __m128 d = _mm_mul_ps(dw, da);  // d_w * d_a, as products4 forms it
                acc0[t] = _mm256_fmadd_ps(lane(d, 0), _mm256_cvtepi32_ps(K::isum(w0, load32(a[0].qs))), acc0[t]);
                acc1[t] = _mm256_fmadd_ps(lane(d, 1), _mm256_cvtepi32_ps(K::isum(w1, load32(a[1].qs))), acc1[t]);
                acc0[t] = _mm256_fmadd_ps(lane(d, 2), _mm256_cvtepi32_ps(K::isum(w2, load32(a[2].qs))), acc0[t]);
                acc1[t] = _mm256_fmadd_ps(lane(d, 3), _mm256_cvtepi32_ps(K::isum(w3, load32(a[3].qs))), acc1[t]);
            }
        }
        for (; i < nb; ++i) {
            const WBlock w = K::prep(x[i]);
            const float dw = h2f(x[i].d);
            for (int t = 0; t < NT; ++t) {
                const float d = dw * h2f(y[t][i].d);
                const __m256i isum = K::isum(w, load32(y[t][i].qs));
                acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc0[t]);
            }
        }
        for (int t = 0; t < NT; ++t) out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t]));
    }
};

// ---- K-quants against Q8_K: the float side of avx2_kquants.cpp's kernels, one
// accumulator per token, one FMA per super-block (Q4_K/Q5_K: the mins term first).

// sumi + scale * (q . y) over one 32-element chunk: maddubs pairs (|pair| <= 2 * 63 * 127)
// times the int16 scales, widened and added.
HEARTH_MT_INLINE __m256i add_scaled_chunk(__m256i sumi, __m256i q, const int8_t* y, __m256i scale16) {
#if HEARTH_MULTI_VNNI
    return _mm256_dpwssd_avx_epi32(sumi, _mm256_maddubs_epi16(q, load32(y)), scale16);
#else
    return _mm256_add_epi32(sumi, scaled_chunk(q, y, scale16));
#endif
}

template <int NT>
HEARTH_MT_INLINE void k_act_rows(const uint8_t* act, size_t stride, const BlockQ8_K* (&y)[NT], __m256 (&acc)[NT]) {
    for (int t = 0; t < NT; ++t) {
        y[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        acc[t] = _mm256_setzero_ps();
    }
}

struct KindQ6_K {
    template <int NT>
    HEARTH_MT_INLINE static void rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
        const BlockQ6_K* x = static_cast<const BlockQ6_K*>(vw);
        const BlockQ8_K* y[NT];
        __m256 acc[NT];
        k_act_rows<NT>(act, stride, y, acc);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i m30 = _mm256_set1_epi8(0x30);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            prefetch_ahead(x + i);
            const float xd = h2f(x[i].d);
            const __m128i s8 = load16(x[i].scales);
            const __m256i s16 = _mm256_cvtepi8_epi16(s8);
            __m256i q[8], sc[8];  // chunk j: elements 32j..32j+31 and their pair of scales
            HEARTH_UNROLL
            for (int c = 0; c < 2; ++c) {
                const __m256i scv = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(c ? _mm_srli_si128(s8, 8) : s8));
                const uint8_t* ql = x[i].ql + 64 * c;
                const __m256i a = load32(ql), b = load32(ql + 32), h = load32(x[i].qh + 32 * c);
                q[4 * c] = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
                q[4 * c + 1] = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
                q[4 * c + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(h, m30));
                q[4 * c + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
                HEARTH_UNROLL
                for (int k = 0; k < 4; ++k) sc[4 * c + k] = pair_scale(scv, k);
            }
            HEARTH_UNROLL
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_K& a = y[t][i];
                const float d = a.d * xd;
                // Weights are stored as q + 32: start from -32 * sum_j scale_j * bsum_j.
                const __m256i corr = _mm256_madd_epi16(s16, bsums16(a));
                __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
                HEARTH_UNROLL
                for (int j = 0; j < 8; ++j) sumi = add_scaled_chunk(sumi, q[j], a.qs + 32 * j, sc[j]);
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
            }
        }
        for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]);
    }
};

// Q4_K and Q5_K (Q5 adds the 5th bit of each element from qh).
template <bool Q5>
struct KindK4 {
    using X = std::conditional_t<Q5, BlockQ5_K, BlockQ4_K>;
    template <int NT>
    HEARTH_MT_INLINE static void rows(int64_t n, const void* vw, const uint8_t* act, size_t stride, float* out) {
        const X* x = static_cast<const X*>(vw);
        const BlockQ8_K* y[NT];
        __m256 acc[NT];
        k_act_rows<NT>(act, stride, y, acc);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i bit4 = _mm256_set1_epi8(0x10);
        for (int64_t i = 0; i < n / QK_K; ++i) {
            prefetch_ahead(x + i);
            const float xd = h2f(x[i].d), xdmin = h2f(x[i].dmin);
            const __m128i sm = k4_scales_mins(x[i].scales);
            // Each 6-bit min covers 32 elements = two bsums: repeat each min twice.
            const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
            const __m256i scv = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
            __m256i q[8], sc[8];
            [[maybe_unused]] __m256i hb;
            if constexpr (Q5) hb = load32(x[i].qh);
            HEARTH_UNROLL
            for (int j = 0; j < 4; ++j) {
                const __m256i v = load32(x[i].qs + 32 * j);
                q[2 * j] = _mm256_and_si256(v, m4);
                q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if constexpr (Q5) {
                    q[2 * j] = _mm256_or_si256(q[2 * j], _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
                    q[2 * j + 1] = _mm256_or_si256(q[2 * j + 1], _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
                    hb = _mm256_srli_epi16(hb, 2);
                }
                sc[2 * j] = word_scale(scv, 2 * j);
                sc[2 * j + 1] = word_scale(scv, 2 * j + 1);
            }
            HEARTH_UNROLL
            for (int t = 0; t < NT; ++t) {
                const BlockQ8_K& a = y[t][i];
                const float d = a.d * xd;
                const float dmin = a.d * xdmin;
                const __m256i mp = _mm256_madd_epi16(mins, bsums16(a));
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin), _mm256_cvtepi32_ps(mp), acc[t]);
                __m256i sumi = _mm256_setzero_si256();
                HEARTH_UNROLL
                for (int j = 0; j < 8; ++j) sumi = add_scaled_chunk(sumi, q[j], a.qs + 32 * j, sc[j]);
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
            }
        }
        for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]);
    }
};

// ---- Entry point: groups of up to kMultiTokens rows, each with a fully unrolled kernel.

template <typename K>
HEARTH_MT void vec_dot_multi(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt, float* out) {
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

// The table entries this instance provides.
inline void register_multi_quant_kernels(KernelTable& t) {
    t[GgmlType::Q4_0].vec_dot_multi = vec_dot_multi<BlockRows<KindQ4_0>>;
    t[GgmlType::Q5_0].vec_dot_multi = vec_dot_multi<BlockRows<KindQ5_0>>;
    t[GgmlType::Q8_0].vec_dot_multi = vec_dot_multi<BlockRows<KindQ8_0>>;
    t[GgmlType::Q4_K].vec_dot_multi = vec_dot_multi<KindK4<false>>;
    t[GgmlType::Q5_K].vec_dot_multi = vec_dot_multi<KindK4<true>>;
    t[GgmlType::Q6_K].vec_dot_multi = vec_dot_multi<KindQ6_K>;
}

}  // namespace
}  // namespace hearth::avx2

#endif  // __x86_64__
