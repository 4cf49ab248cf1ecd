// Internal to src/tensor/arm/neon_packed*.cpp: the NEON twins of the packed-layout kernels
// (tensor/repack.h), as templates over one source that yields two instances. The including
// file defines HEARTH_NEON_DOTPROD: 1 sums each 4-byte group with sdot (vdotq_s32 /
// vdotq_laneq_s32, dot-product extension), 0 with smull/smlal (plain ARMv8-A NEON).
//
// They read the x86 kernels' packed layout unchanged: a 64-byte vector of a 16-row group is
// four 128-bit quarters of 4 rows (bytes 16q..16q+15 = rows 4q..4q+3, 4 bytes each), so a
// model packed once is valid for every family. Decode: int32 lane = row, one quarter of 4
// rows per register, activation words taken by lane (sdot by element, or dup); prompt: lane =
// token, a 16-token activation block as four quarters, weight words taken by lane from the
// unpacked group (16 bytes = 4 rows' word).
//
// Integer sums: with sdot every 4-byte group goes straight into int32. Plain NEON multiplies
// 8 bytes at a time into int16 lanes (smull/smlal, lane = (row or token, byte)) and widens by
// pairwise adds (saddlp, addp) once per sum, as long as no int16 partial sum can overflow
// (activations within [-128, 127], Q8_0's within [-127, 127]):
//   Q4_0, Q4_K nibbles: 8 words per sum, |sum| <= 8 * 15 * 128 = 15360;
//   Q5_K 5-bit values (0..31, decode and prompt): 8 words per sum as Q4_K,
//   |sum| <= 8 * 31 * 128 = 31744 (one product per int16 lane and word, unlike the x86
//   pairs of maddubs, so no split is needed);
//   Q6_K 6-bit values (decode, 0..63) or q - 32 (prompt): 4 words, <= 4 * 63 * 128 = 32256;
//   Q8_0 (bytes flipped back to signed with one eor 0x80): 2 words per int16 lane,
//   <= 2 * 128 * 127 = 32512, then sadalp into int32.
// Every sum is the exact integer the x86 kernels form (Q4_0: nibbles 0..15, then minus the
// activation's 8 x sum, as theirs; Q8_0: sum q a directly, which equals their sum (q + 128) a
// - 128 sum a; Q6_K prompt: sum_j sc_j (q - 32) . a_j, which equals their T - 32 M), and the
// float operations per (row, token) are theirs (same operands, same order: fma(float(s),
// d_w * d_a, acc), Q4_K then fms(float(M), dmin * d_a, acc)), so decode, prompt, plain, sdot
// and every x86 family give bit-identical results (tests/test_repack.cpp checks hashes of
// the results recorded on x86-64: Repack.SameBitsOnEveryArchitecture).
#pragma once

#if defined(__aarch64__)

#include <cstring>
#include <type_traits>

#include "tensor/arm/neon_common.h"
#include "tensor/repack.h"
#include "tensor/types.h"

#if !defined(HEARTH_NEON_DOTPROD)
#error "define HEARTH_NEON_DOTPROD (0 or 1) before including neon_packed_impl.h"
#endif

namespace hearth::neon {
namespace {

using avx512::kPackActBlockBytes;  // the activation layouts are the x86 kernels'
using avx512::kPackActQ6SuperBytes;
using avx512::kPackActSuperBytes;
using avx512::kPackQ5SuperBytes;
using avx512::kPackQ6SuperBytes;
using avx512::kPackUnpackedSuperBytes;
constexpr size_t kQ4Block = 288, kQ8Block = 544;  // packed bytes per 32-column block of 16 rows
constexpr size_t kQ4KSuper = 64 + 256 + 2048;     // packed Q4_K super-block (tensor/repack.cpp)
static_assert(kPackQ5SuperBytes == kQ4KSuper + 512, "Q5_K: Q4_K's super-block, then 8 x 64 bytes of high bits");
constexpr size_t kScQ6 = 32, kLowQ6 = 288, kHighQ6 = 288 + 2048;
// Tokens per decode pass (registers: 4 float accumulators per token plus the sums).
constexpr int kNtQ = 4, kNtK = 2;

HEARTH_NEON_INLINE int8x16_t ld(const void* p) { return vld1q_s8(static_cast<const int8_t*>(p)); }
HEARTH_NEON_INLINE uint8x16_t ldu(const void* p) { return vld1q_u8(static_cast<const uint8_t*>(p)); }
HEARTH_NEON_INLINE int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }
// 4 fp16 as floats.
HEARTH_NEON_INLINE float32x4_t half4(const void* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(static_cast<const uint16_t*>(p))));
}
// 4 bytes widened to int32 lanes: unsigned or signed.
HEARTH_NEON_INLINE int32x4_t u8x4(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v))))));
}
HEARTH_NEON_INLINE int32x4_t i8x4(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(v)))));
}
HEARTH_NEON_INLINE int8x16_t lo_nib(uint8x16_t v) { return s8(vandq_u8(v, vdupq_n_u8(0x0f))); }
HEARTH_NEON_INLINE int8x16_t hi_nib(uint8x16_t v) { return s8(vshrq_n_u8(v, 4)); }
// Q5_K: bit `bit` of each high-bit byte as 0x10 (the fifth bit of the value).
HEARTH_NEON_INLINE int8x16_t fifth_bit(uint8x16_t h, int bit) {
    return s8(vandq_u8(vtstq_u8(h, vdupq_n_u8(static_cast<uint8_t>(1u << bit))), vdupq_n_u8(0x10)));
}

