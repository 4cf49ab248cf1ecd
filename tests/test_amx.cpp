// The AMX family (tensor/x86/amx_packed.h): the tile model against the documented semantics,
// the AMX prompt kernels on emulated tiles against the AVX-512 VNNI family (bit for bit) and
// the scalar reference, the CPU/permission checks, HEARTH_ISA=amx; and, where the CPU has
// AMX, the same kernels on real tiles.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/paths.h"
#include "tensor/cpu.h"
#include "tensor/kernel_table.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"
#include "tensor/repack.h"
#include "tensor/threadpool.h"
#include "tensor/types.h"

#if defined(__x86_64__)
#include "tensor/x86/amx_packed.h"
#include "tensor/x86/amx_tiles.h"

namespace hearth {
namespace {

using amx::EmuTiles;
using amx::TileConfig;

bool cpuinfo_has(const std::string& flag) {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
    return false;
}

// ---- The tile model ----

TEST(AmxTiles, ConfigLayoutIsLdtilecfgs) {
    EXPECT_EQ(sizeof(TileConfig), 64u);
    EXPECT_EQ(alignof(TileConfig), 64u);
    EXPECT_EQ(offsetof(TileConfig, palette_id), 0u);
    EXPECT_EQ(offsetof(TileConfig, start_row), 1u);
    EXPECT_EQ(offsetof(TileConfig, colsb), 16u);
    EXPECT_EQ(offsetof(TileConfig, rows), 48u);
    TileConfig c;
    c.palette_id = 1;
    c.colsb[3] = 0x1234;
    c.rows[7] = 9;
    uint8_t b[64];
    std::memcpy(b, &c, 64);
    EXPECT_EQ(b[0], 1);
    EXPECT_EQ(b[16 + 2 * 3], 0x34);  // little-endian uint16 at byte 16 + 2 * tile
    EXPECT_EQ(b[16 + 2 * 3 + 1], 0x12);
    EXPECT_EQ(b[48 + 7], 9);
    int nonzero = 0;
    for (uint8_t v : b) nonzero += v != 0;
    EXPECT_EQ(nonzero, 4);
}

TileConfig config3(int m, int kb, int n) {  // tile 0: C (m x 4n bytes), 1: A (m x kb), 2: B (kb / 4 x 4n)
    TileConfig c;
    c.palette_id = 1;
    c.rows[0] = static_cast<uint8_t>(m);
    c.colsb[0] = static_cast<uint16_t>(4 * n);
    c.rows[1] = static_cast<uint8_t>(m);
    c.colsb[1] = static_cast<uint16_t>(kb);
    c.rows[2] = static_cast<uint8_t>(kb / 4);
    c.colsb[2] = static_cast<uint16_t>(4 * n);
    return c;
}

// TDPBUSD on the model against C[m][n] += sum over k < kb of uint8(A[m][k]) * int8(B[k / 4][4n + k % 4])
// computed directly, modulo 2^32, for many shapes and strides; the store writes exactly
// rows x colsb bytes.
TEST(AmxTiles, EmulatedDpbusdIsTheTripleLoop) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int32_t> i32(INT32_MIN, INT32_MAX);
    int shapes = 0;
    for (int m : {1, 3, 8, 16})
        for (int kb : {4, 16, 32, 64})
            for (int n : {1, 5, 16}) {
                SCOPED_TRACE("m=" + std::to_string(m) + " kb=" + std::to_string(kb) + " n=" + std::to_string(n));
                const size_t sa = static_cast<size_t>(kb) + 8, sb = static_cast<size_t>(4 * n) + 12, sc = 64 + 4;
                std::vector<uint8_t> A(sa * static_cast<size_t>(m)), B(sb * static_cast<size_t>(kb / 4));
                for (auto& v : A) v = static_cast<uint8_t>(byte(rng));
                for (auto& v : B) v = static_cast<uint8_t>(byte(rng));
                if (shapes % 3 == 0) {  // extremes: 255 x -128 everywhere
                    std::fill(A.begin(), A.end(), 255);
                    std::fill(B.begin(), B.end(), 0x80);
                }
                std::vector<int32_t> C0(sc / 4 * static_cast<size_t>(m));
                for (auto& v : C0) v = shapes % 2 ? i32(rng) : INT32_MAX - 5;  // wraparound too
                EmuTiles::config(config3(m, kb, n));
                EmuTiles::load<0>(C0.data(), sc);
                EmuTiles::load<1>(A.data(), sa);
                EmuTiles::load<2>(B.data(), sb);
                EmuTiles::dpbusd<0, 1, 2>();
                std::vector<uint8_t> out(sc * 17, 0xAB);
                EmuTiles::store<0>(out.data(), sc);
                EmuTiles::release();
                for (int r = 0; r < 17; ++r)
                    for (size_t j = 0; j < sc; ++j) {
                        if (r < m && j < static_cast<size_t>(4 * n)) continue;
                        ASSERT_EQ(out[sc * r + j], 0xAB) << "store wrote outside rows x colsb: r=" << r << " byte " << j;
                    }
                for (int i = 0; i < m; ++i)
                    for (int j = 0; j < n; ++j) {
                        uint32_t want = static_cast<uint32_t>(C0[sc / 4 * i + j]);
                        for (int k = 0; k < kb; ++k)
                            want += static_cast<uint32_t>(int32_t{A[sa * i + k]} *
                                                          int32_t{static_cast<int8_t>(B[sb * (k / 4) + 4 * j + k % 4])});
                        int32_t got;
                        std::memcpy(&got, out.data() + sc * i + 4 * j, 4);
                        ASSERT_EQ(static_cast<uint32_t>(got), want) << "C[" << i << "][" << j << "]";
                    }
                ++shapes;
            }
    EXPECT_EQ(shapes, 48);
}

// TILELOADD zeroes the bytes past colsb and the rows past rows; TILEZERO the whole tile;
// TDPBUSD zeroes its destination past its shape; TILERELEASE returns to INIT.
TEST(AmxTiles, EmulatedLoadZeroesOutsideTheShape) {
    TileConfig c;
    c.palette_id = 1;
    c.rows[3] = 3;
    c.colsb[3] = 8;
    EmuTiles::config(c);
    auto& t = EmuTiles::state().t[3];
    std::memset(t, 0x5A, sizeof t);  // stale contents
    std::vector<uint8_t> mem(64 * 16, 0xFF);
    EmuTiles::load<3>(mem.data(), 64);
    for (int r = 0; r < 16; ++r)
        for (int b = 0; b < 64; ++b) ASSERT_EQ(t[r][b], r < 3 && b < 8 ? 0xFF : 0) << r << "," << b;
    std::memset(t, 0x5A, sizeof t);
    EmuTiles::zero<3>();
    for (int r = 0; r < 16; ++r)
        for (int b = 0; b < 64; ++b) ASSERT_EQ(t[r][b], 0);
    EmuTiles::config(config3(2, 4, 2));
    std::memset(EmuTiles::state().t[0], 0x77, sizeof EmuTiles::state().t[0]);
    EmuTiles::dpbusd<0, 1, 2>();  // A and B are zero: C keeps its 2 x 8 bytes, the rest is zeroed
    for (int r = 0; r < 16; ++r)
        for (int b = 0; b < 64; ++b) ASSERT_EQ(EmuTiles::state().t[0][r][b], r < 2 && b < 8 ? 0x77 : 0) << r << "," << b;
    EmuTiles::release();
    EXPECT_FALSE(EmuTiles::state().configured);
    EXPECT_EQ(EmuTiles::state().cfg.palette_id, 0);
}

void fault_unconfigured() {
    EmuTiles::release();
    EmuTiles::zero<0>();
}
void fault_shapes() {
    TileConfig c = config3(4, 32, 16);
    c.rows[2] = 4;  // B has 4 rows but A's 32 bytes are 8 words
    EmuTiles::config(c);
    EmuTiles::dpbusd<0, 1, 2>();
}
void fault_config() {
    TileConfig c;
    c.palette_id = 1;
    c.rows[0] = 17;
    c.colsb[0] = 64;
    EmuTiles::config(c);
}

TEST(AmxTilesDeathTest, EmulatedFaultsLikeTheHardware) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(fault_unconfigured(), "without a tile configuration");
    EXPECT_DEATH(fault_shapes(), "shapes do not match");
    EXPECT_DEATH(fault_config(), "larger than palette 1");
}

