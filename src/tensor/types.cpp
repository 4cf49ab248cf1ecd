#include "tensor/types.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hearth {
namespace {

using T = GgmlType;

// Every ggml type id Hearth knows. Types with computable=false are recognised (so a file
// holding them can be opened and inspected) but have no kernels.
constexpr TypeTraits kTraits[] = {
    {T::F32, "f32", 1, 4, false, true, T::F32},
    {T::F16, "f16", 1, 2, false, true, T::F16},
    {T::Q4_0, "q4_0", QK4_0, sizeof(BlockQ4_0), true, true, T::Q8_0},
    {T::Q4_1, "q4_1", QK4_1, sizeof(BlockQ4_1), true, true, T::Q8_1},
    {T::Q5_0, "q5_0", QK5_0, sizeof(BlockQ5_0), true, true, T::Q8_0},
    {T::Q5_1, "q5_1", QK5_1, sizeof(BlockQ5_1), true, true, T::Q8_1},
    {T::Q8_0, "q8_0", QK8_0, sizeof(BlockQ8_0), true, true, T::Q8_0},
    {T::Q8_1, "q8_1", QK8_1, sizeof(BlockQ8_1), true, true, T::Q8_1},
    {T::Q2_K, "q2_K", QK_K, sizeof(BlockQ2_K), true, true, T::Q8_K},
    {T::Q3_K, "q3_K", QK_K, sizeof(BlockQ3_K), true, true, T::Q8_K},
    {T::Q4_K, "q4_K", QK_K, sizeof(BlockQ4_K), true, true, T::Q8_K},
    {T::Q5_K, "q5_K", QK_K, sizeof(BlockQ5_K), true, true, T::Q8_K},
    {T::Q6_K, "q6_K", QK_K, sizeof(BlockQ6_K), true, true, T::Q8_K},
    {T::Q8_K, "q8_K", QK_K, sizeof(BlockQ8_K), true, true, T::Q8_K},
    {T::IQ2_XXS, "iq2_xxs", QK_K, 66, true, false, T::Q8_K},
    {T::IQ2_XS, "iq2_xs", QK_K, 74, true, false, T::Q8_K},
    {T::IQ3_XXS, "iq3_xxs", QK_K, 98, true, false, T::Q8_K},
    {T::IQ1_S, "iq1_s", QK_K, 50, true, false, T::Q8_K},
    {T::IQ4_NL, "iq4_nl", 32, 18, true, false, T::Q8_0},
    {T::IQ3_S, "iq3_s", QK_K, 110, true, false, T::Q8_K},
    {T::IQ2_S, "iq2_s", QK_K, 82, true, false, T::Q8_K},
    {T::IQ4_XS, "iq4_xs", QK_K, 136, true, false, T::Q8_K},
    {T::I8, "i8", 1, 1, false, false, T::I8},
    {T::I16, "i16", 1, 2, false, false, T::I16},
    {T::I32, "i32", 1, 4, false, false, T::I32},
    {T::I64, "i64", 1, 8, false, false, T::I64},
    {T::F64, "f64", 1, 8, false, false, T::F64},
    {T::IQ1_M, "iq1_m", QK_K, 56, true, false, T::Q8_K},
    {T::BF16, "bf16", 1, 2, false, true, T::BF16},
    {T::TQ1_0, "tq1_0", QK_K, 54, true, false, T::Q8_K},
    {T::TQ2_0, "tq2_0", QK_K, 66, true, false, T::Q8_K},
    {T::MXFP4, "mxfp4", QK_MXFP4, sizeof(BlockMXFP4), true, true, T::Q8_0},
};

}  // namespace

const TypeTraits* type_traits(uint32_t id) {
    for (const auto& t : kTraits)
        if (static_cast<uint32_t>(t.type) == id) return &t;
    return nullptr;
}

const TypeTraits& traits(GgmlType t) {
    const TypeTraits* tr = type_traits(t);
    if (!tr) throw std::invalid_argument("unknown tensor type id " + std::to_string(static_cast<uint32_t>(t)));
    return *tr;
}

const char* type_name(GgmlType t) {
    const TypeTraits* tr = type_traits(t);
    return tr ? tr->name : "unknown";
}

std::optional<GgmlType> type_from_name(std::string_view name) {
    for (const auto& t : kTraits) {
        std::string_view n = t.name;
        if (n.size() != name.size()) continue;
        bool eq = true;
        for (size_t i = 0; i < n.size() && eq; ++i) {
            char a = n[i], b = name[i];
            if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z') b = char(b - 'A' + 'a');
            eq = a == b;
        }
        if (eq) return t.type;
    }
    return std::nullopt;
}

size_t row_size(GgmlType t, int64_t n) {
    const TypeTraits& tr = traits(t);
    if (n % tr.block_size != 0)
        throw std::invalid_argument(std::string("row of ") + std::to_string(n) + " elements is not a multiple of " +
                                    tr.name + "'s block size " + std::to_string(tr.block_size));
    return static_cast<size_t>(n / tr.block_size) * tr.type_size;
}

float fp16_to_fp32(fp16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            mant &= 0x3ffu;
            bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | mant << 13;
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13;  // inf / nan
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

fp16_t fp32_to_fp16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) {  // inf or nan
        const uint32_t mant = absx & 0x7fffffu;
        return static_cast<fp16_t>(sign | 0x7c00u | (mant ? (0x200u | (mant >> 13)) : 0u));
    }
    if (absx >= 0x477ff000u) return static_cast<fp16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (absx < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
        if (absx < 0x33000000u) return static_cast<fp16_t>(sign);  // < 2^-25: rounds to zero
        const uint32_t e = absx >> 23;
        const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - e;  // 14..24 (value = mant * 2^(e-150), half sub unit 2^-24)
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) ++h;
        return static_cast<fp16_t>(sign | h);
    }
    uint32_t h = ((absx >> 23) - 112) << 10 | ((absx >> 13) & 0x3ffu);
    const uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry into exponent is correct
    return static_cast<fp16_t>(sign | h);
}

bf16_t fp32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 64);  // quiet nan
    return static_cast<bf16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

}  // namespace hearth