// ---- Sums of 4-byte groups: SumN for narrow products (nibbles, 6-bit values), SumW for Q8_0's
// full bytes. addl<L>(s, x, y): s += x . (word L of y, in every group); addl2 does two such
// terms (plain SumW: the pair shares one int16 lane before it is widened). i32: the int32 sums.
#if HEARTH_NEON_DOTPROD
struct SumN {
    int32x4_t v;
};
using SumW = SumN;
HEARTH_NEON_INLINE void zero(SumN& s) { s.v = vdupq_n_s32(0); }
template <int L>
HEARTH_NEON_INLINE void addl(SumN& s, int8x16_t x, int8x16_t y) {
    s.v = vdotq_laneq_s32(s.v, x, y, L);
}
template <int L0, int L1>
HEARTH_NEON_INLINE void addl2(SumN& s, int8x16_t x0, int8x16_t y0, int8x16_t x1, int8x16_t y1) {
    s.v = vdotq_laneq_s32(s.v, x0, y0, L0);
    s.v = vdotq_laneq_s32(s.v, x1, y1, L1);
}
HEARTH_NEON_INLINE int32x4_t i32(const SumN& s) { return s.v; }
#else
struct SumN {
    int16x8_t lo, hi;  // groups 0, 1 and groups 2, 3: int16 lane per (group, byte)
};
struct SumW {
    int32x4_t lo, hi;  // groups 0, 1 and 2, 3: int32 lane per (group, byte pair)
};
HEARTH_NEON_INLINE void zero(SumN& s) { s.lo = s.hi = vdupq_n_s16(0); }
HEARTH_NEON_INLINE void zero(SumW& s) { s.lo = s.hi = vdupq_n_s32(0); }
template <int L>
HEARTH_NEON_INLINE int8x16_t word(int8x16_t y) {
    return vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(y), L));
}
template <int L>
HEARTH_NEON_INLINE void addl(SumN& s, int8x16_t x, int8x16_t y) {
    const int8x16_t w = word<L>(y);
    s.lo = vmlal_s8(s.lo, vget_low_s8(x), vget_low_s8(w));
    s.hi = vmlal_high_s8(s.hi, x, w);
}
template <int L0, int L1>
HEARTH_NEON_INLINE void addl2(SumN& s, int8x16_t x0, int8x16_t y0, int8x16_t x1, int8x16_t y1) {
    addl<L0>(s, x0, y0);
    addl<L1>(s, x1, y1);
}
template <int L0, int L1>
HEARTH_NEON_INLINE void addl2(SumW& s, int8x16_t x0, int8x16_t y0, int8x16_t x1, int8x16_t y1) {
    const int8x16_t w0 = word<L0>(y0), w1 = word<L1>(y1);
    s.lo = vpadalq_s16(s.lo, vmlal_s8(vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), vget_low_s8(x1), vget_low_s8(w1)));
    s.hi = vpadalq_s16(s.hi, vmlal_high_s8(vmull_high_s8(x0, w0), x1, w1));
}
HEARTH_NEON_INLINE int32x4_t i32(const SumN& s) { return vpaddq_s32(vpaddlq_s16(s.lo), vpaddlq_s16(s.hi)); }
HEARTH_NEON_INLINE int32x4_t i32(const SumW& s) { return vpaddq_s32(s.lo, s.hi); }
#endif
template <bool Q8>
using Sum = std::conditional_t<Q8, SumW, SumN>;

// s += x0..x3 . words 0..3 of y (decode: the activation's 4 words for 4 weight vectors).
template <typename S>
HEARTH_NEON_INLINE void dot4(S& s, int8x16_t x0, int8x16_t x1, int8x16_t x2, int8x16_t x3, int8x16_t y) {
    addl2<0, 1>(s, x0, y, x1, y);
    addl2<2, 3>(s, x2, y, x3, y);
}

// ---- Q4_0 / Q8_0 decode: 16 rows (four quarters) x NT tokens per pass.

