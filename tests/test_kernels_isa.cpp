// The ISA fast paths against the scalar reference: every kernel the AVX2 table overrides
// (vec_dot, from_float, to_float) is run next to the scalar kernel on random data with
// fixed seeds. Dot products must agree within float rounding (tolerance scaled by
// sum |w_i * a_i|, so cancellation cannot make it flaky), quantizers and dequantizers
// must agree bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/repack.h"
#include "tensor/types.h"

namespace {

using hearth::GgmlType;
using hearth::Isa;
using hearth::TypeKernels;

#define SKIP_WITHOUT_AVX2()                                                              \
    do {                                                                                 \
        if (hearth::detected_isa() != Isa::Avx2) GTEST_SKIP() << "CPU lacks AVX2+FMA+F16C"; \
    } while (0)

constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                               GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q2_K,
                               GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K,
                               GgmlType::MXFP4};

const TypeKernels& scalar(GgmlType t) { return hearth::kernels_for(Isa::Scalar, t); }
const TypeKernels& avx2(GgmlType t) { return hearth::kernels_for(Isa::Avx2, t); }

// Row lengths to try for a type: the standard model widths where the block size allows,
// plus odd block counts (unroll tails) and, for the float types, lengths off the SIMD width.
std::vector<int64_t> lengths_for(GgmlType t) {
    const int bs = hearth::traits(t).block_size;
    std::vector<int64_t> out;
    for (int64_t n : {int64_t{32}, int64_t{256}, int64_t{4096}, int64_t{5632}, int64_t{11008}})
        if (n % bs == 0) out.push_back(n);
    for (int64_t blocks : {int64_t{1}, int64_t{3}, int64_t{5}, int64_t{7}}) out.push_back(blocks * bs);
    if (bs == 1)
        for (int64_t n : {int64_t{9}, int64_t{33}, int64_t{100}, int64_t{1001}}) out.push_back(n);
    return out;
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = u(rng);
    return v;
}

// Random but valid row of a weight type: random quant bytes, fp16 scale fields set to
// finite values in +-0.01 (so no block holds a NaN or Inf scale).
std::vector<uint8_t> random_weights(GgmlType t, int64_t n, std::mt19937& rng) {
    const auto& tr = hearth::traits(t);
    std::vector<uint8_t> row(hearth::row_size(t, n));
    if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) {
        const std::vector<float> f = random_floats(n, rng);
        if (t == GgmlType::F32) {
            std::memcpy(row.data(), f.data(), row.size());
        } else {
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = t == GgmlType::F16 ? hearth::fp32_to_fp16(f[i]) : hearth::fp32_to_bf16(f[i]);
                std::memcpy(row.data() + 2 * i, &h, 2);
            }
        }
        return row;
    }
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : row) b = static_cast<uint8_t>(byte(rng));

    std::vector<size_t> scale_offsets;
    switch (t) {
        case GgmlType::Q4_0: scale_offsets = {offsetof(hearth::BlockQ4_0, d)}; break;
        case GgmlType::Q4_1: scale_offsets = {offsetof(hearth::BlockQ4_1, d), offsetof(hearth::BlockQ4_1, m)}; break;
        case GgmlType::Q5_0: scale_offsets = {offsetof(hearth::BlockQ5_0, d)}; break;
        case GgmlType::Q5_1: scale_offsets = {offsetof(hearth::BlockQ5_1, d), offsetof(hearth::BlockQ5_1, m)}; break;
        case GgmlType::Q8_0: scale_offsets = {offsetof(hearth::BlockQ8_0, d)}; break;
        case GgmlType::Q8_1: scale_offsets = {offsetof(hearth::BlockQ8_1, d), offsetof(hearth::BlockQ8_1, s)}; break;
        case GgmlType::Q2_K: scale_offsets = {offsetof(hearth::BlockQ2_K, d), offsetof(hearth::BlockQ2_K, dmin)}; break;
        case GgmlType::Q3_K: scale_offsets = {offsetof(hearth::BlockQ3_K, d)}; break;
        case GgmlType::Q4_K: scale_offsets = {offsetof(hearth::BlockQ4_K, d), offsetof(hearth::BlockQ4_K, dmin)}; break;
        case GgmlType::Q5_K: scale_offsets = {offsetof(hearth::BlockQ5_K, d), offsetof(hearth::BlockQ5_K, dmin)}; break;
        case GgmlType::Q6_K: scale_offsets = {offsetof(hearth::BlockQ6_K, d)}; break;
        case GgmlType::Q8_K: {  // float scale; bsums must match the quants for the kernels' shortcuts
            std::uniform_real_distribution<float> d(-0.01f, 0.01f);
            for (int64_t b = 0; b < n / hearth::QK_K; ++b) {
                auto* blk = reinterpret_cast<hearth::BlockQ8_K*>(row.data() + b * tr.type_size);
                blk->d = d(rng);
                for (int g = 0; g < hearth::QK_K / 16; ++g) {
                    int s = 0;
                    for (int j = 0; j < 16; ++j) s += blk->qs[16 * g + j];
                    blk->bsums[g] = static_cast<int16_t>(s);
                }
            }
            return row;
        }
        case GgmlType::MXFP4: {  // E8M0 exponent byte: scales 2^-18 .. 2^1
            std::uniform_int_distribution<int> e(110, 129);
            for (int64_t b = 0; b < n / tr.block_size; ++b) row[static_cast<size_t>(b) * tr.type_size] = static_cast<uint8_t>(e(rng));
            return row;
        }
        default: ADD_FAILURE() << "no random block generator for " << tr.name; return row;
    }
    std::uniform_real_distribution<float> scale(-0.01f, 0.01f);
    for (int64_t b = 0; b < n / tr.block_size; ++b)
        for (size_t off : scale_offsets) {
            const uint16_t h = hearth::fp32_to_fp16(scale(rng));
            std::memcpy(row.data() + b * tr.type_size + off, &h, 2);
        }
    return row;
}

