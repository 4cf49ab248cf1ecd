#include "tensor/cpu.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tensor/kernel_table.h"
#include "tensor/repack.h"

namespace hearth {

const char* isa_family_name(IsaFamily f) {
    switch (f) {
        case IsaFamily::Scalar: return "scalar";
        case IsaFamily::Avx2: return "avx2";
        case IsaFamily::Avx2Vnni: return "avx2-vnni";
        case IsaFamily::Avx512: return "avx512";
        case IsaFamily::Neon: return "neon";
        case IsaFamily::NeonDotprod: return "neon-dotprod";
    }
    return "?";
}

IsaFamily cpu_best_family() {
    static const IsaFamily best = [] {
#if defined(__x86_64__)
        if (!cpu_has_avx2_fma_f16c()) return IsaFamily::Scalar;
        if (avx512::cpu_has_vnni()) return IsaFamily::Avx512;
        return cpu_has_avx_vnni() ? IsaFamily::Avx2Vnni : IsaFamily::Avx2;
#elif defined(__aarch64__)
        return cpu_has_neon_dotprod() ? IsaFamily::NeonDotprod : IsaFamily::Neon;  // NEON is baseline ARMv8-A
#else
        return IsaFamily::Scalar;
#endif
    }();
    return best;
}

namespace {
bool is_arm(IsaFamily f) { return f == IsaFamily::Neon || f == IsaFamily::NeonDotprod; }
}  // namespace

bool isa_family_supported(IsaFamily f) {
    if (f == IsaFamily::Scalar) return true;
    const IsaFamily best = cpu_best_family();
    if (best == IsaFamily::Scalar || is_arm(f) != is_arm(best)) return false;
    return static_cast<int>(f) <= static_cast<int>(best);
}

IsaFamily isa_family() {
    static const std::string env = [] {
        const char* e = std::getenv("HEARTH_ISA");
        return std::string(e ? e : "");
    }();
    if (env.empty()) return cpu_best_family();
    IsaFamily want;
    if (env == "scalar") want = IsaFamily::Scalar;
    else if (env == "avx2") want = IsaFamily::Avx2;
    else if (env == "avx2-vnni") want = IsaFamily::Avx2Vnni;
    else if (env == "avx512") want = IsaFamily::Avx512;
    else if (env == "neon") want = IsaFamily::Neon;
    else if (env == "neon-dotprod") want = IsaFamily::NeonDotprod;
    else if (env == "amx") throw std::runtime_error("HEARTH_ISA=amx: the AMX kernels are not implemented yet (use avx512)");
    else
        throw std::runtime_error("HEARTH_ISA='" + env +
                                 "' is not a kernel family (scalar, avx2, avx2-vnni, avx512, neon, neon-dotprod)");
    if (!isa_family_supported(want))
        throw std::runtime_error(std::string("HEARTH_ISA=") + env + ": this CPU's best kernel family is " +
                                 isa_family_name(cpu_best_family()));
    return want;
}

}  // namespace hearth
