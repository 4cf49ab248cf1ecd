// The packed layouts (see repack.h): packing Q4_0, Q8_0, Q4_K and Q6_K row groups, and the matmul
// drivers around the ISA kernels (activation preparation, row groups split across threads).
#include "tensor/repack.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/kernel_table.h"
#include "tensor/threadpool.h"
#include "tensor/quants.h"
#include "tensor/scalar/common.h"

namespace hearth {
namespace {

constexpr int64_t kBlock = 32;                                       // Q4_0 elements per block
constexpr size_t kGroupBlockBytes = kPackRows * sizeof(BlockQ4_0);  // 288: 16 scales + 16 x 16 quants
// Q4_K per 256 columns and 16 rows: d, dmin (32 bytes each), scales and mins unpacked to a
// byte each ([sub-block][row], 128 bytes each), quants [chunk][word][row] (2048 bytes).
constexpr size_t kGroupSuperBytes = avx512::kPackQ4SuperBytes;

#if defined(__x86_64__)
const PackedKernels& avx512_kernels() {
    static const PackedKernels k = [] {
        PackedKernels k{"avx512",
                        avx512::q4_0x16_rows,       avx512::q8_0x16_rows,       avx512::q4_kx16_rows,
                        avx512::q6_kx16_rows,       avx512::q4_0x16_unpack,     avx512::q8_0x16_unpack,
                        avx512::q4_kx16_unpack,     avx512::q6_kx16_unpack,     avx512::q4_0x16_gemm_block,
                        avx512::q4_0x16_gemm_block, avx512::q4_kx16_gemm_block, avx512::q6_kx16_gemm_block};
        k.q5_k_rows = avx512::q5_kx16_rows;
        k.q5_k_unpack = avx512::q5_kx16_unpack;
        k.q5_k_block = avx512::q4_kx16_gemm_block;
        return k;
    }();
    return k;
}
#endif

bool env_is_zero(const char* name) {
    const char* env = std::getenv(name);
    return env && std::strcmp(env, "0") == 0;
}

constexpr size_t kGroupBlockBytesQ8 = kPackRows * sizeof(BlockQ8_0);  // 544: 16 scales + 16 x 32 quants

size_t group_bytes(const MatrixView& w) {
    if (w.type == GgmlType::Q4_K) return static_cast<size_t>(w.cols / QK_K) * kGroupSuperBytes;
    if (w.type == GgmlType::Q5_K) return static_cast<size_t>(w.cols / QK_K) * avx512::kPackQ5SuperBytes;
    if (w.type == GgmlType::Q6_K) return static_cast<size_t>(w.cols / QK_K) * avx512::kPackQ6SuperBytes;
    return static_cast<size_t>(w.cols / kBlock) * (w.type == GgmlType::Q8_0 ? kGroupBlockBytesQ8 : kGroupBlockBytes);
}

// The activation terms of one Q8_0 block: its scale and bias x the sum of its quants, where
// the kernels multiply unsigned weights q + bias (Q4_0: nibbles, bias 8; Q8_0: bytes stored
// + 128): sum(q * a) = sum((q + bias) * a) - bias * sum(a).
void block_terms(const BlockQ8_0& b, int32_t bias, float& da, int32_t& off) {
    da = fp16_to_fp32(b.d);
    int32_t s = 0;
    for (int k = 0; k < kBlock; ++k) s += b.qs[k];
    off = bias * s;
}

int32_t weight_bias(GgmlType t) { return t == GgmlType::Q8_0 ? 128 : 8; }

}  // namespace

const PackedKernels* packed_kernels_for(IsaFamily f) {
#if defined(__x86_64__)
    if (!cpu_has_avx2_fma_f16c()) return nullptr;
    switch (f) {
        case IsaFamily::Amx: return amx_packed_kernels();
        case IsaFamily::Avx512: return avx512::cpu_has_vnni() ? &avx512_kernels() : nullptr;
        case IsaFamily::Avx2Vnni: return cpu_has_avx_vnni() ? &avx2vnni_packed::packed_kernels() : nullptr;
        case IsaFamily::Avx2: return &avx2_packed::packed_kernels();
        default: return nullptr;
    }
#elif defined(__aarch64__)
    // NEON is part of ARMv8-A; sdot needs the dot-product extension (HWCAP_ASIMDDP).
    switch (f) {
        case IsaFamily::NeonDotprod: return cpu_has_neon_dotprod() ? &neon_dotprod_packed::packed_kernels() : nullptr;
        case IsaFamily::Neon: return &neon_packed::packed_kernels();
        default: return nullptr;
    }
#endif
    (void)f;
    return nullptr;
}

const PackedKernels* packed_kernels() {
    static const PackedKernels* k = []() -> const PackedKernels* {
        if (env_is_zero("HEARTH_REPACK")) return nullptr;
        IsaFamily f = isa_family();
        if (f == IsaFamily::Avx2Vnni && env_is_zero("HEARTH_VNNI")) f = IsaFamily::Avx2;
        return packed_kernels_for(f);
    }();
    return k;
}

bool packed_supports(const PackedKernels& k, GgmlType t) {
    switch (t) {
        case GgmlType::Q4_0: return k.q4_0_rows && k.q4_0_unpack && k.q4_0_block;
        case GgmlType::Q8_0: return k.q8_0_rows && k.q8_0_unpack && k.q8_0_block;
        case GgmlType::Q4_K: return k.q4_k_rows && k.q4_k_unpack && k.q4_k_block;
        case GgmlType::Q5_K: return k.q5_k_rows && k.q5_k_unpack && k.q5_k_block;
        case GgmlType::Q6_K: return k.q6_k_rows && k.q6_k_unpack && k.q6_k_block;
        default: return false;
    }
}

bool repack_wanted(const MatrixView& w) {
    const bool type_ok = ((w.type == GgmlType::Q4_0 || w.type == GgmlType::Q8_0) && w.cols % kBlock == 0) ||
                         ((w.type == GgmlType::Q4_K || w.type == GgmlType::Q5_K || w.type == GgmlType::Q6_K) &&
                          w.cols % QK_K == 0);
    return w.data && type_ok && w.rows > 0 && w.rows % kPackRows == 0 && active_isa() != Isa::Scalar &&
           packed_kernels() && packed_supports(*packed_kernels(), w.type);
}

bool use_packed(const MatrixView& w) { return w.packed && active_isa() != Isa::Scalar && packed_kernels(); }

size_t packed_bytes(const MatrixView& w) { return static_cast<size_t>(w.rows / kPackRows) * group_bytes(w); }

namespace {

// Q4_K, and Q5_K (Block: BlockQ5_K) with its high bits after the nibbles: vector q of the
// plane holds every row's qh[4q..4q+3] (bit 2c of qh[l]: element 64c + l's fifth bit, bit
// 2c + 1: element 64c + 32 + l's).
template <typename Block>
void repack_groups_k(const MatrixView& w, const uint8_t* src, uint8_t* dst, int64_t g0, int64_t g1) {
    constexpr bool q5 = std::is_same_v<Block, BlockQ5_K>;
    const int64_t nb = w.cols / QK_K;
    for (int64_t g = g0; g < g1; ++g) {
        uint8_t* out = dst + static_cast<size_t>(g) * group_bytes(w);
        for (int64_t i = 0; i < nb; ++i, out += q5 ? avx512::kPackQ5SuperBytes : kGroupSuperBytes) {
            for (int64_t r = 0; r < kPackRows; ++r) {
                const auto& b = reinterpret_cast<const Block*>(src + static_cast<size_t>((g - g0) * kPackRows + r) * w.row_bytes)[i];
                std::memcpy(out + 2 * r, &b.d, 2);
                std::memcpy(out + 32 + 2 * r, &b.dmin, 2);
                for (int j = 0; j < 8; ++j) scalar::unpack_scale_min_k4(j, b.scales, out[64 + 16 * j + r], out[192 + 16 * j + r]);
                for (int c = 0; c < 4; ++c)
                    for (int q = 0; q < 8; ++q) std::memcpy(out + 320 + 64 * (8 * c + q) + 4 * r, b.qs + 32 * c + 4 * q, 4);
                if constexpr (q5)
                    for (int q = 0; q < 8; ++q) std::memcpy(out + kGroupSuperBytes + 64 * q + 4 * r, b.qh + 4 * q, 4);
            }
        }
    }
}

// Q6_K: the 6-bit values q (element value = q - 32) split into a nibble vector and a 2-bit
// vector per word as the kernels read them (layout in x86/avx512_packed_q6k.cpp).
void repack_groups_q6_k(const MatrixView& w, const uint8_t* src, uint8_t* dst, int64_t g0, int64_t g1) {
    const int64_t nb = w.cols / QK_K;
    int8_t v[QK_K];
    for (int64_t g = g0; g < g1; ++g) {
        uint8_t* out = dst + static_cast<size_t>(g) * group_bytes(w);
        for (int64_t i = 0; i < nb; ++i, out += avx512::kPackQ6SuperBytes) {
            for (int64_t r = 0; r < kPackRows; ++r) {
                const auto& b = reinterpret_cast<const BlockQ6_K*>(src + static_cast<size_t>((g - g0) * kPackRows + r) * w.row_bytes)[i];
                std::memcpy(out + 2 * r, &b.d, 2);
                for (int j = 0; j < 16; ++j) out[32 + 16 * j + r] = static_cast<uint8_t>(b.scales[j]);
                scalar::unpack_q6(b, v);
                auto q = [&](int word, int k) { return static_cast<uint8_t>(v[4 * word + k] + 32); };
                for (int p = 0; p < 32; ++p)
                    for (int k = 0; k < 4; ++k)
                        out[288 + 64 * p + 4 * r + k] = static_cast<uint8_t>((q(p, k) & 0xF) | ((q(p + 32, k) & 0xF) << 4));
                for (int h = 0; h < 16; ++h)
                    for (int k = 0; k < 4; ++k)
                        out[2336 + 64 * h + 4 * r + k] = static_cast<uint8_t>((q(h, k) >> 4) | ((q(h + 16, k) >> 4) << 2) |
                                                                              ((q(h + 32, k) >> 4) << 4) | ((q(h + 48, k) >> 4) << 6));
            }
        }
    }
}

}  // namespace

void repack_groups(const MatrixView& w, const uint8_t* src, uint8_t* dst, int64_t g0, int64_t g1) {
    if (w.type == GgmlType::Q4_K) {
        repack_groups_k<BlockQ4_K>(w, src, dst, g0, g1);
        return;
    }
    if (w.type == GgmlType::Q5_K) {
        repack_groups_k<BlockQ5_K>(w, src, dst, g0, g1);
        return;
    }
    if (w.type == GgmlType::Q6_K) {
        repack_groups_q6_k(w, src, dst, g0, g1);
        return;
    }
    if (w.type == GgmlType::Q8_0) {
        const int64_t nb = w.cols / kBlock;
        for (int64_t g = g0; g < g1; ++g) {
            uint8_t* out = dst + static_cast<size_t>(g) * group_bytes(w);
            for (int64_t i = 0; i < nb; ++i, out += kGroupBlockBytesQ8)
                for (int64_t r = 0; r < kPackRows; ++r) {
                    const auto& b = reinterpret_cast<const BlockQ8_0*>(src + static_cast<size_t>((g - g0) * kPackRows + r) * w.row_bytes)[i];
                    std::memcpy(out + 2 * r, &b.d, 2);
                    for (int g = 0; g < 8; ++g) {
                        uint32_t v;
                        std::memcpy(&v, b.qs + 4 * g, 4);
                        v ^= 0x80808080u;  // signed byte -> byte + 128
                        std::memcpy(out + 32 + 64 * g + 4 * r, &v, 4);
                    }
                }
        }
        return;
    }
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
                 MatmulScratch& scratch, const PackedKernels& k) {
    const int64_t K = w.cols, nb = K / kBlock;
    const size_t arow = static_cast<size_t>(nb) * sizeof(BlockQ8_0);
    if (scratch.act.size() < arow * static_cast<size_t>(n)) scratch.act.resize(arow * static_cast<size_t>(n));
    const size_t aux_bytes = static_cast<size_t>(n * nb) * (sizeof(float) + sizeof(int32_t));
    if (scratch.aux.size() < aux_bytes) scratch.aux.resize(aux_bytes);
    uint8_t* act = scratch.act.data();
    float* da = reinterpret_cast<float*>(scratch.aux.data());
    int32_t* off = reinterpret_cast<int32_t*>(da + n * nb);
    const int32_t bias = weight_bias(w.type);
    const auto rows_kernel = w.type == GgmlType::Q8_0 ? k.q8_0_rows : k.q4_0_rows;
    const auto quantize = kernels(GgmlType::Q8_0).from_float;
    auto conv = [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
            auto* q = reinterpret_cast<BlockQ8_0*>(act + static_cast<size_t>(t) * arow);
            quantize(x + t * ldx, q, K);
            for (int64_t i = 0; i < nb; ++i) block_terms(q[i], bias, da[t * nb + i], off[t * nb + i]);
        }
    };
    if (pool && n > 1) pool->parallel_for(n, 1, conv);
    else conv(0, n, 0);
    const size_t gb = group_bytes(w);
    auto body = [&](int64_t g0, int64_t g1, int) {
        for (int64_t g = g0; g < g1; ++g)
            rows_kernel(K, w.packed + static_cast<size_t>(g) * gb, act, arow, da, off, static_cast<int>(n),
                        y + g * kPackRows, ldy);
    };
    // 4 groups (64 rows) per chunk keeps threads off each other's output lines.
    if (pool) pool->parallel_for(w.rows / kPackRows, 4, body);
    else body(0, w.rows / kPackRows, 0);
}

