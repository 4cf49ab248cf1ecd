// The AVX-VNNI instance of the multi-token dot kernels (vec_dot_multi; templates in
// avx2_multi_impl.h): vpdpbusd / vpdpwssd form the same int32 partial sums as the AVX2
// kernels' maddubs + madd in fewer instructions. dispatch.cpp registers it only when
// CPUID reports AVX-VNNI.
#if defined(__x86_64__)

#define HEARTH_MULTI_TARGET "avx2,fma,f16c,avxvnni"
#define HEARTH_MULTI_VNNI 1
#include "tensor/x86/avx2_multi_impl.h"

namespace hearth {

void register_avx2_vnni_multi_kernels(KernelTable& t) { avx2::register_multi_quant_kernels(t); }

}  // namespace hearth

#endif  // __x86_64__
