// The packed Q4_0 layout (see repack.h): packing, and the two matmul drivers around the ISA
// kernels (activation preparation, the split of row groups across threads).
#include "tensor/repack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/threadpool.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

constexpr int64_t kBlock = 32;                                       // Q4_0 elements per block
constexpr size_t kGroupBlockBytes = kPackRows * sizeof(BlockQ4_0);  // 288: 16 scales + 16 x 16 quants

bool repack_enabled() {
    static const bool on = [] {
        const char* env = std::getenv("HEARTH_REPACK");
        if (env && std::strcmp(env, "0") == 0) return false;
        return avx512::cpu_has_vnni();
    }();
    return on;
}

size_t group_bytes(const MatrixView& w) { return static_cast<size_t>(w.cols / kBlock) * kGroupBlockBytes; }

// The activation terms of one Q8_0 block: its scale and 8 x the sum of its quants (the Q4_0
// offset: sum((q - 8) * a) = sum(q * a) - 8 * sum(a)).
void block_terms(const BlockQ8_0& b, float& da, int32_t& off) {
    da = fp16_to_fp32(b.d);
    int32_t s = 0;
    for (int k = 0; k < kBlock; ++k) s += b.qs[k];
    off = 8 * s;
}

}  // namespace

bool repack_wanted(const MatrixView& w) {
    return w.data && w.type == GgmlType::Q4_0 && w.rows > 0 && w.rows % kPackRows == 0 && w.cols % kBlock == 0 &&
           active_isa() != Isa::Scalar && repack_enabled();
}

bool use_packed(const MatrixView& w) { return w.packed && active_isa() != Isa::Scalar && repack_enabled(); }

size_t packed_bytes(const MatrixView& w) { return static_cast<size_t>(w.rows / kPackRows) * group_bytes(w); }

void repack_groups(const MatrixView& w, const uint8_t* src, uint8_t* dst, int64_t g0, int64_t g1) {
    const int64_t nb = w.cols / kBlock;
    for (int64_t g = g0; g < g1; ++g) {
        uint8_t* out = dst + static_cast<size_t>(g) * group_bytes(w);
        const BlockQ4_0* rows[kPackRows];
        for (int64_t r = 0; r < kPackRows; ++r)
            rows[r] = reinterpret_cast<const BlockQ4_0*>(src + static_cast<size_t>((g - g0) * kPackRows + r) * w.row_bytes);
        for (int64_t i = 0; i < nb; ++i, out += kGroupBlockBytes) {
            for (int64_t r = 0; r < kPackRows; ++r) {
                std::memcpy(out + 2 * r, &rows[r][i].d, 2);
                for (int j = 0; j < 4; ++j) std::memcpy(out + 32 + 64 * j + 4 * r, rows[r][i].qs + 4 * j, 4);
            }
        }
    }
}

namespace {

// Decode-size batches: activations as Q8_0 rows plus their per-block terms.
void packed_rows(const MatrixView& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, ThreadPool* pool,
                 MatmulScratch& scratch) {
    const int64_t K = w.cols, nb = K / kBlock;
    const size_t arow = static_cast<size_t>(nb) * sizeof(BlockQ8_0);
    if (scratch.act.size() < arow * static_cast<size_t>(n)) scratch.act.resize(arow * static_cast<size_t>(n));
    const size_t aux_bytes = static_cast<size_t>(n * nb) * (sizeof(float) + sizeof(int32_t));
    if (scratch.aux.size() < aux_bytes) scratch.aux.resize(aux_bytes);
    uint8_t* act = scratch.act.data();
    float* da = reinterpret_cast<float*>(scratch.aux.data());
    int32_t* off = reinterpret_cast<int32_t*>(da + n * nb);
    const auto quantize = kernels(GgmlType::Q8_0).from_float;
    auto conv = [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
            auto* q = reinterpret_cast<BlockQ8_0*>(act + static_cast<size_t>(t) * arow);
            quantize(x + t * ldx, q, K);
            for (int64_t i = 0; i < nb; ++i) block_terms(q[i], da[t * nb + i], off[t * nb + i]);
        }
    };
    if (pool && n > 1) pool->parallel_for(n, 1, conv);
    else conv(0, n, 0);
    const size_t gb = group_bytes(w);
    auto body = [&](int64_t g0, int64_t g1, int) {
        for (int64_t g = g0; g < g1; ++g)
            avx512::q4_0x16_rows(K, w.packed + static_cast<size_t>(g) * gb, act, arow, da, off, static_cast<int>(n),
                                 y + g * kPackRows, ldy);
    };
    // 4 groups (64 rows) per chunk keeps threads off each other's output lines.
    if (pool) pool->parallel_for(w.rows / kPackRows, 4, body);
    else body(0, w.rows / kPackRows, 0);
}

