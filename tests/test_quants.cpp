// The scalar reference kernels of every computable tensor type: quantize -> dequantize
// error bounds, dot products against the float dot of the dequantized rows, special
// rows (zeros, outliers, tiny values), and hand-built blocks that pin the GGUF bit
// layouts. Real model files are covered in test_quants_files.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tensor/quants.h"
#include "tensor/types.h"
#include "test_quants_common.h"

namespace hearth {
namespace {

using test::dequantize;
using test::normal_row;
using test::quantize;
using test::ref_kernels;
using test::relative_rmse;

constexpr GgmlType kComputable[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q2_K,
    GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::MXFP4,
};

// Row lengths: every one a multiple of 256 so all types take them.
constexpr int64_t kLengths[] = {256, 768, 4096};
constexpr int kRowsPerLength = 8;

std::string param_name(const testing::TestParamInfo<GgmlType>& info) { return type_name(info.param); }

float h2f(fp16_t h) { return fp16_to_fp32(h); }
fp16_t f2h(float f) { return fp32_to_fp16(f); }

// ------------------------------------------------------------------ kernel tables

TEST(QuantsKernels, EveryComputableTypeHasScalarKernels) {
    for (uint32_t id = 0; id < 40; ++id) {
        const TypeTraits* tr = type_traits(id);
        const TypeKernels& k = kernels_for(Isa::Scalar, static_cast<GgmlType>(id));
        if (tr && tr->computable) {
            EXPECT_TRUE(k.to_float && k.from_float && k.vec_dot) << tr->name;
        } else {
            EXPECT_FALSE(k.to_float || k.from_float || k.vec_dot) << id;
        }
    }
}

// ------------------------------------------------------------------ round trips

struct RoundTrip {
    double rel_rmse = 0;      // over all rows
    double max_rel_err = 0;   // max |error| / row RMS
};

RoundTrip measure_round_trip(GgmlType t, uint64_t seed_base) {
    double err2 = 0, sig2 = 0, max_rel = 0;
    for (int64_t n : kLengths) {
        for (int r = 0; r < kRowsPerLength; ++r) {
            const auto x = normal_row(n, seed_base + static_cast<uint64_t>(n * 100 + r));
            const auto q = quantize(t, x);
            const auto y = dequantize(t, q.data(), n);
            const double row_rms = test::rms(x);
            for (int64_t i = 0; i < n; ++i) {
                const double d = static_cast<double>(y[i]) - x[i];
                err2 += d * d;
                sig2 += static_cast<double>(x[i]) * x[i];
                max_rel = std::max(max_rel, std::fabs(d) / row_rms);
            }
        }
    }
    return {std::sqrt(err2 / sig2), max_rel};
}

class QuantsRoundTrip : public testing::TestWithParam<GgmlType> {};

TEST_P(QuantsRoundTrip, GaussianRowsWithinTheTypeBound) {
    const GgmlType t = GetParam();
    const RoundTrip rt = measure_round_trip(t, 1000);
    std::printf("[ measured ] %-5s rel RMSE %.5f  max |err|/rms %.4f  (bound %.5f)\n", type_name(t), rt.rel_rmse,
                rt.max_rel_err, test::rel_rmse_bound(t));
    if (t == GgmlType::F32) {
        EXPECT_EQ(rt.rel_rmse, 0.0);
    } else {
        EXPECT_LE(rt.rel_rmse, test::rel_rmse_bound(t));
        // Sanity floor: a bound far above the measurement would hide a regression.
        EXPECT_GE(rt.rel_rmse, test::rel_rmse_bound(t) * 0.5);
    }
}

INSTANTIATE_TEST_SUITE_P(AllComputable, QuantsRoundTrip, testing::ValuesIn(kComputable), param_name);

TEST(QuantsAccuracy, FloatTypesRoundToNearest) {
    const auto x = normal_row(4096, 5);
    const auto h = quantize(GgmlType::F16, x);
    const auto b = quantize(GgmlType::BF16, x);
    const auto yh = dequantize(GgmlType::F16, h.data(), 4096);
    const auto yb = dequantize(GgmlType::BF16, b.data(), 4096);
    for (size_t i = 0; i < x.size(); ++i) {
        const float ax = std::fabs(x[i]);
        // half: 11 significant bits (absolute 2^-25 in the subnormal range); bf16: 8.
        EXPECT_LE(std::fabs(yh[i] - x[i]), std::max(ax * 0x1p-11f, 0x1p-25f)) << i;
        EXPECT_LE(std::fabs(yb[i] - x[i]), ax * 0x1p-8f) << i;
        fp16_t hb;
        std::memcpy(&hb, h.data() + 2 * i, 2);
        EXPECT_EQ(hb, fp32_to_fp16(x[i]));
    }
    // The inline half decoder agrees with fp16_to_fp32 on every bit pattern (NaN payloads
    // compared as NaN).
    for (uint32_t u = 0; u < 65536; ++u) {
        const fp16_t v = static_cast<fp16_t>(u);
        float got;
        ref_kernels(GgmlType::F16).to_float(&v, &got, 1);
        const float want = fp16_to_fp32(v);
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << u;
        } else {
            uint32_t a, c;
            std::memcpy(&a, &got, 4);
            std::memcpy(&c, &want, 4);
            EXPECT_EQ(a, c) << u;
        }
    }
}

// Per-block max error bounds of the 32-element formats, derived from their definitions:
// the value grid step d, rounding (half a step), the clamp at the grid's far end (one
// step), and the fp16 rounding of the stored d (relative 2^-11, times the largest level)
// and of the stored min.
TEST(QuantsAccuracy, BlockFormatsMaxErrorPerBlock) {
    constexpr double kU = 1.0 / 2048;  // fp16 relative rounding
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q8_1}) {
        for (int r = 0; r < 16; ++r) {
            const auto x = normal_row(1024, 300 + static_cast<uint64_t>(r), r % 2 ? 0.02f : 3.0f);
            const auto q = quantize(t, x);
            const auto y = dequantize(t, q.data(), 1024);
            for (int b = 0; b < 1024 / 32; ++b) {
                const float* xb = x.data() + 32 * b;
                float amax = 0, smax = 0, mn = xb[0], mx = xb[0];
                for (int j = 0; j < 32; ++j) {
                    if (std::fabs(xb[j]) > amax) {
                        amax = std::fabs(xb[j]);
                        smax = xb[j];
                    }
                    mn = std::min(mn, xb[j]);
                    mx = std::max(mx, xb[j]);
                }
                const double eps = 1e-6 * amax;
                for (int j = 0; j < 32; ++j) {
                    const double err = std::fabs(static_cast<double>(y[32 * b + j]) - xb[j]);
                    double bound = 0;
                    switch (t) {
                        case GgmlType::Q4_0:
                        case GgmlType::Q5_0: {
                            const double levels = t == GgmlType::Q4_0 ? 8 : 16;
                            const double d = amax / levels;
                            // Values opposite in sign to the extreme can exceed the top level.
                            const bool clamped = xb[j] / smax < -(levels - 0.5) / levels;
                            bound = d * ((clamped ? 1.0 : 0.5) + levels * kU) + eps;
                            break;
                        }
                        case GgmlType::Q4_1:
                        case GgmlType::Q5_1: {
                            const double levels = t == GgmlType::Q4_1 ? 15 : 31;
                            const double d = (static_cast<double>(mx) - mn) / levels;
                            bound = d * (0.5 + levels * kU) + std::fabs(mn) * kU + eps;
                            break;
                        }
                        default: {  // Q8_0, Q8_1
                            const double d = amax / 127.0;
                            bound = d * (0.5 + 127 * kU) + eps;
                            break;
                        }
                    }
                    ASSERT_LE(err, bound) << type_name(t) << " row " << r << " block " << b << " elem " << j;
                }
            }
        }
    }
}

