// MXFP4 (ggml type 39, OCP microscaling FP4, gpt-oss's expert weights): the block layout
// and E8M0 scale read exactly as the format defines them, values on the grid quantize back
// to the same bytes, and the dot product with Q8_0 activations is the exact integer sum
// times the two block scales.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/quants.h"
#include "tensor/types.h"
#include "test_quants_common.h"

namespace hearth {
namespace {

using test::ref_kernels;

TEST(Mxfp4, TypeTraits) {
    const TypeTraits& t = traits(GgmlType::MXFP4);
    EXPECT_STREQ(t.name, "mxfp4");
    EXPECT_EQ(t.block_size, 32);
    EXPECT_EQ(t.type_size, 17u);
    EXPECT_TRUE(t.quantized);
    EXPECT_TRUE(t.computable);
    EXPECT_EQ(t.vec_dot_type, GgmlType::Q8_0);
    EXPECT_EQ(type_from_name("MXFP4"), GgmlType::MXFP4);
    EXPECT_EQ(row_size(GgmlType::MXFP4, 2880), 90u * 17u);
}

TEST(Mxfp4, E8M0ScaleIsAPowerOfTwoForEveryByte) {
    for (int e = 0; e < 256; ++e)
        EXPECT_EQ(mxfp4_half_scale(static_cast<uint8_t>(e)), std::ldexp(1.0f, e - 128)) << e;
}

TEST(Mxfp4, LowNibbleIsElementJHighIsJPlus16AndBit3IsTheSign) {
    BlockMXFP4 b{};
    b.e = 127 + 3;  // scale 2^3
    const float mag[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
    std::vector<float> y(32);
    ref_kernels(GgmlType::MXFP4).to_float(&b, y.data(), 32);
    for (int j = 0; j < 16; ++j) {
        const int lo = j, hi = 15 - j;
        const float want_lo = (lo & 8 ? -1.0f : 1.0f) * mag[lo & 7] * 8.0f;
        const float want_hi = (hi & 8 ? -1.0f : 1.0f) * mag[hi & 7] * 8.0f;
        EXPECT_EQ(y[j], want_lo) << j;
        EXPECT_EQ(y[j + 16], want_hi) << j;
    }
}

TEST(Mxfp4, GridValuesQuantizeBackToTheSameBytes) {
    // A block whose largest magnitude is 6 * 2^k (so the exponent is exactly k + 127) and
    // whose values all lie on the E2M1 grid comes back bit for bit.
    for (int k : {-20, -3, 0, 5, 40}) {
        BlockMXFP4 b{};
        b.e = static_cast<uint8_t>(127 + k);
        for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(((j * 5 + 3) % 16) | ((j * 7 + 1) % 16) << 4);
        b.qs[0] = 0x07;  // +6 at element 0 fixes the exponent; -0 never appears (it requantizes as +0)
        for (int j = 0; j < 16; ++j) {
            if ((b.qs[j] & 0xF) == 8) b.qs[j] = static_cast<uint8_t>(b.qs[j] & 0xF0);
            if ((b.qs[j] >> 4) == 8) b.qs[j] = static_cast<uint8_t>(b.qs[j] & 0x0F);
        }
        std::vector<float> y(32);
        ref_kernels(GgmlType::MXFP4).to_float(&b, y.data(), 32);
        BlockMXFP4 back{};
        ref_kernels(GgmlType::MXFP4).from_float(y.data(), &back, 32);
        EXPECT_EQ(0, std::memcmp(&b, &back, sizeof b)) << "k=" << k;
    }
}

TEST(Mxfp4, QuantizerPicksTheExponentAndNearestCode) {
    std::vector<float> x(32, 0.0f);
    x[0] = 5.0f;    // floor(log2 5) = 2 -> e = 127: codes are {0, .5, 1, 1.5, 2, 3, 4, 6}
    x[1] = -2.6f;   // nearest 3 (sign set)
    x[2] = 1.25f;   // tie between 1 and 1.5: the smaller magnitude
    x[3] = -0.2f;   // nearest 0: +0, not -0
    x[17] = 100.0f / 16.0f;  // 6.25 -> clamped to the largest code
    BlockMXFP4 b{};
    ref_kernels(GgmlType::MXFP4).from_float(x.data(), &b, 32);
    EXPECT_EQ(b.e, 127);
    EXPECT_EQ(b.qs[0] & 0xF, 6);   // 5 is as near 4 as 6: the first (4)
    EXPECT_EQ(b.qs[1] & 0xF, 8 | 5);
    EXPECT_EQ(b.qs[2] & 0xF, 2);
    EXPECT_EQ(b.qs[3] & 0xF, 0);
    EXPECT_EQ(b.qs[1] >> 4, 7);
}

TEST(Mxfp4, VecDotIsTheIntegerSumTimesBothScales) {
    const auto w = test::normal_row(1024, 71);
    const auto a = test::normal_row(1024, 72, 3.0f);
    const auto qw = test::quantize(GgmlType::MXFP4, w);
    const auto qa = test::quantize(GgmlType::Q8_0, a);
    const auto* wb = reinterpret_cast<const BlockMXFP4*>(qw.data());
    const auto* ab = reinterpret_cast<const BlockQ8_0*>(qa.data());
    float want = 0.0f;
    for (int b = 0; b < 1024 / 32; ++b) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j)
            sumi += kMxfp4Values[wb[b].qs[j] & 0xF] * ab[b].qs[j] + kMxfp4Values[wb[b].qs[j] >> 4] * ab[b].qs[j + 16];
        want += static_cast<float>(sumi) * (mxfp4_half_scale(wb[b].e) * fp16_to_fp32(ab[b].d));
    }
    EXPECT_EQ(ref_kernels(GgmlType::MXFP4).vec_dot(1024, qw.data(), qa.data()), want);
    // The active ISA's kernel (AVX2 where the CPU has it) sums the same exact block integers,
    // in another float order; and dequantizes to the same values.
    double mag = 0;
    const auto dw = test::dequantize(GgmlType::MXFP4, qw.data(), 1024);
    const auto da = test::dequantize(GgmlType::Q8_0, qa.data(), 1024);
    for (int i = 0; i < 1024; ++i) mag += std::fabs(double(dw[static_cast<size_t>(i)]) * da[static_cast<size_t>(i)]);
    EXPECT_NEAR(kernels(GgmlType::MXFP4).vec_dot(1024, qw.data(), qa.data()), want, 1e-6 * mag);
    std::vector<float> fast(1024);
    kernels(GgmlType::MXFP4).to_float(qw.data(), fast.data(), 1024);
    EXPECT_EQ(fast, dw);
}

}  // namespace
}  // namespace hearth
