// The dot-product extension instance of the int8 dot kernels (templates in neon_int8_impl.h):
// 16 byte products per sdot (vdotq_s32, ARMv8.2 FEAT_DotProd). Only this file's kernel code
// is compiled for ARMv8.2-A + dotprod (the target pragma below, after every include, so no
// inline library function is built for it; GCC 12's vdotq_s32 needs the whole arch string,
// "+dotprod" alone does not inline it); dispatch.cpp calls it only where the kernel reports
// HWCAP_ASIMDDP, which no CPU below ARMv8.2 has.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "tensor/arm/neon_common.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")

#define HEARTH_NEON_DOTPROD 1
#include "tensor/arm/neon_int8_impl.h"

namespace hearth::neon {

void register_int8_kernels_dotprod(KernelTable& t) { register_int8_kernels_impl(t); }

}  // namespace hearth::neon

#pragma GCC pop_options

#endif  // __aarch64__
