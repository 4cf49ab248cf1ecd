#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tensor/threadpool.h"
#include "tensor/gemm.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

struct Case {
    GgmlType type;
};

std::vector<GgmlType> weight_types() {
    return {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
            GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
            GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
}

class MatmulTest : public ::testing::TestWithParam<GgmlType> {};

// The product must equal a double-precision product of the dequantized weights and the
// dequantized (converted) activations, for decode (1 token) and prefill (many), with any
// thread count, and be bitwise identical across thread counts.
TEST_P(MatmulTest, MatchesDequantizedReferenceAndIsThreadCountInvariant) {
    const GgmlType type = GetParam();
    const int64_t rows = 37, cols = 512;
    std::mt19937 rng(1234);
    std::normal_distribution<float> nd(0.0f, 1.0f);

    std::vector<float> wf(static_cast<size_t>(rows * cols));
    for (float& v : wf) v = nd(rng);
    const size_t rb = row_size(type, cols);
    std::vector<uint8_t> wq(rb * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) quantize_row(type, wf.data() + r * cols, wq.data() + static_cast<size_t>(r) * rb, cols);
    std::vector<float> wd(wf.size());
    for (int64_t r = 0; r < rows; ++r) dequantize_row(type, wq.data() + static_cast<size_t>(r) * rb, wd.data() + r * cols, cols);
    MatrixView w{type, rows, cols, wq.data(), rb};

    const GgmlType at = traits(type).vec_dot_type;
    for (int64_t n_tokens : {1, 5, 33}) {
        std::vector<float> x(static_cast<size_t>(n_tokens * cols));
        for (float& v : x) v = nd(rng);
        // Reference: activations through the same conversion the kernel sees.
        std::vector<float> xd(x.size());
        std::vector<uint8_t> tmp(row_size(at, cols));
        for (int64_t t = 0; t < n_tokens; ++t) {
            quantize_row(at, x.data() + t * cols, tmp.data(), cols);
            dequantize_row(at, tmp.data(), xd.data() + t * cols, cols);
        }
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            MatmulScratch scratch;
            std::vector<float> y(static_cast<size_t>(n_tokens * rows), NAN);
            matmul(w, x.data(), cols, n_tokens, y.data(), rows, &pool, scratch);
            for (int64_t t = 0; t < n_tokens; ++t)
                for (int64_t r = 0; r < rows; ++r) {
                    double ref = 0, mag = 0;
                    for (int64_t k = 0; k < cols; ++k) {
                        ref += double(wd[r * cols + k]) * xd[t * cols + k];
                        mag += std::fabs(double(wd[r * cols + k]) * xd[t * cols + k]);
                    }
                    // Q4_1/Q5_1 use the activation block's stored s = fp16(d * sum q) for the
                    // min term, as ggml does: allow its fp16 rounding (2^-11 relative) per block.
                    double min_term = 0;
                    if (at == GgmlType::Q8_1) {
                        for (int64_t blk = 0; blk < cols / 32; ++blk) {
                            const uint8_t* wb = wq.data() + static_cast<size_t>(r) * rb + static_cast<size_t>(blk) * traits(type).type_size;
                            const float mval = fp16_to_fp32(reinterpret_cast<const uint16_t*>(wb)[1]);
                            double sx = 0;
                            for (int64_t k = blk * 32; k < blk * 32 + 32; ++k) sx += xd[t * cols + k];
                            min_term += std::fabs(mval) * (std::fabs(sx) + 1.0);
                        }
                    }
                    ASSERT_NEAR(y[t * rows + r], ref, 1e-4 * mag + 1e-3 * min_term + 1e-5)
                        << type_name(type) << " tokens=" << n_tokens << " t=" << t << " r=" << r;
                }
            if (first.empty()) first = y;
            else ASSERT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * sizeof(float))) << "threads=" << threads;
        }
    }
}

