// Scalar reference kernels for the K-quants (super-blocks of 256): dequantization and
// dot products with Q8_K activations for Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K. The
// reference quantizers (scale searches) live in kquants_quantize.cpp.
//
// Element e (0..255) of a super-block is stored as follows:
//   Q2_K  2 bits: qs[32*(e/128) + e%32] >> 2*((e%128)/32); scale/min byte e/16
//                 (low nibble scale, high nibble min); x = d*sc*q - dmin*m.
//   Q3_K  as Q2_K for the low 2 bits, plus hmask[e%32] bit e/32 (set: q, clear: q-4);
//         16 signed 6-bit scales (biased by 32); x = d*sc*q.
//   Q4_K  qs[32*(e/64) + e%32], low nibble when e%64 < 32; 8 6-bit scales and mins,
//         sub-block e/32; x = d*sc*q - dmin*m.
//   Q5_K  as Q4_K plus qh[e%32] bit e/32 as the 5th bit.
//   Q6_K  low 4 bits in ql[64*(e/128) + e%32 + 32*(r&1)] (r = (e%128)/32; low nibble
//         when r < 2), high 2 bits in qh[32*(e/128) + e%32] >> 2*r; int8 scale e/16;
//         x = d*sc*(q-32).
//   Q8_K  float d, int8 qs, and the sums of each 16 qs (for the min terms of Q2/4/5_K).
//
// The dot products follow ggml's portable C code: integer sums within a super-block,
// accumulated in 8 interleaved lanes (element e goes to lane e%8) that are scaled into 8
// float partial sums, added together at the end. Their float rounding therefore matches
// ggml's reference numerics.
#include <cstring>

#include "tensor/kernel_table.h"
#include "tensor/scalar/common.h"

namespace hearth {
namespace {

using scalar::half_to_float;
using scalar::unpack_q3k_scales;
using scalar::unpack_q6;
using scalar::unpack_scale_min_k4;

constexpr int kLanes = 8;

// lanes[e % 8] += scales[e / G] * q[e] * a[e] over a super-block of 256.
template <int G, class S>
inline void accumulate_lanes(const int8_t* q, const int8_t* a, const S* scales, int32_t lanes[kLanes]) {
    for (int g = 0; g < QK_K / G; ++g) {
        const int32_t sc = scales[g];
        for (int k = 0; k < G; k += kLanes) {
            const int base = g * G + k;
            for (int l = 0; l < kLanes; ++l) lanes[l] += sc * (q[base + l] * a[base + l]);
        }
    }
}

// Low 2 bits of element e of a Q2_K/Q3_K super-block, for all 256 elements.
inline void unpack_2bit(const uint8_t* qs, int8_t* out) {
    for (int half = 0; half < 2; ++half) {
        for (int r = 0; r < 4; ++r) {
            for (int l = 0; l < 32; ++l) out[half * 128 + r * 32 + l] = static_cast<int8_t>((qs[half * 32 + l] >> (2 * r)) & 3);
        }
    }
}

// 4-bit values of a Q4_K/Q5_K super-block.
inline void unpack_4bit(const uint8_t* qs, int8_t* out) {
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) {
            out[c * 64 + l] = static_cast<int8_t>(qs[c * 32 + l] & 0xF);
            out[c * 64 + 32 + l] = static_cast<int8_t>(qs[c * 32 + l] >> 4);
        }
    }
}

// Q3_K: level - 4 where the element's hmask bit is clear (element e: byte e%32, bit e/32).
inline void apply_q3_hmask(const uint8_t* hmask, int8_t* q) {
    for (int b = 0; b < 8; ++b) {
        for (int l = 0; l < 32; ++l) q[32 * b + l] = static_cast<int8_t>(q[32 * b + l] - 4 + 4 * ((hmask[l] >> b) & 1));
    }
}

// Q5_K: add the 5th bit (element e: qh byte e%32, bit e/32).
inline void apply_q5_high_bits(const uint8_t* qh, int8_t* q) {
    for (int b = 0; b < 8; ++b) {
        for (int l = 0; l < 32; ++l) q[32 * b + l] = static_cast<int8_t>(q[32 * b + l] + 16 * ((qh[l] >> b) & 1));
    }
}

// ============================== Q2_K