// The 8 weight vectors of quarter qq of a block (vector g: word g of 4 rows, signed values
// for Q8_0, nibbles 0..15 for Q4_0: g < 4 low nibbles of word g, else high nibbles of g - 4).
template <bool Q8>
HEARTH_NEON_INLINE void quarter_weights(const uint8_t* b, int qq, int8x16_t (&w)[8]) {
    if constexpr (Q8) {
        HEARTH_NEON_UNROLL
        for (int g = 0; g < 8; ++g) w[g] = s8(veorq_u8(ldu(b + 32 + 64 * g + 16 * qq), vdupq_n_u8(0x80)));
    } else {
        HEARTH_NEON_UNROLL
        for (int j = 0; j < 4; ++j) {
            const uint8x16_t v = ldu(b + 32 + 64 * j + 16 * qq);
            w[j] = lo_nib(v);
            w[4 + j] = hi_nib(v);
        }
    }
}

template <bool Q8, int NT>
HEARTH_NEON_INLINE void rows16(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                               const int32_t* off, float* y, int64_t ldy) {
    const int64_t nb = K / 32;
    constexpr size_t BB = Q8 ? kQ8Block : kQ4Block;
    const BlockQ8_0* a[NT];
    float32x4_t acc[NT][4];
    HEARTH_NEON_UNROLL
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * stride);
        HEARTH_NEON_UNROLL
        for (int q = 0; q < 4; ++q) acc[t][q] = vdupq_n_f32(0.0f);
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * BB;
        HEARTH_NEON_UNROLL
        for (size_t p = 0; p < BB; p += 64) __builtin_prefetch(b + (Q8 ? 8 : 16) * BB + p);  // ~4.5 KiB ahead
        HEARTH_NEON_UNROLL
        for (int qq = 0; qq < 4; ++qq) {
            // A compiler barrier: GCC would otherwise hoist all four quarters' weight loads
            // and spill the accumulators.
            __asm__ volatile("" ::: "memory");
            int8x16_t w[8];
            quarter_weights<Q8>(b, qq, w);
            const float32x4_t dw = half4(b + 8 * qq);
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) {
                const int8x16_t a0 = ld(a[t][i].qs), a1 = ld(a[t][i].qs + 16);
                Sum<Q8> s;
                zero(s);
                dot4(s, w[0], w[1], w[2], w[3], a0);
                dot4(s, w[4], w[5], w[6], w[7], a1);
                int32x4_t si = i32(s);
                if constexpr (!Q8) si = vsubq_s32(si, vdupq_n_s32(off[t * nb + i]));
                acc[t][qq] = vfmaq_f32(acc[t][qq], vcvtq_f32_s32(si), vmulq_n_f32(dw, da[t * nb + i]));
            }
        }
    }
    HEARTH_NEON_UNROLL
    for (int t = 0; t < NT; ++t)
        HEARTH_NEON_UNROLL
        for (int q = 0; q < 4; ++q) vst1q_f32(y + t * ldy + 4 * q, acc[t][q]);
}

template <bool Q8>
HEARTH_NEON_INLINE void rows16_any(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                   const int32_t* off, int nt, float* y, int64_t ldy) {
    const int64_t nb = K / 32;
    static_assert(kNtQ == 4, "the switch covers 1..4 tokens");
    while (nt > 0) {
        const int k = nt < kNtQ ? nt : kNtQ;
        switch (k) {
            case 1: rows16<Q8, 1>(K, group, act, stride, da, off, y, ldy); break;
            case 2: rows16<Q8, 2>(K, group, act, stride, da, off, y, ldy); break;
            case 3: rows16<Q8, 3>(K, group, act, stride, da, off, y, ldy); break;
            default: rows16<Q8, 4>(K, group, act, stride, da, off, y, ldy); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        da += k * nb;
        off += k * nb;
        y += k * ldy;
    }
}

// ---- Q4_0 / Q8_0 prompt: the group unpacked once to 512 bytes per block (vector g at 64 g:
// 16 rows' word g; Q4_0 nibbles 0..15, Q8_0 signed bytes), then R rows x 4 QT tokens per
// register tile: weight words by lane (row), activation quarters as they are.

template <bool Q8>
HEARTH_NEON_INLINE void unpack_q(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    constexpr size_t BB = Q8 ? kQ8Block : kQ4Block;
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * BB;
        uint8_t* o = wu + static_cast<size_t>(i) * 512;
        for (int qq = 0; qq < 4; ++qq) {
            vst1q_f32(dw + 16 * i + 4 * qq, half4(b + 8 * qq));
            int8x16_t w[8];
            quarter_weights<Q8>(b, qq, w);
            HEARTH_NEON_UNROLL
            for (int g = 0; g < 8; ++g) vst1q_s8(reinterpret_cast<int8_t*>(o + 64 * g + 16 * qq), w[g]);
        }
    }
}

