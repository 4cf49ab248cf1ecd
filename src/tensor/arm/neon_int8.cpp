// The plain ARMv8-A NEON instance of the int8 dot kernels (templates in neon_int8_impl.h):
// 16 byte products per smull/smull2 pair, widened into int32 lanes by sadalp. The table on
// CPUs without the dot-product extension, or with HEARTH_ISA=neon.
#if defined(__aarch64__)

#define HEARTH_NEON_DOTPROD 0
#include "tensor/arm/neon_int8_impl.h"

namespace hearth::neon {

void register_int8_kernels_plain(KernelTable& t) { register_int8_kernels_impl(t); }

}  // namespace hearth::neon

#endif  // __aarch64__
