// Internal helpers shared by the scalar reference kernels (tensor/scalar/*.cpp).
//
// The reference quantizers must reproduce ggml's bytes, so every float expression in
// them keeps ggml's operand order, and nothing may be fused: an FMA changes the rounding
// of `a * b + c` (ggml's reference code is built without FMA). Compilers only contract
// when FMA instructions are enabled (e.g. -march=native on x86-64; always on aarch64, whose
// base ISA has fmadd); the pragmas below keep these files unfused even then.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/types.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__) && (defined(__FMA__) || defined(__aarch64__))
#pragma GCC optimize("fp-contract=off")
#endif

namespace hearth::scalar {

// IEEE half to float, exact for every input (subnormals, inf, NaN included) and inline,
// because the dequantizers call it once per block and the F16 kernels once per element.
inline float half_to_float(fp16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7fffu;  // exponent and mantissa
    uint32_t bits;
    if (em >= 0x7c00u) {
        bits = sign | 0x7f800000u | ((em & 0x3ffu) << 13);  // inf / nan
    } else if (em >= 0x0400u) {
        bits = sign | ((em << 13) + ((127u - 15u) << 23));  // normal: rebias the exponent
    } else {
        // zero or subnormal: value = mant * 2^-24, exact in float
        float f = static_cast<float>(em) * 5.9604644775390625e-8f;
        uint32_t u;
        std::memcpy(&u, &f, 4);
        bits = sign | u;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline fp16_t float_to_half(float f) { return fp32_to_fp16(f); }

// ggml's nearest_int: round to nearest, ties to even, via the 1.5 * 2^23 trick. Valid
// for |f| <= 2^22, which every caller guarantees.
inline int nearest_int(float f) {
    const float v = f + 12582912.f;
    int32_t i;
    std::memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

template <class T>
inline T clamp_to(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

// Unpack the 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
// Bytes 0-3: scales 0-3 (low 6 bits), their top 2 bits hold the high bits of scales 4-7;
// bytes 4-7: mins 0-3 likewise for mins 4-7; bytes 8-11: low nibble scale j+4, high
// nibble min j+4.
inline void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// 6-bit scales and mins of the 8 sub-blocks of a Q4_K/Q5_K super-block into 12 bytes
// (inverse of unpack_scale_min_k4).
inline void pack_scales_mins_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t* out) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            out[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
            out[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
        }
    }
}

// Signed 6-bit values (q - 32) of a Q6_K super-block.
inline void unpack_q6(const BlockQ6_K& b, int8_t* out) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = b.ql + 64 * half;
        const uint8_t* qh = b.qh + 32 * half;
        int8_t* o = out + 128 * half;
        for (int l = 0; l < 32; ++l) {
            o[l] = static_cast<int8_t>(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
            o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

// Unpack the 16 6-bit Q3_K scales (stored biased by 32) into signed values.
// Bytes 0-7: low nibbles of scales 0-7 (low half) and 8-15 (high half); bytes 8-11:
// the top 2 bits, scale j at bits 2*(j/4) of byte 8 + j%4.
inline void unpack_q3k_scales(const uint8_t* s, int8_t out[16]) {
    for (int j = 0; j < 16; ++j) {
        const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
    }
}

// The K-quant reference quantizers (kquants_quantize.cpp): ggml's quantize_row_*_ref.
void quantize_row_q2_k(const float* src, void* dst, int64_t n);
void quantize_row_q3_k(const float* src, void* dst, int64_t n);
void quantize_row_q4_k(const float* src, void* dst, int64_t n);
void quantize_row_q5_k(const float* src, void* dst, int64_t n);
void quantize_row_q6_k(const float* src, void* dst, int64_t n);
void quantize_row_q8_k(const float* src, void* dst, int64_t n);

}  // namespace hearth::scalar