TEST(QuantsAccuracy, Q8KMaxErrorIsHalfAStep) {
    for (int r = 0; r < 8; ++r) {
        const auto x = normal_row(2048, 400 + static_cast<uint64_t>(r));
        const auto q = quantize(GgmlType::Q8_K, x);
        const auto y = dequantize(GgmlType::Q8_K, q.data(), 2048);
        const auto* blocks = reinterpret_cast<const BlockQ8_K*>(q.data());
        for (int b = 0; b < 2048 / QK_K; ++b) {
            float amax = 0;
            for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(x[QK_K * b + j]));
            EXPECT_FLOAT_EQ(std::fabs(blocks[b].d), amax / 127);
            for (int j = 0; j < QK_K; ++j) {
                EXPECT_LE(std::fabs(y[QK_K * b + j] - x[QK_K * b + j]), 0.5 * amax / 127 * (1 + 1e-5));
            }
            // bsums are the sums of each 16 quants.
            for (int g = 0; g < QK_K / 16; ++g) {
                int s = 0;
                for (int j = 0; j < 16; ++j) s += blocks[b].qs[16 * g + j];
                EXPECT_EQ(blocks[b].bsums[g], s);
            }
        }
    }
}

TEST(QuantsAccuracy, Q8_1StoresScaledSum) {
    const auto x = normal_row(512, 11);
    const auto q = quantize(GgmlType::Q8_1, x);
    const auto* blocks = reinterpret_cast<const BlockQ8_1*>(q.data());
    for (int b = 0; b < 512 / 32; ++b) {
        int s = 0;
        for (int j = 0; j < 32; ++j) s += blocks[b].qs[j];
        // d is stored rounded to fp16, s from the unrounded d (like ggml).
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
        EXPECT_EQ(blocks[b].s, f2h(static_cast<float>(s) * (amax / 127)));
        EXPECT_EQ(blocks[b].d, f2h(amax / 127));
    }
}