// ---- The kernels ----

// A random packed row group and a 16-token activation block for type t (every quant byte
// value, finite fp16 scales), or the extremes: every weight byte 0xFF (Q4_0 / Q4_K nibbles
// 15, Q8_0 byte 127 + 128, Q6_K value 63) and every activation -128 or 127.
struct BlockInput {
    std::vector<uint8_t> group, act;
};

enum class Fill { Random, MaxWeightsMinAct, MaxWeightsMaxAct };

BlockInput block_input(GgmlType t, int64_t K, std::mt19937& rng, Fill fill) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(-2e-2f, 2e-2f);
    const bool k4 = t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K;
    const int64_t nb = K / (k4 ? 256 : 32);
    const size_t blk = t == GgmlType::Q4_0   ? 288
                       : t == GgmlType::Q8_0 ? 544
                       : t == GgmlType::Q4_K ? avx512::kPackQ4SuperBytes
                       : t == GgmlType::Q5_K ? avx512::kPackQ5SuperBytes
                                             : avx512::kPackQ6SuperBytes;
    const size_t scale_bytes = t == GgmlType::Q4_K || t == GgmlType::Q5_K ? 64 : 32;  // d (and dmin)
    BlockInput in;
    in.group.resize(static_cast<size_t>(nb) * blk);
    for (auto& b : in.group) b = fill == Fill::Random ? static_cast<uint8_t>(byte(rng)) : 0xFF;
    for (int64_t i = 0; i < nb; ++i)
        for (size_t s = 0; s < scale_bytes; s += 2) {
            const uint16_t h = fp32_to_fp16(scale(rng));
            std::memcpy(in.group.data() + static_cast<size_t>(i) * blk + s, &h, 2);
        }
    if (t == GgmlType::Q6_K && fill != Fill::Random)  // scales: int8, the extremes
        for (int64_t i = 0; i < nb; ++i)
            for (int j = 0; j < 256; ++j) in.group[static_cast<size_t>(i) * blk + 32 + j] = j % 2 ? 0x80 : 0x7F;
    const size_t ablk = t == GgmlType::Q6_K ? avx512::kPackActQ6SuperBytes
                        : k4               ? avx512::kPackActSuperBytes
                                           : avx512::kPackActBlockBytes;
    const size_t qbytes = k4 ? 4096 : 512;
    in.act.resize(static_cast<size_t>(nb) * ablk);
    std::uniform_int_distribution<int32_t> sum(-5000, 5000);
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t* a = in.act.data() + static_cast<size_t>(i) * ablk;
        for (size_t j = 0; j < qbytes; ++j)
            a[j] = fill == Fill::Random ? static_cast<uint8_t>(byte(rng)) : fill == Fill::MaxWeightsMinAct ? 0x80 : 0x7F;
        for (int tk = 0; tk < 16; ++tk) {
            const float d = std::fabs(scale(rng));
            std::memcpy(a + qbytes + 4 * tk, &d, 4);
        }
        for (size_t j = qbytes + 64; j < ablk; j += 4) {
            const int32_t v = sum(rng);
            std::memcpy(a + j, &v, 4);
        }
    }
    return in;
}

