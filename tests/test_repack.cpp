// The packed (interleaved) Q4_0 layout and its decode kernel (tensor/repack.h): the packed
// product matches a double-precision reference, a token's result is bit-identical whatever
// the number of tokens in the call, the thread count and the kernel (decode or prompt).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "tensor/cpu.h"
#include "tensor/kernel_table.h"
#include "tensor/threadpool.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/repack.h"
#include "support/paths.h"

namespace hearth {
namespace {

struct Packed {
    std::vector<uint8_t> rows, packed;
    std::vector<float> wd;  // dequantized weights
    MatrixView view, plain;
};

Packed make(int64_t rows, int64_t cols, uint32_t seed, GgmlType type = GgmlType::Q4_0) {
    Packed p;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(rows * cols));
    for (float& v : wf) v = nd(rng);
    const size_t rb = row_size(type, cols);
    p.rows.resize(rb * static_cast<size_t>(rows));
    p.wd.resize(wf.size());
    for (int64_t r = 0; r < rows; ++r) {
        quantize_row(type, wf.data() + r * cols, p.rows.data() + static_cast<size_t>(r) * rb, cols);
        dequantize_row(type, p.rows.data() + static_cast<size_t>(r) * rb, p.wd.data() + r * cols, cols);
    }
    p.plain = MatrixView{type, rows, cols, p.rows.data(), rb};
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

TEST(Repack, OnlySupportedTypesWithWholeRowGroups) {
    Packed p = make(32, 64, 1);
    SKIP_WITHOUT_PACKING(p);
    MatrixView odd = p.plain;
    odd.rows = 24;
    EXPECT_FALSE(repack_wanted(odd));
    MatrixView q5 = p.plain;
    q5.type = GgmlType::Q5_0;  // no packed kernels
    EXPECT_FALSE(repack_wanted(q5));
    MatrixView q5k = p.plain;
    q5k.type = GgmlType::Q5_K;  // packed where the family has Q5_K kernels, in whole super-blocks
    EXPECT_FALSE(repack_wanted(q5k));
    q5k.cols = 512;
    q5k.row_bytes = row_size(GgmlType::Q5_K, 512);
    EXPECT_EQ(repack_wanted(q5k), packed_supports(*packed_kernels(), GgmlType::Q5_K));
    // Q5_K: Q4_K's packed super-block plus 16 rows x 32 bytes of high bits (Q4_K's 12 packed
    // scale bytes become 16 scale and min bytes per row).
    EXPECT_EQ(packed_bytes(q5k), static_cast<size_t>(q5k.rows / 16) * 2 * avx512::kPackQ5SuperBytes);
    EXPECT_EQ(avx512::kPackQ5SuperBytes, 16 * (sizeof(BlockQ5_K) + 4));
    MatrixView q6 = p.plain;
    q6.type = GgmlType::Q6_K;  // 64 columns: not a whole super-block
    EXPECT_FALSE(repack_wanted(q6));
    q6.cols = 512;
    q6.row_bytes = row_size(GgmlType::Q6_K, 512);
    EXPECT_TRUE(repack_wanted(q6));
    EXPECT_EQ(packed_bytes(q6), static_cast<size_t>(q6.rows) * q6.row_bytes);  // Q6_K packs to its stored size
    MatrixView k4 = p.plain;
    k4.type = GgmlType::Q4_K;  // 64 columns: not a whole super-block
    EXPECT_FALSE(repack_wanted(k4));
    EXPECT_EQ(packed_bytes(p.plain), p.rows.size());  // same bytes, other order
}

// Every stored block's scale and quants are in the packed copy, in the layout the kernels
// read: per 16-row group and block, the 16 scales, then 4 vectors of the rows' quant words.
TEST(Repack, PackedLayoutHoldsEveryBlock) {
    Packed p = make(32, 352, 2);
    SKIP_WITHOUT_PACKING(p);
    const int64_t nb = 352 / 32;
    for (int64_t r = 0; r < 32; ++r)
        for (int64_t i = 0; i < nb; ++i) {
            const auto& blk = reinterpret_cast<const BlockQ4_0*>(p.plain.row(r))[i];
            const uint8_t* g = p.packed.data() + static_cast<size_t>((r / 16) * nb + i) * 288;
            ASSERT_EQ(0, std::memcmp(g + 2 * (r % 16), &blk.d, 2)) << r << "," << i;
            for (int j = 0; j < 4; ++j)
                ASSERT_EQ(0, std::memcmp(g + 32 + 64 * j + 4 * (r % 16), blk.qs + 4 * j, 4)) << r << "," << i;
        }
}

// Decode-size batches (the dot path, which the serving engine pins for generated tokens).
class RepackInt8 : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RepackInt8, PackedProductMatchesReferenceAndIsBatchAndThreadInvariant) {
    const int64_t rows = 48, cols = 352;
    Packed p = make(rows, cols, 3, GetParam());
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

// Prompt batches (the GEMM path) over a packed matrix take the int8 GEMM: close to the
// reference, the same bits as the decode kernel gives, and the same bits whatever else is
// in the batch (the serving engine's batched == solo guarantee), including partial
// 16-token blocks.
TEST_P(RepackInt8, PackedGemmMatchesReferenceAndIsBatchInvariant) {
    const int64_t rows = 32, cols = 512, n = 37;
    Packed p = make(rows, cols, 4, GetParam());
    SKIP_WITHOUT_PACKING(p);
    std::mt19937 rng(8);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (float& v : x) v = nd(rng);
    ThreadPool pool(2);
    MatmulScratch s;
    s.path = MatmulScratch::Path::Gemm;
    std::vector<float> all(static_cast<size_t>(n * rows));
    matmul(p.view, x.data(), cols, n, all.data(), rows, &pool, s);
    std::vector<uint8_t> tmp(row_size(GgmlType::Q8_0, cols));
    std::vector<float> xd(static_cast<size_t>(cols));
    for (int64_t t = 0; t < n; ++t) {
        quantize_row(GgmlType::Q8_0, x.data() + t * cols, tmp.data(), cols);
        dequantize_row(GgmlType::Q8_0, tmp.data(), xd.data(), cols);
        for (int64_t r = 0; r < rows; ++r) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < cols; ++k) {
                ref += double(p.wd[r * cols + k]) * xd[k];
                mag += std::fabs(double(p.wd[r * cols + k]) * xd[k]);
            }
            ASSERT_NEAR(all[t * rows + r], ref, 1e-5 * mag + 1e-6) << "t=" << t << " r=" << r;
        }
    }
    // The decode kernel, one token at a time and 8 at a time: identical.
    {
        MatmulScratch d;
        d.path = MatmulScratch::Path::Dot;
        std::vector<float> dot(all.size());
        for (int64_t t = 0; t < n; ++t) matmul(p.view, x.data() + t * cols, cols, 1, dot.data() + t * rows, rows, &pool, d);
        ASSERT_EQ(0, std::memcmp(dot.data(), all.data(), all.size() * sizeof(float)));
        matmul(p.view, x.data(), cols, n, dot.data(), rows, &pool, d);
        ASSERT_EQ(0, std::memcmp(dot.data(), all.data(), all.size() * sizeof(float)));
    }
    // The same tokens in other batches: a suffix (other lanes) and one token alone.
    for (int64_t start : {int64_t{3}, int64_t{20}, int64_t{36}}) {
        const int64_t m = n - start;
        std::vector<float> part(static_cast<size_t>(m * rows));
        ThreadPool one(1);
        matmul(p.view, x.data() + start * cols, cols, m, part.data(), rows, &one, s);
        ASSERT_EQ(0, std::memcmp(part.data(), all.data() + start * rows, part.size() * sizeof(float))) << "start=" << start;
    }
}