// Lower bit widths must be strictly worse, on the same rows.
TEST(QuantsAccuracy, KQuantErrorOrdersByBitWidth) {
    const GgmlType order[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
    double prev = 1e9;
    for (GgmlType t : order) {
        const double e = measure_round_trip(t, 2000).rel_rmse;
        EXPECT_LT(e, prev * 0.7) << type_name(t);  // each extra bit roughly halves the error
        prev = e;
    }
    // The K-quants beat the older formats of the same width.
    EXPECT_LT(measure_round_trip(GgmlType::Q4_K, 2000).rel_rmse, measure_round_trip(GgmlType::Q4_0, 2000).rel_rmse);
    EXPECT_LT(measure_round_trip(GgmlType::Q5_K, 2000).rel_rmse, measure_round_trip(GgmlType::Q5_0, 2000).rel_rmse);
}

// ------------------------------------------------------------------ dot products

class QuantsVecDot : public testing::TestWithParam<GgmlType> {};

// Tolerance for vec_dot against the exact dot of the dequantized rows: the float
// rounding of the per-block accumulation (a few ulps of the sum of |products|), plus,
// for Q4_1/Q5_1 with Q8_1 activations, the fp16 rounding of each activation block's
// stored s = d * sum(q), which the min term uses instead of the dequantized sum.
double vec_dot_tolerance(GgmlType wt, const std::vector<uint8_t>& qw, const std::vector<uint8_t>& qa,
                         const std::vector<float>& dw, const std::vector<float>& da) {
    const int64_t n = static_cast<int64_t>(dw.size());
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(dw[i]) * da[i]);
    const double blocks = static_cast<double>(n / traits(wt).block_size);
    double tol = (std::sqrt(blocks) + 4) * 0x1p-24 * mag;  // measured: < 0.4 ulp of mag
    if (wt == GgmlType::Q4_1 || wt == GgmlType::Q5_1) {
        const auto* ab = reinterpret_cast<const BlockQ8_1*>(qa.data());
        for (int64_t b = 0; b < n / 32; ++b) {
            const uint8_t* wb = qw.data() + b * traits(wt).type_size;
            fp16_t m;
            std::memcpy(&m, wb + 2, 2);  // Q4_1/Q5_1: d, then m
            // s = fp16(d * sum) vs the dequantized fp16(d) * sum: two fp16 roundings.
            tol += std::fabs(h2f(m)) * std::fabs(h2f(ab[b].s)) * 0x1p-10;
        }
    }
    return tol;
}

// For Q4_1/Q5_1 the dot ggml defines is sum_b (d_w d_a sumi_b + m_b s_b): the dequantized
// dot with each block's activation sum replaced by its stored s. That must hold to float
// rounding alone.
double q8_1_min_term_correction(GgmlType wt, const std::vector<uint8_t>& qw, const std::vector<uint8_t>& qa,
                                const std::vector<float>& da) {
    const int64_t n = static_cast<int64_t>(da.size());
    const auto* ab = reinterpret_cast<const BlockQ8_1*>(qa.data());
    double corr = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
        fp16_t m;
        std::memcpy(&m, qw.data() + b * traits(wt).type_size + 2, 2);
        double sum = 0;
        for (int j = 0; j < 32; ++j) sum += da[32 * b + j];
        corr += static_cast<double>(h2f(m)) * (static_cast<double>(h2f(ab[b].s)) - sum);
    }
    return corr;
}

// vec_dot(w, a) must equal the exact dot of the dequantized rows up to the float rounding
// of its per-block accumulation. For the Q8_1 activations of Q4_1/Q5_1 the min term uses
// the block's stored s = fp16(d * sum q), which may differ from the dequantized sum by
// fp16 rounding: that is added to the tolerance.
TEST_P(QuantsVecDot, MatchesDotOfDequantizedRows) {
    const GgmlType wt = GetParam();
    const GgmlType at = traits(wt).vec_dot_type;
    for (int64_t n : {256, 1024, 4096}) {
        for (int r = 0; r < 4; ++r) {
            const auto w = normal_row(n, 500 + static_cast<uint64_t>(n + r));
            const auto a = normal_row(n, 900 + static_cast<uint64_t>(n + r), 2.5f);
            const auto qw = quantize(wt, w);
            const auto qa = quantize(at, a);
            const auto dw = dequantize(wt, qw.data(), n);
            const auto da = dequantize(at, qa.data(), n);
            double exact = 0;
            for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(dw[i]) * da[i];
            const float got = ref_kernels(wt).vec_dot(n, qw.data(), qa.data());
            EXPECT_NEAR(got, exact, vec_dot_tolerance(wt, qw, qa, dw, da)) << type_name(wt) << " n=" << n << " row " << r;
            if (wt == GgmlType::Q4_1 || wt == GgmlType::Q5_1) {
                double mag = 0;
                for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(dw[i]) * da[i]);
                const double blocks = static_cast<double>(n / 32);
                EXPECT_NEAR(got, exact + q8_1_min_term_correction(wt, qw, qa, da), (std::sqrt(blocks) + 4) * 0x1p-24 * mag)
                    << type_name(wt) << " n=" << n << " row " << r;
            }
        }
    }
}

// And the whole chain (quantize the activations, dot) stays close to the float dot of
// the original rows, within what the two quantizations explain.
TEST_P(QuantsVecDot, CloseToFloatDot) {
    const GgmlType wt = GetParam();
    const GgmlType at = traits(wt).vec_dot_type;
    const int64_t n = 4096;
    const auto w = normal_row(n, 61);
    const auto a = normal_row(n, 62);
    double exact = 0;
    for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(w[i]) * a[i];
    const auto qw = quantize(wt, w);
    const auto qa = quantize(at, a);
    const float got = ref_kernels(wt).vec_dot(n, qw.data(), qa.data());
    // Error of a dot of independent Gaussian rows ~ sqrt(n) * (ew + ea), with ew/ea the
    // relative RMSEs; 5 standard deviations.
    const double ew = test::rel_rmse_bound(wt), ea = test::rel_rmse_bound(at);
    EXPECT_NEAR(got, exact, 5 * std::sqrt(static_cast<double>(n)) * (ew + ea) + 1e-3) << type_name(wt);
}

