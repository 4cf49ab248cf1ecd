// Scalar reference kernels for the 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1 and MXFP4.
//
// Layouts (all blocks of 32): a 4-bit byte qs[j] holds element j in its low nibble and
// element j+16 in its high nibble; Q5's qh is a little-endian u32 whose bit j is the 5th
// bit of element j. The quantizers are ggml's quantize_row_*_ref (what llama-quantize
// writes without an importance matrix), with the same float operations in the same
// order, so their bytes match. The dot products accumulate integers within a block and
// scale once per block, like ggml's portable C code.
#include <cmath>
#include <cstring>

#include "tensor/kernel_table.h"
#include "tensor/scalar/common.h"

namespace hearth {
namespace {

using scalar::half_to_float;

constexpr int kHalf = 16;  // elements per nibble half of a 32-element block

inline uint32_t load_qh(const uint8_t qh[4]) {
    uint32_t v;
    std::memcpy(&v, qh, 4);
    return v;
}

inline void store_qh(uint8_t qh[4], uint32_t v) { std::memcpy(qh, &v, 4); }

// Value with the largest magnitude (the first one on ties), keeping its sign.
inline float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

inline void min_max(const float* x, int n, float& mn, float& mx) {
    mn = 3.402823466e+38f;
    mx = -3.402823466e+38f;
    for (int j = 0; j < n; ++j) {
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
}

inline float abs_max(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
    return amax;
}

// ============================== Q4_0: x = d * (q - 8)

void q4_0_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i, dst += QK4_0) {
        const float d = half_to_float(b[i].d);
        for (int j = 0; j < kHalf; ++j) {
            dst[j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
            dst[j + kHalf] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void q4_0_from_float(const float* src, void* dst, int64_t n) {
    BlockQ4_0* b = static_cast<BlockQ4_0*>(dst);
    for (int64_t i = 0; i < n / QK4_0; ++i, src += QK4_0) {
        // The extreme value maps to -8 exactly, so the full range [-8, 7] is used.
        const float d = signed_absmax(src, QK4_0) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < kHalf; ++j) {
            const int q0 = static_cast<int8_t>(src[j] * id + 8.5f);
            const int q1 = static_cast<int8_t>(src[j + kHalf] * id + 8.5f);
            b[i].qs[j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

float q4_0_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ4_0* x = static_cast<const BlockQ4_0*>(w);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        int sumi = 0;
        for (int j = 0; j < kHalf; ++j) {
            sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + kHalf];
        }
        sum += static_cast<float>(sumi) * half_to_float(x[i].d) * half_to_float(y[i].d);
    }
    return sum;
}

// ============================== Q4_1: x = d * q + m

void q4_1_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
    for (int64_t i = 0; i < n / QK4_1; ++i, dst += QK4_1) {
        const float d = half_to_float(b[i].d);
        const float m = half_to_float(b[i].m);
        for (int j = 0; j < kHalf; ++j) {
            dst[j] = static_cast<float>(b[i].qs[j] & 0xF) * d + m;
            dst[j + kHalf] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void q4_1_from_float(const float* src, void* dst, int64_t n) {
    BlockQ4_1* b = static_cast<BlockQ4_1*>(dst);
    for (int64_t i = 0; i < n / QK4_1; ++i, src += QK4_1) {
        float mn, mx;
        min_max(src, QK4_1, mn, mx);
        const float d = (mx - mn) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < kHalf; ++j) {
            const int q0 = static_cast<int8_t>((src[j] - mn) * id + 0.5f);
            const int q1 = static_cast<int8_t>((src[j + kHalf] - mn) * id + 0.5f);
            b[i].qs[j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
        }
    }
}

float q4_1_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ4_1* x = static_cast<const BlockQ4_1*>(w);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_1; ++i) {
        int sumi = 0;
        for (int j = 0; j < kHalf; ++j) {
            sumi += (x[i].qs[j] & 0xF) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + kHalf];
        }
        // sum_j (d q_j + m) a_j = d * da * sumi + m * (da * sum_j qa_j), the last factor
        // being the activation block's precomputed s.
        sum += half_to_float(x[i].d) * half_to_float(y[i].d) * static_cast<float>(sumi) +
               half_to_float(x[i].m) * half_to_float(y[i].s);
    }
    return sum;
}

// ============================== Q5_0: x = d * (q - 16), q 5 bits

void q5_0_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ5_0* b = static_cast<const BlockQ5_0*>(src);
    for (int64_t i = 0; i < n / QK5_0; ++i, dst += QK5_0) {
        const float d = half_to_float(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            dst[j] = static_cast<float>(((b[i].qs[j] & 0xF) | h0) - 16) * d;
            dst[j + kHalf] = static_cast<float>(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void q5_0_from_float(const float* src, void* dst, int64_t n) {
    BlockQ5_0* b = static_cast<BlockQ5_0*>(dst);
    for (int64_t i = 0; i < n / QK5_0; ++i, src += QK5_0) {
        const float d = signed_absmax(src, QK5_0) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < kHalf; ++j) {
            int q0 = static_cast<int8_t>(src[j] * id + 16.5f);
            int q1 = static_cast<int8_t>(src[j + kHalf] * id + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
            qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kHalf);
        }
        store_qh(b[i].qh, qh);
    }
}

float q5_0_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ5_0* x = static_cast<const BlockQ5_0*>(w);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK5_0; ++i) {
        const uint32_t qh = load_qh(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            sumi += (((x[i].qs[j] & 0xF) | h0) - 16) * y[i].qs[j];
            sumi += (((x[i].qs[j] >> 4) | h1) - 16) * y[i].qs[j + kHalf];
        }
        sum += half_to_float(x[i].d) * half_to_float(y[i].d) * static_cast<float>(sumi);
    }
    return sum;
}

// ============================== Q5_1: x = d * q + m, q 5 bits

void q5_1_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ5_1* b = static_cast<const BlockQ5_1*>(src);
    for (int64_t i = 0; i < n / QK5_1; ++i, dst += QK5_1) {
        const float d = half_to_float(b[i].d);
        const float m = half_to_float(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            dst[j] = static_cast<float>((b[i].qs[j] & 0xF) | h0) * d + m;
            dst[j + kHalf] = static_cast<float>((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void q5_1_from_float(const float* src, void* dst, int64_t n) {
    BlockQ5_1* b = static_cast<BlockQ5_1*>(dst);
    for (int64_t i = 0; i < n / QK5_1; ++i, src += QK5_1) {
        float mn, mx;
        min_max(src, QK5_1, mn, mx);
        const float d = (mx - mn) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        uint32_t qh = 0;
        for (int j = 0; j < kHalf; ++j) {
            // ggml does not clamp here: (x - min) * id + 0.5 stays below 32 for finite input.
            const int q0 = static_cast<uint8_t>((src[j] - mn) * id + 0.5f);
            const int q1 = static_cast<uint8_t>((src[j + kHalf] - mn) * id + 0.5f);
            b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
            qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kHalf);
        }
        store_qh(b[i].qh, qh);
    }
}

float q5_1_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ5_1* x = static_cast<const BlockQ5_1*>(w);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK5_1; ++i) {
        const uint32_t qh = load_qh(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            sumi += ((x[i].qs[j] & 0xF) | h0) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) | h1) * y[i].qs[j + kHalf];
        }
        sum += half_to_float(x[i].d) * half_to_float(y[i].d) * static_cast<float>(sumi) +
               half_to_float(x[i].m) * half_to_float(y[i].s);
    }
    return sum;
}

// ============================== Q8_0: x = d * q, q in [-127, 127]

void q8_0_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i, dst += QK8_0) {
        const float d = half_to_float(b[i].d);
        for (int j = 0; j < QK8_0; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

void q8_0_from_float(const float* src, void* dst, int64_t n) {
    BlockQ8_0* b = static_cast<BlockQ8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i, src += QK8_0) {
        const float d = abs_max(src, QK8_0) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = static_cast<int8_t>(std::round(src[j] * id));
    }
}

float q8_0_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ8_0* x = static_cast<const BlockQ8_0*>(w);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
        sum += static_cast<float>(sumi) * (half_to_float(x[i].d) * half_to_float(y[i].d));
    }
    return sum;
}

// ============================== Q8_1: Q8_0 plus s = d * sum(q)

void q8_1_to_float(const void* src, float* dst, int64_t n) {
    const BlockQ8_1* b = static_cast<const BlockQ8_1*>(src);
    for (int64_t i = 0; i < n / QK8_1; ++i, dst += QK8_1) {
        const float d = half_to_float(b[i].d);
        for (int j = 0; j < QK8_1; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

void q8_1_from_float(const float* src, void* dst, int64_t n) {
    BlockQ8_1* b = static_cast<BlockQ8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i, src += QK8_1) {
        const float d = abs_max(src, QK8_1) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            b[i].qs[j] = static_cast<int8_t>(std::round(src[j] * id));
            sum += b[i].qs[j];
        }
        b[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
}

// Q8_1 x Q8_1 (ggml has no such kernel; defined for completeness, like Q8_0's).
float q8_1_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockQ8_1* x = static_cast<const BlockQ8_1*>(w);
    const BlockQ8_1* y = static_cast<const BlockQ8_1*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        int sumi = 0;
        for (int j = 0; j < QK8_1; ++j) sumi += x[i].qs[j] * y[i].qs[j];
        sum += static_cast<float>(sumi) * (half_to_float(x[i].d) * half_to_float(y[i].d));
    }
    return sum;
}

// ============================== MXFP4: x = E2M1(q) * 2^(e - 127), q 4 bits (sign + 3)

void mxfp4_to_float(const void* src, float* dst, int64_t n) {
    const BlockMXFP4* b = static_cast<const BlockMXFP4*>(src);
    for (int64_t i = 0; i < n / QK_MXFP4; ++i, dst += QK_MXFP4) {
        const float d = mxfp4_half_scale(b[i].e);
        for (int j = 0; j < kHalf; ++j) {
            dst[j] = static_cast<float>(kMxfp4Values[b[i].qs[j] & 0xF]) * d;
            dst[j + kHalf] = static_cast<float>(kMxfp4Values[b[i].qs[j] >> 4]) * d;
        }
    }
}

// The shared exponent puts the block's largest magnitude in [4, 8) x 2^(e-127), so it lands
// on one of the top codes (4 or 6, or the clamped 6); each value then takes the code
// nearest to it (the first in table order on a tie, so +0 before -0 and the smaller
// magnitude between two codes). This is the reference quantizer gpt-oss GGUFs are made with.
uint8_t mxfp4_nearest(float x, float d) {
    uint8_t best = 0;
    float best_err = std::fabs(x - d * static_cast<float>(kMxfp4Values[0]));
    for (uint8_t c = 1; c < 16; ++c) {
        const float err = std::fabs(x - d * static_cast<float>(kMxfp4Values[c]));
        if (err < best_err) {
            best_err = err;
            best = c;
        }
    }
    return best;
}

void mxfp4_from_float(const float* src, void* dst, int64_t n) {
    BlockMXFP4* b = static_cast<BlockMXFP4*>(dst);
    for (int64_t i = 0; i < n / QK_MXFP4; ++i, src += QK_MXFP4) {
        const float amax = abs_max(src, QK_MXFP4);
        int e = amax > 0.0f ? static_cast<int>(std::floor(std::log2(amax))) - 2 + 127 : 0;
        e = e < 0 ? 0 : e > 254 ? 254 : e;
        b[i].e = static_cast<uint8_t>(e);
        const float d = mxfp4_half_scale(b[i].e);
        for (int j = 0; j < kHalf; ++j)
            b[i].qs[j] = static_cast<uint8_t>(mxfp4_nearest(src[j], d) | mxfp4_nearest(src[j + kHalf], d) << 4);
    }
}

// MXFP4 x Q8_0: integer sum of the doubled codes times the int8 activations per block, then
// one scale (the half scale times the activation block's scale), as ggml's portable code.
float mxfp4_vec_dot(int64_t n, const void* w, const void* a) {
    const BlockMXFP4* x = static_cast<const BlockMXFP4*>(w);
    const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_MXFP4; ++i) {
        int sumi = 0;
        for (int j = 0; j < kHalf; ++j)
            sumi += kMxfp4Values[x[i].qs[j] & 0xF] * y[i].qs[j] + kMxfp4Values[x[i].qs[j] >> 4] * y[i].qs[j + kHalf];
        sum += static_cast<float>(sumi) * (mxfp4_half_scale(x[i].e) * half_to_float(y[i].d));
    }
    return sum;
}

}  // namespace

void register_scalar_block_kernels(KernelTable& t) {
    t[GgmlType::Q4_0] = {q4_0_to_float, q4_0_from_float, q4_0_vec_dot};
    t[GgmlType::Q4_1] = {q4_1_to_float, q4_1_from_float, q4_1_vec_dot};
    t[GgmlType::Q5_0] = {q5_0_to_float, q5_0_from_float, q5_0_vec_dot};
    t[GgmlType::Q5_1] = {q5_1_to_float, q5_1_from_float, q5_1_vec_dot};
    t[GgmlType::Q8_0] = {q8_0_to_float, q8_0_from_float, q8_0_vec_dot};
    t[GgmlType::Q8_1] = {q8_1_to_float, q8_1_from_float, q8_1_vec_dot};
    t[GgmlType::MXFP4] = {mxfp4_to_float, mxfp4_from_float, mxfp4_vec_dot};
}

}  // namespace hearth