INSTANTIATE_TEST_SUITE_P(Types, RepackInt8, ::testing::Values(GgmlType::Q4_0, GgmlType::Q8_0),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// Packed K-quants (Q4_K, Q6_K): the decode kernel (1 to 11 tokens per call, any thread
// count) matches the reference with Q8_K activations and gives a token the same bits in
// every batch, and the prompt kernel gives the same bits as the decode kernel.
class RepackK : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RepackK, PackedDecodeAndGemm) {
    const int64_t rows = 32, cols = 768, n = 11;
    Packed p = make(rows, cols, 5, GetParam());
    SKIP_WITHOUT_PACKING(p);
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (float& v : x) v = nd(rng);
    std::vector<float> solo(static_cast<size_t>(n * rows));
    ThreadPool pool(2);
    MatmulScratch s;
    s.path = MatmulScratch::Path::Dot;
    for (int64_t t = 0; t < n; ++t) matmul(p.view, x.data() + t * cols, cols, 1, solo.data() + t * rows, rows, &pool, s);
    std::vector<uint8_t> tmp(row_size(GgmlType::Q8_K, cols));
    std::vector<float> xd(static_cast<size_t>(cols));
    for (int64_t t = 0; t < n; ++t) {
        quantize_row(GgmlType::Q8_K, x.data() + t * cols, tmp.data(), cols);
        dequantize_row(GgmlType::Q8_K, tmp.data(), xd.data(), cols);
        for (int64_t r = 0; r < rows; ++r) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < cols; ++k) {
                ref += double(p.wd[r * cols + k]) * xd[k];
                mag += std::fabs(double(p.wd[r * cols + k]) * xd[k]);
            }
            ASSERT_NEAR(solo[t * rows + r], ref, 1e-5 * mag + 1e-5) << "t=" << t << " r=" << r;
        }
    }
    for (int threads : {1, 3}) {
        ThreadPool tp(threads);
        for (int64_t m : {3, 4, 5, 11}) {
            std::vector<float> y(static_cast<size_t>(m * rows));
            matmul(p.view, x.data(), cols, m, y.data(), rows, &tp, s);
            ASSERT_EQ(0, std::memcmp(y.data(), solo.data(), y.size() * sizeof(float))) << "m=" << m;
        }
    }
    // Prompt batches (the int8 prompt kernel): the decode kernel's bits, in any batch.
    MatmulScratch g;
    g.path = MatmulScratch::Path::Gemm;
    for (int64_t start : {int64_t{0}, int64_t{6}}) {
        std::vector<float> a(static_cast<size_t>((n - start) * rows));
        matmul(p.view, x.data() + start * cols, cols, n - start, a.data(), rows, &pool, g);
        ASSERT_EQ(0, std::memcmp(a.data(), solo.data() + start * rows, a.size() * sizeof(float))) << "start=" << start;
    }
}