INSTANTIATE_TEST_SUITE_P(AllComputable, QuantsVecDot, testing::ValuesIn(kComputable), param_name);

// ------------------------------------------------------------------ special rows

class QuantsSpecial : public testing::TestWithParam<GgmlType> {};

TEST_P(QuantsSpecial, ZeroRowGivesZeroScalesAndZeros) {
    const GgmlType t = GetParam();
    const int64_t n = 512;
    const std::vector<float> x(n, 0.0f);
    const auto q = quantize(t, x);
    const auto y = dequantize(t, q.data(), n);
    for (float v : y) ASSERT_EQ(v, 0.0f) << type_name(t);
    // Bytes as ggml writes them: all zero, except that Q4_0/Q5_0 store d = 0 / -8 = -0.0
    // (fp16 0x8000) and the zero point (level 8 / 16) in their quants.
    const size_t bs = traits(t).type_size;
    for (size_t b = 0; b < q.size() / bs; ++b) {
        const uint8_t* blk = q.data() + b * bs;
        if (t == GgmlType::Q4_0) {
            EXPECT_EQ(blk[0] | blk[1] << 8, 0x8000) << "d";
            for (size_t j = 2; j < bs; ++j) EXPECT_EQ(blk[j], 0x88) << j;
        } else if (t == GgmlType::Q5_0) {
            EXPECT_EQ(blk[0] | blk[1] << 8, 0x8000) << "d";
            for (size_t j = 2; j < 6; ++j) EXPECT_EQ(blk[j], 0xFF) << "qh " << j;
            for (size_t j = 6; j < bs; ++j) EXPECT_EQ(blk[j], 0x00) << j;
        } else {
            for (size_t j = 0; j < bs; ++j) ASSERT_EQ(blk[j], 0) << type_name(t) << " block " << b << " byte " << j;
        }
    }
    // Dot products with a zero row are zero.
    const auto qa = quantize(traits(t).vec_dot_type, normal_row(n, 3));
    EXPECT_EQ(ref_kernels(t).vec_dot(n, q.data(), qa.data()), 0.0f) << type_name(t);
}

TEST_P(QuantsSpecial, OneHugeOutlier) {
    const GgmlType t = GetParam();
    const int64_t n = 1024;
    auto x = normal_row(n, 8);
    const int64_t at = 300;  // in the second super-block
    x[at] = 1000.0f;
    const auto q = quantize(t, x);
    const auto y = dequantize(t, q.data(), n);
    ASSERT_TRUE(test::all_finite(y)) << type_name(t);
    // The outlier itself survives within the type's relative precision (MXFP4: its shared
    // exponent puts the block maximum in [4, 8) steps while the largest code is 6, so the
    // maximum itself may lose up to a quarter, as the format defines).
    const double outlier_tol = t == GgmlType::MXFP4 ? 0.25 : std::max(test::rel_rmse_bound(t), 2e-3);
    EXPECT_NEAR(y[at], 1000.0, 1000.0 * outlier_tol) << type_name(t);
    // Blocks that do not hold it keep their normal error.
    const int64_t bs = std::max<int64_t>(traits(t).block_size, 32);
    const int64_t blk = at / bs;
    std::vector<float> xo, yo;
    for (int64_t i = 0; i < n; ++i) {
        if (i / bs == blk) continue;
        xo.push_back(x[i]);
        yo.push_back(y[i]);
    }
    EXPECT_LE(relative_rmse(yo, xo), test::rel_rmse_bound(t) * 1.5) << type_name(t);
    // And a dot product through it is finite and close.
    const auto a = normal_row(n, 9);
    const auto qa = quantize(traits(t).vec_dot_type, a);
    const auto da = dequantize(traits(t).vec_dot_type, qa.data(), n);
    double exact = 0;
    for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(y[i]) * da[i];
    const float got = ref_kernels(t).vec_dot(n, q.data(), qa.data());
    EXPECT_TRUE(std::isfinite(got));
    EXPECT_NEAR(got, exact, vec_dot_tolerance(t, q, qa, y, da)) << type_name(t);
}

