// Internal to src/tensor/arm/: helpers shared by the NEON kernels (aarch64 only; NEON and the
// fp16 <-> fp32 conversions are part of the ARMv8-A baseline, so these need no target
// attribute). The dot-product extension's sdot lives only in neon_int8_dotprod.cpp.
#pragma once

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "tensor/kernel_table.h"

#if defined(__clang__)
#define HEARTH_NEON_UNROLL _Pragma("unroll")
#else
#define HEARTH_NEON_UNROLL _Pragma("GCC unroll 16")
#endif
#define HEARTH_NEON_INLINE __attribute__((always_inline)) inline

namespace hearth::neon {

// The per-file registrations register_neon_kernels (neon.cpp) calls.
void register_float_kernels(KernelTable& t);         // F32, F16 (neon.cpp)
void register_int8_kernels_plain(KernelTable& t);    // Q4_0, Q8_0, Q4_K, Q6_K: smull + sadalp
void register_int8_kernels_dotprod(KernelTable& t);  // the same with sdot (dot-product extension)

// Four consecutive fp16 fields (one per block, blocks of any size apart) as four floats.
HEARTH_NEON_INLINE float32x4_t halves4(fp16_t a, fp16_t b, fp16_t c, fp16_t d) {
    const uint64_t packed = uint64_t{a} | uint64_t{b} << 16 | uint64_t{c} << 32 | uint64_t{d} << 48;
    return vcvt_f32_f16(vreinterpret_f16_u64(vcreate_u64(packed)));
}

HEARTH_NEON_INLINE float half1(fp16_t h) { return vgetq_lane_f32(halves4(h, 0, 0, 0), 0); }

// Four int32 block totals from each block's four int32 partial sums: pairwise adds, so the
// totals are exact whichever lanes the partial sums were spread over.
HEARTH_NEON_INLINE int32x4_t totals4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

}  // namespace hearth::neon

#endif  // __aarch64__