INSTANTIATE_TEST_SUITE_P(Types, RepackK, ::testing::Values(GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& i) { return std::string(type_name(i.param)); });

// ---- Every kernel family this CPU has (x86-64: AVX-512 VNNI, AVX2 with AVX-VNNI, plain AVX2;
// aarch64: NEON with sdot, plain NEON) over one packed copy, whatever HEARTH_ISA picked for the process: each family's decode kernel
// is close to the scalar reference (the scalar table's vec_dot on the same quantized
// activations), gives a token the same bits in every batch, its prompt kernel the same bits
// as its decode kernel, and all families the same bits as each other.

std::vector<std::pair<IsaFamily, const PackedKernels*>> families() {
    std::vector<std::pair<IsaFamily, const PackedKernels*>> out;
#if defined(__aarch64__)
    for (IsaFamily f : {IsaFamily::NeonDotprod, IsaFamily::Neon})
        if (const PackedKernels* k = packed_kernels_for(f)) out.push_back({f, k});
#else
    for (IsaFamily f : {IsaFamily::Avx512, IsaFamily::Avx2Vnni, IsaFamily::Avx2})
        if (const PackedKernels* k = packed_kernels_for(f)) out.push_back({f, k});
#endif
    return out;
}

struct Shape {
    GgmlType type;
    int64_t rows, cols;
};

class RepackFamilies : public ::testing::TestWithParam<Shape> {};