// Batches of >= kGemmMinTokens take the GEMM path when the CPU has one: each token's result
// must match what the single-token path gives for it (same activation rounding, only the
// summation order differs), including row/token tails, k not a multiple of the chunk and
// more tokens than one pass over the weights holds.
TEST_P(MatmulTest, BatchedPathAgreesWithSingleTokenPath) {
    const GgmlType type = GetParam();
    const int64_t bs = traits(type).block_size;
    for (int64_t cols : {bs == 256 ? int64_t{768} : int64_t{96}, int64_t{1024}}) {
        const int64_t rows = 29;
        const int64_t n_tokens = cols == 1024 ? 530 : 21;
        std::mt19937 rng(99);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> wf(static_cast<size_t>(rows * cols));
        for (float& v : wf) v = nd(rng);
        const size_t rb = row_size(type, cols);
        std::vector<uint8_t> wq(rb * static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) quantize_row(type, wf.data() + r * cols, wq.data() + static_cast<size_t>(r) * rb, cols);
        MatrixView w{type, rows, cols, wq.data(), rb};
        std::vector<float> x(static_cast<size_t>(n_tokens * cols));
        for (float& v : x) v = nd(rng);
        ThreadPool pool(2);
        MatmulScratch scratch;
        std::vector<float> y(static_cast<size_t>(n_tokens * rows), NAN), one(static_cast<size_t>(rows));
        matmul(w, x.data(), cols, n_tokens, y.data(), rows, &pool, scratch);
        for (int64_t t = 0; t < n_tokens; t += (t < 40 ? 1 : 37)) {
            matmul(w, x.data() + t * cols, cols, 1, one.data(), rows, &pool, scratch);
            for (int64_t r = 0; r < rows; ++r) {
                double mag = 0;
                for (int64_t k = 0; k < cols; ++k) mag += std::fabs(double(wf[r * cols + k]) * x[t * cols + k]);
                // Q4_1/Q5_1's dot uses the activation block's fp16 sum for the min term.
                const double tol = traits(type).vec_dot_type == GgmlType::Q8_1 ? 2e-3 : 2e-5;
                ASSERT_NEAR(y[t * rows + r], one[r], tol * mag + 1e-6)
                    << type_name(type) << " cols=" << cols << " t=" << t << " r=" << r;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, MatmulTest, ::testing::ValuesIn(weight_types()),
                         [](const auto& info) { return std::string(type_name(info.param)); });

TEST(Matmul, StridedInputAndOutput) {
    const int64_t rows = 8, cols = 64, n_tokens = 3, ldx = 80, ldy = 11;
    std::vector<float> w(static_cast<size_t>(rows * cols)), x(static_cast<size_t>(n_tokens * ldx), 0.5f);
    for (size_t i = 0; i < w.size(); ++i) w[i] = float(i % 7) - 3.0f;
    MatrixView mv{GgmlType::F32, rows, cols, reinterpret_cast<const uint8_t*>(w.data()), cols * sizeof(float)};
    std::vector<float> y(static_cast<size_t>(n_tokens * ldy), -7.0f);
    MatmulScratch s;
    matmul(mv, x.data(), ldx, n_tokens, y.data(), ldy, nullptr, s);
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            double ref = 0;
            for (int64_t k = 0; k < cols; ++k) ref += w[r * cols + k] * 0.5;
            EXPECT_FLOAT_EQ(y[t * ldy + r], float(ref));
        }
        for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(y[t * ldy + r], -7.0f) << "wrote past the row";
    }
}

// Each GEMM kernel this CPU can run (AVX-512, AVX2; NEON on aarch64), called directly on the
// documented activation layout: every row range (partial register blocks, several 96-row
// panels, ranges that start mid-panel), token counts off the 16/32-token blocks and past one
// 512-token pass, weight types with 32- and 256-element blocks, against a double product.
TEST(Gemm, KernelsMatchReferenceOnEveryRowRange) {
    struct Kernel {
        const char* name;
        GemmFn fn;
        bool usable;
    };
    const Kernel kernels_here[] = {{"avx512", &avx512::gemm_f32, avx512::cpu_supported()},
                                   {"avx2", &avx2::gemm_f32, detected_isa() == Isa::Avx2},
#if defined(__aarch64__)
                                   {"neon", &neon::gemm_f32, detected_isa() == Isa::Neon},
#endif
    };
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (GgmlType type : {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q6_K}) {
        const int64_t cols = traits(type).block_size == 256 ? 512 : 320, rows = 203;
        std::vector<float> wf(static_cast<size_t>(rows * cols)), wd(wf.size());
        for (float& v : wf) v = nd(rng);
        const size_t rb = row_size(type, cols);
        std::vector<uint8_t> wq(rb * static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) {
            quantize_row(type, wf.data() + r * cols, wq.data() + static_cast<size_t>(r) * rb, cols);
            dequantize_row(type, wq.data() + static_cast<size_t>(r) * rb, wd.data() + r * cols, cols);
        }
        const MatrixView w{type, rows, cols, wq.data(), rb};
        for (int64_t n : {int64_t{5}, int64_t{16}, int64_t{47}, int64_t{530}}) {
            const int64_t ntp = (n + kTokBlock - 1) / kTokBlock * kTokBlock;
            std::vector<float> x(static_cast<size_t>(n * cols)), at(static_cast<size_t>(ntp * cols), 0.0f);
            for (float& v : x) v = nd(rng);
            for (int64_t t = 0; t < n; ++t)
                for (int64_t k = 0; k < cols; ++k) at[(t / kTokBlock) * cols * kTokBlock + k * kTokBlock + t % kTokBlock] = x[t * cols + k];
            for (const Kernel& kern : kernels_here) {
                if (!kern.usable) continue;
                for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {7, 101}, {96, 203}, {200, 203}}) {
                    SCOPED_TRACE(std::string(kern.name) + " " + type_name(type) + " n=" + std::to_string(n) + " rows " +
                                 std::to_string(r0) + ".." + std::to_string(r1));
                    const int64_t ldy = rows + 3;
                    std::vector<float> y(static_cast<size_t>(n * ldy), -7.0f);
                    kern.fn(w, at.data(), ntp, n, y.data(), ldy, r0, r1);
                    for (int64_t t = 0; t < n; t += (t < 20 ? 1 : 13))
                        for (int64_t r = 0; r < ldy; ++r) {
                            if (r < r0 || r >= r1) {
                                ASSERT_EQ(y[t * ldy + r], -7.0f) << "wrote outside its rows: t=" << t << " r=" << r;
                                continue;
                            }
                            double ref = 0, mag = 0;
                            for (int64_t k = 0; k < cols; ++k) {
                                ref += double(wd[r * cols + k]) * x[t * cols + k];
                                mag += std::fabs(double(wd[r * cols + k]) * x[t * cols + k]);
                            }
                            ASSERT_NEAR(y[t * ldy + r], ref, 1e-5 * mag) << "t=" << t << " r=" << r;
                        }
                }
            }
        }
    }
}

}  // namespace
}  // namespace hearth