std::vector<float> run_block(const PackedKernels& k, GgmlType t, int64_t K, const BlockInput& in) {
    const bool k4 = t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K;
    const auto unpack = t == GgmlType::Q4_0   ? k.q4_0_unpack
                        : t == GgmlType::Q8_0 ? k.q8_0_unpack
                        : t == GgmlType::Q4_K ? k.q4_k_unpack
                        : t == GgmlType::Q5_K ? k.q5_k_unpack
                                              : k.q6_k_unpack;
    const auto block = t == GgmlType::Q4_0   ? k.q4_0_block
                       : t == GgmlType::Q8_0 ? k.q8_0_block
                       : t == GgmlType::Q4_K ? k.q4_k_block
                       : t == GgmlType::Q5_K ? k.q5_k_block
                                             : k.q6_k_block;
    // The sizes packed_gemm gives the kernels.
    std::vector<uint8_t> wu(k4 ? static_cast<size_t>(K / 256) * avx512::kPackUnpackedSuperBytes : static_cast<size_t>(K * 32));
    std::vector<float> dw(static_cast<size_t>(K / (k4 ? 256 : 32)) * (t == GgmlType::Q4_K || t == GgmlType::Q5_K ? 32 : 16));
    unpack(K, in.group.data(), wu.data(), dw.data());
    std::vector<float> out(256);
    block(K, wu.data(), dw.data(), 0, in.act.data(), out.data());
    block(K, wu.data(), dw.data(), 8, in.act.data(), out.data() + 128);
    return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Every type's AMX prompt kernel (one row group, one token block) gives the AVX-512 VNNI
// kernel's bits, for several K (odd block counts: the single-block tail), random and extreme
// inputs, on tiles of family `k`.
void check_blocks_against_avx512(const PackedKernels& k) {
    const PackedKernels* ref = packed_kernels_for(IsaFamily::Avx512);
    ASSERT_NE(ref, nullptr);
    std::mt19937 rng(1234);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        const bool k4 = t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K;
        const std::vector<int64_t> Ks = k4 ? std::vector<int64_t>{256, 512, 768} : std::vector<int64_t>{32, 64, 96, 352};
        for (int64_t K : Ks)
            for (Fill fill : {Fill::Random, Fill::Random, Fill::MaxWeightsMinAct, Fill::MaxWeightsMaxAct}) {
                SCOPED_TRACE(std::string(type_name(t)) + " K=" + std::to_string(K) + " fill=" + std::to_string(int(fill)));
                const BlockInput in = block_input(t, K, rng, fill);
                const std::vector<float> want = run_block(*ref, t, K, in), got = run_block(k, t, K, in);
                ASSERT_TRUE(same_bits(want, got)) << "first difference at "
                                                  << [&] {
                                                         for (size_t i = 0; i < want.size(); ++i)
                                                             if (std::memcmp(&want[i], &got[i], 4))
                                                                 return "r=" + std::to_string(i / 16) + " t=" + std::to_string(i % 16) +
                                                                        " want " + std::to_string(want[i]) + " got " + std::to_string(got[i]);
                                                         return std::string("?");
                                                     }();
                int finite = 0;
                for (float v : got) finite += std::isfinite(v);
                EXPECT_EQ(finite, 256);
            }
    }
}

