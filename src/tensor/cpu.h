// Kernel families and which one runs: the best the CPU has, or the one HEARTH_ISA forces
// (scalar | avx2 | avx2-vnni | avx512 on x86-64; scalar | neon | neon-dotprod on aarch64), so
// each can be measured and tested on one machine. Every CPU feature check of the kernel code
// goes through isa_family(), so forcing a family turns off everything above it (x86: the VNNI
// multi-token kernels, the AVX-512 GEMM, attention and SwiGLU, the packed AVX-512 VNNI
// layouts; aarch64: the sdot kernels of the dot-product extension).
#pragma once

namespace hearth {

// Ordered within one architecture (a higher value runs everything a lower one needs); the
// x86 and ARM families are never both available, see isa_family_supported().
enum class IsaFamily { Scalar = 0, Avx2 = 1, Avx2Vnni = 2, Avx512 = 3, Neon = 4, NeonDotprod = 5 };

const char* isa_family_name(IsaFamily f);
// The best family this CPU runs (AVX-512 means AVX-512 F/BW/VNNI with the OS saving ZMM state;
// neon-dotprod means the ARMv8.2 dot-product extension, HWCAP_ASIMDDP).
IsaFamily cpu_best_family();
// Whether this CPU runs family f: scalar always; otherwise f belongs to this CPU's
// architecture and is not above cpu_best_family().
bool isa_family_supported(IsaFamily f);
// HEARTH_ISA if set, else cpu_best_family(). Throws std::runtime_error (every call) for a
// name it does not know, a family this CPU lacks, or "amx", whose kernels do not exist yet.
IsaFamily isa_family();

}  // namespace hearth