TEST_P(RepackFamilies, EveryFamilyMatchesScalarAndIsBitIdentical) {
    const Shape sh = GetParam();
    const auto fams = families();
    if (fams.empty()) GTEST_SKIP() << "no packed kernel family on this CPU";
    // Every family the CPU has is here (plain AVX2 wherever any is; plain NEON always on aarch64).
#if defined(__aarch64__)
    EXPECT_EQ(fams.size(), 1u + (cpu_has_neon_dotprod() ? 1u : 0u));
#else
    EXPECT_EQ(fams.size(), 1u + (cpu_best_family() >= IsaFamily::Avx512 ? 1u : 0u) + (cpu_has_avx_vnni() ? 1u : 0u));
#endif
    std::mt19937 rng(static_cast<uint32_t>(sh.rows * 131 + sh.cols + static_cast<int>(sh.type)));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(sh.rows * sh.cols));
    for (float& v : wf) v = nd(rng);
    const size_t rb = row_size(sh.type, sh.cols);
    std::vector<uint8_t> rows(rb * static_cast<size_t>(sh.rows));
    for (int64_t r = 0; r < sh.rows; ++r) quantize_row(sh.type, wf.data() + r * sh.cols, rows.data() + r * rb, sh.cols);
    MatrixView w{sh.type, sh.rows, sh.cols, rows.data(), rb};
    std::vector<uint8_t> packed(packed_bytes(w));
    repack_groups(w, rows.data(), packed.data(), 0, sh.rows / kPackRows);
    w.packed = packed.data();

    const int64_t n = 33;
    std::vector<float> x(static_cast<size_t>(n * sh.cols));
    for (float& v : x) v = nd(rng);
    x[5] = 40.0f;  // an outlier: activations at the ends of the int8 range
    // Reference: the scalar vec_dot on the same quantized activations.
    const GgmlType at = traits(sh.type).vec_dot_type;
    const TypeKernels& ref = kernels_for(Isa::Scalar, sh.type);
    std::vector<uint8_t> q(row_size(at, sh.cols));
    std::vector<float> wd(static_cast<size_t>(sh.cols)), xd(static_cast<size_t>(sh.cols));
    std::vector<float> expect(static_cast<size_t>(n * sh.rows)), mag(expect.size());
    for (int64_t t = 0; t < n; ++t) {
        kernels_for(Isa::Scalar, at).from_float(x.data() + t * sh.cols, q.data(), sh.cols);
        kernels_for(Isa::Scalar, at).to_float(q.data(), xd.data(), sh.cols);
        for (int64_t r = 0; r < sh.rows; ++r) {
            expect[t * sh.rows + r] = ref.vec_dot(sh.cols, w.row(r), q.data());
            ref.to_float(w.row(r), wd.data(), sh.cols);
            double m = 0;
            for (int64_t k = 0; k < sh.cols; ++k) m += std::fabs(double(wd[k]) * xd[k]);
            mag[t * sh.rows + r] = static_cast<float>(m);
        }
    }
    std::vector<float> first;  // the first family's results: every other family must equal them
    ThreadPool pool(2);
    for (const auto& [fam, k] : fams) {
        SCOPED_TRACE(k->name);
        if (!packed_supports(*k, sh.type)) continue;  // this family keeps the type as stored
        MatmulScratch s;
        // Decode, one token per call.
        std::vector<float> solo(expect.size(), NAN);
        for (int64_t t = 0; t < n; ++t)
            packed_matmul(w, x.data() + t * sh.cols, sh.cols, 1, solo.data() + t * sh.rows, sh.rows, &pool, s, false, *k);
        for (size_t i = 0; i < solo.size(); ++i)
            ASSERT_NEAR(solo[i], expect[i], 1e-5 * mag[i] + 1e-5) << "t=" << i / sh.rows << " r=" << i % sh.rows;
        if (first.empty()) first = solo;
        else ASSERT_EQ(0, std::memcmp(solo.data(), first.data(), solo.size() * sizeof(float))) << "family differs";
        // Decode batches and prompt batches of other sizes and offsets: the same bits.
        for (bool prompt : {false, true})
            for (int64_t start : {int64_t{0}, int64_t{15}, int64_t{32}})
                for (int64_t m : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{5}, int64_t{9}, int64_t{16}, int64_t{17}, n}) {
                    if (start + m > n) continue;
                    std::vector<float> y(static_cast<size_t>(m * sh.rows), NAN);
                    packed_matmul(w, x.data() + start * sh.cols, sh.cols, m, y.data(), sh.rows, &pool, s, prompt, *k);
                    ASSERT_EQ(0, std::memcmp(y.data(), solo.data() + start * sh.rows, y.size() * sizeof(float)))
                        << (prompt ? "prompt" : "decode") << " start=" << start << " n=" << m;
                }
        // Single-threaded (other row chunks per thread): the same bits.
        std::vector<float> y1(expect.size());
        packed_matmul(w, x.data(), sh.cols, n, y1.data(), sh.rows, nullptr, s, true, *k);
        ASSERT_EQ(0, std::memcmp(y1.data(), solo.data(), y1.size() * sizeof(float)));
    }
}