// Dequantized activation row (only needed for the tolerance), computed here so the test
// does not depend on which to_float entries the activation types have.
std::vector<float> activation_floats(GgmlType t, const std::vector<uint8_t>& row, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    switch (t) {
        case GgmlType::Q8_0:
        case GgmlType::Q8_1: {
            const size_t bytes = hearth::traits(t).type_size;
            for (int64_t b = 0; b < n / 32; ++b) {
                const uint8_t* blk = row.data() + b * bytes;
                uint16_t d;
                std::memcpy(&d, blk, 2);
                const auto* qs = reinterpret_cast<const int8_t*>(blk + bytes - 32);
                for (int j = 0; j < 32; ++j) out[b * 32 + j] = hearth::fp16_to_fp32(d) * qs[j];
            }
            break;
        }
        case GgmlType::Q8_K: {
            const auto* blk = reinterpret_cast<const hearth::BlockQ8_K*>(row.data());
            for (int64_t b = 0; b < n / hearth::QK_K; ++b)
                for (int j = 0; j < hearth::QK_K; ++j) out[b * hearth::QK_K + j] = blk[b].d * blk[b].qs[j];
            break;
        }
        default: scalar(t).to_float(row.data(), out.data(), n); break;
    }
    return out;
}

bool same_bits(float a, float b) {
    uint32_t x, y;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    return x == y;
}

// ---- Coverage: the fast paths the engine relies on must exist. ----

TEST(KernelsIsa, Avx2OverridesTheHotPaths) {
    SKIP_WITHOUT_AVX2();
    for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K,
                       GgmlType::Q6_K}) {
        SCOPED_TRACE(hearth::type_name(t));
        ASSERT_NE(avx2(t).vec_dot, nullptr);
        EXPECT_NE(avx2(t).vec_dot, scalar(t).vec_dot);
    }
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q8_K, GgmlType::F16, GgmlType::BF16}) {
        SCOPED_TRACE(hearth::type_name(t));
        ASSERT_NE(avx2(t).from_float, nullptr);
        EXPECT_NE(avx2(t).from_float, scalar(t).from_float);
    }
    for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
        SCOPED_TRACE(hearth::type_name(t));
        ASSERT_NE(avx2(t).to_float, nullptr);
        EXPECT_NE(avx2(t).to_float, scalar(t).to_float);
    }
}