// Q4_K / Q5_K / Q6_K decode-size batches: activations in Q8_K plus (Q4_K, Q5_K), per super-block, the
// float scale and the 8 sub-block sums (pairs of Q8_K's 16-element bsums); the Q6_K kernel
// reads d and the bsums from the Q8_K rows themselves.
void packed_rows_k(const MatrixView& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy,
                   ThreadPool* pool, MatmulScratch& scratch, const PackedKernels& k) {
    const bool q6 = w.type == GgmlType::Q6_K, q5 = w.type == GgmlType::Q5_K;
    const int64_t K = w.cols, nb = K / QK_K;
    const size_t arow = static_cast<size_t>(nb) * sizeof(BlockQ8_K);
    if (scratch.act.size() < arow * static_cast<size_t>(n)) scratch.act.resize(arow * static_cast<size_t>(n));
    const size_t aux_bytes = static_cast<size_t>(n * nb) * 9 * sizeof(int32_t);
    if (scratch.aux.size() < aux_bytes) scratch.aux.resize(aux_bytes);
    uint8_t* act = scratch.act.data();
    float* da = reinterpret_cast<float*>(scratch.aux.data());
    int32_t* bs = reinterpret_cast<int32_t*>(da + n * nb);
    const auto quantize = kernels(GgmlType::Q8_K).from_float;
    auto conv = [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) {
            auto* q = reinterpret_cast<BlockQ8_K*>(act + static_cast<size_t>(t) * arow);
            quantize(x + t * ldx, q, K);
            if (q6) continue;  // its kernel reads d and the bsums from the Q8_K rows
            for (int64_t i = 0; i < nb; ++i) {
                da[t * nb + i] = q[i].d;
                for (int j = 0; j < 8; ++j) bs[(t * nb + i) * 8 + j] = q[i].bsums[2 * j] + q[i].bsums[2 * j + 1];
            }
        }
    };
    if (pool && n > 1) pool->parallel_for(n, 1, conv);
    else conv(0, n, 0);
    const size_t gb = group_bytes(w);
    auto body = [&](int64_t g0, int64_t g1, int) {
        for (int64_t g = g0; g < g1; ++g) {
            const uint8_t* group = w.packed + static_cast<size_t>(g) * gb;
            if (q6) k.q6_k_rows(K, group, act, arow, static_cast<int>(n), y + g * kPackRows, ldy);
            else (q5 ? k.q5_k_rows : k.q4_k_rows)(K, group, act, arow, da, bs, static_cast<int>(n), y + g * kPackRows, ldy);
        }
    };
    if (pool) pool->parallel_for(w.rows / kPackRows, 4, body);
    else body(0, w.rows / kPackRows, 0);
}