// The smallest K of each type (one block / super-block), one and several row groups, and
// model-like widths.
INSTANTIATE_TEST_SUITE_P(Shapes, RepackFamilies,
                         ::testing::Values(Shape{GgmlType::Q4_0, 16, 32}, Shape{GgmlType::Q4_0, 48, 352},
                                           Shape{GgmlType::Q4_0, 32, 2048}, Shape{GgmlType::Q8_0, 16, 32},
                                           Shape{GgmlType::Q8_0, 48, 352}, Shape{GgmlType::Q8_0, 32, 2048},
                                           Shape{GgmlType::Q4_K, 16, 256}, Shape{GgmlType::Q4_K, 48, 768},
                                           Shape{GgmlType::Q4_K, 32, 2048}, Shape{GgmlType::Q5_K, 16, 256},
                                           Shape{GgmlType::Q5_K, 48, 768}, Shape{GgmlType::Q5_K, 32, 2048},
                                           Shape{GgmlType::Q6_K, 16, 256},
                                           Shape{GgmlType::Q6_K, 48, 768}, Shape{GgmlType::Q6_K, 32, 2048}),
                         [](const ::testing::TestParamInfo<Shape>& i) {
                             return std::string(type_name(i.param.type)) + "_" + std::to_string(i.param.rows) + "x" +
                                    std::to_string(i.param.cols);
                         });

// Worst-case integer ranges (the plain AVX2 and NEON kernels add int16 partial sums): every weight at
// its largest or smallest quant and activations at +-127/-128, checked against the scalar
// reference for every family.
TEST(Repack, ExtremeQuantsEveryFamily) {
    const auto fams = families();
    if (fams.empty()) GTEST_SKIP() << "no packed kernel family on this CPU";
    for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        SCOPED_TRACE(type_name(type));
        const int64_t R = 16, K = 512;
        for (float sign : {1.0f, -1.0f}) {
            std::vector<float> wf(static_cast<size_t>(R * K)), x(static_cast<size_t>(2 * K));
            // Rows alternate constant and alternating-sign weights; activations the same.
            for (int64_t r = 0; r < R; ++r)
                for (int64_t k = 0; k < K; ++k) wf[r * K + k] = (r % 2 || k % 2 ? sign : -sign) * (1.0f + (r % 3 == 0 ? 0.0f : 1e-3f * k));
            for (int64_t k = 0; k < K; ++k) {
                x[k] = sign;
                x[K + k] = k % 2 ? 1.0f : -1.0f;
            }
            const size_t rb = row_size(type, K);
            std::vector<uint8_t> rows(rb * R);
            for (int64_t r = 0; r < R; ++r) quantize_row(type, wf.data() + r * K, rows.data() + r * rb, K);
            MatrixView w{type, R, K, rows.data(), rb};
            std::vector<uint8_t> packed(packed_bytes(w));
            repack_groups(w, rows.data(), packed.data(), 0, 1);
            w.packed = packed.data();
            const GgmlType at = traits(type).vec_dot_type;
            std::vector<uint8_t> q(row_size(at, K));
            for (const auto& [fam, k] : fams) {
                SCOPED_TRACE(k->name);
                if (!packed_supports(*k, type)) continue;
                MatmulScratch s;
                for (bool prompt : {false, true}) {
                    std::vector<float> y(static_cast<size_t>(2 * R));
                    packed_matmul(w, x.data(), K, 2, y.data(), R, nullptr, s, prompt, *k);
                    for (int64_t t = 0; t < 2; ++t) {
                        kernels_for(Isa::Scalar, at).from_float(x.data() + t * K, q.data(), K);
                        for (int64_t r = 0; r < R; ++r) {
                            const float e = kernels_for(Isa::Scalar, type).vec_dot(K, w.row(r), q.data());
                            ASSERT_NEAR(y[t * R + r], e, 1e-5 * std::fabs(e) + 1e-3) << "t=" << t << " r=" << r;
                        }
                    }
                }
            }
        }
    }
}

// The same bits on every architecture: one packed matrix per type, made from integer-valued
// inputs (no library random distributions), multiplied by every family this CPU has (decode
// and prompt kernels, 21 tokens: a full and a partial 16-token block), hashed; the hashes were
// recorded from the x86-64 families and are checked by the aarch64 build under qemu too
// (scripts/test-aarch64.sh), so the NEON kernels give the AVX-512 and AVX2 kernels' bits.
uint64_t fnv1a(const std::vector<float>& v) {
    uint64_t h = 1469598103934665603ull;
    for (float f : v) {
        uint32_t b;
        std::memcpy(&b, &f, 4);
        for (int k = 0; k < 4; ++k) h = (h ^ ((b >> (8 * k)) & 0xffu)) * 1099511628211ull;
    }
    return h;
}