// Rows r0..r0+3 (R = 4, one weight register per word) x token quarters q0..q0+QT-1.
template <bool Q8, int QT>
HEARTH_NEON_INLINE void tile_q(int64_t K, const uint8_t* wu, const float* dw, int r0, int q0, const uint8_t* act,
                               float* out) {
    float32x4_t facc[4][QT];
    HEARTH_NEON_UNROLL
    for (int r = 0; r < 4; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) facc[r][v] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActBlockBytes + 16 * q0;
        const uint8_t* w = wu + static_cast<size_t>(i) * 512 + 4 * r0;
        Sum<Q8> s[4][QT];
        HEARTH_NEON_UNROLL
        for (int r = 0; r < 4; ++r)
            HEARTH_NEON_UNROLL
            for (int v = 0; v < QT; ++v) zero(s[r][v]);
        HEARTH_NEON_UNROLL
        for (int g = 0; g < 8; g += 2) {
            __asm__ volatile("" ::: "memory");  // keeps the loads of each step in their step
            const int8x16_t w0 = ld(w + 64 * g), w1 = ld(w + 64 * g + 64);
            HEARTH_NEON_UNROLL
            for (int v = 0; v < QT; ++v) {
                const int8x16_t x0 = ld(a + 64 * g + 16 * v), x1 = ld(a + 64 * g + 64 + 16 * v);
                addl2<0, 0>(s[0][v], x0, w0, x1, w1);
                addl2<1, 1>(s[1][v], x0, w0, x1, w1);
                addl2<2, 2>(s[2][v], x0, w0, x1, w1);
                addl2<3, 3>(s[3][v], x0, w0, x1, w1);
            }
        }
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) {
            const float32x4_t dav = vld1q_f32(reinterpret_cast<const float*>(a + 512 + 16 * v));
            const int32x4_t offv = vld1q_s32(reinterpret_cast<const int32_t*>(a + 576 + 16 * v));
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r) {
                int32x4_t si = i32(s[r][v]);
                if constexpr (!Q8) si = vsubq_s32(si, offv);
                facc[r][v] = vfmaq_f32(facc[r][v], vcvtq_f32_s32(si), vmulq_n_f32(dav, dw[16 * i + r0 + r]));
            }
        }
    }
    HEARTH_NEON_UNROLL
    for (int r = 0; r < 4; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) vst1q_f32(out + 16 * r + 4 * (q0 + v), facc[r][v]);
}

// ---- Q4_K decode: per super-block, quarter and token the exact T = sum_j sc_j (q . a)_j and
// M = sum_j m_j bsum_j, then acc += T d d_a, acc -= M dmin d_a as the x86 kernels do.
// Q5: Q5_K, the same with the fifth bits (high-bit vector p after the nibbles: every row's
// qh[4p..4p+3]; bit 2c of qh[l] belongs to element 64c + l, bit 2c + 1 to 64c + 32 + l)
// OR-ed into the nibbles.

template <int NT, bool Q5 = false>
HEARTH_NEON_INLINE void rows16_k4(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                  const int32_t* bs, float* y, int64_t ldy) {
    const int64_t nb = K / 256;
    const BlockQ8_K* a[NT];
    float32x4_t acc[NT][4];
    HEARTH_NEON_UNROLL
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        HEARTH_NEON_UNROLL
        for (int q = 0; q < 4; ++q) acc[t][q] = vdupq_n_f32(0.0f);
    }
    constexpr size_t SB = Q5 ? kPackQ5SuperBytes : kQ4KSuper;
    constexpr int PF = Q5 ? 12 : 10;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * SB;
        for (int qq = 0; qq < 4; ++qq) {
            // The super-block two ahead, a quarter of its 37 (Q5_K: 45) lines per step.
            HEARTH_NEON_UNROLL
            for (int p = 0; p < PF; ++p) __builtin_prefetch(b + 2 * SB + 64 * (PF * qq + p));
            int32x4_t T[NT], M[NT];
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) T[t] = M[t] = vdupq_n_s32(0);
            for (int c = 0; c < 4; ++c) {
                const uint8_t* q = b + 320 + 512 * c + 16 * qq;
                SumN slo[NT], shi[NT];
                int8x16_t av[NT][4];  // words 16c.. of the activations: 0..7 low nibbles, 8..15 high
                HEARTH_NEON_UNROLL
                for (int t = 0; t < NT; ++t) {
                    zero(slo[t]);
                    zero(shi[t]);
                    HEARTH_NEON_UNROLL
                    for (int k = 0; k < 4; ++k) av[t][k] = ld(a[t][i].qs + 64 * c + 16 * k);
                }
                HEARTH_NEON_UNROLL
                for (int p = 0; p < 8; p += 2) {
                    __asm__ volatile("" ::: "memory");  // keeps the loads of each step in their step
                    const uint8x16_t v0 = ldu(q + 64 * p), v1 = ldu(q + 64 * p + 64);
                    int8x16_t l0 = lo_nib(v0), h0 = hi_nib(v0), l1 = lo_nib(v1), h1 = hi_nib(v1);
                    if constexpr (Q5) {
                        const uint8_t* hb = b + kQ4KSuper + 16 * qq;
                        const uint8x16_t x0 = ldu(hb + 64 * p), x1 = ldu(hb + 64 * p + 64);
                        l0 = vorrq_s8(l0, fifth_bit(x0, 2 * c));
                        h0 = vorrq_s8(h0, fifth_bit(x0, 2 * c + 1));
                        l1 = vorrq_s8(l1, fifth_bit(x1, 2 * c));
                        h1 = vorrq_s8(h1, fifth_bit(x1, 2 * c + 1));
                    }
                    HEARTH_NEON_UNROLL
                    for (int t = 0; t < NT; ++t) {
                        if (p % 4 == 0) {
                            addl2<0, 1>(slo[t], l0, av[t][p / 4], l1, av[t][p / 4]);
                            addl2<0, 1>(shi[t], h0, av[t][2 + p / 4], h1, av[t][2 + p / 4]);
                        } else {
                            addl2<2, 3>(slo[t], l0, av[t][p / 4], l1, av[t][p / 4]);
                            addl2<2, 3>(shi[t], h0, av[t][2 + p / 4], h1, av[t][2 + p / 4]);
                        }
                    }
                }
                const int32x4_t sc_lo = u8x4(b + 64 + 32 * c + 4 * qq), sc_hi = u8x4(b + 80 + 32 * c + 4 * qq);
                HEARTH_NEON_UNROLL
                for (int t = 0; t < NT; ++t) T[t] = vmlaq_s32(vmlaq_s32(T[t], i32(slo[t]), sc_lo), i32(shi[t]), sc_hi);
            }
            HEARTH_NEON_UNROLL
            for (int j = 0; j < 8; ++j) {
                const int32x4_t m = u8x4(b + 192 + 16 * j + 4 * qq);
                HEARTH_NEON_UNROLL
                for (int t = 0; t < NT; ++t) M[t] = vmlaq_n_s32(M[t], m, bs[(static_cast<int64_t>(t) * nb + i) * 8 + j]);
            }
            const float32x4_t dv = half4(b + 8 * qq), dminv = half4(b + 32 + 8 * qq);
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) {
                const float dat = da[static_cast<int64_t>(t) * nb + i];
                acc[t][qq] = vfmaq_f32(acc[t][qq], vcvtq_f32_s32(T[t]), vmulq_n_f32(dv, dat));
                acc[t][qq] = vfmsq_f32(acc[t][qq], vcvtq_f32_s32(M[t]), vmulq_n_f32(dminv, dat));
            }
        }
    }
    HEARTH_NEON_UNROLL
    for (int t = 0; t < NT; ++t)
        HEARTH_NEON_UNROLL
        for (int q = 0; q < 4; ++q) vst1q_f32(y + t * ldy + 4 * q, acc[t][q]);
}