TEST_P(QuantsSpecial, TinyAndLargeRowsStayFinite) {
    const GgmlType t = GetParam();
    const int64_t n = 512;
    // 1e-12: below every fp16 scale; the row comes back as zeros (the float-scaled F32,
    // BF16 and Q8_K, and MXFP4's power-of-two scale down to 2^-127, keep it). 1e-6: fp16 scales are subnormal and lose precision, as in
    // ggml; only finiteness is required. 0.1 and 1e4: the usual bound.
    for (float sigma : {1e-12f, 1e-6f, 0.1f, 1e4f}) {
        const auto x = normal_row(n, 12, sigma);
        const auto q = quantize(t, x);
        const auto y = dequantize(t, q.data(), n);
        ASSERT_TRUE(test::all_finite(y)) << type_name(t) << " sigma " << sigma;
        const double e = relative_rmse(y, x);
        if (sigma == 1e-12f) {
            const bool float_scaled = t == GgmlType::F32 || t == GgmlType::BF16 || t == GgmlType::Q8_K || t == GgmlType::MXFP4;
            if (float_scaled) {
                EXPECT_LE(e, test::rel_rmse_bound(t) * 1.2) << type_name(t);
            } else {
                for (float v : y) ASSERT_EQ(v, 0.0f) << type_name(t);
            }
        } else if (sigma >= 0.1f) {
            EXPECT_LE(e, test::rel_rmse_bound(t) * 1.2) << type_name(t) << " sigma " << sigma;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllComputable, QuantsSpecial, testing::ValuesIn(kComputable), param_name);

// ------------------------------------------------------------------ bit layouts

template <class B>
std::vector<float> deq(GgmlType t, const B& b, int n) {
    return dequantize(t, &b, n);
}

TEST(QuantsLayout, Q4_0LowNibbleIsElementJHighIsJPlus16) {
    BlockQ4_0 b{};
    b.d = f2h(1.0f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
    const auto y = deq(GgmlType::Q4_0, b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], static_cast<float>(j - 8)) << j;
        EXPECT_EQ(y[j + 16], static_cast<float>(7 - j)) << j;
    }
    // And the quantizer writes that layout: -4 .. 3.5 in steps of 0.5 is d = -4/-8 = 0.5
    // with levels 0..15 (the first extreme, -4, sets the sign of d).
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>((j % 16) - 8);
    const auto q = quantize(GgmlType::Q4_0, x);
    const auto* qb = reinterpret_cast<const BlockQ4_0*>(q.data());
    EXPECT_EQ(qb->d, f2h(0.5f));
    for (int j = 0; j < 16; ++j) EXPECT_EQ(qb->qs[j], static_cast<uint8_t>(j | j << 4)) << j;
}

TEST(QuantsLayout, Q4_1ScaleAndMin) {
    BlockQ4_1 b{};
    b.d = f2h(0.5f);
    b.m = f2h(-1.0f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((15 - j) | j << 4);
    const auto y = deq(GgmlType::Q4_1, b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], 0.5f * static_cast<float>(15 - j) - 1.0f) << j;
        EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(j) - 1.0f) << j;
    }
}

TEST(QuantsLayout, Q5_0HighBitsFromLittleEndianQh) {
    BlockQ5_0 b{};
    b.d = f2h(2.0f);
    // qh = 0x80010003: elements 0, 1, 16 and 31 have the 5th bit.
    b.qh[0] = 0x03;
    b.qh[1] = 0x00;
    b.qh[2] = 0x01;
    b.qh[3] = 0x80;
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | j << 4);
    const auto y = deq(GgmlType::Q5_0, b, 32);
    for (int e = 0; e < 32; ++e) {
        const int hi = (e == 0 || e == 1 || e == 16 || e == 31) ? 16 : 0;
        EXPECT_EQ(y[e], 2.0f * static_cast<float>((e % 16) + hi - 16)) << e;
    }
}

TEST(QuantsLayout, Q5_1HighBitsAndMin) {
    BlockQ5_1 b{};
    b.d = f2h(0.25f);
    b.m = f2h(3.0f);
    b.qh[0] = 0xF0;  // elements 4..7
    b.qh[3] = 0x0F;  // elements 24..27
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(15 | 1 << 4);
    const auto y = deq(GgmlType::Q5_1, b, 32);
    for (int e = 0; e < 32; ++e) {
        const int lo = e < 16 ? 15 : 1;
        const int hi = ((e >= 4 && e < 8) || (e >= 24 && e < 28)) ? 16 : 0;
        EXPECT_EQ(y[e], 0.25f * static_cast<float>(lo + hi) + 3.0f) << e;
    }
}

TEST(QuantsLayout, Q8_0AndQ8_1) {
    BlockQ8_0 b{};
    b.d = f2h(0.125f);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 127);
    const auto y = deq(GgmlType::Q8_0, b, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.125f * static_cast<float>(j * 8 - 127)) << j;

    BlockQ8_1 c{};
    c.d = f2h(-0.5f);
    c.s = f2h(1000.0f);  // not used by dequantization
    for (int j = 0; j < 32; ++j) c.qs[j] = static_cast<int8_t>(j - 16);
    const auto z = deq(GgmlType::Q8_1, c, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(z[j], -0.5f * static_cast<float>(j - 16)) << j;
}

TEST(QuantsLayout, Q2_KScalesMinsAndCrumbs) {
    BlockQ2_K b{};
    b.d = f2h(1.0f);
    b.dmin = f2h(0.5f);
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<uint8_t>((s & 0xF) | (15 - s) << 4);
    for (int i = 0; i < 64; ++i) b.qs[i] = static_cast<uint8_t>(i * 37 + 11);
    const auto y = deq(GgmlType::Q2_K, b, QK_K);
    for (int e = 0; e < QK_K; ++e) {
        // 128 values per 32 bytes; within them, 32-value groups take successive bit pairs.
        const int q = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        const int sc = e / 16;
        EXPECT_EQ(y[e], 1.0f * static_cast<float>(sc) * static_cast<float>(q) - 0.5f * static_cast<float>(15 - sc))
            << e;
    }
}