// Prompt batches: activations transposed into 16-token blocks (see avx512::kPackActBlockBytes).
void packed_gemm(const MatrixView& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, ThreadPool* pool,
                 MatmulScratch& scratch) {
    using avx512::kPackActBlockBytes;
    const int64_t K = w.cols, nb = K / kBlock, ntb = (n + 15) / 16;
    const size_t tb_bytes = static_cast<size_t>(nb) * kPackActBlockBytes;
    if (scratch.act.size() < tb_bytes * static_cast<size_t>(ntb)) scratch.act.resize(tb_bytes * static_cast<size_t>(ntb));
    uint8_t* act = scratch.act.data();
    const auto quantize = kernels(GgmlType::Q8_0).from_float;
    auto prep = [&](int64_t tb0, int64_t tb1, int) {
        thread_local std::vector<BlockQ8_0> q;
        if (q.size() < static_cast<size_t>(nb)) q.resize(static_cast<size_t>(nb));
        for (int64_t tb = tb0; tb < tb1; ++tb) {
            uint8_t* base = act + static_cast<size_t>(tb) * tb_bytes;
            for (int64_t t = 0; t < 16; ++t) {
                const int64_t tok = tb * 16 + t;
                if (tok < n) quantize(x + tok * ldx, q.data(), K);
                for (int64_t i = 0; i < nb; ++i) {
                    uint8_t* blk = base + static_cast<size_t>(i) * kPackActBlockBytes;
                    float da = 0.0f;
                    int32_t off = 0;
                    if (tok < n) {
                        for (int g = 0; g < 8; ++g) std::memcpy(blk + 64 * g + 4 * t, q[i].qs + 4 * g, 4);
                        block_terms(q[i], da, off);
                    } else {
                        for (int g = 0; g < 8; ++g) std::memset(blk + 64 * g + 4 * t, 0, 4);
                    }
                    std::memcpy(blk + 512 + 4 * t, &da, 4);
                    std::memcpy(blk + 576 + 4 * t, &off, 4);
                }
            }
        }
    };
    if (pool) pool->parallel_for(ntb, 1, prep);
    else prep(0, ntb, 0);

    const size_t gb = group_bytes(w);
    auto body = [&](int64_t g0, int64_t g1, int) {
        // Per-thread unpacked row group (K * 16 bytes and K / 2 scales), grown once.
        thread_local std::vector<uint8_t> wu;
        thread_local std::vector<float> dw;
        if (wu.size() < static_cast<size_t>(K * kPackRows)) wu.resize(static_cast<size_t>(K * kPackRows));
        if (dw.size() < static_cast<size_t>(nb * kPackRows)) dw.resize(static_cast<size_t>(nb * kPackRows));
        alignas(64) float out[16 * 8];
        for (int64_t g = g0; g < g1; ++g) {
            avx512::q4_0x16_unpack(K, w.packed + static_cast<size_t>(g) * gb, wu.data(), dw.data());
            for (int64_t tb = 0; tb < ntb; ++tb) {
                const int64_t nt = std::min<int64_t>(16, n - tb * 16);
                for (int half = 0; half < 2; ++half) {
                    avx512::q4_0x16_gemm_block(K, wu.data(), dw.data(), 8 * half, act + static_cast<size_t>(tb) * tb_bytes, out);
                    float* yb = y + tb * 16 * ldy + g * kPackRows + 8 * half;
                    for (int64_t t = 0; t < nt; ++t)
                        for (int r = 0; r < 8; ++r) yb[t * ldy + r] = out[16 * r + t];
                }
            }
        }
    };
    if (pool) pool->parallel_for(w.rows / kPackRows, 1, body);
    else body(0, w.rows / kPackRows, 0);
}

}  // namespace

void packed_matmul(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool* pool, MatmulScratch& scratch, bool prompt) {
    if (prompt) packed_gemm(w, x, ldx, n_tokens, y, ldy, pool, scratch);
    else packed_rows(w, x, ldx, n_tokens, y, ldy, pool, scratch);
}

}  // namespace hearth
