// AVX-512F attention tile kernel (see tensor/attention.h) for head_dim a multiple of 16.
// K is packed transposed ([d][16]) so one zmm holds the scores of all 16 tile positions for
// one head: each K value row is loaded once and FMAed against a broadcast q value of up to 8
// heads (8 independent accumulators). Softmax uses a polynomial exp (exp16) on whole
// vectors; P.V keeps up to 8 heads' accumulators for one 16-wide slice of d in registers.
// Compiled for baseline x86-64 with per-function target attributes; used only when CPUID
// and XCR0 report AVX-512 state (avx512::cpu_supported in avx512_gemm.cpp). Built at the
// project's -O2: GCC 12 at -O3 spills the score accumulators (about 1.5x slower).
#include "tensor/attention.h"

#include <cmath>

#if defined(__x86_64__)
#include "tensor/x86/avx512_math.h"

// GCC 12's AVX-512 intrinsics (max, min, roundscale, scalef, reductions) start from
// _mm512_undefined_ps(), which -Wuninitialized reports once inlined: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace hearth::avx512 {

namespace {

// Transposes 16 rows of 16 floats in place (rows become columns).
HEARTH_AVX512_INLINE void transpose16(__m512 (&r)[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    __m512 u[16];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // u[4 * i + k], 128-bit lane L: column 4 L + k of rows 4 i .. 4 i + 3.
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44);
        const __m512 v1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44);
        const __m512 v3 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
        r[k] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + k] = _mm512_shuffle_f32x4(v0, v2, 0xDD);
        r[8 + k] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(v1, v3, 0xDD);
    }
}

HEARTH_AVX512 void pack_k(const float* k, int64_t d, int i0, int i1, float* kt) {
    for (int64_t c0 = 0; c0 < d; c0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = (i >= i0 && i < i1) ? _mm512_loadu_ps(k + i * d + c0) : _mm512_setzero_ps();
        transpose16(r);
        for (int i = 0; i < 16; ++i) _mm512_storeu_ps(kt + (c0 + i) * kAttnTile, r[i]);
    }
}

HEARTH_AVX512 void load_f16(const uint8_t* k, const uint8_t* v, size_t stride, int64_t d, int i0, int i1, float* kt,
                            float* vf) {
    for (int64_t c0 = 0; c0 < d; c0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i)
            r[i] = (i >= i0 && i < i1)
                       ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + i * stride) + c0 / 16))
                       : _mm512_setzero_ps();
        transpose16(r);
        for (int i = 0; i < 16; ++i) _mm512_storeu_ps(kt + (c0 + i) * kAttnTile, r[i]);
    }
    for (int i = i0; i < i1; ++i)
        for (int64_t c0 = 0; c0 < d; c0 += 16)
            _mm512_storeu_ps(vf + i * d + c0, _mm512_cvtph_ps(_mm256_loadu_si256(
                                                  reinterpret_cast<const __m256i*>(v + i * stride) + c0 / 16)));
}

// Scores of G heads: s[j] = sum_c q[j][c] * kt[c], in S interleaved partial sums per head
// (c mod S) so that few heads still keep enough FMAs in flight; d is a multiple of 16.
template <int G>
HEARTH_AVX512_INLINE void scores(const float* q, int64_t d, const float* kt, __m512 (&s)[G]) {
    constexpr int S = G >= 8 ? 1 : G >= 4 ? 2 : 4;
    __m512 acc[G][S];
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j)
#pragma GCC unroll 8
        for (int u = 0; u < S; ++u) acc[j][u] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += S) {
#pragma GCC unroll 8
        for (int u = 0; u < S; ++u) {
            const __m512 kv = _mm512_loadu_ps(kt + (c + u) * kAttnTile);
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) acc[j][u] = _mm512_fmadd_ps(_mm512_set1_ps(q[j * d + c + u]), kv, acc[j][u]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
        if constexpr (S == 1) s[j] = acc[j][0];
        else if constexpr (S == 2) s[j] = _mm512_add_ps(acc[j][0], acc[j][1]);
        else s[j] = _mm512_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]), _mm512_add_ps(acc[j][2], acc[j][3]));
    }
}