TEST(QuantsLayout, Q3_KSixBitScalesAndHmask) {
    BlockQ3_K b{};
    b.d = f2h(0.5f);
    // Scales chosen as s_j = j - 8 (stored biased: 24 + j). Bytes 0-7: low nibbles of
    // scales 0-7 (low half) and 8-15 (high half); bytes 8-11: top 2 bits, scale j at bit
    // 2*(j/4) of byte 8 + j%4.
    int sc[16];
    for (int j = 0; j < 16; ++j) sc[j] = j - 8;
    const uint8_t packed[12] = {0x08, 0x19, 0x2A, 0x3B, 0x4C, 0x5D, 0x6E, 0x7F, 0xA5, 0xA5, 0xA5, 0xA5};
    std::memcpy(b.scales, packed, 12);
    for (int i = 0; i < 32; ++i) b.hmask[i] = static_cast<uint8_t>(0x5A ^ i);
    for (int i = 0; i < 64; ++i) b.qs[i] = static_cast<uint8_t>(i * 29 + 3);
    const auto y = deq(GgmlType::Q3_K, b, QK_K);
    for (int e = 0; e < QK_K; ++e) {
        const int lo = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        const bool high = (b.hmask[e % 32] >> (e / 32)) & 1;
        const int q = lo - (high ? 0 : 4);
        EXPECT_EQ(y[e], 0.5f * static_cast<float>(sc[e / 16]) * static_cast<float>(q)) << e;
    }
}

// Q4_K/Q5_K: 8 sub-blocks of 32, 6-bit scale and min each, packed in 12 bytes.
// Chosen sc = {1, 2, 3, 4, 63, 33, 17, 48}, m = {5, 6, 7, 8, 20, 62, 31, 47}:
//   bytes 0-3:  sc[0..3] | (sc[4..7] >> 4) << 6  = C1 82 43 C4
//   bytes 4-7:  m[0..3]  | (m[4..7]  >> 4) << 6  = 45 C6 47 88
//   bytes 8-11: sc[4..7] & 15 | (m[4..7] & 15) << 4 = 4F E1 F1 F0
constexpr uint8_t kK4Scales[12] = {0xC1, 0x82, 0x43, 0xC4, 0x45, 0xC6, 0x47, 0x88, 0x4F, 0xE1, 0xF1, 0xF0};
constexpr int kK4Sc[8] = {1, 2, 3, 4, 63, 33, 17, 48};
constexpr int kK4M[8] = {5, 6, 7, 8, 20, 62, 31, 47};

TEST(QuantsLayout, Q4_KScalePacking) {
    BlockQ4_K b{};
    b.d = f2h(1.0f);
    b.dmin = f2h(0.5f);
    std::memcpy(b.scales, kK4Scales, 12);
    for (int i = 0; i < 128; ++i) b.qs[i] = static_cast<uint8_t>((i % 16) | (15 - i % 16) << 4);
    const auto y = deq(GgmlType::Q4_K, b, QK_K);
    for (int e = 0; e < QK_K; ++e) {
        // 64 values per 32 bytes: the first 32 in the low nibbles, the next 32 in the high.
        const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
        const int q = (e % 64) < 32 ? (byte & 0xF) : (byte >> 4);
        const int s = e / 32;
        EXPECT_EQ(y[e], static_cast<float>(kK4Sc[s]) * static_cast<float>(q) - 0.5f * static_cast<float>(kK4M[s])) << e;
    }
}

TEST(QuantsLayout, Q5_KScalePackingAndHighBits) {
    BlockQ5_K b{};
    b.d = f2h(0.25f);
    b.dmin = f2h(2.0f);
    std::memcpy(b.scales, kK4Scales, 12);
    for (int i = 0; i < 128; ++i) b.qs[i] = static_cast<uint8_t>((i * 7) & 0xFF);
    for (int i = 0; i < 32; ++i) b.qh[i] = static_cast<uint8_t>(i * 73 + 5);
    const auto y = deq(GgmlType::Q5_K, b, QK_K);
    for (int e = 0; e < QK_K; ++e) {
        const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
        const int lo = (e % 64) < 32 ? (byte & 0xF) : (byte >> 4);
        const int hi = (b.qh[e % 32] >> (e / 32)) & 1;
        const int q = lo + 16 * hi;
        const int s = e / 32;
        EXPECT_EQ(y[e], 0.25f * static_cast<float>(kK4Sc[s]) * static_cast<float>(q) - 2.0f * static_cast<float>(kK4M[s]))
            << e;
    }
}

TEST(QuantsLayout, Q6_KSplitLowAndHighBits) {
    BlockQ6_K b{};
    b.d = f2h(0.5f);
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s % 2 ? -(s * 8) : s * 8 + 1);
    for (int i = 0; i < 128; ++i) b.ql[i] = static_cast<uint8_t>(i * 13 + 7);
    for (int i = 0; i < 64; ++i) b.qh[i] = static_cast<uint8_t>(i * 91 + 1);
    const auto y = deq(GgmlType::Q6_K, b, QK_K);
    for (int e = 0; e < QK_K; ++e) {
        // Per 128 values: 64 ql bytes and 32 qh bytes. Value group r = (e%128)/32 takes the
        // low nibble (r 0, 1) or high nibble (r 2, 3) of ql[l + 32*(r%2)], and bits 2r..2r+1
        // of qh[l].
        const int half = e / 128, r = (e % 128) / 32, l = e % 32;
        const uint8_t lq = b.ql[64 * half + l + 32 * (r % 2)];
        const int lo = r < 2 ? (lq & 0xF) : (lq >> 4);
        const int hi = (b.qh[32 * half + l] >> (2 * r)) & 3;
        const int q = (lo | hi << 4) - 32;
        EXPECT_EQ(y[e], 0.5f * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q)) << e;
    }
}

