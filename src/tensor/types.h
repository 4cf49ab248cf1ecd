// tensor/ owns tensor element types: the GGUF/ggml type ids, bit-exact quantized block
// layouts, per-type traits (block size, bytes per block), F16/BF16 conversion, and the
// kernels over them (quantize, dequantize, dot products, matrix multiply) with a scalar
// reference for every type and ISA-specific fast paths picked at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth {

// Type ids exactly as stored in GGUF tensor infos (ggml's enum ggml_type).
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    // 4 and 5 were Q4_2 / Q4_3, removed from the format.
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,  // OCP microscaling FP4 (gpt-oss experts)
};

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;
constexpr int QK_K = 256;
constexpr int QK_MXFP4 = 32;
constexpr int K_SCALE_SIZE = 12;

using fp16_t = uint16_t;  // IEEE half, stored as bits
using bf16_t = uint16_t;  // bfloat16, stored as bits

// ---- Block layouts (must match GGUF byte for byte; sizes are static_asserted) ----

struct BlockQ4_0 {
    fp16_t d;
    uint8_t qs[QK4_0 / 2];  // low nibble: element j, high nibble: element j+16
};
struct BlockQ4_1 {
    fp16_t d;
    fp16_t m;
    uint8_t qs[QK4_1 / 2];
};
struct BlockQ5_0 {
    fp16_t d;
    uint8_t qh[4];  // 5th bit of each of the 32 elements
    uint8_t qs[QK5_0 / 2];
};
struct BlockQ5_1 {
    fp16_t d;
    fp16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {
    fp16_t d;
    int8_t qs[QK8_0];
};
struct BlockQ8_1 {
    fp16_t d;
    fp16_t s;  // d * sum(qs)
    int8_t qs[QK8_1];
};
struct BlockQ2_K {
    uint8_t scales[QK_K / 16];  // 4-bit scale (low) and 4-bit min (high) per 16 elements
    uint8_t qs[QK_K / 4];
    fp16_t d;
    fp16_t dmin;
};
struct BlockQ3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];  // 16 6-bit scales
    fp16_t d;
};
struct BlockQ4_K {
    fp16_t d;
    fp16_t dmin;
    uint8_t scales[K_SCALE_SIZE];  // 8 6-bit scales and 8 6-bit mins
    uint8_t qs[QK_K / 2];
};
struct BlockQ5_K {
    fp16_t d;
    fp16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
struct BlockQ6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    fp16_t d;
};
// MXFP4: 32 E2M1 codes sharing one E8M0 exponent; w = 2^(e-127) * E2M1(code). Code j in the
// low nibble of qs[j], code j+16 in its high nibble (the Q4_0 order).
struct BlockMXFP4 {
    uint8_t e;
    uint8_t qs[QK_MXFP4 / 2];
};
struct BlockQ8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];  // sum of each group of 16 qs
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockMXFP4) == 17);

// ---- Type traits ----

struct TypeTraits {
    GgmlType type;
    const char* name;      // ggml's name: "f32", "q4_0", "q4_K", ...
    int block_size;        // elements per block
    size_t type_size;      // bytes per block
    bool quantized;
    bool computable;       // Hearth has kernels for it (dequantize/dot)
    GgmlType vec_dot_type; // activation type its dot product consumes
};

// Traits of a type id, or nullptr when the id is not a known ggml type.
const TypeTraits* type_traits(uint32_t id);
inline const TypeTraits* type_traits(GgmlType t) { return type_traits(static_cast<uint32_t>(t)); }
const TypeTraits& traits(GgmlType t);  // throws std::invalid_argument for unknown ids

const char* type_name(GgmlType t);
std::optional<GgmlType> type_from_name(std::string_view name);  // case-insensitive

// Bytes of a row of n elements (n must be a multiple of the block size).
size_t row_size(GgmlType t, int64_t n);

// ---- Scalar conversions ----

float fp16_to_fp32(fp16_t h);
fp16_t fp32_to_fp16(float f);  // round to nearest even, like F16C's _cvtss_sh(x, 0)
inline float bf16_to_fp32(bf16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}
bf16_t fp32_to_bf16(float f);  // round to nearest even; NaN stays NaN (quiet)

// MXFP4's E2M1 code values, doubled so they are integers: {0, .5, 1, 1.5, 2, 3, 4, 6} x 2,
// then the same negated (bit 3 is the sign). A weight is kMxfp4Values[code] * 2^(e - 128).
inline constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
// 2^(e - 128), exact for every E8M0 byte (e = 0 and 1 give subnormal floats; 255, which the
// format reserves for NaN, gives 2^127).
inline float mxfp4_half_scale(uint8_t e) {
    const uint32_t bits = e >= 2 ? static_cast<uint32_t>(e - 1) << 23 : 0x00200000u << e;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

}  // namespace hearth