TEST(AmxPacked, EmulatedBlockKernelsMatchAvx512BitForBit) {
    if (!packed_kernels_for(IsaFamily::Avx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
    check_blocks_against_avx512(amx::emulated_packed_kernels());
}

// The whole prompt path (packed_gemm: activation blocks, per-thread unpack, 8-row halves,
// token counts that are not multiples of 16) with the emulated AMX family: the AVX-512
// family's bits, its own decode kernels' bits, and the scalar reference within rounding.
void check_matmul_against_avx512(const PackedKernels& k) {
    const PackedKernels* ref = packed_kernels_for(IsaFamily::Avx512);
    ASSERT_NE(ref, nullptr);
    struct Shape {
        GgmlType type;
        int64_t rows, cols;
    };
    ThreadPool pool(2);
    for (Shape sh : {Shape{GgmlType::Q4_0, 32, 32}, Shape{GgmlType::Q4_0, 48, 352}, Shape{GgmlType::Q8_0, 16, 96},
                     Shape{GgmlType::Q8_0, 32, 1024}, Shape{GgmlType::Q4_K, 16, 256}, Shape{GgmlType::Q4_K, 32, 768},
                     Shape{GgmlType::Q5_K, 16, 256}, Shape{GgmlType::Q5_K, 32, 768}, Shape{GgmlType::Q6_K, 16, 256},
                     Shape{GgmlType::Q6_K, 32, 768}}) {
        SCOPED_TRACE(std::string(type_name(sh.type)) + " " + std::to_string(sh.rows) + "x" + std::to_string(sh.cols));
        std::mt19937 rng(static_cast<uint32_t>(sh.rows * 7 + sh.cols));
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
        const int64_t n = 37;
        std::vector<float> x(static_cast<size_t>(n * sh.cols));
        for (float& v : x) v = nd(rng);
        x[3] = 50.0f;  // an outlier: a block at +-127
        x[static_cast<size_t>(sh.cols) + 1] = -50.0f;
        // Scalar reference on the same quantized activations.
        const GgmlType at = traits(sh.type).vec_dot_type;
        const TypeKernels& sref = kernels_for(Isa::Scalar, sh.type);
        std::vector<uint8_t> q(row_size(at, sh.cols));
        std::vector<float> wd(static_cast<size_t>(sh.cols)), xd(static_cast<size_t>(sh.cols));
        std::vector<float> expect(static_cast<size_t>(n * sh.rows)), mag(expect.size());
        for (int64_t t = 0; t < n; ++t) {
            kernels_for(Isa::Scalar, at).from_float(x.data() + t * sh.cols, q.data(), sh.cols);
            kernels_for(Isa::Scalar, at).to_float(q.data(), xd.data(), sh.cols);
            for (int64_t r = 0; r < sh.rows; ++r) {
                expect[t * sh.rows + r] = sref.vec_dot(sh.cols, w.row(r), q.data());
                sref.to_float(w.row(r), wd.data(), sh.cols);
                double m = 0;
                for (int64_t c = 0; c < sh.cols; ++c) m += std::fabs(double(wd[c]) * xd[c]);
                mag[t * sh.rows + r] = static_cast<float>(m);
            }
        }
        MatmulScratch s;
        std::vector<float> want(expect.size(), NAN);
        packed_matmul(w, x.data(), sh.cols, n, want.data(), sh.rows, &pool, s, true, *ref);
        for (int64_t m : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{17}, n}) {
            SCOPED_TRACE("n=" + std::to_string(m));
            std::vector<float> got(static_cast<size_t>(m * sh.rows), NAN), dec(got.size(), NAN);
            packed_matmul(w, x.data(), sh.cols, m, got.data(), sh.rows, &pool, s, true, k);
            ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << "differs from avx512";
            packed_matmul(w, x.data(), sh.cols, m, dec.data(), sh.rows, &pool, s, false, k);
            ASSERT_EQ(0, std::memcmp(got.data(), dec.data(), got.size() * sizeof(float))) << "prompt differs from decode";
            for (size_t i = 0; i < got.size(); ++i)
                ASSERT_NEAR(got[i], expect[i], 1e-5 * mag[i] + 1e-5) << "t=" << i / sh.rows << " r=" << i % sh.rows;
        }
        std::vector<float> one(want.size(), NAN);  // single-threaded
        packed_matmul(w, x.data(), sh.cols, n, one.data(), sh.rows, nullptr, s, true, k);
        ASSERT_EQ(0, std::memcmp(one.data(), want.data(), one.size() * sizeof(float)));
    }
}

TEST(AmxPacked, EmulatedFamilyThroughPackedMatmulMatchesAvx512AndScalar) {
    if (!packed_kernels_for(IsaFamily::Avx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
    check_matmul_against_avx512(amx::emulated_packed_kernels());
}

// The start-up self-check passes the emulated kernels and catches a family whose prompt
// kernel is off (here: Q6_K's answered by the Q4_K kernel), naming the type.
void wrong_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    amx::emulated_packed_kernels().q6_k_block(K, wu, dw, r0, act, out);
    out[37] += 1.0f;
}

TEST(AmxPacked, SelfCheckOfTheEmulatedFamily) {
    if (!packed_kernels_for(IsaFamily::Avx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
    std::string why;
    EXPECT_TRUE(amx::self_check(amx::emulated_packed_kernels(), &why)) << why;
    PackedKernels broken = amx::emulated_packed_kernels();
    broken.q6_k_block = wrong_block;
    EXPECT_FALSE(amx::self_check(broken, &why));
    EXPECT_NE(why.find("q6_K"), std::string::npos) << why;
}

TEST(AmxPacked, FamiliesShareTheDecodeKernels) {
    const PackedKernels& e = amx::emulated_packed_kernels();
    EXPECT_STREQ(e.name, "amx-emulated");
    EXPECT_EQ(e.q4_0_rows, &avx512::q4_0x16_rows);
    EXPECT_EQ(e.q8_0_rows, &avx512::q8_0x16_rows);
    EXPECT_EQ(e.q4_k_rows, &avx512::q4_kx16_rows);
    EXPECT_EQ(e.q6_k_rows, &avx512::q6_kx16_rows);
    EXPECT_EQ(e.q5_k_rows, &avx512::q5_kx16_rows);
    EXPECT_EQ(e.q5_k_block, e.q4_k_block);  // Q5_K unpacks to Q4_K's layout with 5-bit values
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
        EXPECT_TRUE(packed_supports(e, t)) << type_name(t);
    const PackedKernels& h = amx::hw_packed_kernels();
    EXPECT_STREQ(h.name, "amx");
    EXPECT_EQ(h.q4_0_unpack, e.q4_0_unpack);  // the unpack uses no tiles
    EXPECT_NE(h.q4_0_block, e.q4_0_block);
}

// ---- CPU detection, permission, family choice ----

TEST(AmxIsa, CpuidAndXcr0Bits) {
    const uint32_t tile = 1u << 24, int8 = 1u << 25;
    const uint64_t cfg = uint64_t{1} << 17, data = uint64_t{1} << 18, avx512_state = 0xE7;
    EXPECT_TRUE(amx_cpuid_ok(tile | int8, avx512_state | cfg | data));
    EXPECT_FALSE(amx_cpuid_ok(tile, avx512_state | cfg | data));   // no AMX-INT8
    EXPECT_FALSE(amx_cpuid_ok(int8, avx512_state | cfg | data));   // no AMX-TILE
    EXPECT_FALSE(amx_cpuid_ok(tile | int8, avx512_state | cfg));   // OS does not save XTILEDATA
    EXPECT_FALSE(amx_cpuid_ok(tile | int8, avx512_state | data));  // nor XTILECFG
    EXPECT_FALSE(amx_cpuid_ok(0, ~uint64_t{0}));
}

TEST(AmxIsa, FamilyFollowsTheCpu) {
    EXPECT_STREQ(isa_family_name(IsaFamily::Amx), "amx");
    for (IsaFamily f : {IsaFamily::Avx2, IsaFamily::Avx2Vnni, IsaFamily::Avx512, IsaFamily::Amx})
        EXPECT_TRUE(isa_family_is_x86(f)) << isa_family_name(f);
    for (IsaFamily f : {IsaFamily::Scalar, IsaFamily::Neon, IsaFamily::NeonDotprod})
        EXPECT_FALSE(isa_family_is_x86(f)) << isa_family_name(f);
    EXPECT_TRUE(IsaFamily::Amx >= IsaFamily::Avx512);  // everything gated on avx512 runs under amx
    const bool cpu_amx = cpuinfo_has("amx_tile") && cpuinfo_has("amx_int8");
    if (!cpu_amx) {
        EXPECT_FALSE(cpu_has_amx());
        EXPECT_FALSE(amx_request_permission());  // the kernel refuses XTILEDATA without AMX
    } else {
        EXPECT_EQ(cpu_has_amx(), amx_request_permission());
    }
    EXPECT_EQ(amx_usable(), cpu_has_amx() && amx::self_check(nullptr));
    EXPECT_EQ(isa_family_supported(IsaFamily::Amx), amx_usable());
    EXPECT_EQ(cpu_best_family() == IsaFamily::Amx, amx_usable());
    EXPECT_EQ(packed_kernels_for(IsaFamily::Amx) != nullptr, amx_usable());
    EXPECT_EQ(amx_packed_kernels() != nullptr, amx_usable());
    if (amx_usable()) {
        EXPECT_STREQ(packed_kernels_for(IsaFamily::Amx)->name, "amx");
    }
    std::printf("[          ] AMX: cpuinfo %s, cpu_has_amx %d, usable %d, best family %s\n", cpu_amx ? "yes" : "no",
                cpu_has_amx(), amx_usable(), isa_family_name(cpu_best_family()));
}

struct CliResult {
    int status;
    std::string out, err;
};

CliResult hearth_cli(const std::string& env, const std::string& args) {
    char tmpl[] = "/tmp/hearth-amx-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd >= 0) close(fd);
    const std::string cmd = env + " " + std::string(HEARTH_BINARY) + " " + args + " 2>" + tmpl;
    CliResult r{-1, "", ""};
    if (FILE* p = popen(cmd.c_str(), "r")) {
        std::array<char, 4096> buf;
        size_t n;
        while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
        const int st = pclose(p);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    std::ifstream f(tmpl);
    r.err.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    std::remove(tmpl);
    return r;
}

// HEARTH_ISA=amx: an error naming AMX where the CPU has none usable; where it has, `hearth
// bench` runs and reports "amx" (as it does by default there).
TEST(AmxIsa, HearthIsaAmx) {
    const std::string model = test::shared_path("models/stories260K.gguf");
    if (!std::ifstream(model)) GTEST_SKIP() << "no " << model;
    const CliResult run = hearth_cli("HEARTH_ISA=amx", "bench -m " + model + " -p 8 -n 0 -r 1 -t 1 -o json");
    if (!amx_usable()) {
        EXPECT_EQ(run.status, 1);
        EXPECT_NE(run.err.find("HEARTH_ISA=amx"), std::string::npos) << run.err;
        EXPECT_NE(run.err.find(cpu_has_amx() ? "self-check" : "no usable AMX-INT8 tiles"), std::string::npos) << run.err;
        EXPECT_NE(run.err.find("best kernel family is avx512"), std::string::npos) << run.err;
    } else {
        ASSERT_EQ(run.status, 0) << run.err;
        EXPECT_EQ(nlohmann::json::parse(run.out)[0]["isa"], "amx") << run.out;
        const CliResult def = hearth_cli("", "bench -m " + model + " -p 8 -n 0 -r 1 -t 1 -o json");
        ASSERT_EQ(def.status, 0) << def.err;
        EXPECT_EQ(nlohmann::json::parse(def.out)[0]["isa"], "amx") << def.out;
    }
}

// ---- Real tiles (skipped where the CPU has no AMX) ----

TEST(AmxHardware, SelfCheckPasses) {
    if (!cpu_has_amx()) GTEST_SKIP() << "this CPU has no usable AMX";
    std::string why;
    EXPECT_TRUE(amx::self_check(&why)) << why;
    EXPECT_TRUE(amx_usable());
    EXPECT_EQ(cpu_best_family(), IsaFamily::Amx);
}

TEST(AmxHardware, BlockKernelsMatchAvx512BitForBit) {
    if (!cpu_has_amx()) GTEST_SKIP() << "this CPU has no usable AMX";
    check_blocks_against_avx512(amx::hw_packed_kernels());
}

TEST(AmxHardware, PackedMatmulMatchesAvx512AndScalar) {
    if (!cpu_has_amx()) GTEST_SKIP() << "this CPU has no usable AMX";
    check_matmul_against_avx512(amx::hw_packed_kernels());
}

TEST(AmxHardware, RealAndEmulatedTilesAgree) {
    if (!cpu_has_amx()) GTEST_SKIP() << "this CPU has no usable AMX";
    std::mt19937 rng(99);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        const int64_t K = (t == GgmlType::Q4_0 || t == GgmlType::Q8_0) ? 160 : 512;
        const BlockInput in = block_input(t, K, rng, Fill::Random);
        EXPECT_TRUE(same_bits(run_block(amx::hw_packed_kernels(), t, K, in), run_block(amx::emulated_packed_kernels(), t, K, in)))
            << type_name(t);
    }
}

}  // namespace
}  // namespace hearth

#else

TEST(AmxIsa, NotX86) {
    EXPECT_FALSE(hearth::cpu_has_amx());
    EXPECT_FALSE(hearth::isa_family_supported(hearth::IsaFamily::Amx));
    EXPECT_TRUE(hearth::isa_family_is_x86(hearth::IsaFamily::Amx));
    EXPECT_EQ(hearth::packed_kernels_for(hearth::IsaFamily::Amx), nullptr);
}

#endif
