// The packed Q4_0 layout (see repack.h): packing, reading rows back, and the dispatch to
// the ISA kernel.
#include "tensor/repack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

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

void packed_row_to_float(const MatrixView& w, int64_t r, int64_t k0, int64_t n, float* dst) {
    const uint8_t* grp = w.packed + static_cast<size_t>(r / kPackRows) * group_bytes(w);
    const int64_t j = r % kPackRows;
    const auto to_float = kernels(GgmlType::Q4_0).to_float;
    // Rebuild up to 8 original blocks at a time and let the type's kernel convert them.
    BlockQ4_0 tmp[8];
    for (int64_t i = k0 / kBlock, end = (k0 + n) / kBlock; i < end;) {
        const int64_t m = std::min<int64_t>(8, end - i);
        for (int64_t b = 0; b < m; ++b) {
            const uint8_t* src = grp + static_cast<size_t>(i + b) * kGroupBlockBytes;
            std::memcpy(&tmp[b].d, src + 2 * j, 2);
            std::memcpy(tmp[b].qs, src + 16 + 16 * j, 16);
        }
        to_float(tmp, dst, m * kBlock);
        dst += m * kBlock;
        i += m;
    }
}

void packed_matmul_rows(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t ldy, int64_t r0, int64_t r1) {
    const size_t gb = group_bytes(w);
    for (int64_t r = r0; r < r1; r += kPackRows)
        avx512::q4_0x8_rows(w.cols, w.packed + static_cast<size_t>(r / kPackRows) * gb, act, act_row_bytes,
                            static_cast<int>(n_tokens), y + r, ldy);
}

}  // namespace hearth