// Prompt batches: activations transposed into 16-token blocks (see avx512::kPackActBlockBytes
// and kPackActSuperBytes), each token through the same quantization as the decode path.
void packed_gemm(const MatrixView& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, ThreadPool* pool,
                 MatmulScratch& scratch, const PackedKernels& k) {
    const bool q6 = w.type == GgmlType::Q6_K, q5 = w.type == GgmlType::Q5_K;
    const bool k4 = w.type == GgmlType::Q4_K || q5 || q6;  // super-blocks of 256 with Q8_K activations
    const int64_t K = w.cols, blk = k4 ? QK_K : kBlock, nb = K / blk, ntb = (n + 15) / 16;
    const size_t blk_bytes = q6 ? avx512::kPackActQ6SuperBytes : k4 ? avx512::kPackActSuperBytes : avx512::kPackActBlockBytes;
    const size_t tb_bytes = static_cast<size_t>(nb) * blk_bytes;
    if (scratch.act.size() < tb_bytes * static_cast<size_t>(ntb)) scratch.act.resize(tb_bytes * static_cast<size_t>(ntb));
    uint8_t* act = scratch.act.data();
    const int32_t bias = weight_bias(w.type);
    const int words = static_cast<int>(blk / 4);
    const auto quantize = kernels(k4 ? GgmlType::Q8_K : GgmlType::Q8_0).from_float;
    const size_t qrow = row_size(k4 ? GgmlType::Q8_K : GgmlType::Q8_0, K);
    auto prep = [&](int64_t tb0, int64_t tb1, int) {
        thread_local std::vector<uint8_t> qbuf;
        if (qbuf.size() < qrow) qbuf.resize(qrow);
        for (int64_t tb = tb0; tb < tb1; ++tb) {
            uint8_t* base = act + static_cast<size_t>(tb) * tb_bytes;
            for (int64_t t = 0; t < 16; ++t) {
                const int64_t tok = tb * 16 + t;
                const bool real = tok < n;
                if (real) quantize(x + tok * ldx, qbuf.data(), K);
                for (int64_t i = 0; i < nb; ++i) {
                    uint8_t* o = base + static_cast<size_t>(i) * blk_bytes;
                    const int8_t* qs;
                    float da = 0.0f;
                    if (k4) {
                        const auto& q = reinterpret_cast<const BlockQ8_K*>(qbuf.data())[i];
                        qs = q.qs;
                        if (real) da = q.d;
                        // Sub-block sums: Q6_K's 16-element sub-blocks, Q4_K's 32-element ones.
                        for (int j = 0; j < (q6 ? 16 : 8); ++j) {
                            const int32_t v = !real ? 0 : q6 ? q.bsums[j] : q.bsums[2 * j] + q.bsums[2 * j + 1];
                            std::memcpy(o + 4096 + 64 + 64 * j + 4 * t, &v, 4);
                        }
                    } else {
                        const auto& q = reinterpret_cast<const BlockQ8_0*>(qbuf.data())[i];
                        qs = q.qs;
                        int32_t off = 0;
                        if (real) block_terms(q, bias, da, off);
                        std::memcpy(o + 576 + 4 * t, &off, 4);
                    }
                    for (int g = 0; g < words; ++g) {
                        if (real) std::memcpy(o + 64 * g + 4 * t, qs + 4 * g, 4);
                        else std::memset(o + 64 * g + 4 * t, 0, 4);
                    }
                    std::memcpy(o + 64 * words + 4 * t, &da, 4);
                }
            }
        }
    };
    if (pool) pool->parallel_for(ntb, 1, prep);
    else prep(0, ntb, 0);

    const bool q8 = w.type == GgmlType::Q8_0;
    const auto unpack = q6 ? k.q6_k_unpack : q5 ? k.q5_k_unpack : k4 ? k.q4_k_unpack : q8 ? k.q8_0_unpack : k.q4_0_unpack;
    const auto block = q6 ? k.q6_k_block : q5 ? k.q5_k_block : k4 ? k.q4_k_block : q8 ? k.q8_0_block : k.q4_0_block;
    // Q4_0 / Q8_0: 16 bytes per column (plain AVX2 Q8_0: 32, its nibbles in two planes).
    const size_t wu_bytes = k4 ? static_cast<size_t>(nb) * avx512::kPackUnpackedSuperBytes : static_cast<size_t>(K * 2 * kPackRows);
    const size_t dw_floats = static_cast<size_t>(nb) * (k4 && !q6 ? 2 * kPackRows : kPackRows);
    const size_t gb = group_bytes(w);
    auto body = [&](int64_t g0, int64_t g1, int) {
        // Per-thread unpacked row group, grown once.
        thread_local std::vector<uint8_t> wu;
        thread_local std::vector<float> dw;
        if (wu.size() < wu_bytes) wu.resize(wu_bytes);
        if (dw.size() < dw_floats) dw.resize(dw_floats);
        alignas(64) float out[16 * 8];
        for (int64_t g = g0; g < g1; ++g) {
            unpack(K, w.packed + static_cast<size_t>(g) * gb, wu.data(), dw.data());
            for (int64_t tb = 0; tb < ntb; ++tb) {
                const int64_t nt = std::min<int64_t>(16, n - tb * 16);
                for (int half = 0; half < 2; ++half) {
                    block(K, wu.data(), dw.data(), 8 * half, act + static_cast<size_t>(tb) * tb_bytes, out);
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
                   ThreadPool* pool, MatmulScratch& scratch, bool prompt, const PackedKernels& k) {
    if (prompt) packed_gemm(w, x, ldx, n_tokens, y, ldy, pool, scratch, k);
    else if (w.type == GgmlType::Q4_K || w.type == GgmlType::Q5_K || w.type == GgmlType::Q6_K) packed_rows_k(w, x, ldx, n_tokens, y, ldy, pool, scratch, k);
    else packed_rows(w, x, ldx, n_tokens, y, ldy, pool, scratch, k);
}

void packed_matmul(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool* pool, MatmulScratch& scratch, bool prompt) {
    packed_matmul(w, x, ldx, n_tokens, y, ldy, pool, scratch, prompt, *packed_kernels());
}

}  // namespace hearth
