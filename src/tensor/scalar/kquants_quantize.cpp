// Reference quantizers for the K-quants: ggml's quantize_row_{q2..q6,q8}_K_ref, the
// path llama-quantize takes without an importance matrix. Each super-block of 256 is
// split into sub-blocks whose scales (and mins) are found by a small search, then the
// sub-block scales are themselves quantized against one fp16 super-block scale and the
// values re-quantized with the scales as stored:
//   Q2_K  16 x 16, 2-bit values, 4-bit scale and min  (search: "qkx2", min + scale,
//         weights |x|, mean absolute error)
//   Q3_K  16 x 16, 3-bit signed values, 6-bit signed scales (search: make_q3_quants,
//         weights x^2, iterative coordinate refinement)
//   Q4_K  8 x 32, 4-bit values, 6-bit scale and min (qkx2, weights rms + |x|, squared error)
//   Q5_K  8 x 32, 5-bit values, 6-bit scale and min (qkx2 likewise)
//   Q6_K  16 x 16, 6-bit signed values, int8 scales (search: make_qx_quants, weights x^2)
//   Q8_K  256 int8 values, float scale, and the 16 group sums
// To reproduce llama.cpp's bytes, every float expression keeps ggml's operand order
// (see common.h about contraction).
#include <cmath>
#include <cstring>

#include "tensor/scalar/common.h"

namespace hearth::scalar {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a group counts as all zero

inline int imin(int a, int b) { return a < b ? a : b; }
inline int imax(int a, int b) { return a > b ? a : b; }

// Asymmetric quantization of n values to [0, nmax]: x ~ scale * L + min with min <= 0.
// Starts from the min/max grid, then tries nstep+1 slightly different grids; for each,
// the weighted least-squares (scale, min) for its levels, keeping the lowest weighted
// error (absolute when use_mad, else squared). Returns scale; *neg_min = -min.
float search_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *neg_min = -min;
        return 0.f;
    }
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(imax(0, imin(nmax, l)));
        float diff = scale * static_cast<float>(L[i]) + min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *neg_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const float fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
                diff = use_mad ? std::fabs(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

// Symmetric quantization of n values to [-nmax, nmax-1] (stored as L + nmax), weights
// x^2: the grid through the largest-magnitude value, then 18 nearby grids, keeping the
// one whose least-squares scale explains most of the weighted energy. ggml's
// make_qx_quants with rmse_type 1 and no importance weights. Returns the scale.
float search_scale_symmetric(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        const float fl = static_cast<float>(l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            const float w = x[i] * x[i];
            const float fl = static_cast<float>(l);
            sumlx += w * x[i] * fl;
            suml2 += w * fl * fl;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = static_cast<int8_t>(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's sub-block search (ggml's make_q3_quants with do_rmse): symmetric grid through
// the largest-magnitude value, then up to 5 passes that move single values to the level
// that most improves the weighted (x^2) fit. L gets l + nmax in [0, 2*nmax-1].
float search_scale_q3(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        const float fl = static_cast<float>(l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const float li = static_cast<float>(L[i]);
            float slx = sumlx - w * x[i] * li;
            if (slx > 0) {
                float sl2 = suml2 - w * li * li;
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    const float fl = static_cast<float>(new_l);
                    slx += w * x[i] * fl;
                    sl2 += w * fl * fl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<int8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// 2-bit values L[0..255] into qs: byte 32*(e/128) + e%32, bits 2*((e%128)/32).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

// Shared by Q4_K and Q5_K: sub-block search, 6-bit scale/min quantization, and the
// final levels (0..nmax) computed from the stored scales.
void quantize_k4_superblock(const float* x, int nmax, float rmin, float rdelta, int nstep, uint8_t* L,
                            uint8_t* packed_scales, fp16_t& d_out, fp16_t& dmin_out) {
    uint8_t Laux[32];
    float weights[32];
    float mins[QK_K / 32];
    float scales[QK_K / 32];
    float max_scale = 0;  // scales are positive: the min is taken out
    float max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] = search_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep,
                                     false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < QK_K / 32; ++j) {
        // Wraps like ggml's uint8_t conversion before the clamp.
        ls[j] = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
        lm[j] = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
        if (ls[j] > 63) ls[j] = 63;
        if (lm[j] > 63) lm[j] = 63;
    }
    pack_scales_mins_k4(ls, lm, packed_scales);
    d_out = fp32_to_fp16(max_scale / 63.f);
    dmin_out = fp32_to_fp16(max_min / 63.f);

    const float d_all = half_to_float(d_out);
    const float dmin_all = half_to_float(dmin_out);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, packed_scales, sc, m);
        const float d = d_all * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const float dm = dmin_all * static_cast<float>(m);
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = static_cast<uint8_t>(imax(0, imin(nmax, l)));
        }
    }
}

}  // namespace

// ============================== Q2_K

