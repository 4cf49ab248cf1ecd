// The AVX2+FMA+F16C instance of the multi-token dot kernels (vec_dot_multi; templates in
// avx2_multi_impl.h): the default on every CPU with the AVX2 table, replaced by the
// AVX-VNNI instance (avx2_multi_vnni.cpp) where the CPU has it.
#if defined(__x86_64__)

#define HEARTH_MULTI_TARGET "avx2,fma,f16c"
#define HEARTH_MULTI_VNNI 0
#include "tensor/x86/avx2_multi_impl.h"

namespace hearth {

void register_avx2_multi_kernels(KernelTable& t) { avx2::register_multi_quant_kernels(t); }

}  // namespace hearth

#endif  // __x86_64__