TEST(QuantsLayout, Q8_KFloatScale) {
    BlockQ8_K b{};
    b.d = 0.01f;
    for (int j = 0; j < QK_K; ++j) b.qs[j] = static_cast<int8_t>((j % 255) - 127);
    const auto y = deq(GgmlType::Q8_K, b, QK_K);
    for (int j = 0; j < QK_K; ++j) EXPECT_EQ(y[j], 0.01f * static_cast<float>((j % 255) - 127)) << j;
}

// ------------------------------------------------------------------ exact grids
//
// A block in the quantizer's canonical form (its extreme level present in every group,
// scales that are exact multiples of the super-block step) dequantizes to values the
// quantizer maps back to the very same bytes. This ties each quantizer's packing to the
// dequantizer's reading of it, for every type.

template <class B>
void expect_requantizes_to_same_bytes(GgmlType t, const B& block, int n_blocks = 1) {
    std::vector<B> blocks(static_cast<size_t>(n_blocks), block);
    const int64_t n = static_cast<int64_t>(n_blocks) * traits(t).block_size;
    const auto x = dequantize(t, blocks.data(), n);
    const auto q = quantize(t, x);
    ASSERT_EQ(q.size(), sizeof(B) * static_cast<size_t>(n_blocks));
    for (int b = 0; b < n_blocks; ++b) {
        const uint8_t* got = q.data() + sizeof(B) * static_cast<size_t>(b);
        const auto* want = reinterpret_cast<const uint8_t*>(&block);
        for (size_t j = 0; j < sizeof(B); ++j) ASSERT_EQ(got[j], want[j]) << type_name(t) << " byte " << j;
    }
    const auto y = dequantize(t, q.data(), n);
    EXPECT_EQ(x, y);
}

TEST(QuantsExactGrid, Q4_0) {
    BlockQ4_0 b{};
    b.d = f2h(-0.25f);  // level 0 holds the extreme +2.0, so d = 2 / -8
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((j * 7 + 3) % 16) << 4);
    expect_requantizes_to_same_bytes(GgmlType::Q4_0, b, 3);
}

TEST(QuantsExactGrid, Q4_1) {
    BlockQ4_1 b{};
    b.d = f2h(0.125f);
    b.m = f2h(-0.75f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((j * 5 + 15) % 16) << 4);  // 0 and 15 present
    expect_requantizes_to_same_bytes(GgmlType::Q4_1, b, 2);
}

TEST(QuantsExactGrid, Q5_0) {
    BlockQ5_0 b{};
    b.d = f2h(0.5f);  // level 0 holds the extreme -8.0: d = -8 / -16
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(((j * 3) % 16) | ((j * 11 + 1) % 16) << 4);
    b.qh[0] = 0xA6;  // element 0 (level 0) keeps its 5th bit clear
    b.qh[1] = 0x3C;
    b.qh[2] = 0x81;
    b.qh[3] = 0x7E;
    expect_requantizes_to_same_bytes(GgmlType::Q5_0, b, 2);
}