// ---- Q4_K prompt: the x86 kernels' unpacked super-block (64 word vectors, nibbles as bytes,
// then the scales and mins [sub-block][row]); 4 rows x 4 QT tokens per tile. Q5_K's unpack
// gives the same layout with 5-bit values, multiplied here as well.

template <int QT>
HEARTH_NEON_INLINE void tile_k4(int64_t K, const uint8_t* wu, const float* dw, int r0, int q0, const uint8_t* act,
                                float* out) {
    float32x4_t facc[4][QT];
    HEARTH_NEON_UNROLL
    for (int r = 0; r < 4; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) facc[r][v] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActSuperBytes + 16 * q0;
        const uint8_t* w = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4 * r0;
        const uint8_t* sc = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4096 + r0;
        int32x4_t T[4][QT];
        HEARTH_NEON_UNROLL
        for (int r = 0; r < 4; ++r)
            HEARTH_NEON_UNROLL
            for (int v = 0; v < QT; ++v) T[r][v] = vdupq_n_s32(0);
        for (int j = 0; j < 8; ++j) {
            SumN s[4][QT];
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r)
                HEARTH_NEON_UNROLL
                for (int v = 0; v < QT; ++v) zero(s[r][v]);
            HEARTH_NEON_UNROLL
            for (int q = 0; q < 8; q += 2) {
                const int word = 8 * j + q;
                const int8x16_t w0 = ld(w + 64 * word), w1 = ld(w + 64 * word + 64);
                HEARTH_NEON_UNROLL
                for (int v = 0; v < QT; ++v) {
                    const int8x16_t x0 = ld(a + 64 * word + 16 * v), x1 = ld(a + 64 * word + 64 + 16 * v);
                    addl2<0, 0>(s[0][v], x0, w0, x1, w1);
                    addl2<1, 1>(s[1][v], x0, w0, x1, w1);
                    addl2<2, 2>(s[2][v], x0, w0, x1, w1);
                    addl2<3, 3>(s[3][v], x0, w0, x1, w1);
                }
            }
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r)
                HEARTH_NEON_UNROLL
                for (int v = 0; v < QT; ++v) T[r][v] = vmlaq_n_s32(T[r][v], i32(s[r][v]), sc[16 * j + r]);
        }
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) {
            const float32x4_t dav = vld1q_f32(reinterpret_cast<const float*>(a + 4096 + 16 * v));
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r) {
                int32x4_t M = vdupq_n_s32(0);
                HEARTH_NEON_UNROLL
                for (int j = 0; j < 8; ++j)
                    M = vmlaq_n_s32(M, vld1q_s32(reinterpret_cast<const int32_t*>(a + 4160 + 64 * j + 16 * v)),
                                    sc[128 + 16 * j + r]);
                facc[r][v] = vfmaq_f32(facc[r][v], vcvtq_f32_s32(T[r][v]), vmulq_n_f32(dav, dw[32 * i + r0 + r]));
                facc[r][v] = vfmsq_f32(facc[r][v], vcvtq_f32_s32(M), vmulq_n_f32(dav, dw[32 * i + 16 + r0 + r]));
            }
        }
    }
    HEARTH_NEON_UNROLL
    for (int r = 0; r < 4; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) vst1q_f32(out + 16 * r + 4 * (q0 + v), facc[r][v]);
}

