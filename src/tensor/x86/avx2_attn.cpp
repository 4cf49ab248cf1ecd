// AVX2+FMA+F16C attention tile kernel (see tensor/attention.h) for head_dim a multiple of 8,
// used where AVX-512 is missing (or for head sizes it does not take). Same structure as
// avx512_attn.cpp on 8-lane vectors: the 16 scores of a head are two ymm computed from the
// transposed K tile, up to 4 heads at a time; exp8 is a polynomial exp; P.V keeps up to 4
// heads x 2 slices of d in registers. Compiled for baseline x86-64 with per-function target
// attributes; chosen only when the active ISA is AVX2.
#include "tensor/attention.h"

#include <cmath>

#include "tensor/x86/avx2_math.h"

#if defined(__x86_64__)

namespace hearth::avx2 {

namespace {

// Transposes 8 rows of 8 floats in place.
HEARTH_AVX2_INLINE void transpose8(__m256 (&r)[8]) {
    __m256 t[8], u[8];
    HEARTH_UNROLL
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    HEARTH_UNROLL
    for (int i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    // u[4 i + k], 128-bit half L: column 4 L + k of rows 4 i .. 4 i + 3.
    HEARTH_UNROLL
    for (int k = 0; k < 4; ++k) {
        r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
}

// Rows [i0, i1) of the tile from `load(i, c0)` (8 floats of row i at column c0), packed.
template <typename Load>
HEARTH_AVX2_INLINE void pack_rows(int64_t d, int i0, int i1, float* kt, const Load& load) {
    for (int64_t c0 = 0; c0 < d; c0 += 8) {
        HEARTH_UNROLL
        for (int h = 0; h < 2; ++h) {
            __m256 r[8];
            HEARTH_UNROLL
            for (int i = 0; i < 8; ++i) {
                const int row = 8 * h + i;
                r[i] = (row >= i0 && row < i1) ? load(row, c0) : _mm256_setzero_ps();
            }
            transpose8(r);
            HEARTH_UNROLL
            for (int i = 0; i < 8; ++i) _mm256_storeu_ps(kt + (c0 + i) * kAttnTile + 8 * h, r[i]);
        }
    }
}

struct LoadF32 {
    const float* k;
    int64_t d;
    HEARTH_AVX2_INLINE __m256 operator()(int row, int64_t c0) const { return _mm256_loadu_ps(k + row * d + c0); }
};

struct LoadF16 {
    const uint8_t* k;
    size_t stride;
    HEARTH_AVX2_INLINE __m256 operator()(int row, int64_t c0) const {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + row * stride) + c0 / 8));
    }
};

HEARTH_AVX2 void pack_k(const float* k, int64_t d, int i0, int i1, float* kt) { pack_rows(d, i0, i1, kt, LoadF32{k, d}); }

HEARTH_AVX2 void load_f16(const uint8_t* k, const uint8_t* v, size_t stride, int64_t d, int i0, int i1, float* kt,
                          float* vf) {
    pack_rows(d, i0, i1, kt, LoadF16{k, stride});
    for (int i = i0; i < i1; ++i)
        for (int64_t c0 = 0; c0 < d; c0 += 8)
            _mm256_storeu_ps(vf + i * d + c0,
                             _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i * stride) + c0 / 8)));
}

