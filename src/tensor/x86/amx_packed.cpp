// The AMX family (x86/amx_packed.h): its kernels on real and on emulated tiles, and the
// start-up self-check of the real ones against the AVX-512 VNNI kernels.
#include "tensor/x86/amx_packed.h"

#include <cstring>
#include <random>
#include <vector>

#include "tensor/types.h"
#include "tensor/x86/amx_packed_impl.h"

namespace hearth::amx {

const PackedKernels& hw_packed_kernels() {
    static const PackedKernels k = impl::family<HwTiles>("amx");
    return k;
}

const PackedKernels& emulated_packed_kernels() {
    static const PackedKernels k = impl::family<EmuTiles>("amx-emulated");
    return k;
}

namespace {

using avx512::kPackActBlockBytes;
using avx512::kPackActQ6SuperBytes;
using avx512::kPackActSuperBytes;
using avx512::kPackQ6SuperBytes;
using avx512::kPackUnpackedSuperBytes;

// One row group of type t with K columns, random bytes whose scales are finite fp16 values,
// and one 16-token activation block of random quants (every byte value), scales and sums.
struct CheckInput {
    std::vector<uint8_t> group, act;
};

CheckInput make_input(GgmlType t, int64_t K, std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(1e-4f, 2e-2f);
    const bool k4 = t == GgmlType::Q4_K || t == GgmlType::Q6_K;
    const int64_t nb = K / (k4 ? 256 : 32);
    const bool q45 = t == GgmlType::Q4_K || t == GgmlType::Q5_K;
    const size_t blk = t == GgmlType::Q4_0 ? 288 : t == GgmlType::Q8_0 ? 544 : t == GgmlType::Q4_K ? 64 + 256 + 2048
                     : t == GgmlType::Q5_K ? avx512::kPackQ5SuperBytes : kPackQ6SuperBytes;
    const int n_fp16 = q45 ? 32 : 16;  // Q4_K / Q5_K: d then dmin
    CheckInput in;
    in.group.resize(static_cast<size_t>(nb) * blk);
    for (auto& b : in.group) b = static_cast<uint8_t>(byte(rng));
    for (int64_t i = 0; i < nb; ++i)
        for (int s = 0; s < n_fp16; ++s) {
            const uint16_t h = fp32_to_fp16(scale(rng));
            std::memcpy(in.group.data() + static_cast<size_t>(i) * blk + 2 * s, &h, 2);
        }
    const size_t ablk = t == GgmlType::Q6_K ? kPackActQ6SuperBytes : k4 ? kPackActSuperBytes : kPackActBlockBytes;
    const size_t words = k4 ? 64 : 8;  // bytes [0, 64 words) quants, then 16 float d_a, then int32 sums
    in.act.resize(static_cast<size_t>(nb) * ablk);
    std::uniform_int_distribution<int32_t> sum(-4000, 4000);
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t* a = in.act.data() + static_cast<size_t>(i) * ablk;
        for (size_t j = 0; j < 64 * words; ++j) a[j] = static_cast<uint8_t>(byte(rng));
        for (int tk = 0; tk < 16; ++tk) {
            const float d = scale(rng);
            std::memcpy(a + 64 * words + 4 * tk, &d, 4);
        }
        for (size_t j = 64 * words + 64; j < ablk; j += 4) {
            const int32_t v = sum(rng);
            std::memcpy(a + j, &v, 4);
        }
    }
    return in;
}

// out[16 * r + t] for all 16 rows of the group, through family k's unpack and block kernels.
std::vector<float> run(const PackedKernels& k, GgmlType t, int64_t K, const CheckInput& in) {
    const auto unpack = t == GgmlType::Q4_0 ? k.q4_0_unpack : t == GgmlType::Q8_0 ? k.q8_0_unpack : t == GgmlType::Q4_K ? k.q4_k_unpack
                      : t == GgmlType::Q5_K ? k.q5_k_unpack : k.q6_k_unpack;
    const auto block = t == GgmlType::Q4_0 ? k.q4_0_block : t == GgmlType::Q8_0 ? k.q8_0_block : t == GgmlType::Q4_K ? k.q4_k_block
                     : t == GgmlType::Q5_K ? k.q5_k_block : k.q6_k_block;
    const bool k4 = t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K;
    std::vector<uint8_t> wu(k4 ? static_cast<size_t>(K / 256) * kPackUnpackedSuperBytes : static_cast<size_t>(K * 32));
    std::vector<float> dw(static_cast<size_t>(K / (k4 ? 256 : 32)) * 32);
    unpack(K, in.group.data(), wu.data(), dw.data());
    std::vector<float> out(256);
    block(K, wu.data(), dw.data(), 0, in.act.data(), out.data());
    block(K, wu.data(), dw.data(), 8, in.act.data(), out.data() + 128);
    return out;
}

}  // namespace

bool self_check(std::string* why) { return self_check(hw_packed_kernels(), why); }

bool self_check(const PackedKernels& k, std::string* why) {
    const PackedKernels* ref = packed_kernels_for(IsaFamily::Avx512);
    if (!ref) {
        if (why) *why = "no AVX-512 VNNI kernels to compare with";
        return false;
    }
    std::mt19937 rng(20261207u);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
        const int64_t K = (t == GgmlType::Q4_0 || t == GgmlType::Q8_0) ? 96 : 512;
        if (t == GgmlType::Q5_K && !ref->q5_k_block) continue;
        const CheckInput in = make_input(t, K, rng);
        const std::vector<float> want = run(*ref, t, K, in), got = run(k, t, K, in);
        if (std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) != 0) {
            if (why) *why = std::string("the ") + type_name(t) + " prompt kernel differs from avx512's";
            return false;
        }
    }
    return true;
}

}  // namespace hearth::amx