// ---- Q6_K (layout in x86/avx512_packed_q6k.cpp): decode T = sum_j sc_j (q . a)_j and
// M = sum_j sc_j bsum_j with q the unsigned 6-bit value, then acc += float(T - 32 M) * (d d_a).

// Quarter qq (rows 4qq..4qq+3) of words hh, hh + 16, hh + 32, hh + 48 as 6-bit bytes 0..63.
HEARTH_NEON_INLINE void words_of(const uint8_t* b, int hh, int qq, int8x16_t (&w)[4]) {
    const uint8x16_t l0 = ldu(b + kLowQ6 + 64 * hh + 16 * qq);
    const uint8x16_t l1 = ldu(b + kLowQ6 + 64 * (hh + 16) + 16 * qq);
    const uint8x16_t hb = ldu(b + kHighQ6 + 64 * hh + 16 * qq);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m30 = vdupq_n_u8(0x30);
    w[0] = s8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, vdupq_n_u8(0x03)), 4)));
    w[1] = s8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(hb, vdupq_n_u8(0x0c)), 2)));
    w[2] = s8(vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30)));
    w[3] = s8(vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m30)));
}

template <int NT>
HEARTH_NEON_INLINE void rows16_q6(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, float* y,
                                  int64_t ldy) {
    const int64_t nb = K / 256;
    const BlockQ8_K* a[NT];
    float32x4_t acc[NT][4];
    HEARTH_NEON_UNROLL
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        HEARTH_NEON_UNROLL
        for (int q = 0; q < 4; ++q) acc[t][q] = vdupq_n_f32(0.0f);
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        for (int qq = 0; qq < 4; ++qq) {
            // The super-block two ahead, a quarter of its 53 lines per step.
            HEARTH_NEON_UNROLL
            for (int p = 0; p < 14; ++p) __builtin_prefetch(b + 2 * kPackQ6SuperBytes + 64 * (14 * qq + p));
            int32x4_t T[NT], M[NT];
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) T[t] = M[t] = vdupq_n_s32(0);
            for (int k = 0; k < 4; ++k) {
                // Sub-blocks k + 4m (m < 4): words 4k + q + 16m, q < 4 = lane q of av[m].
                SumN s[NT][4];
                int8x16_t av[NT][4];
                HEARTH_NEON_UNROLL
                for (int t = 0; t < NT; ++t)
                    HEARTH_NEON_UNROLL
                    for (int m = 0; m < 4; ++m) {
                        zero(s[t][m]);
                        av[t][m] = ld(a[t][i].qs + 16 * (k + 4 * m));
                    }
                HEARTH_NEON_UNROLL
                for (int q = 0; q < 4; q += 2) {
                    __asm__ volatile("" ::: "memory");  // keeps the loads of each step in their step
                    int8x16_t w0[4], w1[4];
                    words_of(b, 4 * k + q, qq, w0);
                    words_of(b, 4 * k + q + 1, qq, w1);
                    HEARTH_NEON_UNROLL
                    for (int t = 0; t < NT; ++t)
                        HEARTH_NEON_UNROLL
                        for (int m = 0; m < 4; ++m) {
                            if (q == 0) addl2<0, 1>(s[t][m], w0[m], av[t][m], w1[m], av[t][m]);
                            else addl2<2, 3>(s[t][m], w0[m], av[t][m], w1[m], av[t][m]);
                        }
                }
                HEARTH_NEON_UNROLL
                for (int m = 0; m < 4; ++m) {
                    const int32x4_t sc = i8x4(b + kScQ6 + 16 * (k + 4 * m) + 4 * qq);
                    HEARTH_NEON_UNROLL
                    for (int t = 0; t < NT; ++t) {
                        T[t] = vmlaq_s32(T[t], i32(s[t][m]), sc);
                        M[t] = vmlaq_n_s32(M[t], sc, a[t][i].bsums[k + 4 * m]);
                    }
                }
            }
            const float32x4_t dv = half4(b + 8 * qq);
            HEARTH_NEON_UNROLL
            for (int t = 0; t < NT; ++t) {
                const int32x4_t tm = vsubq_s32(T[t], vshlq_n_s32(M[t], 5));
                acc[t][qq] = vfmaq_f32(acc[t][qq], vcvtq_f32_s32(tm), vmulq_n_f32(dv, a[t][i].d));
            }
        }
    }
    HEARTH_NEON_UNROLL
    for (int t = 0; t < NT; ++t)
        HEARTH_NEON_UNROLL
        for (int q = 0; q < 4; ++q) vst1q_f32(y + t * ldy + 4 * q, acc[t][q]);
}

