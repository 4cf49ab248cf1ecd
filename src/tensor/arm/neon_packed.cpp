// The plain ARMv8-A NEON instance of the packed-layout kernels (templates in
// neon_packed_impl.h): smull/smlal into int16 lanes, widened by saddlp/addp. The packed
// kernels on CPUs without the dot-product extension, or with HEARTH_ISA=neon.
#if defined(__aarch64__)

#define HEARTH_NEON_DOTPROD 0
#include "tensor/arm/neon_packed_impl.h"

namespace hearth::neon_packed {

const PackedKernels& packed_kernels() { return neon::packed_kernels_impl(); }

}  // namespace hearth::neon_packed

#endif  // __aarch64__