void q2_k_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ2_K* b = static_cast<const BlockQ2_K*>(src);
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = half_to_float(b[i].d);
        const float dmin = half_to_float(b[i].dmin);
        unpack_2bit(b[i].qs, q);
        for (int s = 0; s < QK_K / 16; ++s) {
            const float dl = d * static_cast<float>(b[i].scales[s] & 0xF);
            const float ml = dmin * static_cast<float>(b[i].scales[s] >> 4);
            for (int l = 0; l < 16; ++l) dst[16 * s + l] = dl * static_cast<float>(q[16 * s + l]) - ml;
        }
    }
}

float q2_k_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ2_K* x = static_cast<const BlockQ2_K*>(w);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int summs = 0;  // sum over sub-blocks of min * sum(a)
        for (int s = 0; s < QK_K / 16; ++s) summs += y[i].bsums[s] * (x[i].scales[s] >> 4);
        const float dall = y[i].d * half_to_float(x[i].d);
        const float dmin = y[i].d * half_to_float(x[i].dmin);
        const uint8_t* qs = x[i].qs;
        const int8_t* q8 = y[i].qs;
        int isum = 0;
        for (int half = 0; half < 2; ++half) {
            for (int r = 0; r < 4; ++r) {
                const int shift = 2 * r;
                const int s = half * 8 + r * 2;
                int lo = 0, hi = 0;
                for (int l = 0; l < 16; ++l) lo += q8[l] * ((qs[l] >> shift) & 3);
                for (int l = 16; l < 32; ++l) hi += q8[l] * ((qs[l] >> shift) & 3);
                isum += (x[i].scales[s] & 0xF) * lo + (x[i].scales[s + 1] & 0xF) * hi;
                q8 += 32;
            }
            qs += 32;
        }
        sum += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
    }
    return sum;
}

// ============================== Q3_K

void q3_k_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ3_K* b = static_cast<const BlockQ3_K*>(src);
    int8_t q[QK_K];
    int8_t sc[16];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = half_to_float(b[i].d);
        unpack_2bit(b[i].qs, q);
        apply_q3_hmask(b[i].hmask, q);
        unpack_q3k_scales(b[i].scales, sc);
        for (int s = 0; s < QK_K / 16; ++s) {
            const float dl = d * static_cast<float>(sc[s]);
            for (int l = 0; l < 16; ++l) dst[16 * s + l] = dl * static_cast<float>(q[16 * s + l]);
        }
    }
}

float q3_k_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ3_K* x = static_cast<const BlockQ3_K*>(w);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
    int8_t q[QK_K];
    int8_t sc[16];
    float sums[kLanes] = {};
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack_2bit(x[i].qs, q);
        apply_q3_hmask(x[i].hmask, q);
        unpack_q3k_scales(x[i].scales, sc);
        int32_t lanes[kLanes] = {};
        accumulate_lanes<16>(q, y[i].qs, sc, lanes);
        const float d = half_to_float(x[i].d) * y[i].d;
        for (int l = 0; l < kLanes; ++l) sums[l] += d * static_cast<float>(lanes[l]);
    }
    float sum = 0.0f;
    for (int l = 0; l < kLanes; ++l) sum += sums[l];
    return sum;
}

// ============================== Q4_K / Q5_K (shared scale layout)

inline void unpack_scales_mins_k4(const uint8_t* packed, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 8; ++j) unpack_scale_min_k4(j, packed, sc[j], m[j]);
}

void q4_k_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ4_K* b = static_cast<const BlockQ4_K*>(src);
    int8_t q[QK_K];
    uint8_t sc[8], m[8];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = half_to_float(b[i].d);
        const float dmin = half_to_float(b[i].dmin);
        unpack_4bit(b[i].qs, q);
        unpack_scales_mins_k4(b[i].scales, sc, m);
        for (int s = 0; s < 8; ++s) {
            const float ds = d * static_cast<float>(sc[s]);
            const float ms = dmin * static_cast<float>(m[s]);
            for (int l = 0; l < 32; ++l) dst[32 * s + l] = ds * static_cast<float>(q[32 * s + l]) - ms;
        }
    }
}

void q5_k_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ5_K* b = static_cast<const BlockQ5_K*>(src);
    int8_t q[QK_K];
    uint8_t sc[8], m[8];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = half_to_float(b[i].d);
        const float dmin = half_to_float(b[i].dmin);
        unpack_4bit(b[i].qs, q);
        apply_q5_high_bits(b[i].qh, q);
        unpack_scales_mins_k4(b[i].scales, sc, m);
        for (int s = 0; s < 8; ++s) {
            const float ds = d * static_cast<float>(sc[s]);
            const float ms = dmin * static_cast<float>(m[s]);
            for (int l = 0; l < 32; ++l) dst[32 * s + l] = ds * static_cast<float>(q[32 * s + l]) - ms;
        }
    }
}