// Q6_K prompt: the group unpacked to signed q - 32 (word w's 16-row vector at 64 w, then the
// int8 scales [sub-block][row]), so each sub-block's sum is (q - 32) . a = (q . a) - 32 bsum and
// sum_j sc_j of them is the decode kernel's T - 32 M, the same integer.
template <int QT>
HEARTH_NEON_INLINE void tile_q6(int64_t K, const uint8_t* wu, const float* dw, int r0, int q0, const uint8_t* act,
                                float* out) {
    float32x4_t facc[4][QT];
    HEARTH_NEON_UNROLL
    for (int r = 0; r < 4; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) facc[r][v] = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActQ6SuperBytes + 16 * q0;
        const uint8_t* w = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4 * r0;
        const int8_t* sc = reinterpret_cast<const int8_t*>(wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4096 + r0);
        int32x4_t T[4][QT];
        HEARTH_NEON_UNROLL
        for (int r = 0; r < 4; ++r)
            HEARTH_NEON_UNROLL
            for (int v = 0; v < QT; ++v) T[r][v] = vdupq_n_s32(0);
        for (int j = 0; j < 16; ++j) {
            SumN s[4][QT];
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r)
                HEARTH_NEON_UNROLL
                for (int v = 0; v < QT; ++v) zero(s[r][v]);
            HEARTH_NEON_UNROLL
            for (int q = 0; q < 4; q += 2) {
                const int word = 4 * j + q;
                const int8x16_t w0 = ld(w + 64 * word), w1 = ld(w + 64 * word + 64);
                HEARTH_NEON_UNROLL
                for (int v = 0; v < QT; ++v) {
                    const int8x16_t x0 = ld(a + 64 * word + 16 * v), x1 = ld(a + 64 * word + 64 + 16 * v);
                    addl2<0, 0>(s[0][v], x0, w0, x1, w1);
                    addl2<1, 1>(s[1][v], x0, w0, x1, w1);
                    addl2<2, 2>(s[2][v], x0, w0, x1, w1);
                    addl2<3, 3>(s[3][v], x0, w0, x1, w1);
                }
            }
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r)
                HEARTH_NEON_UNROLL
                for (int v = 0; v < QT; ++v) T[r][v] = vmlaq_n_s32(T[r][v], i32(s[r][v]), sc[16 * j + r]);
        }
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) {
            const float32x4_t dav = vld1q_f32(reinterpret_cast<const float*>(a + 4096 + 16 * v));
            HEARTH_NEON_UNROLL
            for (int r = 0; r < 4; ++r)
                facc[r][v] = vfmaq_f32(facc[r][v], vcvtq_f32_s32(T[r][v]), vmulq_n_f32(dav, dw[16 * i + r0 + r]));
        }
    }
    HEARTH_NEON_UNROLL
    for (int r = 0; r < 4; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < QT; ++v) vst1q_f32(out + 16 * r + 4 * (q0 + v), facc[r][v]);
}

// ---- Entry points (PackedKernels).

void q4_0_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da, const int32_t* off,
               int nt, float* y, int64_t ldy) {
    rows16_any<false>(K, group, act, stride, da, off, nt, y, ldy);
}
void q8_0_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da, const int32_t* off,
               int nt, float* y, int64_t ldy) {
    rows16_any<true>(K, group, act, stride, da, off, nt, y, ldy);
}
template <bool Q5>
HEARTH_NEON_INLINE void rows_k_any(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                   const int32_t* bs, int nt, float* y, int64_t ldy) {
    const int64_t nb = K / 256;
    static_assert(kNtK == 2, "1 or 2 tokens per pass");
    while (nt > 0) {
        const int k = nt < kNtK ? nt : kNtK;
        if (k == 1) rows16_k4<1, Q5>(K, group, act, stride, da, bs, y, ldy);
        else rows16_k4<2, Q5>(K, group, act, stride, da, bs, y, ldy);
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        da += k * nb;
        bs += k * nb * 8;
        y += k * ldy;
    }
}
void q4_k_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da, const int32_t* bs,
               int nt, float* y, int64_t ldy) {
    rows_k_any<false>(K, group, act, stride, da, bs, nt, y, ldy);
}
void q5_k_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da, const int32_t* bs,
               int nt, float* y, int64_t ldy) {
    rows_k_any<true>(K, group, act, stride, da, bs, nt, y, ldy);
}
void q6_k_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, int nt, float* y, int64_t ldy) {
    while (nt > 0) {
        const int k = nt < kNtK ? nt : kNtK;
        if (k == 1) rows16_q6<1>(K, group, act, stride, y, ldy);
        else rows16_q6<2>(K, group, act, stride, y, ldy);
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        y += k * ldy;
    }
}

