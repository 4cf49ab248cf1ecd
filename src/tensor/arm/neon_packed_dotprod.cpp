// The dot-product extension instance of the packed-layout kernels (templates in
// neon_packed_impl.h): one sdot per 16 byte products, by element (vdotq_laneq_s32) so a loaded
// register serves four words. As in neon_int8_dotprod.cpp, only this file's kernel code is
// compiled for ARMv8.2-A + dotprod (the pragma after every include); repack.cpp hands these
// kernels out only where the CPU reports HWCAP_ASIMDDP and HEARTH_ISA allows neon-dotprod.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tensor/arm/neon_common.h"
#include "tensor/repack.h"
#include "tensor/types.h"

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")

#define HEARTH_NEON_DOTPROD 1
#include "tensor/arm/neon_packed_impl.h"

namespace hearth::neon_dotprod_packed {

const PackedKernels& packed_kernels() { return neon::packed_kernels_impl(); }

}  // namespace hearth::neon_dotprod_packed

#pragma GCC pop_options

#endif  // __aarch64__