// Shared tail of the Q4_K/Q5_K dot product: q holds the 256 unsigned quants.
inline void k4_block_dot(const int8_t* q, const uint8_t* packed_scales, fp16_t d, fp16_t dmin, const BlockQ8_K& y,
                         float sums[kLanes], float& sum) {
    uint8_t sc[8], m[8];
    unpack_scales_mins_k4(packed_scales, sc, m);
    int summs = 0;
    for (int s = 0; s < QK_K / 16; ++s) summs += y.bsums[s] * m[s / 2];
    int32_t lanes[kLanes] = {};
    accumulate_lanes<32>(q, y.qs, sc, lanes);
    const float dd = half_to_float(d) * y.d;
    for (int l = 0; l < kLanes; ++l) sums[l] += dd * static_cast<float>(lanes[l]);
    const float dm = half_to_float(dmin) * y.d;
    sum -= dm * static_cast<float>(summs);
}

float q4_k_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
    int8_t q[QK_K];
    float sums[kLanes] = {};
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack_4bit(x[i].qs, q);
        k4_block_dot(q, x[i].scales, x[i].d, x[i].dmin, y[i], sums, sum);
    }
    for (int l = 0; l < kLanes; ++l) sum += sums[l];
    return sum;
}

float q5_k_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
    int8_t q[QK_K];
    float sums[kLanes] = {};
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack_4bit(x[i].qs, q);
        apply_q5_high_bits(x[i].qh, q);
        k4_block_dot(q, x[i].scales, x[i].d, x[i].dmin, y[i], sums, sum);
    }
    for (int l = 0; l < kLanes; ++l) sum += sums[l];
    return sum;
}

// ============================== Q6_K

void q6_k_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        const float d = half_to_float(b[i].d);
        unpack_q6(b[i], q);
        for (int s = 0; s < QK_K / 16; ++s) {
            const float ds = d * static_cast<float>(b[i].scales[s]);
            for (int l = 0; l < 16; ++l) dst[16 * s + l] = ds * static_cast<float>(q[16 * s + l]);
        }
    }
}

float q6_k_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
    int8_t q[QK_K];
    float sums[kLanes] = {};
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack_q6(x[i], q);
        int32_t lanes[kLanes] = {};
        accumulate_lanes<16>(q, y[i].qs, x[i].scales, lanes);
        const float d = half_to_float(x[i].d) * y[i].d;
        for (int l = 0; l < kLanes; ++l) sums[l] += d * static_cast<float>(lanes[l]);
    }
    float sum = 0.0f;
    for (int l = 0; l < kLanes; ++l) sum += sums[l];
    return sum;
}

// ============================== Q8_K

void q8_k_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ8_K* b = static_cast<const BlockQ8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        for (int j = 0; j < QK_K; ++j) dst[j] = b[i].d * static_cast<float>(b[i].qs[j]);
    }
}

// Q8_K x Q8_K (ggml has no such kernel; defined so every computable type has one).
float q8_k_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ8_K* x = static_cast<const BlockQ8_K*>(w);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int32_t sumi = 0;
        for (int j = 0; j < QK_K; ++j) sumi += x[i].qs[j] * y[i].qs[j];
        sum += static_cast<float>(sumi) * (x[i].d * y[i].d);
    }
    return sum;
}

}  // namespace

void register_scalar_kquant_kernels(KernelTable& t) {
    t[GgmlType::Q2_K] = {q2_k_to_float, scalar::quantize_row_q2_k, q2_k_vec_dot};
    t[GgmlType::Q3_K] = {q3_k_to_float, scalar::quantize_row_q3_k, q3_k_vec_dot};
    t[GgmlType::Q4_K] = {q4_k_to_float, scalar::quantize_row_q4_k, q4_k_vec_dot};
    t[GgmlType::Q5_K] = {q5_k_to_float, scalar::quantize_row_q5_k, q5_k_vec_dot};
    t[GgmlType::Q6_K] = {q6_k_to_float, scalar::quantize_row_q6_k, q6_k_vec_dot};
    t[GgmlType::Q8_K] = {q8_k_to_float, scalar::quantize_row_q8_k, q8_k_vec_dot};
}

}  // namespace hearth