// acc[j][c0 .. c0 + 16 NC) = acc * rs[j] + sum_{i in [i0, i1)} p[j][i] * v[i][..], NC
// 16-wide slices at once (more independent chains for few heads).
template <int G, int NC>
HEARTH_AVX512_INLINE void pv(const float* p, const float* rs, const float* v, int64_t d, int64_t c0, int i0, int i1,
                             float* acc) {
    __m512 a[G][NC];
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j)
#pragma GCC unroll 8
        for (int u = 0; u < NC; ++u)
            a[j][u] = _mm512_mul_ps(_mm512_loadu_ps(acc + j * d + c0 + 16 * u), _mm512_set1_ps(rs[j]));
    for (int i = i0; i < i1; ++i) {
        __m512 vv[NC];
#pragma GCC unroll 8
        for (int u = 0; u < NC; ++u) vv[u] = _mm512_loadu_ps(v + i * d + c0 + 16 * u);
#pragma GCC unroll 8
        for (int j = 0; j < G; ++j) {
            const __m512 w = _mm512_set1_ps(p[j * kAttnTile + i]);
#pragma GCC unroll 8
            for (int u = 0; u < NC; ++u) a[j][u] = _mm512_fmadd_ps(w, vv[u], a[j][u]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j)
#pragma GCC unroll 8
        for (int u = 0; u < NC; ++u) _mm512_storeu_ps(acc + j * d + c0 + 16 * u, a[j][u]);
}

// One tile for heads [0, G) of q / m / l / acc (the caller offsets them).
template <int G>
HEARTH_AVX512 void block_g(const float* q, int64_t d, const float* kt, const float* v, int i0, int i1, float scale,
                           float cap, float* m, float* l, float* acc) {
    __m512 s[G];
    scores<G>(q, d, kt, s);
    const __mmask16 valid = static_cast<__mmask16>(((1u << i1) - 1u) & ~((1u << i0) - 1u));
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    alignas(64) float p[G * kAttnTile];
    float rs[G];
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
        __m512 x = _mm512_mul_ps(s[j], _mm512_set1_ps(scale));
        if (cap > 0) {
            alignas(64) float tmp[kAttnTile];
            _mm512_store_ps(tmp, x);
            for (int i = i0; i < i1; ++i) tmp[i] = cap * std::tanh(tmp[i] / cap);
            x = _mm512_load_ps(tmp);
        }
        x = _mm512_mask_mov_ps(ninf, valid, x);
        const float bmax = _mm512_reduce_max_ps(x);
        rs[j] = 1.0f;
        if (bmax > m[j]) {
            // 0 on the first tile (m = -inf): exp16 maps -inf to 0.
            rs[j] = _mm512_cvtss_f32(exp16(_mm512_set1_ps(m[j] - bmax)));
            l[j] *= rs[j];
            m[j] = bmax;
        }
        const __m512 w = exp16(_mm512_sub_ps(x, _mm512_set1_ps(m[j])));  // masked lanes: 0
        l[j] += _mm512_reduce_add_ps(w);
        _mm512_store_ps(p + j * kAttnTile, w);
    }
    int64_t c0 = 0;
    if constexpr (G <= 4) {
        for (; c0 + 32 <= d; c0 += 32) pv<G, 2>(p, rs, v, d, c0, i0, i1, acc);
    }
    for (; c0 < d; c0 += 16) pv<G, 1>(p, rs, v, d, c0, i0, i1, acc);
}

HEARTH_AVX512 void block(const float* q, int64_t g, int64_t d, const float* kt, const float* v, int i0, int i1,
                         float scale, float cap, float* m, float* l, float* acc) {
    for (int64_t j0 = 0; j0 < g; j0 += 8) {
        const int64_t n = g - j0 < 8 ? g - j0 : 8;
        const float* qj = q + j0 * d;
        float* aj = acc + j0 * d;
        switch (n) {
            case 1: block_g<1>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 2: block_g<2>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 3: block_g<3>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 4: block_g<4>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 5: block_g<5>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 6: block_g<6>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 7: block_g<7>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            default: block_g<8>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
        }
    }
}

HEARTH_AVX512 void exp16_store(const float* x, float* y) { _mm512_storeu_ps(y, exp16(_mm512_loadu_ps(x))); }

}  // namespace

const AttnKernel attn{&pack_k, &block, &load_f16};

void attn_exp16(const float* x, float* y) { exp16_store(x, y); }

}  // namespace hearth::avx512

#else

namespace hearth::avx512 {
const AttnKernel attn{};
void attn_exp16(const float* x, float* y) {
    for (int i = 0; i < kAttnTile; ++i) y[i] = std::exp(x[i]);
}
}  // namespace hearth::avx512

#endif