void q4_0_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_q<false>(K, group, wu, dw); }
void q8_0_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_q<true>(K, group, wu, dw); }

// Q4_K, and Q5_K (Q5) with the fifth bits OR-ed in: the same unpacked layout, 5-bit values.
template <bool Q5>
HEARTH_NEON_INLINE void unpack_k(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * (Q5 ? kPackQ5SuperBytes : kQ4KSuper);
        uint8_t* o = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes;
        for (int qq = 0; qq < 4; ++qq) {
            vst1q_f32(dw + 32 * i + 4 * qq, half4(b + 8 * qq));
            vst1q_f32(dw + 32 * i + 16 + 4 * qq, half4(b + 32 + 8 * qq));
        }
        HEARTH_NEON_UNROLL
        for (int c = 0; c < 4; ++c)
            HEARTH_NEON_UNROLL
            for (int q = 0; q < 8; ++q)
                for (int qq = 0; qq < 4; ++qq) {
                    const uint8x16_t v = ldu(b + 320 + 64 * (8 * c + q) + 16 * qq);
                    int8x16_t lo = lo_nib(v), hi = hi_nib(v);
                    if constexpr (Q5) {
                        const uint8x16_t h = ldu(b + kQ4KSuper + 64 * q + 16 * qq);
                        lo = vorrq_s8(lo, fifth_bit(h, 2 * c));
                        hi = vorrq_s8(hi, fifth_bit(h, 2 * c + 1));
                    }
                    vst1q_s8(reinterpret_cast<int8_t*>(o + 64 * (16 * c + q) + 16 * qq), lo);
                    vst1q_s8(reinterpret_cast<int8_t*>(o + 64 * (16 * c + 8 + q) + 16 * qq), hi);
                }
        std::memcpy(o + 4096, b + 64, 256);
    }
}
void q4_k_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_k<false>(K, group, wu, dw); }
void q5_k_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_k<true>(K, group, wu, dw); }

void q6_k_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        uint8_t* o = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes;
        for (int qq = 0; qq < 4; ++qq) vst1q_f32(dw + 16 * i + 4 * qq, half4(b + 8 * qq));
        for (int hh = 0; hh < 16; ++hh)
            for (int qq = 0; qq < 4; ++qq) {
                int8x16_t w[4];
                words_of(b, hh, qq, w);
                HEARTH_NEON_UNROLL
                for (int m = 0; m < 4; ++m)
                    vst1q_s8(reinterpret_cast<int8_t*>(o + 64 * (hh + 16 * m) + 16 * qq), vsubq_s8(w[m], vdupq_n_s8(32)));
            }
        std::memcpy(o + 4096, b + kScQ6, 256);
    }
}

// 8 rows from r0 per call (the driver's block), as tiles of 4 rows x 4 QT tokens: with sdot
// 4 x 8 tokens (8 independent sums, 8 float accumulators; Q4_K 4 x 4, whose scaled sums and
// mins need more registers), plain 4 x 4 (each sum is two registers): the shapes that the
// compiled code keeps within the 32 vector registers without spilling in the inner loop.
constexpr int kQT = HEARTH_NEON_DOTPROD ? 2 : 1, kQTK = 1;

void q4_0_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += 4)
        for (int q0 = 0; q0 < 4; q0 += kQT) tile_q<false, kQT>(K, wu, dw, r0 + rr, q0, act, out + 16 * rr);
}
void q8_0_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += 4)
        for (int q0 = 0; q0 < 4; q0 += kQT) tile_q<true, kQT>(K, wu, dw, r0 + rr, q0, act, out + 16 * rr);
}
void q4_k_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += 4)
        for (int q0 = 0; q0 < 4; q0 += kQTK) tile_k4<kQTK>(K, wu, dw, r0 + rr, q0, act, out + 16 * rr);
}
void q6_k_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += 4)
        for (int q0 = 0; q0 < 4; q0 += kQT) tile_q6<kQT>(K, wu, dw, r0 + rr, q0, act, out + 16 * rr);
}

// Q5_K's prompt multiplies with the Q4_K block kernel (5-bit values within its int16 bound).
HEARTH_NEON_INLINE const PackedKernels& packed_kernels_impl() {
    static const PackedKernels k = [] {
        PackedKernels k{HEARTH_NEON_DOTPROD ? "neon-dotprod" : "neon",
                        q4_0_rows,   q8_0_rows,   q4_k_rows,   q6_k_rows,  q4_0_unpack, q8_0_unpack,
                        q4_k_unpack, q6_k_unpack, q4_0_block,  q8_0_block, q4_k_block,  q6_k_block};
        k.q5_k_rows = q5_k_rows;
        k.q5_k_unpack = q5_k_unpack;
        k.q5_k_block = q4_k_block;
        return k;
    }();
    return k;
}

}  // namespace
}  // namespace hearth::neon

#endif  // __aarch64__