// One tile for heads [0, G), G <= 4 (the caller offsets q / m / l / acc).
template <int G>
HEARTH_AVX2 void block_g(const float* q, int64_t d, const float* kt, const float* v, int i0, int i1, float scale,
                         float cap, float* m, float* l, float* acc) {
    __m256 s[G][2];
    HEARTH_UNROLL
    for (int j = 0; j < G; ++j) s[j][0] = s[j][1] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; ++c) {
        const __m256 k0 = _mm256_loadu_ps(kt + c * kAttnTile), k1 = _mm256_loadu_ps(kt + c * kAttnTile + 8);
        HEARTH_UNROLL
        for (int j = 0; j < G; ++j) {
            const __m256 qb = _mm256_broadcast_ss(q + j * d + c);
            s[j][0] = _mm256_fmadd_ps(qb, k0, s[j][0]);
            s[j][1] = _mm256_fmadd_ps(qb, k1, s[j][1]);
        }
    }
    const __m256 idx0 = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), idx1 = _mm256_setr_ps(8, 9, 10, 11, 12, 13, 14, 15);
    const __m256 a = _mm256_set1_ps(static_cast<float>(i0)), e = _mm256_set1_ps(static_cast<float>(i1));
    const __m256 valid0 = _mm256_and_ps(_mm256_cmp_ps(idx0, a, _CMP_GE_OQ), _mm256_cmp_ps(idx0, e, _CMP_LT_OQ));
    const __m256 valid1 = _mm256_and_ps(_mm256_cmp_ps(idx1, a, _CMP_GE_OQ), _mm256_cmp_ps(idx1, e, _CMP_LT_OQ));
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    alignas(32) float p[G * kAttnTile];
    float rs[G];
    HEARTH_UNROLL
    for (int j = 0; j < G; ++j) {
        __m256 x0 = _mm256_mul_ps(s[j][0], _mm256_set1_ps(scale)), x1 = _mm256_mul_ps(s[j][1], _mm256_set1_ps(scale));
        if (cap > 0) {
            alignas(32) float tmp[kAttnTile];
            _mm256_store_ps(tmp, x0);
            _mm256_store_ps(tmp + 8, x1);
            for (int i = i0; i < i1; ++i) tmp[i] = cap * std::tanh(tmp[i] / cap);
            x0 = _mm256_load_ps(tmp);
            x1 = _mm256_load_ps(tmp + 8);
        }
        x0 = _mm256_blendv_ps(ninf, x0, valid0);
        x1 = _mm256_blendv_ps(ninf, x1, valid1);
        const float bmax = hmax(_mm256_max_ps(x0, x1));
        rs[j] = 1.0f;
        if (bmax > m[j]) {
            rs[j] = _mm256_cvtss_f32(exp8(_mm256_set1_ps(m[j] - bmax)));  // 0 when m = -inf
            l[j] *= rs[j];
            m[j] = bmax;
        }
        const __m256 mj = _mm256_set1_ps(m[j]);
        const __m256 w0 = exp8(_mm256_sub_ps(x0, mj)), w1 = exp8(_mm256_sub_ps(x1, mj));
        l[j] += hsum(_mm256_add_ps(w0, w1));
        _mm256_store_ps(p + j * kAttnTile, w0);
        _mm256_store_ps(p + j * kAttnTile + 8, w1);
    }
    int64_t c0 = 0;
    for (; c0 + 16 <= d; c0 += 16) {
        __m256 o[G][2];
        HEARTH_UNROLL
        for (int j = 0; j < G; ++j) {
            const __m256 r = _mm256_set1_ps(rs[j]);
            o[j][0] = _mm256_mul_ps(_mm256_loadu_ps(acc + j * d + c0), r);
            o[j][1] = _mm256_mul_ps(_mm256_loadu_ps(acc + j * d + c0 + 8), r);
        }
        for (int i = i0; i < i1; ++i) {
            const __m256 v0 = _mm256_loadu_ps(v + i * d + c0), v1 = _mm256_loadu_ps(v + i * d + c0 + 8);
            HEARTH_UNROLL
            for (int j = 0; j < G; ++j) {
                const __m256 w = _mm256_broadcast_ss(p + j * kAttnTile + i);
                o[j][0] = _mm256_fmadd_ps(w, v0, o[j][0]);
                o[j][1] = _mm256_fmadd_ps(w, v1, o[j][1]);
            }
        }
        HEARTH_UNROLL
        for (int j = 0; j < G; ++j) {
            _mm256_storeu_ps(acc + j * d + c0, o[j][0]);
            _mm256_storeu_ps(acc + j * d + c0 + 8, o[j][1]);
        }
    }
    if (c0 < d) {  // d % 16 == 8: one last slice of 8
        __m256 o[G];
        HEARTH_UNROLL
        for (int j = 0; j < G; ++j) o[j] = _mm256_mul_ps(_mm256_loadu_ps(acc + j * d + c0), _mm256_set1_ps(rs[j]));
        for (int i = i0; i < i1; ++i) {
            const __m256 v0 = _mm256_loadu_ps(v + i * d + c0);
            HEARTH_UNROLL
            for (int j = 0; j < G; ++j) o[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j * kAttnTile + i), v0, o[j]);
        }
        HEARTH_UNROLL
        for (int j = 0; j < G; ++j) _mm256_storeu_ps(acc + j * d + c0, o[j]);
    }
}

HEARTH_AVX2 void block(const float* q, int64_t g, int64_t d, const float* kt, const float* v, int i0, int i1,
                       float scale, float cap, float* m, float* l, float* acc) {
    for (int64_t j0 = 0; j0 < g; j0 += 4) {
        const int64_t n = g - j0 < 4 ? g - j0 : 4;
        const float* qj = q + j0 * d;
        float* aj = acc + j0 * d;
        switch (n) {
            case 1: block_g<1>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 2: block_g<2>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            case 3: block_g<3>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
            default: block_g<4>(qj, d, kt, v, i0, i1, scale, cap, m + j0, l + j0, aj); break;
        }
    }
}

HEARTH_AVX2 void exp8_store(const float* x, float* y) { _mm256_storeu_ps(y, exp8(_mm256_loadu_ps(x))); }

}  // namespace

const AttnKernel attn{&pack_k, &block, &load_f16};

void attn_exp8(const float* x, float* y) { exp8_store(x, y); }

}  // namespace hearth::avx2

#else

namespace hearth::avx2 {
const AttnKernel attn{};
void attn_exp8(const float* x, float* y) {
    for (int i = 0; i < 8; ++i) y[i] = std::exp(x[i]);
}
}  // namespace hearth::avx2

#endif