void quantize_row_q2_k(const float* x, void* dst, int64_t n) {
    BlockQ2_K* y = static_cast<BlockQ2_K*>(dst);
    uint8_t L[QK_K];
    uint8_t Laux[16];
    float weights[16];
    float mins[QK_K / 16];
    float scales[QK_K / 16];
    const float q4scale = 15.f;

    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0;
        float max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            scales[j] = search_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }

        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
            y[i].d = fp32_to_fp16(max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
            y[i].d = fp32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) {
                const int l = nearest_int(iscale * mins[j]);
                y[i].scales[j] = static_cast<uint8_t>(y[i].scales[j] | (l << 4));
            }
            y[i].dmin = fp32_to_fp16(max_min / q4scale);
        } else {
            y[i].dmin = fp32_to_fp16(0.f);
        }

        const float d_all = half_to_float(y[i].d);
        const float dmin_all = half_to_float(y[i].dmin);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = d_all * static_cast<float>(y[i].scales[j] & 0xF);
            if (d == 0.0f) continue;
            const float dm = dmin_all * static_cast<float>(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = static_cast<uint8_t>(imax(0, imin(3, l)));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

// ============================== Q3_K

void quantize_row_q3_k(const float* x, void* dst, int64_t n) {
    BlockQ3_K* y = static_cast<BlockQ3_K*>(dst);
    int8_t L[QK_K];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0;
        float amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = search_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            const float scale = std::fabs(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }

        std::memset(y[i].scales, 0, sizeof(y[i].scales));
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
                l = imax(-32, imin(31, l)) + 32;  // 6 bits, biased
                if (j < 8) {
                    y[i].scales[j] = static_cast<uint8_t>(l & 0xF);
                } else {
                    y[i].scales[j - 8] = static_cast<uint8_t>(y[i].scales[j - 8] | ((l & 0xF) << 4));
                }
                y[i].scales[j % 4 + 8] = static_cast<uint8_t>(y[i].scales[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
            }
            y[i].d = fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = fp32_to_fp16(0.f);
        }

        int8_t sc[16];
        unpack_q3k_scales(y[i].scales, sc);
        const float d_all = half_to_float(y[i].d);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = d_all * static_cast<float>(sc[j]);
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = static_cast<int8_t>(imax(-4, imin(3, l)) + 4);
            }
        }

        // Bit 2 of each level goes to hmask: element e at byte e%32, bit e/32.
        std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
        uint8_t low[QK_K];
        for (int e = 0; e < QK_K; ++e) {
            if (L[e] > 3) {
                y[i].hmask[e % 32] = static_cast<uint8_t>(y[i].hmask[e % 32] | (1u << (e / 32)));
                low[e] = static_cast<uint8_t>(L[e] - 4);
            } else {
                low[e] = static_cast<uint8_t>(L[e]);
            }
        }
        pack_2bit(low, y[i].qs);
    }
}

// ============================== Q4_K

void quantize_row_q4_k(const float* x, void* dst, int64_t n) {
    BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        quantize_k4_superblock(x, 15, -1.f, 0.1f, 20, L, y[i].scales, y[i].d, y[i].dmin);
        uint8_t* q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32) {
            for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

// ============================== Q5_K

void quantize_row_q5_k(const float* x, void* dst, int64_t n) {
    BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        quantize_k4_superblock(x, 31, -0.5f, 0.1f, 15, L, y[i].scales, y[i].d, y[i].dmin);
        std::memset(y[i].qh, 0, sizeof(y[i].qh));
        uint8_t* ql = y[i].qs;
        for (int c = 0; c < QK_K / 64; ++c, ql += 32) {
            for (int l = 0; l < 32; ++l) {
                int l1 = L[64 * c + l];
                int l2 = L[64 * c + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    y[i].qh[l] = static_cast<uint8_t>(y[i].qh[l] | (1u << (2 * c)));
                }
                if (l2 > 15) {
                    l2 -= 16;
                    y[i].qh[l] = static_cast<uint8_t>(y[i].qh[l] | (1u << (2 * c + 1)));
                }
                ql[l] = static_cast<uint8_t>(l1 | (l2 << 4));
            }
        }
    }
}

// ============================== Q6_K

void quantize_row_q6_k(const float* x, void* dst, int64_t n) {
    BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
    int8_t L[QK_K];
    float scales[QK_K / 16];

    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float scale = search_scale_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = std::fabs(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }

        if (max_abs_scale < kGroupMaxEps) {
            std::memset(&y[i], 0, sizeof(BlockQ6_K));
            continue;
        }

        const float iscale = -128.f / max_scale;
        y[i].d = fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(imin(127, nearest_int(iscale * scales[ib])));

        const float d_all = half_to_float(y[i].d);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = d_all * static_cast<float>(y[i].scales[j]);
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = static_cast<int8_t>(imax(-32, imin(31, l)) + 32);
            }
        }

        uint8_t* ql = y[i].ql;
        uint8_t* qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

// ============================== Q8_K

void quantize_row_q8_k(const float* x, void* dst, int64_t n) {
    BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max = 0;
        float amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            y[i].d = 0;
            std::memset(y[i].qs, 0, sizeof(y[i].qs));
            std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        // -127 rather than -128 keeps every value in [-127, 127].
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(imin(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

}  // namespace hearth::scalar
