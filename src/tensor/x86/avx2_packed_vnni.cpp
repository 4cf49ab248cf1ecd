// The AVX-VNNI instance of the packed-layout kernels (vpdpbusd on ymm, VEX-encoded; templates
// in avx2_packed_impl.h): the same int32 sums as the plain AVX2 instance in fewer
// instructions. repack.cpp picks it only where cpu_has_avx_vnni().
#if defined(__x86_64__)
#define HEARTH_PACKED_TARGET "avx2,fma,f16c,avxvnni"
#define HEARTH_PACKED_VNNI 1
#define HEARTH_PACKED_NS avx2vnni_packed
#include "tensor/x86/avx2_packed_impl.h"
#endif
