// The packed (interleaved) Q4_0 layout and its decode kernel (tensor/repack.h): the packed
// product matches a double-precision reference, a token's result is bit-identical whatever
// the number of tokens in the call and the thread count, packed rows read back to exactly
// the stored values, and the GEMM gives the same bits from the packed copy as from the rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/threadpool.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/repack.h"

namespace hearth {
namespace {

struct Packed {
    std::vector<uint8_t> rows, packed;
    std::vector<float> wd;  // dequantized weights
    MatrixView view, plain;
};

Packed make(int64_t rows, int64_t cols, uint32_t seed) {
    Packed p;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(rows * cols));
    for (float& v : wf) v = nd(rng);
    const size_t rb = row_size(GgmlType::Q4_0, cols);
    p.rows.resize(rb * static_cast<size_t>(rows));
    p.wd.resize(wf.size());
    for (int64_t r = 0; r < rows; ++r) {
        quantize_row(GgmlType::Q4_0, wf.data() + r * cols, p.rows.data() + static_cast<size_t>(r) * rb, cols);
        dequantize_row(GgmlType::Q4_0, p.rows.data() + static_cast<size_t>(r) * rb, p.wd.data() + r * cols, cols);
    }
    p.plain = MatrixView{GgmlType::Q4_0, rows, cols, p.rows.data(), rb};
    p.view = p.plain;
    if (repack_wanted(p.plain)) {
        p.packed.resize(packed_bytes(p.plain));
        repack_groups(p.plain, p.rows.data(), p.packed.data(), 0, rows / kPackRows);
        p.view.packed = p.packed.data();
    }
    return p;
}

#define SKIP_WITHOUT_PACKING(p) \
    if (!(p).view.packed) GTEST_SKIP() << "no packed kernel on this CPU (or HEARTH_REPACK=0)"

TEST(Repack, OnlyQ4_0WithWholeRowGroups) {
    Packed p = make(16, 64, 1);
    SKIP_WITHOUT_PACKING(p);
    MatrixView odd = p.plain;
    odd.rows = 12;
    EXPECT_FALSE(repack_wanted(odd));
    MatrixView q8 = p.plain;
    q8.type = GgmlType::Q8_0;
    EXPECT_FALSE(repack_wanted(q8));
    EXPECT_EQ(packed_bytes(p.plain), p.rows.size());  // same bytes, other order
}

TEST(Repack, PackedRowsReadBackExactly) {
    Packed p = make(24, 352, 2);
    SKIP_WITHOUT_PACKING(p);
    std::vector<float> got(352);
    for (int64_t r = 0; r < 24; ++r) {
        packed_row_to_float(p.view, r, 0, 352, got.data());
        ASSERT_EQ(0, std::memcmp(got.data(), p.wd.data() + r * 352, 352 * sizeof(float))) << "row " << r;
        packed_row_to_float(p.view, r, 96, 64, got.data());
        ASSERT_EQ(0, std::memcmp(got.data(), p.wd.data() + r * 352 + 96, 64 * sizeof(float))) << "row " << r;
    }
}

// Decode-size batches (the dot path, which the serving engine pins for generated tokens).
TEST(Repack, PackedProductMatchesReferenceAndIsBatchAndThreadInvariant) {
    const int64_t rows = 40, cols = 352;
    Packed p = make(rows, cols, 3);
    SKIP_WITHOUT_PACKING(p);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t n_max = 19;
    std::vector<float> x(static_cast<size_t>(n_max * cols));
    for (float& v : x) v = nd(rng);
    std::vector<float> xd(x.size());
    std::vector<uint8_t> tmp(row_size(GgmlType::Q8_0, cols));
    for (int64_t t = 0; t < n_max; ++t) {
        quantize_row(GgmlType::Q8_0, x.data() + t * cols, tmp.data(), cols);
        dequantize_row(GgmlType::Q8_0, tmp.data(), xd.data() + t * cols, cols);
    }
    // Alone, one token per call.
    std::vector<float> solo(static_cast<size_t>(n_max * rows));
    {
        ThreadPool pool(1);
        MatmulScratch s;
        s.path = MatmulScratch::Path::Dot;
        for (int64_t t = 0; t < n_max; ++t) matmul(p.view, x.data() + t * cols, cols, 1, solo.data() + t * rows, rows, &pool, s);
    }
    for (int64_t t = 0; t < n_max; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < cols; ++k) {
                ref += double(p.wd[r * cols + k]) * xd[t * cols + k];
                mag += std::fabs(double(p.wd[r * cols + k]) * xd[t * cols + k]);
            }
            ASSERT_NEAR(solo[t * rows + r], ref, 1e-5 * mag + 1e-6) << "t=" << t << " r=" << r;
        }
    // In batches of every size up to 19 (more than one group of 8 tokens), with 1 to 3
    // threads: the same bits.
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        MatmulScratch s;
        s.path = MatmulScratch::Path::Dot;
        for (int64_t n : {2, 7, 8, 9, 19}) {
            std::vector<float> y(static_cast<size_t>(n * rows), NAN);
            matmul(p.view, x.data(), cols, n, y.data(), rows, &pool, s);
            ASSERT_EQ(0, std::memcmp(y.data(), solo.data(), y.size() * sizeof(float))) << "n=" << n << " threads=" << threads;
        }
    }
}

// Prompt batches go through the GEMM, which dequantizes the packed copy to the same values
// as the stored rows: identical results either way.
TEST(Repack, GemmReadsPackedCopyExactly) {
    const int64_t rows = 32, cols = 512, n = 37;
    Packed p = make(rows, cols, 4);
    SKIP_WITHOUT_PACKING(p);
    std::mt19937 rng(8);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (float& v : x) v = nd(rng);
    ThreadPool pool(2);
    MatmulScratch s;
    s.path = MatmulScratch::Path::Gemm;
    std::vector<float> a(static_cast<size_t>(n * rows)), b(a.size());
    matmul(p.view, x.data(), cols, n, a.data(), rows, &pool, s);
    matmul(p.plain, x.data(), cols, n, b.data(), rows, &pool, s);
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

}  // namespace
}  // namespace hearth
