// The packed Q4_0 layout (see repack.h): packing, reading rows back, and the dispatch to
// the ISA kernel.
#include "tensor/repack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/threadpool.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

constexpr int64_t kBlock = 32;                                        // Q4_0 elements per block
constexpr size_t kGroupBlockBytes = kPackRows * sizeof(BlockQ4_0);   // 144: 8 scales + 8 x 16 quants

bool repack_enabled() {
    static const bool on = [] {
        const char* env = std::getenv("HEARTH_REPACK");
        if (env && std::strcmp(env, "0") == 0) return false;
        return avx512::cpu_has_vnni();
    }();
    return on;
}

size_t group_bytes(const MatrixView& w) { return static_cast<size_t>(w.cols / kBlock) * kGroupBlockBytes; }

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
        for (int64_t j = 0; j < kPackRows; ++j)
            rows[j] = reinterpret_cast<const BlockQ4_0*>(src + static_cast<size_t>((g - g0) * kPackRows + j) * w.row_bytes);
        for (int64_t i = 0; i < nb; ++i, out += kGroupBlockBytes) {
            for (int64_t j = 0; j < kPackRows; ++j) {
                std::memcpy(out + 2 * j, &rows[j][i].d, 2);
                std::memcpy(out + 16 + 16 * j, rows[j][i].qs, 16);
            }
        }
    }
}

void packed_matmul_rows(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    const size_t gb = group_bytes(w);
    for (int64_t r = r0; r < r1; r += kPackRows)
        avx512::q4_0x8_rows(w.cols, w.packed + static_cast<size_t>(r / kPackRows) * gb, act, act_row_bytes,
                            static_cast<int>(n_tokens), y + r, ldy);
}

void packed_gemm(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                 ThreadPool* pool, MatmulScratch& scratch) {
    const int64_t K = w.cols, nb = K / kBlock, ntb = (n_tokens + 15) / 16;
    const size_t tb_bytes = static_cast<size_t>(nb) * kPackActBlockBytes;
    if (scratch.act.size() < tb_bytes * static_cast<size_t>(ntb)) scratch.act.resize(tb_bytes * static_cast<size_t>(ntb));
    uint8_t* act = scratch.act.data();
    const auto quantize = kernels(GgmlType::Q8_0).from_float;
    // Each token through the same Q8_0 rounding as the decode path, then scattered into its
    // lane of the 16-token blocks.
    auto prep = [&](int64_t tb0, int64_t tb1, int) {
        thread_local std::vector<BlockQ8_0> q;
        if (q.size() < static_cast<size_t>(nb)) q.resize(static_cast<size_t>(nb));
        for (int64_t tb = tb0; tb < tb1; ++tb) {
            uint8_t* base = act + static_cast<size_t>(tb) * tb_bytes;
            for (int64_t t = 0; t < 16; ++t) {
                const int64_t tok = tb * 16 + t;
                const bool real = tok < n_tokens;
                if (real) quantize(x + tok * ldx, q.data(), K);
                for (int64_t i = 0; i < nb; ++i) {
                    uint8_t* blk = base + static_cast<size_t>(i) * kPackActBlockBytes;
                    float da = 0.0f;
                    int32_t off = 0;
                    if (real) {
                        for (int g = 0; g < 8; ++g) std::memcpy(blk + 64 * g + 4 * t, q[i].qs + 4 * g, 4);
                        da = fp16_to_fp32(q[i].d);
                        for (int k = 0; k < kBlock; ++k) off += q[i].qs[k];
                        off *= 8;
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
        thread_local std::vector<uint8_t> wu;
        thread_local std::vector<float> dw;
        if (wu.size() < static_cast<size_t>(K * kPackRows)) wu.resize(static_cast<size_t>(K * kPackRows));
        if (dw.size() < static_cast<size_t>(nb * kPackRows)) dw.resize(static_cast<size_t>(nb * kPackRows));
        alignas(64) float out[16 * kPackRows];
        for (int64_t g = g0; g < g1; ++g) {
            avx512::q4_0x8_unpack(K, w.packed + static_cast<size_t>(g) * gb, wu.data(), dw.data());
            for (int64_t tb = 0; tb < ntb; ++tb) {
                avx512::q4_0x8_gemm_block(K, wu.data(), dw.data(), act + static_cast<size_t>(tb) * tb_bytes, out);
                const int64_t nt = std::min<int64_t>(16, n_tokens - tb * 16);
                for (int64_t r = 0; r < kPackRows; ++r)
                    for (int64_t t = 0; t < nt; ++t) y[(tb * 16 + t) * ldy + g * kPackRows + r] = out[16 * r + t];
            }
        }
    };
    if (pool) pool->parallel_for(w.rows / kPackRows, 2, body);
    else body(0, w.rows / kPackRows, 0);
}

}  // namespace hearth