TEST(QuantsExactGrid, Q5_1) {
    BlockQ5_1 b{};
    b.d = f2h(0.0625f);
    b.m = f2h(1.5f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(((j * 3) % 16) | ((j * 11 + 1) % 16) << 4);
    // Element 0 at level 0 (the min) and element 31 at level 31 (the max).
    b.qh[0] = 0x00;
    b.qh[1] = 0x5A;
    b.qh[2] = 0x81;
    b.qh[3] = 0x80;
    b.qs[15] = static_cast<uint8_t>((b.qs[15] & 0x0F) | 0xF0);
    expect_requantizes_to_same_bytes(GgmlType::Q5_1, b, 2);
}

TEST(QuantsExactGrid, Q8_0AndQ8_1) {
    BlockQ8_0 b{};
    b.d = f2h(0.03125f);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>((j * 37) % 255 - 127);  // -127 at j = 0
    expect_requantizes_to_same_bytes(GgmlType::Q8_0, b, 2);

    BlockQ8_1 c{};
    c.d = b.d;
    std::memcpy(c.qs, b.qs, 32);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += c.qs[j];
    c.s = f2h(static_cast<float>(sum) * 0.03125f);
    expect_requantizes_to_same_bytes(GgmlType::Q8_1, c, 2);
}

TEST(QuantsExactGrid, Q2_K) {
    BlockQ2_K b{};
    b.d = f2h(1.0f / 16);
    b.dmin = f2h(1.0f / 8);
    for (int j = 0; j < 16; ++j) {
        const int sc = 1 + (j * 7) % 15;  // 1..15, 15 present
        const int m = (j * 11) % 16;      // 0..15, 15 present
        b.scales[j] = static_cast<uint8_t>(sc | m << 4);
    }
    // Every group of 16 holds levels 0 and 3.
    uint8_t L[QK_K];
    for (int e = 0; e < QK_K; ++e) L[e] = static_cast<uint8_t>((e * 5 + e / 16) % 4);
    for (int e = 0; e < QK_K; ++e) {
        b.qs[32 * (e / 128) + e % 32] = static_cast<uint8_t>(b.qs[32 * (e / 128) + e % 32] | L[e] << (2 * ((e % 128) / 32)));
    }
    expect_requantizes_to_same_bytes(GgmlType::Q2_K, b, 2);
}

TEST(QuantsExactGrid, Q3_K) {
    // Canonical form: d < 0 and scales <= 0 (the quantizer maps the largest sub-block
    // scale to -32), every group of 16 holding level -4.
    BlockQ3_K b{};
    b.d = f2h(-1.0f / 16);
    for (int j = 0; j < 16; ++j) {
        const int s = j == 9 ? 32 : 1 + (j * 5) % 31;  // magnitudes 1..32, 32 present
        const int biased = 32 - s;
        if (j < 8) {
            b.scales[j] = static_cast<uint8_t>(b.scales[j] | (biased & 0xF));
        } else {
            b.scales[j - 8] = static_cast<uint8_t>(b.scales[j - 8] | (biased & 0xF) << 4);
        }
        b.scales[8 + j % 4] = static_cast<uint8_t>(b.scales[8 + j % 4] | (biased >> 4) << (2 * (j / 4)));
    }
    for (int e = 0; e < QK_K; ++e) {
        const int q = (e % 8 == 0) ? -4 : (e * 3) % 8 - 4;  // -4..3
        const int u = q + 4;
        if (u & 4) b.hmask[e % 32] = static_cast<uint8_t>(b.hmask[e % 32] | 1 << (e / 32));
        b.qs[32 * (e / 128) + e % 32] = static_cast<uint8_t>(b.qs[32 * (e / 128) + e % 32] | (u & 3) << (2 * ((e % 128) / 32)));
    }
    expect_requantizes_to_same_bytes(GgmlType::Q3_K, b, 2);
}

void pack_k4_scales(const int sc[8], const int m[8], uint8_t out[12]) {
    std::memset(out, 0, 12);
    for (int j = 0; j < 4; ++j) {
        out[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
        out[j + 4] = static_cast<uint8_t>(m[j] | (m[j + 4] >> 4) << 6);
        out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4);
    }
}

TEST(QuantsExactGrid, Q4_K) {
    const int sc[8] = {1, 2, 3, 4, 63, 33, 17, 48};  // 63 present
    const int m[8] = {5, 6, 7, 0, 20, 63, 31, 47};   // 63 present
    uint8_t packed[12];
    pack_k4_scales(sc, m, packed);
    EXPECT_EQ(0, std::memcmp(packed, kK4Scales, 4));  // same rule as the literal bytes
    BlockQ4_K b{};
    b.d = f2h(1.0f / 64);
    b.dmin = f2h(1.0f / 32);
    std::memcpy(b.scales, packed, 12);
    for (int e = 0; e < QK_K; ++e) {
        const int q = (e * 7) % 16;  // every 16 consecutive values: all levels
        b.qs[32 * (e / 64) + e % 32] = static_cast<uint8_t>(b.qs[32 * (e / 64) + e % 32] | q << ((e % 64) < 32 ? 0 : 4));
    }
    expect_requantizes_to_same_bytes(GgmlType::Q4_K, b, 2);
}

TEST(QuantsExactGrid, Q5_K) {
    const int sc[8] = {63, 9, 3, 40, 11, 33, 17, 2};
    const int m[8] = {0, 6, 63, 8, 20, 1, 31, 47};
    BlockQ5_K b{};
    b.d = f2h(1.0f / 128);
    b.dmin = f2h(1.0f / 16);
    pack_k4_scales(sc, m, b.scales);
    for (int e = 0; e < QK_K; ++e) {
        const int q = (e * 13) % 32;  // every 32 consecutive values: all levels
        b.qs[32 * (e / 64) + e % 32] = static_cast<uint8_t>(b.qs[32 * (e / 64) + e % 32] | (q & 0xF) << ((e % 64) < 32 ? 0 : 4));
        if (q & 16) b.qh[e % 32] = static_cast<uint8_t>(b.qh[e % 32] | 1 << (e / 32));
    }
    expect_requantizes_to_same_bytes(GgmlType::Q5_K, b, 2);
}

TEST(QuantsExactGrid, Q6_K) {
    // Canonical form: d < 0, scales in [-128, -1] with -128 present, level -32 in every
    // group of 16.
    BlockQ6_K b{};
    b.d = f2h(-1.0f / 256);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j == 5 ? -128 : -(1 + (j * 41) % 127));
    for (int e = 0; e < QK_K; ++e) {
        const int q = (e % 16 == 0) ? -32 : (e * 37) % 64 - 32;
        const int u = q + 32;
        const int half = e / 128, r = (e % 128) / 32, l = e % 32;
        uint8_t& lq = b.ql[64 * half + l + 32 * (r % 2)];
        lq = static_cast<uint8_t>(lq | (u & 0xF) << (r < 2 ? 0 : 4));
        b.qh[32 * half + l] = static_cast<uint8_t>(b.qh[32 * half + l] | (u >> 4) << (2 * r));
    }
    expect_requantizes_to_same_bytes(GgmlType::Q6_K, b, 2);
}

TEST(QuantsExactGrid, Q8_K) {
    BlockQ8_K b{};
    b.d = 1.0f / 512;  // stored as 1 / (-127 / max) with max at level -127
    for (int j = 0; j < QK_K; ++j) b.qs[j] = static_cast<int8_t>(j == 0 ? -127 : (j * 59) % 255 - 127);
    for (int g = 0; g < 16; ++g) {
        int s = 0;
        for (int j = 0; j < 16; ++j) s += b.qs[16 * g + j];
        b.bsums[g] = static_cast<int16_t>(s);
    }
    expect_requantizes_to_same_bytes(GgmlType::Q8_K, b, 2);
}

}  // namespace
}  // namespace hearth
