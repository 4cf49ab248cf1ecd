// The ARM NEON kernel family (src/tensor/arm/) against the scalar reference, in both of its
// instances: plain NEON and, where the CPU (or qemu's emulated CPU) has it, the dot-product
// extension. Dot products must agree with scalar within float rounding (tolerance scaled by
// sum |w_i * a_i|, as in test_kernels_isa.cpp); vec_dot_multi must equal vec_dot bit for bit;
// the two instances must give bit-identical results (their int32 sums are exact); the Q8_0
// quantizer must write the reference's bytes. Compiled only for aarch64 (these kernels exist
// nowhere else); scripts/test-aarch64.sh runs it under qemu-user with and without dotprod.
#if defined(__aarch64__)

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/kernel_table.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/repack.h"
#include "tensor/threadpool.h"
#include "tensor/types.h"

namespace hearth {
namespace {

const GgmlType kNeonTypes[] = {GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K,
                               GgmlType::Q6_K};

KernelTable scalar_table() {
    KernelTable t{};
    register_scalar_float_kernels(t);
    register_scalar_block_kernels(t);
    register_scalar_kquant_kernels(t);
    return t;
}

// The NEON table of one instance, built the way dispatch.cpp builds it.
KernelTable neon_table(bool dotprod) {
    KernelTable t = scalar_table();
    register_neon_kernels(t, dotprod);
    return t;
}

// The instances this CPU runs: plain always, sdot where the CPU has it.
std::vector<bool> instances() {
    std::vector<bool> v{false};
    if (cpu_has_neon_dotprod()) v.push_back(true);
    return v;
}
const char* instance_name(bool dotprod) { return dotprod ? "neon-dotprod" : "neon"; }

std::vector<float> gaussian(int64_t n, std::mt19937& rng, float sigma) {
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    return v;
}

std::vector<size_t> fp16_fields(GgmlType t) {
    switch (t) {
        case GgmlType::Q4_0: return {offsetof(BlockQ4_0, d)};
        case GgmlType::Q8_0: return {offsetof(BlockQ8_0, d)};
        case GgmlType::Q4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
        case GgmlType::Q6_K: return {offsetof(BlockQ6_K, d)};
        default: return {};
    }
}

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16; }

// A weight row: a quantized Gaussian row, or random bytes with finite fp16 scales (every
// quant bit pattern, e.g. -128 in Q8_0; floats over many binades).
std::vector<uint8_t> weight_row(const KernelTable& ref, GgmlType t, int64_t n, std::mt19937& rng, bool raw) {
    std::vector<uint8_t> row(row_size(t, n));
    if (is_float(t)) {
        std::vector<float> f = gaussian(n, rng, 1.0f);
        if (raw) {
            // Many binades, within F16's range (gaussian x 2^12 stays below 65504).
            std::uniform_int_distribution<int> e(-12, 12);
            for (float& v : f) v = std::ldexp(v, e(rng));
        }
        ref.k[static_cast<int>(t)].from_float(f.data(), row.data(), n);
        return row;
    }
    if (!raw) {
        const std::vector<float> f = gaussian(n, rng, 0.05f);
        ref.k[static_cast<int>(t)].from_float(f.data(), row.data(), n);
        return row;
    }
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
    for (uint8_t& b : row) b = static_cast<uint8_t>(byte(rng));
    const size_t bsize = traits(t).type_size;
    for (size_t off = 0; off < row.size(); off += bsize)
        for (size_t f : fp16_fields(t)) {
            const fp16_t h = fp32_to_fp16(scale(rng));
            std::memcpy(row.data() + off + f, &h, sizeof h);
        }
    return row;
}

// nt activation rows in t's vec_dot_type (scalar quantizer), `stride` bytes apart; row scales
// vary by orders of magnitude and row 2 is all zeros.
std::vector<uint8_t> activations(const KernelTable& ref, GgmlType t, int64_t n, int nt, size_t stride,
                                 std::mt19937& rng) {
    const GgmlType vt = traits(t).vec_dot_type;
    std::vector<uint8_t> act(stride * static_cast<size_t>(nt) + 64, 0xa5);
    for (int i = 0; i < nt; ++i) {
        const std::vector<float> f = gaussian(n, rng, i == 2 ? 0.0f : 0.1f * static_cast<float>(1 + i * i));
        ref.k[static_cast<int>(vt)].from_float(f.data(), act.data() + stride * static_cast<size_t>(i), n);
    }
    return act;
}

std::vector<int64_t> lengths_for(GgmlType t) {
    const int64_t bs = traits(t).block_size;
    std::vector<int64_t> out;
    for (int64_t blocks : {1, 2, 3, 4, 5, 7, 8, 9, 13}) out.push_back(blocks * bs);
    for (int64_t n : {2048, 5632}) out.push_back(n);
    if (bs == 1)
        for (int64_t n : {1, 3, 7, 15, 17, 31, 33, 100, 1001}) out.push_back(n);
    return out;
}

// sum |w_i * a_i| over the dequantized rows (the tolerance's scale).
double magnitude(const KernelTable& ref, GgmlType t, const uint8_t* w, const uint8_t* a, int64_t n) {
    const GgmlType vt = traits(t).vec_dot_type;
    std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
    ref.k[static_cast<int>(t)].to_float(w, wf.data(), n);
    ref.k[static_cast<int>(vt)].to_float(a, af.data(), n);
    double mag = 0.0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
    return mag;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(KernelsArm, FamilyMatchesTheCpu) {
    const IsaFamily best = cpu_best_family();
    EXPECT_EQ(best, cpu_has_neon_dotprod() ? IsaFamily::NeonDotprod : IsaFamily::Neon);
    EXPECT_TRUE(isa_family_supported(IsaFamily::Neon));
    EXPECT_EQ(isa_family_supported(IsaFamily::NeonDotprod), cpu_has_neon_dotprod());
    for (IsaFamily x86 : {IsaFamily::Avx2, IsaFamily::Avx2Vnni, IsaFamily::Avx512})
        EXPECT_FALSE(isa_family_supported(x86)) << isa_family_name(x86);
    if (isa_family() != IsaFamily::Scalar) {
        EXPECT_EQ(detected_isa(), Isa::Neon);
    }
    std::printf("[          ] CPU kernel family: %s (HEARTH_ISA gives %s)\n", isa_family_name(best),
                isa_family_name(isa_family()));
}

TEST(KernelsArm, NeonOverridesTheHotPaths) {
    const KernelTable s = scalar_table();
    for (bool dp : instances()) {
        const KernelTable t = neon_table(dp);
        for (GgmlType type : kNeonTypes) {
            SCOPED_TRACE(std::string(instance_name(dp)) + " " + type_name(type));
            const TypeKernels& k = t.k[static_cast<int>(type)];
            ASSERT_NE(k.vec_dot, nullptr);
            EXPECT_NE(k.vec_dot, s.k[static_cast<int>(type)].vec_dot);
            EXPECT_NE(k.vec_dot_multi, nullptr);
        }
        EXPECT_NE(t.k[static_cast<int>(GgmlType::Q8_0)].from_float, s.k[static_cast<int>(GgmlType::Q8_0)].from_float);
    }
    // The active table is the instance the family picks.
    if (isa_family() != IsaFamily::Scalar) {
        const bool dp = isa_family() == IsaFamily::NeonDotprod;
        EXPECT_EQ(kernels_for(Isa::Neon, GgmlType::Q4_0).vec_dot, neon_table(dp).k[static_cast<int>(GgmlType::Q4_0)].vec_dot);
    }
}

TEST(KernelsArm, VecDotMatchesScalar) {
    const KernelTable ref = scalar_table();
    for (bool dp : instances()) {
        const KernelTable t = neon_table(dp);
        int checked = 0;
        for (GgmlType type : kNeonTypes) {
            const auto fast = t.k[static_cast<int>(type)].vec_dot;
            const auto slow = ref.k[static_cast<int>(type)].vec_dot;
            std::mt19937 rng(static_cast<unsigned>(type) * 131u + 7u);
            for (int64_t n : lengths_for(type)) {
                for (bool raw : {false, true}) {
                    SCOPED_TRACE(std::string(instance_name(dp)) + " " + type_name(type) + " n=" + std::to_string(n) +
                                 (raw ? " raw" : " quantized"));
                    const std::vector<uint8_t> w = weight_row(ref, type, n, rng, raw);
                    const std::vector<uint8_t> a = activations(ref, type, n, 1, row_size(traits(type).vec_dot_type, n), rng);
                    const double mag = magnitude(ref, type, w.data(), a.data(), n);
                    const float want = slow(n, w.data(), a.data());
                    const float got = fast(n, w.data(), a.data());
                    ASSERT_TRUE(std::isfinite(got));
                    EXPECT_LE(std::fabs(static_cast<double>(got) - want), 1e-5 * mag + 1e-30)
                        << "neon " << got << " scalar " << want << " sum|w*a| " << mag;
                    ++checked;
                }
            }
        }
        EXPECT_GT(checked, 100);
    }
}

TEST(KernelsArm, MultiIsBitIdenticalToVecDot) {
    const KernelTable ref = scalar_table();
    for (bool dp : instances()) {
        const KernelTable t = neon_table(dp);
        int checked = 0;
        for (GgmlType type : kNeonTypes) {
            const TypeKernels& k = t.k[static_cast<int>(type)];
            ASSERT_NE(k.vec_dot_multi, nullptr);
            std::mt19937 rng(static_cast<unsigned>(type) * 7919u + 1);
            for (int64_t n : lengths_for(type)) {
                for (bool raw : {false, true}) {
                    const std::vector<uint8_t> w = weight_row(ref, type, n, rng, raw);
                    const size_t stride = row_size(traits(type).vec_dot_type, n) + 6;
                    for (int nt : {1, 2, 3, 5, 8, 11, 16}) {
                        const std::vector<uint8_t> act = activations(ref, type, n, nt, stride, rng);
                        std::vector<float> out(static_cast<size_t>(nt) + 1, -1.0f);
                        k.vec_dot_multi(n, w.data(), act.data(), stride, nt, out.data());
                        EXPECT_EQ(out[static_cast<size_t>(nt)], -1.0f) << "wrote past out[nt - 1]";
                        for (int i = 0; i < nt; ++i) {
                            const float single = k.vec_dot(n, w.data(), act.data() + stride * static_cast<size_t>(i));
                            ASSERT_TRUE(same_bits(out[static_cast<size_t>(i)], single))
                                << instance_name(dp) << " " << type_name(type) << " n=" << n << " nt=" << nt << " row "
                                << i << ": multi " << out[static_cast<size_t>(i)] << " vs vec_dot " << single;
                            ++checked;
                        }
                    }
                }
            }
        }
        EXPECT_GT(checked, 1000);
    }
}

// The sdot and the smull + sadalp instances form the same int32 totals, then run the same
// float code: their results must be the same bits (skipped where the CPU has no sdot).
TEST(KernelsArm, PlainAndDotprodAreBitIdentical) {
    if (!cpu_has_neon_dotprod()) GTEST_SKIP() << "CPU lacks the dot-product extension (HWCAP_ASIMDDP)";
    const KernelTable ref = scalar_table();
    const KernelTable plain = neon_table(false), dot = neon_table(true);
    int checked = 0;
    for (GgmlType type : kNeonTypes) {
        const TypeKernels& p = plain.k[static_cast<int>(type)];
        const TypeKernels& d = dot.k[static_cast<int>(type)];
        std::mt19937 rng(static_cast<unsigned>(type) * 31u + 5u);
        for (int64_t n : lengths_for(type)) {
            for (bool raw : {false, true}) {
                const std::vector<uint8_t> w = weight_row(ref, type, n, rng, raw);
                const size_t stride = row_size(traits(type).vec_dot_type, n);
                const int nt = 9;
                const std::vector<uint8_t> act = activations(ref, type, n, nt, stride, rng);
                std::vector<float> op(nt), od(nt);
                p.vec_dot_multi(n, w.data(), act.data(), stride, nt, op.data());
                d.vec_dot_multi(n, w.data(), act.data(), stride, nt, od.data());
                for (int i = 0; i < nt; ++i) {
                    const uint8_t* a = act.data() + stride * static_cast<size_t>(i);
                    ASSERT_TRUE(same_bits(p.vec_dot(n, w.data(), a), d.vec_dot(n, w.data(), a)))
                        << type_name(type) << " n=" << n << " row " << i;
                    ASSERT_TRUE(same_bits(op[static_cast<size_t>(i)], od[static_cast<size_t>(i)]))
                        << type_name(type) << " n=" << n << " row " << i;
                    ++checked;
                }
            }
        }
    }
    EXPECT_GT(checked, 500);
}

TEST(KernelsArm, Q8_0QuantizerMatchesScalarBitForBit) {
    const KernelTable ref = scalar_table();
    const auto slow = ref.k[static_cast<int>(GgmlType::Q8_0)].from_float;
    const auto fast = neon_table(false).k[static_cast<int>(GgmlType::Q8_0)].from_float;
    std::mt19937 rng(17);
    for (int64_t n : {32, 96, 4096}) {
        for (int variant = 0; variant < 5; ++variant) {
            std::vector<float> x = gaussian(n, rng, variant == 2 ? 1e-3f : variant == 3 ? 6e3f : 1.0f);
            if (variant == 1)
                for (int64_t i = 0; i < n; i += 7) x[static_cast<size_t>(i)] *= 50.0f;  // outliers
            if (variant == 4) {
                for (int j = 0; j < 32; ++j) x[static_cast<size_t>(j)] = 0.0f;  // an all-zero block
                for (int64_t i = 32; i < n; ++i) x[static_cast<size_t>(i)] = 0.5f * static_cast<float>(i % 9 - 4);  // ties
            }
            const size_t bytes = row_size(GgmlType::Q8_0, n);
            std::vector<uint8_t> want(bytes), got(bytes);
            slow(x.data(), want.data(), n);
            fast(x.data(), got.data(), n);
            EXPECT_EQ(std::memcmp(want.data(), got.data(), bytes), 0) << "n=" << n << " variant " << variant;
        }
    }
}

// A batch through the dot path equals per-token matmuls bit for bit with the active table.
TEST(KernelsArm, MatmulBatchEqualsPerTokenBitwise) {
    for (GgmlType type : kNeonTypes) {
        const int64_t rows = 37, cols = 512;
        std::mt19937 rng(99);
        const size_t rb = row_size(type, cols);
        std::vector<uint8_t> wq(rb * static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) {
            const std::vector<float> f = gaussian(cols, rng, 0.05f);
            quantize_row(type, f.data(), wq.data() + static_cast<size_t>(r) * rb, cols);
        }
        const MatrixView w{type, rows, cols, wq.data(), rb};
        const int64_t nt = 10, ldx = cols + 3, ldy = rows + 5;
        std::vector<float> x(static_cast<size_t>(ldx * nt));
        for (int64_t t = 0; t < nt; ++t) {
            const std::vector<float> f = gaussian(cols, rng, 0.5f * static_cast<float>(t + 1));
            std::copy(f.begin(), f.end(), x.begin() + t * ldx);
        }
        ThreadPool pool(2);
        std::vector<float> solo(static_cast<size_t>(ldy * nt)), batch(static_cast<size_t>(ldy * nt));
        MatmulScratch s1, s2;
        s1.path = s2.path = MatmulScratch::Path::Dot;
        for (int64_t t = 0; t < nt; ++t) matmul(w, x.data() + t * ldx, ldx, 1, solo.data() + t * ldy, ldy, nullptr, s1);
        matmul(w, x.data(), ldx, nt, batch.data(), ldy, &pool, s2);
        for (int64_t t = 0; t < nt; ++t)
            ASSERT_EQ(std::memcmp(batch.data() + t * ldy, solo.data() + t * ldy, sizeof(float) * rows), 0)
                << type_name(type) << " token " << t;
    }
}

// The packed layouts' NEON kernels (tensor/repack.h, arm/neon_packed_impl.h): one set per
// instance, each entry present, the sdot one only where the CPU has the extension; the
// process uses the set of the family HEARTH_ISA picks, none with HEARTH_REPACK=0 or scalar.
// (tests/test_repack.cpp compares both sets with the scalar reference and with each other.)
TEST(KernelsArm, PackedKernelsFollowTheFamily) {
    const PackedKernels* plain = packed_kernels_for(IsaFamily::Neon);
    ASSERT_NE(plain, nullptr);
    EXPECT_STREQ(plain->name, "neon");
    const PackedKernels* dp = packed_kernels_for(IsaFamily::NeonDotprod);
    EXPECT_EQ(dp != nullptr, cpu_has_neon_dotprod());
    if (dp) {
        EXPECT_STREQ(dp->name, "neon-dotprod");
        EXPECT_NE(dp->q4_0_rows, plain->q4_0_rows);
    }
    for (const PackedKernels* k : {plain, dp}) {
        if (!k) continue;
        SCOPED_TRACE(k->name);
        EXPECT_TRUE(k->q4_0_rows && k->q8_0_rows && k->q4_k_rows && k->q6_k_rows);
        EXPECT_TRUE(k->q4_0_unpack && k->q8_0_unpack && k->q4_k_unpack && k->q6_k_unpack);
        EXPECT_TRUE(k->q4_0_block && k->q8_0_block && k->q4_k_block && k->q6_k_block);
        EXPECT_TRUE(k->q5_k_rows && k->q5_k_unpack && k->q5_k_block);  // Q5_K: the Q4_K block kernel
        EXPECT_EQ(k->q5_k_block, k->q4_k_block);
        EXPECT_TRUE(packed_supports(*k, GgmlType::Q5_K));
    }
    for (IsaFamily f : {IsaFamily::Scalar, IsaFamily::Avx2, IsaFamily::Avx2Vnni, IsaFamily::Avx512})
        EXPECT_EQ(packed_kernels_for(f), nullptr) << isa_family_name(f);
    const char* env = std::getenv("HEARTH_REPACK");
    const bool off = env && std::strcmp(env, "0") == 0;
    EXPECT_EQ(packed_kernels(), off ? nullptr : packed_kernels_for(isa_family()));
    const MatrixView q4{GgmlType::Q4_0, 32, 256, reinterpret_cast<const uint8_t*>(""), row_size(GgmlType::Q4_0, 256)};
    EXPECT_EQ(repack_wanted(q4), !off && isa_family() != IsaFamily::Scalar);
    const MatrixView q5{GgmlType::Q5_K, 32, 256, reinterpret_cast<const uint8_t*>(""), row_size(GgmlType::Q5_K, 256)};
    EXPECT_EQ(repack_wanted(q5), !off && isa_family() != IsaFamily::Scalar);
}

}  // namespace
}  // namespace hearth

#endif  // __aarch64__