TEST(KernelsIsa, ActiveIsaSwitchesTables) {
    SKIP_WITHOUT_AVX2();
    const Isa before = hearth::active_isa();
    hearth::set_active_isa(Isa::Scalar);
    EXPECT_EQ(hearth::kernels(GgmlType::Q4_0).vec_dot, scalar(GgmlType::Q4_0).vec_dot);
    hearth::set_active_isa(Isa::Avx2);
    EXPECT_EQ(hearth::kernels(GgmlType::Q4_0).vec_dot, avx2(GgmlType::Q4_0).vec_dot);
    hearth::set_active_isa(before);
}

// ---- vec_dot ----

TEST(KernelsIsa, VecDotMatchesScalar) {
    SKIP_WITHOUT_AVX2();
    int checked = 0;
    for (GgmlType t : kTypes) {
        const auto fast = avx2(t).vec_dot;
        const auto ref = scalar(t).vec_dot;
        if (!fast || fast == ref) continue;
        ASSERT_NE(ref, nullptr) << "no scalar vec_dot for " << hearth::type_name(t);
        const GgmlType at = hearth::traits(t).vec_dot_type;
        for (int64_t n : lengths_for(t)) {
            for (uint32_t seed : {1u, 2u, 3u}) {
                SCOPED_TRACE(std::string(hearth::type_name(t)) + " n=" + std::to_string(n) + " seed=" + std::to_string(seed));
                std::mt19937 rng(seed * 7919u + static_cast<uint32_t>(n) * 31u + static_cast<uint32_t>(t));
                const std::vector<uint8_t> w = random_weights(t, n, rng);
                const std::vector<float> af = random_floats(n, rng);
                std::vector<uint8_t> a(hearth::row_size(at, n));
                ASSERT_NE(scalar(at).from_float, nullptr);
                scalar(at).from_float(af.data(), a.data(), n);

                std::vector<float> wf(static_cast<size_t>(n));
                scalar(t).to_float(w.data(), wf.data(), n);
                const std::vector<float> ad = activation_floats(at, a, n);
                double mag = 0.0;
                for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * ad[i]);

                const float expect = ref(n, w.data(), a.data());
                const float got = fast(n, w.data(), a.data());
                ASSERT_TRUE(std::isfinite(got));
                EXPECT_LE(std::fabs(static_cast<double>(got) - expect), 1e-5 * mag + 1e-30)
                    << "avx2 " << got << " scalar " << expect << " sum|w*a| " << mag;
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 0);
}

// ---- Packed layouts (tensor/repack.h): every kernel family this CPU has ----

// Rows of random quant bytes (every bit pattern: Q8_0's -128, Q6_K's negative scales, Q4_K's
// largest 6-bit scales and mins) packed once; each family's decode and prompt kernels must
// agree with the scalar vec_dot within float rounding and with each other bit for bit.
TEST(KernelsIsa, PackedKernelsOfEveryFamilyMatchScalar) {
    std::vector<const hearth::PackedKernels*> fams;
    for (hearth::IsaFamily f : {hearth::IsaFamily::Avx512, hearth::IsaFamily::Avx2Vnni, hearth::IsaFamily::Avx2})
        if (const auto* k = hearth::packed_kernels_for(f)) fams.push_back(k);
    if (fams.empty()) GTEST_SKIP() << "no packed kernel family on this CPU";
    int checked = 0;
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
        const int64_t bs = hearth::traits(t).block_size;
        for (int64_t n : {bs, 3 * bs, int64_t{2048}}) {
            SCOPED_TRACE(std::string(hearth::type_name(t)) + " n=" + std::to_string(n));
            const int64_t rows = 32, tokens = 18;
            std::mt19937 rng(static_cast<uint32_t>(n) * 31u + static_cast<uint32_t>(t));
            const size_t rb = hearth::row_size(t, n);
            std::vector<uint8_t> w(rb * rows);
            for (int64_t r = 0; r < rows; ++r) {
                const std::vector<uint8_t> row = random_weights(t, n, rng);
                std::memcpy(w.data() + rb * static_cast<size_t>(r), row.data(), rb);
            }
            hearth::MatrixView m{t, rows, n, w.data(), rb};
            std::vector<uint8_t> packed(hearth::packed_bytes(m));
            hearth::repack_groups(m, w.data(), packed.data(), 0, rows / hearth::kPackRows);
            m.packed = packed.data();
            const std::vector<float> x = random_floats(tokens * n, rng, -2.0f, 2.0f);
            const GgmlType at = hearth::traits(t).vec_dot_type;
            std::vector<uint8_t> a(hearth::row_size(at, n));
            std::vector<float> expect(static_cast<size_t>(tokens * rows)), tol(expect.size());
            for (int64_t k = 0; k < tokens; ++k) {
                scalar(at).from_float(x.data() + k * n, a.data(), n);
                const std::vector<float> ad = activation_floats(at, a, n);
                std::vector<float> wf(static_cast<size_t>(n));
                for (int64_t r = 0; r < rows; ++r) {
                    const uint8_t* wr = w.data() + rb * static_cast<size_t>(r);
                    expect[k * rows + r] = scalar(t).vec_dot(n, wr, a.data());
                    scalar(t).to_float(wr, wf.data(), n);
                    double mag = 0;
                    for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * ad[i]);
                    tol[k * rows + r] = static_cast<float>(1e-5 * mag + 1e-30);
                }
            }
            std::vector<float> first;
            for (const hearth::PackedKernels* k : fams) {
                SCOPED_TRACE(k->name);
                hearth::MatmulScratch s;
                std::vector<float> dec(expect.size()), pr(expect.size());
                hearth::packed_matmul(m, x.data(), n, tokens, dec.data(), rows, nullptr, s, false, *k);
                hearth::packed_matmul(m, x.data(), n, tokens, pr.data(), rows, nullptr, s, true, *k);
                for (size_t i = 0; i < dec.size(); ++i)
                    ASSERT_LE(std::fabs(static_cast<double>(dec[i]) - expect[i]), tol[i])
                        << "token " << i / rows << " row " << i % rows << ": " << dec[i] << " vs scalar " << expect[i];
                ASSERT_EQ(std::memcmp(dec.data(), pr.data(), dec.size() * sizeof(float)), 0) << "decode != prompt";
                if (first.empty()) first = dec;
                ASSERT_EQ(std::memcmp(dec.data(), first.data(), dec.size() * sizeof(float)), 0) << "families differ";
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 0);
}

// ---- from_float (activation quantizers and float conversions) ----

// Inputs for the quantizer comparison: several distributions, an all-zero block, a block
// whose largest magnitude appears twice with opposite signs, and huge/tiny ranges.
std::vector<float> quantizer_input(int64_t n, int variant, std::mt19937& rng) {
    std::vector<float> v;
    switch (variant) {
        case 0: v = random_floats(n, rng); break;
        case 1: {
            std::normal_distribution<float> g(0.0f, 3.0f);
            v.resize(static_cast<size_t>(n));
            for (auto& x : v) x = g(rng);
            std::uniform_int_distribution<int64_t> pos(0, n - 1);
            for (int k = 0; k < 4; ++k) v[static_cast<size_t>(pos(rng))] *= 50.0f;  // outliers
            break;
        }
        case 2: v = random_floats(n, rng, -1e-3f, 1e-3f); break;
        case 3: v = random_floats(n, rng, -6e4f, 6e4f); break;
        default: {
            v = random_floats(n, rng);
            const int64_t blk = n >= 256 ? 256 : 32;
            for (int64_t j = 0; j < blk && j < n; ++j) v[j] = 0.0f;  // first block all zero
            if (n >= 2 * blk) {
                v[blk + 3] = -2.0f;  // ties for the largest magnitude: the first one must win
                v[blk + 9] = 2.0f;
            }
            break;
        }
    }
    return v;
}

TEST(KernelsIsa, FromFloatMatchesScalarBitForBit) {
    SKIP_WITHOUT_AVX2();
    int checked = 0;
    for (GgmlType t : kTypes) {
        const auto fast = avx2(t).from_float;
        const auto ref = scalar(t).from_float;
        if (!fast || fast == ref) continue;
        ASSERT_NE(ref, nullptr) << "no scalar from_float for " << hearth::type_name(t);
        for (int64_t n : lengths_for(t)) {
            for (int variant = 0; variant < 5; ++variant) {
                SCOPED_TRACE(std::string(hearth::type_name(t)) + " n=" + std::to_string(n) +
                             " variant=" + std::to_string(variant));
                std::mt19937 rng(static_cast<uint32_t>(n) * 131u + static_cast<uint32_t>(variant) * 17u +
                                 static_cast<uint32_t>(t));
                const std::vector<float> x = quantizer_input(n, variant, rng);
                const size_t bytes = hearth::row_size(t, n);
                std::vector<uint8_t> want(bytes, 0), got(bytes, 0);
                ref(x.data(), want.data(), n);
                fast(x.data(), got.data(), n);
                size_t first = bytes;
                for (size_t i = 0; i < bytes && first == bytes; ++i)
                    if (want[i] != got[i]) first = i;
                EXPECT_EQ(first, bytes) << "first differing byte " << first << " (block "
                                        << first / hearth::traits(t).type_size << ")";
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 0);
}

TEST(KernelsIsa, FloatConversionsHandleSpecialValues) {
    SKIP_WITHOUT_AVX2();
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> x = {0.0f,     -0.0f,     1.0f,     -1.5f,   inf,      -inf,        nan,       -nan,
                            65504.0f, 65520.0f,  1e5f,     -1e5f,   6.1e-5f,  5.96e-8f,    2.98e-8f,  1e-9f,
                            3.0e-5f,  -4.2e-6f,  1.00049f, 1.0005f, 1.00146f, 3.3895e38f, -3.39e38f, 1e-40f,
                            1.0039062f, 1.0117188f, 0.33333334f, 2.7182817f, -0.1f, 123.456f, 7e-39f, -1e-45f};
    for (GgmlType t : {GgmlType::F16, GgmlType::BF16}) {
        SCOPED_TRACE(hearth::type_name(t));
        const int64_t n = static_cast<int64_t>(x.size());
        std::vector<uint16_t> want(x.size()), got(x.size());
        scalar(t).from_float(x.data(), want.data(), n);
        avx2(t).from_float(x.data(), got.data(), n);
        for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i], want[i]) << "input " << x[i] << " (index " << i << ")";
    }
}

// ---- to_float (dequantize) ----

TEST(KernelsIsa, ToFloatMatchesScalarExactly) {
    SKIP_WITHOUT_AVX2();
    int checked = 0;
    for (GgmlType t : kTypes) {
        const auto fast = avx2(t).to_float;
        const auto ref = scalar(t).to_float;
        if (!fast || fast == ref) continue;
        ASSERT_NE(ref, nullptr);
        for (int64_t n : lengths_for(t)) {
            SCOPED_TRACE(std::string(hearth::type_name(t)) + " n=" + std::to_string(n));
            std::mt19937 rng(static_cast<uint32_t>(n) * 977u + static_cast<uint32_t>(t));
            const std::vector<uint8_t> w = random_weights(t, n, rng);
            std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
            ref(w.data(), want.data(), n);
            fast(w.data(), got.data(), n);
            int64_t bad = 0;
            for (int64_t i = 0; i < n; ++i)
                if (!same_bits(want[i], got[i]) && bad++ < 5)
                    ADD_FAILURE() << "element " << i << ": avx2 " << got[i] << " scalar " << want[i];
            EXPECT_EQ(bad, 0);
            ++checked;
        }
    }
    EXPECT_GT(checked, 0);
}

// Every half-precision bit pattern (NaNs only need to stay NaN).
TEST(KernelsIsa, F16ToFloatAllBitPatterns) {
    SKIP_WITHOUT_AVX2();
    std::vector<uint16_t> h(65536);
    for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
    std::vector<float> want(h.size()), got(h.size());
    scalar(GgmlType::F16).to_float(h.data(), want.data(), 65536);
    avx2(GgmlType::F16).to_float(h.data(), got.data(), 65536);
    for (uint32_t i = 0; i < 65536; ++i) {
        if (std::isnan(want[i])) {
            EXPECT_TRUE(std::isnan(got[i])) << "half 0x" << std::hex << i;
        } else {
            EXPECT_TRUE(same_bits(want[i], got[i])) << "half 0x" << std::hex << i << ": " << got[i] << " vs " << want[i];
        }
    }
}

}  // namespace
