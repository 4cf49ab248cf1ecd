// Kernel families and which one runs: the best the CPU has, or the one HEARTH_ISA forces
// (scalar | avx2 | avx2-vnni | avx512 | amx on x86-64; scalar | neon | neon-dotprod on aarch64), so
// each can be measured and tested on one machine. Every CPU feature check of the kernel code
// goes through isa_family(), so forcing a family turns off everything above it (x86: the VNNI
// multi-token kernels, the AVX-512 GEMM, attention and SwiGLU, the packed AVX-512 VNNI
// layouts; aarch64: the sdot kernels of the dot-product extension). amx is avx512 plus the
// AMX-INT8 tile kernels for prompt batches of the packed types (x86/amx_packed.h).
#pragma once

#include <cstdint>

namespace hearth {

struct PackedKernels;

// Ordered within one architecture (a higher value runs everything a lower one needs, so
// `>= IsaFamily::Avx512` holds for amx); the x86 and ARM families are never both
// available, see isa_family_supported().
enum class IsaFamily { Scalar = 0, Avx2 = 1, Avx2Vnni = 2, Avx512 = 3, Amx = 4, Neon = 5, NeonDotprod = 6 };

// Whether f is one of the x86-64 families (avx2 .. amx).
constexpr bool isa_family_is_x86(IsaFamily f) { return f >= IsaFamily::Avx2 && f <= IsaFamily::Amx; }

const char* isa_family_name(IsaFamily f);
// The best family this CPU runs (AVX-512 means AVX-512 F/BW/VNNI with the OS saving ZMM state;
// amx: that plus amx_usable(); neon-dotprod means the ARMv8.2 dot-product extension,
// HWCAP_ASIMDDP).
IsaFamily cpu_best_family();

// AMX: CPUID.(7,0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), XCR0 bits 17 (XTILECFG) and 18
// (XTILEDATA) set by the OS, AVX-512 VNNI, and on Linux the process's permission for the
// tile data, asked for once: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). False off
// x86-64 and off Linux.
bool cpu_has_amx();
// The pure CPUID/XCR0 part of cpu_has_amx() (tests feed it values).
bool amx_cpuid_ok(uint32_t cpuid7_edx, uint64_t xcr0);
// arch_prctl(ARCH_REQ_XCOMP_PERM, 18) then ARCH_GET_XCOMP_PERM shows bit 18: whether this
// process may use the tile data (false where the kernel or the CPU has no AMX).
bool amx_request_permission();
// cpu_has_amx() and the AMX kernels' one-time self-check against the AVX-512 VNNI ones
// passed (on a mismatch: one warning line on stderr, and the family is not used).
bool amx_usable();
// The AMX family's packed kernels where amx_usable(), else null.
const PackedKernels* amx_packed_kernels();
// Whether this CPU runs family f: scalar always; otherwise f belongs to this CPU's
// architecture and is not above cpu_best_family().
bool isa_family_supported(IsaFamily f);
// HEARTH_ISA if set, else cpu_best_family(). Throws std::runtime_error (every call) for a
// name it does not know or a family this CPU lacks (amx: also where its self-check failed).
IsaFamily isa_family();

}  // namespace hearth
