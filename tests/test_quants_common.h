// Helpers shared by the quantization kernel tests (test_quants*.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tensor/quants.h"
#include "tensor/types.h"

namespace hearth::test {

// Gaussian samples from a fixed seed, identical on every platform (std::normal_distribution
// is implementation-defined, so Box-Muller over mt19937_64's exact output instead).
inline std::vector<float> normal_row(int64_t n, uint64_t seed, float sigma = 1.0f) {
    std::mt19937_64 rng(seed);
    auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };  // [0, 1)
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i += 2) {
        const double u1 = 1.0 - uniform();  // (0, 1]
        const double u2 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        v[static_cast<size_t>(i)] = static_cast<float>(sigma * r * std::cos(2 * M_PI * u2));
        if (i + 1 < n) v[static_cast<size_t>(i + 1)] = static_cast<float>(sigma * r * std::sin(2 * M_PI * u2));
    }
    return v;
}

// The scalar reference kernels, whatever ISA is active.
inline const TypeKernels& ref_kernels(GgmlType t) { return kernels_for(Isa::Scalar, t); }

inline std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x) {
    std::vector<uint8_t> q(row_size(t, static_cast<int64_t>(x.size())));
    ref_kernels(t).from_float(x.data(), q.data(), static_cast<int64_t>(x.size()));
    return q;
}

inline std::vector<float> dequantize(GgmlType t, const void* q, int64_t n) {
    std::vector<float> y(static_cast<size_t>(n));
    ref_kernels(t).to_float(q, y.data(), n);
    return y;
}

inline double rms(const std::vector<float>& x) {
    double s = 0;
    for (float v : x) s += static_cast<double>(v) * v;
    return x.empty() ? 0.0 : std::sqrt(s / static_cast<double>(x.size()));
}

// RMS of (a - b) divided by the RMS of b.
inline double relative_rmse(const std::vector<float>& approx, const std::vector<float>& exact) {
    double e = 0, s = 0;
    for (size_t i = 0; i < exact.size(); ++i) {
        const double d = static_cast<double>(approx[i]) - exact[i];
        e += d * d;
        s += static_cast<double>(exact[i]) * exact[i];
    }
    return s > 0 ? std::sqrt(e / s) : std::sqrt(e);
}

inline bool all_finite(const std::vector<float>& x) {
    for (float v : x)
        if (!std::isfinite(v)) return false;
    return true;
}

// Upper bounds on the relative RMSE (error RMS / row RMS) of quantize -> dequantize of
// Gaussian rows, measured on this suite's rows (see the [ measured ] lines) plus ~10%. Also used for the
// real tensors of the shared models, which are Gaussian as well.
inline double rel_rmse_bound(GgmlType t) {
    switch (t) {
        case GgmlType::F32: return 0.0;
        case GgmlType::F16: return 2.5e-4;
        case GgmlType::BF16: return 1.9e-3;
        case GgmlType::Q8_0: return 6.0e-3;
        case GgmlType::Q8_1: return 6.0e-3;
        case GgmlType::Q8_K: return 7.8e-3;
        case GgmlType::Q5_0: return 0.047;
        case GgmlType::Q5_1: return 0.042;
        case GgmlType::Q4_0: return 0.095;
        case GgmlType::Q4_1: return 0.086;
        case GgmlType::Q6_K: return 0.0195;
        case GgmlType::Q5_K: return 0.040;
        case GgmlType::Q4_K: return 0.078;
        case GgmlType::Q3_K: return 0.165;
        case GgmlType::Q2_K: return 0.325;
        case GgmlType::MXFP4: return 0.125;
        default: return 0.0;
    }
}

}  // namespace hearth::test