TEST(Repack, SameBitsOnEveryArchitecture) {
    const auto fams = families();
    if (fams.empty()) GTEST_SKIP() << "no packed kernel family on this CPU";
    const struct {
        GgmlType type;
        uint64_t want;
    } cases[] = {{GgmlType::Q4_0, 0xae8dea7ab0a922a7ull},
                 {GgmlType::Q8_0, 0xc3395fe20abf4386ull},
                 {GgmlType::Q4_K, 0x307bb43b1e9d7f18ull},
                 {GgmlType::Q6_K, 0xabf3a44fbc921c70ull},
                 {GgmlType::Q5_K, 0x02e70da46153aaa2ull}};  // last: the inputs of earlier types stay as they were
    const int64_t R = 32, K = 512, n = 21;
    uint32_t state = 12345;
    auto next = [&state] {  // a 32-bit LCG: values k / 64 for k in [-256, 255]
        state = state * 1664525u + 1013904223u;
        return static_cast<float>(static_cast<int>((state >> 9) % 512) - 256) / 64.0f;
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(type_name(c.type));
        std::vector<float> wf(static_cast<size_t>(R * K)), x(static_cast<size_t>(n * K));
        for (float& v : wf) v = next();
        for (float& v : x) v = next();
        const size_t rb = row_size(c.type, K);
        std::vector<uint8_t> rows(rb * R);
        for (int64_t r = 0; r < R; ++r) quantize_row(c.type, wf.data() + r * K, rows.data() + r * rb, K);
        MatrixView w{c.type, R, K, rows.data(), rb};
        std::vector<uint8_t> packed(packed_bytes(w));
        repack_groups(w, rows.data(), packed.data(), 0, R / kPackRows);
        w.packed = packed.data();
        for (const auto& [fam, k] : fams) {
            SCOPED_TRACE(k->name);
            MatmulScratch s;
            for (bool prompt : {false, true}) {
                std::vector<float> y(static_cast<size_t>(n * R));
                packed_matmul(w, x.data(), K, n, y.data(), R, nullptr, s, prompt, *k);
                EXPECT_EQ(fnv1a(y), c.want) << std::hex << "0x" << fnv1a(y) << (prompt ? " prompt" : " decode");
            }
        }
    }
}

// ---- Loaded models (HEARTH_REPACK=0 leaves every matrix in the file mapping).

bool repack_off() {
    const char* env = std::getenv("HEARTH_REPACK");
    return env && std::strcmp(env, "0") == 0;
}

// A model loaded from a file holds every layer matrix outside the file mapping (packed, or
// copied as stored), and a copied matrix holds the file's bytes.
TEST(Repack, LoadedModelCopiesOrPacksItsMatrices) {
    if (repack_off()) GTEST_SKIP() << "HEARTH_REPACK=0";
    for (const char* name : {"models/synthetic/llama-f32.gguf", "models/synthetic/qwen2-q4_k_m.gguf"}) {
        SCOPED_TRACE(name);
        auto m = Model::load(test::shared_path(name));
        const uint8_t* file_lo = m->file().bytes();
        const uint8_t* file_hi = file_lo + m->file().file_size();
        int copied = 0, packed = 0;
        for (const LayerWeights& L : m->weights().layers)
            for (const MatrixView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
                if (!v->data) continue;
                if (v->packed) {  // packed: the kernels read the interleaved copy
                    ++packed;
                    continue;
                }
                EXPECT_FALSE(v->data >= file_lo && v->data < file_hi) << "matrix still read from the file mapping";
                ++copied;
            }
        EXPECT_GT(copied + packed, 0);
        if (std::string(name).find("f32") != std::string::npos) {
            EXPECT_GT(copied, 0);  // F32 has no packed layout
        }
        EXPECT_GT(m->packed_bytes(), 0u);
        // Bytes as stored: the copy of the first layer's wq equals the tensor in the file.
        const gguf::TensorInfo* t = m->file().tensor("blk.0.attn_q.weight");
        ASSERT_NE(t, nullptr);
        const MatrixView& wq = m->weights().layers[0].wq;
        if (!wq.packed) {
            EXPECT_EQ(std::memcmp(wq.data, t->data, t->nbytes), 0);
        }
    }
}

}  // namespace
}  // namespace hearth
