// The multi-token dot kernels (TypeKernels::vec_dot_multi) against the single-row vec_dot of
// the same table: out[t] must equal vec_dot(n, w, act + t * stride) bit for bit, for every
// row count and length, in both the AVX2 and (where the CPU has it) the AVX-VNNI instance;
// and a matmul over many tokens through the dot path must equal per-token matmuls bitwise,
// so a decode token's result never depends on the batch it ran in.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/gemm.h"
#include "tensor/threadpool.h"
#include "tensor/kernel_table.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/types.h"

namespace hearth {
namespace {

#define SKIP_WITHOUT_AVX2()                                                                  \
    do {                                                                                     \
        if (detected_isa() != Isa::Avx2) GTEST_SKIP() << "CPU lacks AVX2+FMA+F16C";          \
    } while (0)

// The types that have a multi kernel (checked below against the live table). The float
// types' multi kernels live in the AVX2 float file (avx2.cpp), not in the int8 instances.
const GgmlType kQuantMultiTypes[] = {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0,
                                     GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
const GgmlType kFloatMultiTypes[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16};

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

std::vector<float> gaussian(int64_t n, std::mt19937& rng, float sigma) {
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    return v;
}

// Offsets of the fp16 scale fields inside one block, so raw random bytes can be made a
// valid row (finite scales).
std::vector<size_t> fp16_fields(GgmlType t) {
    switch (t) {
        case GgmlType::Q4_0: return {offsetof(BlockQ4_0, d)};
        case GgmlType::Q5_0: return {offsetof(BlockQ5_0, d)};
        case GgmlType::Q8_0: return {offsetof(BlockQ8_0, d)};
        case GgmlType::Q4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
        case GgmlType::Q5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
        case GgmlType::Q6_K: return {offsetof(BlockQ6_K, d)};
        default: return {};
    }
}

// A weight row: either a quantized Gaussian row (real scale/quant statistics) or random
// bytes with finite scales (every bit pattern of the quants, e.g. -128 in Q8_0).
std::vector<uint8_t> weight_row(GgmlType t, int64_t n, std::mt19937& rng, bool raw) {
    std::vector<uint8_t> row(row_size(t, n));
    if (is_float(t)) {
        // Values over many binades (raw) or one Gaussian scale, rounded through the type.
        std::vector<float> f = gaussian(n, rng, 1.0f);
        if (raw) {
            std::uniform_int_distribution<int> e(-20, 20);
            for (float& v : f) v = std::ldexp(v, e(rng));
        }
        kernels_for(Isa::Scalar, t).from_float(f.data(), row.data(), n);
        return row;
    }
    if (!raw) {
        const std::vector<float> f = gaussian(n, rng, 0.05f);
        kernels_for(Isa::Scalar, t).from_float(f.data(), row.data(), n);
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

// nt activation rows in the type's vec_dot_type, `stride` bytes apart (more than a row, so
// the kernels must honour the stride). Row scales vary by orders of magnitude; one row is
// all zeros (a zero scale).
std::vector<uint8_t> activations(GgmlType t, int64_t n, int nt, size_t stride, std::mt19937& rng) {
    const GgmlType vt = traits(t).vec_dot_type;
    std::vector<uint8_t> act(stride * static_cast<size_t>(nt) + 64, 0xa5);
    for (int i = 0; i < nt; ++i) {
        std::vector<float> f = gaussian(n, rng, i == 2 ? 0.0f : 0.1f * static_cast<float>(1 + i * i));
        kernels(vt).from_float(f.data(), act.data() + stride * static_cast<size_t>(i), n);
    }
    return act;
}

std::vector<int64_t> lengths_for(GgmlType t) {
    const int64_t bs = traits(t).block_size;
    std::vector<int64_t> out;
    for (int64_t blocks : {1, 2, 3, 4, 5, 7, 8, 9, 13}) out.push_back(blocks * bs);
    for (int64_t n : {2048, 5632}) out.push_back(n);
    if (bs == 1)  // off the SIMD width and the 32-element step: every tail path
        for (int64_t n : {1, 7, 31, 33, 100, 1001}) out.push_back(n);
    return out;
}

// Compares every instance of vec_dot_multi for t against the table's vec_dot.
void expect_identical(GgmlType t, const TypeKernels& ref, const char* what, decltype(TypeKernels::vec_dot_multi) multi) {
    ASSERT_NE(multi, nullptr) << what << " has no vec_dot_multi for " << type_name(t);
    std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
    int checked = 0;
    for (int64_t n : lengths_for(t)) {
        for (bool raw : {false, true}) {
            const std::vector<uint8_t> w = weight_row(t, n, rng, raw);
            const size_t stride = row_size(traits(t).vec_dot_type, n) + 6;
            for (int nt : {1, 2, 3, 4, 5, 6, 7, 8, 11, 16}) {
                const std::vector<uint8_t> act = activations(t, n, nt, stride, rng);
                std::vector<float> out(static_cast<size_t>(nt) + 1, -1.0f);
                multi(n, w.data(), act.data(), stride, nt, out.data());
                EXPECT_EQ(out[static_cast<size_t>(nt)], -1.0f) << "wrote past out[nt - 1]";
                for (int i = 0; i < nt; ++i) {
                    const float single = ref.vec_dot(n, w.data(), act.data() + stride * static_cast<size_t>(i));
                    ASSERT_EQ(std::memcmp(&out[static_cast<size_t>(i)], &single, sizeof(float)), 0)
                        << what << " " << type_name(t) << " n=" << n << (raw ? " raw" : " quantized") << " nt=" << nt
                        << " row " << i << ": multi " << out[static_cast<size_t>(i)] << " vs vec_dot " << single;
                    ++checked;
                }
            }
        }
    }
    EXPECT_GT(checked, 1000);
}

// F16 decode on the AVX2 table takes the activations rounded through F16 but held as f32
// (matmul converts them once per call): the F16 vec_dot's results bit for bit, 1 to 16 rows.
TEST(KernelsMulti, F16WithF32ActivationsIsBitIdenticalToVecDot) {
    SKIP_WITHOUT_AVX2();
    const TypeKernels& ref = kernels_for(Isa::Avx2, GgmlType::F16);
    std::mt19937 rng(17);
    for (int64_t n : lengths_for(GgmlType::F16)) {
        for (bool raw : {false, true}) {
            const std::vector<uint8_t> w = weight_row(GgmlType::F16, n, rng, raw);
            for (int nt : {1, 2, 3, 5, 16}) {
                const size_t stride16 = static_cast<size_t>(n) * 2 + 6, stride32 = static_cast<size_t>(n) * 4 + 8;
                const std::vector<uint8_t> act = activations(GgmlType::F16, n, nt, stride16, rng);
                std::vector<uint8_t> act32(stride32 * static_cast<size_t>(nt));
                for (int i = 0; i < nt; ++i)
                    kernels_for(Isa::Scalar, GgmlType::F16)
                        .to_float(act.data() + stride16 * static_cast<size_t>(i),
                                  reinterpret_cast<float*>(act32.data() + stride32 * static_cast<size_t>(i)), n);
                std::vector<float> out(static_cast<size_t>(nt) + 1, -1.0f);
                avx2::vec_dot_multi_f16_f32act(n, w.data(), act32.data(), stride32, nt, out.data());
                EXPECT_EQ(out[static_cast<size_t>(nt)], -1.0f) << "wrote past out[nt - 1]";
                for (int i = 0; i < nt; ++i) {
                    const float single = ref.vec_dot(n, w.data(), act.data() + stride16 * static_cast<size_t>(i));
                    ASSERT_EQ(std::memcmp(&out[static_cast<size_t>(i)], &single, 4), 0) << "n=" << n << " nt=" << nt << " row " << i;
                    if (i == 0) {
                        const float one = avx2::vec_dot_f16_f32act(n, w.data(), act32.data());
                        ASSERT_EQ(std::memcmp(&one, &single, 4), 0) << "n=" << n;
                    }
                }
            }
        }
    }
}

TEST(KernelsMulti, HotTypesHaveMultiKernels) {
    SKIP_WITHOUT_AVX2();
    for (GgmlType t : kQuantMultiTypes) EXPECT_NE(kernels_for(Isa::Avx2, t).vec_dot_multi, nullptr) << type_name(t);
    for (GgmlType t : kFloatMultiTypes) EXPECT_NE(kernels_for(Isa::Avx2, t).vec_dot_multi, nullptr) << type_name(t);
    // The scalar table has none: callers fall back to vec_dot per row.
    EXPECT_EQ(kernels_for(Isa::Scalar, GgmlType::Q4_0).vec_dot_multi, nullptr);
}

TEST(KernelsMulti, ActiveTableIsBitIdenticalToVecDot) {
    SKIP_WITHOUT_AVX2();
    for (const auto& types : {std::vector<GgmlType>(std::begin(kQuantMultiTypes), std::end(kQuantMultiTypes)),
                              std::vector<GgmlType>(std::begin(kFloatMultiTypes), std::end(kFloatMultiTypes))})
        for (GgmlType t : types) {
            const TypeKernels& k = kernels_for(Isa::Avx2, t);
            expect_identical(t, k, "active AVX2 table", k.vec_dot_multi);
        }
}

TEST(KernelsMulti, Avx2InstanceIsBitIdenticalToVecDot) {
    SKIP_WITHOUT_AVX2();
    KernelTable table{};
    register_avx2_multi_kernels(table);
    for (GgmlType t : kQuantMultiTypes)
        expect_identical(t, kernels_for(Isa::Avx2, t), "AVX2 instance", table[t].vec_dot_multi);
}

TEST(KernelsMulti, VnniInstanceIsBitIdenticalToVecDot) {
    SKIP_WITHOUT_AVX2();
    if (!cpu_has_avx_vnni()) GTEST_SKIP() << "CPU lacks AVX-VNNI";
    KernelTable table{};
    register_avx2_vnni_multi_kernels(table);
    for (GgmlType t : kQuantMultiTypes)
        expect_identical(t, kernels_for(Isa::Avx2, t), "AVX-VNNI instance", table[t].vec_dot_multi);
}

// A batch of n tokens through the dot path equals n one-token matmuls bit for bit, for the
// multi types and for types that fall back to vec_dot per token, with and without threads
// (row counts off the 16-row tile and 64-row grain).
class MatmulDotBatch : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatmulDotBatch, BatchEqualsPerTokenBitwise) {
    const GgmlType type = GetParam();
    const int64_t rows = 83, cols = 512;
    std::mt19937 rng(99);
    const size_t rb = row_size(type, cols);
    std::vector<uint8_t> wq(rb * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        const std::vector<float> f = gaussian(cols, rng, 0.05f);
        quantize_row(type, f.data(), wq.data() + static_cast<size_t>(r) * rb, cols);
    }
    const MatrixView w{type, rows, cols, wq.data(), rb};
    const int64_t max_tokens = 12;
    const int64_t ldx = cols + 3, ldy = rows + 5;
    std::vector<float> x(static_cast<size_t>(ldx * max_tokens));
    for (int64_t t = 0; t < max_tokens; ++t) {
        const std::vector<float> f = gaussian(cols, rng, 0.5f * static_cast<float>(t + 1));
        std::copy(f.begin(), f.end(), x.begin() + t * ldx);
    }
    ThreadPool pool(2);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        // Per-token reference: one matmul call per token (the n_tokens == 1 path).
        std::vector<float> solo(static_cast<size_t>(ldy * max_tokens), 0.0f);
        MatmulScratch s1;
        s1.path = MatmulScratch::Path::Dot;
        for (int64_t t = 0; t < max_tokens; ++t) matmul(w, x.data() + t * ldx, ldx, 1, solo.data() + t * ldy, ldy, p, s1);
        for (int64_t n = 1; n <= max_tokens; ++n) {
            std::vector<float> y(static_cast<size_t>(ldy * n), 0.0f);
            MatmulScratch s;
            s.path = MatmulScratch::Path::Dot;
            matmul(w, x.data(), ldx, n, y.data(), ldy, p, s);
            const size_t bytes = sizeof(float) * static_cast<size_t>(rows);
            for (int64_t t = 0; t < n; ++t)
                ASSERT_EQ(std::memcmp(y.data() + t * ldy, solo.data() + t * ldy, bytes), 0)
                    << type_name(type) << " n_tokens=" << n << " token " << t << (p ? " threaded" : " single-threaded");
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulDotBatch,
                         ::testing::Values(GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K,
                                           GgmlType::Q5_K, GgmlType::Q6_K,
                                           GgmlType::Q4_1, GgmlType::F16, GgmlType::BF16, GgmlType::F32),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                             return std::string(type_name(info.param));
                         });

}  // namespace
}  // namespace hearth
