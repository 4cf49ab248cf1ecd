// Attention over the paged KV cache (model/ops attention + tensor/attention.h kernels):
// against a double-precision softmax(q K^T scale) V reference for every cache type, head
// sizes, GQA groups, partial blocks, sliding windows, soft-capping and mixed batches; the
// polynomial exp; and determinism (a token's result alone vs in a batch, 1 vs 2 threads).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/hparams.h"
#include "model/ops.h"
#include "model/batch.h"
#include "runtime/kv_cache.h"
#include "tensor/threadpool.h"
#include "tensor/attention.h"
#include "tensor/quants.h"

using namespace hearth;

namespace {

struct Case {
    GgmlType type = GgmlType::F16;
    int32_t head_dim = 64;
    int32_t group = 8;
    int32_t n_kv = 2;
    int32_t window = 0;
    float softcap = 0.0f;
    int32_t block_size = 16;
};

// A KV cache with random K/V for a few sequences of given lengths, and a batch of query
// tokens (seq, pos) with random q.
struct Fixture {
    Case c;
    HParams hp;
    KvCache kv;
    Batch batch;
    std::vector<float> q;

    Fixture(const Case& cs, const std::vector<int32_t>& seq_len, const std::vector<std::pair<int32_t, int32_t>>& tokens,
            uint32_t seed)
        : c(cs), hp(make_hp(cs)), kv(2, cs.n_kv, cs.head_dim, cs.type, 64, cs.block_size) {
        std::mt19937 rng(seed);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        std::vector<float> row(static_cast<size_t>(cs.head_dim));
        const size_t rb = row_size(cs.type, cs.head_dim);
        for (int32_t s = 0; s < static_cast<int32_t>(seq_len.size()); ++s) {
            EXPECT_TRUE(kv.reserve(s, seq_len[static_cast<size_t>(s)]));
            for (int32_t layer = 0; layer < 2; ++layer)
                for (int32_t p = 0; p < seq_len[static_cast<size_t>(s)]; ++p)
                    for (int32_t h = 0; h < cs.n_kv; ++h) {
                        for (auto& x : row) x = u(rng);
                        quantize_row(cs.type, row.data(), kv.k(layer, s, p, h), cs.head_dim);
                        for (auto& x : row) x = u(rng);
                        quantize_row(cs.type, row.data(), kv.v(layer, s, p, h), cs.head_dim);
                        (void)rb;
                    }
        }
        for (auto [s, p] : tokens) batch.add(0, p, s, false);
        q.resize(tokens.size() * static_cast<size_t>(hp.q_dim()));
        for (auto& x : q) x = 3.0f * u(rng);  // spread scores so the softmax is not flat
    }

    static HParams make_hp(const Case& cs) {
        HParams hp;
        hp.n_head_kv = cs.n_kv;
        hp.n_head = cs.n_kv * cs.group;
        hp.head_dim = cs.head_dim;
        hp.head_dim_v = cs.head_dim;
        hp.attn_softcap = cs.softcap;
        return hp;
    }

    std::vector<float> run(int threads, int32_t layer = 1) const { return run_range(threads, 0, batch.size(), layer); }

    std::vector<float> run_range(int threads, size_t begin, size_t end, int32_t layer = 1) const {
        ThreadPool pool(threads);
        const size_t qd = static_cast<size_t>(hp.q_dim());
        std::vector<float> out((end - begin) * qd, NAN);
        attention(hp, kv.view(), layer, batch, begin, end, q.data() + begin * qd, out.data(), c.window, pool);
        return out;
    }

    // softmax(q K^T scale) V in double, q rounded through the cache type's vec_dot_type as
    // the kernels use it.
    std::vector<double> reference(int32_t layer = 1) const {
        const size_t qd = static_cast<size_t>(hp.q_dim()), d = static_cast<size_t>(c.head_dim);
        const GgmlType vt = traits(c.type).vec_dot_type;
        std::vector<double> out(batch.size() * qd);
        std::vector<float> qr(d), kr(d), vr(d);
        std::vector<uint8_t> tmp(row_size(vt, c.head_dim));
        const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
        for (size_t t = 0; t < batch.size(); ++t) {
            const int32_t p = batch.pos[t], s = batch.seq[t];
            const int32_t lo = c.window > 0 ? std::max(0, p - c.window + 1) : 0;
            for (int32_t h = 0; h < hp.n_head; ++h) {
                const float* src = q.data() + t * qd + static_cast<size_t>(h) * d;
                if (vt == GgmlType::F32) std::copy(src, src + d, qr.begin());
                else {
                    quantize_row(vt, src, tmp.data(), c.head_dim);
                    dequantize_row(vt, tmp.data(), qr.data(), c.head_dim);
                }
                const int32_t kvh = h / c.group;
                std::vector<double> sc;
                double mx = -INFINITY;
                for (int32_t i = lo; i <= p; ++i) {
                    dequantize_row(c.type, kv.k(layer, s, i, kvh), kr.data(), c.head_dim);
                    double dot = 0;
                    for (size_t k = 0; k < d; ++k) dot += double(qr[k]) * double(kr[k]);
                    double x = dot * scale;
                    if (c.softcap > 0) x = c.softcap * std::tanh(x / c.softcap);
                    sc.push_back(x);
                    mx = std::max(mx, x);
                }
                double sum = 0;
                for (auto& x : sc) sum += (x = std::exp(x - mx));
                double* o = out.data() + t * qd + static_cast<size_t>(h) * d;
                for (size_t k = 0; k < d; ++k) o[k] = 0;
                for (int32_t i = lo; i <= p; ++i) {
                    dequantize_row(c.type, kv.v(layer, s, i, kvh), vr.data(), c.head_dim);
                    const double w = sc[static_cast<size_t>(i - lo)] / sum;
                    for (size_t k = 0; k < d; ++k) o[k] += w * vr[k];
                }
            }
        }
        return out;
    }
};

// Max |got - ref| over each head's output, relative to that head's max |ref| (at least 0.05:
// outputs are averages of values in [-1, 1]).
double max_rel_err(const std::vector<float>& got, const std::vector<double>& ref, size_t d) {
    double worst = 0;
    for (size_t h0 = 0; h0 < ref.size(); h0 += d) {
        double mag = 0.05, err = 0;
        for (size_t k = 0; k < d; ++k) {
            mag = std::max(mag, std::abs(ref[h0 + k]));
            const double e = std::abs(double(got[h0 + k]) - ref[h0 + k]);
            err = std::isnan(e) ? INFINITY : std::max(err, e);
        }
        worst = std::max(worst, err / mag);
    }
    return worst;
}

// Three sequences: a prefill chunk crossing a block boundary (partial last block), a
// decode token at the end of two full blocks, a decode token deep in a partial block; plus
// a prefill chunk of a fourth sequence starting at 0.
const std::vector<int32_t> kSeqLen = {41, 32, 70, 9};
const std::vector<std::pair<int32_t, int32_t>> kTokens = {{0, 28}, {0, 29}, {0, 30}, {0, 31}, {0, 32}, {0, 33},
                                                          {0, 40}, {1, 31}, {2, 69}, {3, 0}, {3, 1}, {3, 8}};

void check(const Case& c, double tol, uint32_t seed = 1) {
    Fixture f(c, kSeqLen, kTokens, seed);
    const auto ref = f.reference();
    const auto got = f.run(2);
    EXPECT_LT(max_rel_err(got, ref, static_cast<size_t>(c.head_dim)), tol)
        << "type " << traits(c.type).name << " d " << c.head_dim << " group " << c.group << " window " << c.window
        << " cap " << c.softcap << " bs " << c.block_size;
}

}  // namespace

TEST(Attention, MatchesReferenceAcrossTypesDimsGroups) {
    for (GgmlType t : {GgmlType::F16, GgmlType::F32, GgmlType::Q8_0})
        for (int32_t d : {64, 80, 96, 128})
            for (int32_t g : {1, 4, 8}) {
                if (t == GgmlType::Q8_0 && d % 32 != 0) continue;
                Case c;
                c.type = t;
                c.head_dim = d;
                c.group = g;
                check(c, 2e-5);
            }
}

TEST(Attention, OddGroupsAndOtherHeadDims) {
    for (int32_t g : {3, 5, 7, 12}) {
        Case c;
        c.group = g;
        c.n_kv = 1;
        check(c, 2e-5);
    }
    for (int32_t d : {20, 40, 72}) {  // AVX2 (d % 8 == 0) or scalar kernels
        Case c;
        c.head_dim = d;
        c.group = 4;
        check(c, 2e-5);
    }
}

TEST(Attention, SlidingWindowSoftcapAndBlockSizes) {
    for (int32_t w : {1, 5, 16, 20}) {
        Case c;
        c.window = w;
        check(c, 2e-5);
    }
    for (float cap : {1.0f, 50.0f}) {
        Case c;
        c.softcap = cap;
        check(c, 2e-5);
        c.window = 7;
        check(c, 2e-5);
    }
    for (int32_t bs : {8, 32, 24}) {
        Case c;
        c.block_size = bs;
        check(c, 2e-5);
        c.window = 19;
        check(c, 2e-5);
    }
}

TEST(Attention, ScalarKernelMatchesReference) {
    const Isa before = active_isa();
    set_active_isa(Isa::Scalar);
    for (GgmlType t : {GgmlType::F16, GgmlType::Q8_0}) {
        Case c;
        c.type = t;
        check(c, 2e-5);
        c.window = 6;
        c.softcap = 30.0f;
        check(c, 2e-5);
    }
    set_active_isa(before);
}

TEST(Attention, TokenResultIndependentOfBatchAndThreads) {
    for (GgmlType t : {GgmlType::F16, GgmlType::Q8_0}) {
        for (int32_t window : {0, 9}) {
            Case c;
            c.type = t;
            c.window = window;
            Fixture f(c, kSeqLen, kTokens, 7);
            const size_t qd = static_cast<size_t>(f.hp.q_dim());
            const auto all2 = f.run(2);
            const auto all1 = f.run(1);
            ASSERT_EQ(0, std::memcmp(all1.data(), all2.data(), all1.size() * sizeof(float)));
            for (size_t t = 0; t < f.batch.size(); ++t) {
                const auto one = f.run_range(1, t, t + 1);
                EXPECT_EQ(0, std::memcmp(one.data(), all2.data() + t * qd, qd * sizeof(float))) << "token " << t;
            }
            // A sub-range splitting runs of the same sequence differently.
            const auto mid = f.run_range(2, 3, 9);
            EXPECT_EQ(0, std::memcmp(mid.data(), all2.data() + 3 * qd, mid.size() * sizeof(float)));
        }
    }
}

TEST(Attention, LongPrefillMatchesDecodeTokens) {
    // One sequence of 300 positions: a 40-token prefill at its end vs each token alone.
    Case c;
    std::vector<std::pair<int32_t, int32_t>> toks;
    for (int32_t p = 260; p < 300; ++p) toks.emplace_back(0, p);
    Fixture f(c, {300}, toks, 11);
    const auto all = f.run(2);
    EXPECT_LT(max_rel_err(all, f.reference(), 64), 2e-5);
    const size_t qd = static_cast<size_t>(f.hp.q_dim());
    for (size_t t : {size_t{0}, size_t{17}, size_t{39}}) {
        const auto one = f.run_range(1, t, t + 1);
        EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * qd, qd * sizeof(float))) << "token " << t;
    }
}

TEST(Attention, PolynomialExpAccuracy) {
    if (!avx512::cpu_supported()) GTEST_SKIP() << "no AVX-512";
    float x[kAttnTile], y[kAttnTile];
    int worst_ulp = 0;
    for (int it = 0; it < 20000; ++it) {
        for (int i = 0; i < kAttnTile; ++i) x[i] = -87.0f + 87.5f * static_cast<float>(it * kAttnTile + i) / (20000.0f * kAttnTile);
        avx512::attn_exp16(x, y);
        for (int i = 0; i < kAttnTile; ++i) {
            const float want = static_cast<float>(std::exp(static_cast<double>(x[i])));
            int32_t a, b;
            std::memcpy(&a, &y[i], 4);
            std::memcpy(&b, &want, 4);
            worst_ulp = std::max(worst_ulp, std::abs(a - b));
        }
    }
    EXPECT_LE(worst_ulp, 2);
    for (int i = 0; i < kAttnTile; ++i) x[i] = i == 0 ? -INFINITY : (i == 1 ? -200.0f : (i == 2 ? 0.0f : -1e30f));
    avx512::attn_exp16(x, y);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[2], 1.0f);
    EXPECT_EQ(y[3], 0.0f);
}

TEST(Attention, TileKernelsAgreeWithScalar) {
    // Online softmax over several tiles (full, partial at both ends) with each ISA's kernel,
    // K/V given as f32 rows (pack_k) and as F16 rows (load_f16), against the scalar kernel.
    std::vector<std::pair<const char*, const AttnKernel*>> isas;
    if (detected_isa() == Isa::Avx2) isas.emplace_back("avx2", &avx2::attn);
    if (avx512::cpu_supported()) isas.emplace_back("avx512", &avx512::attn);
    if (isas.empty()) GTEST_SKIP() << "no SIMD kernel on this CPU";
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const std::vector<std::pair<int, int>> ranges = {{3, 16}, {0, 16}, {0, 16}, {0, 9}, {5, 6}};
    for (int64_t d : {8, 16, 24, 64, 80}) {
        for (int64_t g : {1, 3, 4, 5, 8, 9}) {
            for (float cap : {0.0f, 20.0f}) {
                const size_t nd = static_cast<size_t>(d), ng = static_cast<size_t>(g);
                std::vector<float> q(ng * nd), k(ranges.size() * kAttnTile * nd), v(k.size());
                for (auto& x : q) x = 3.0f * u(rng);
                for (auto& x : k) x = fp16_to_fp32(fp32_to_fp16(u(rng)));  // exact in F16
                for (auto& x : v) x = fp16_to_fp32(fp32_to_fp16(u(rng)));
                std::vector<fp16_t> k16(k.size()), v16(v.size());
                for (size_t i = 0; i < k.size(); ++i) {
                    k16[i] = fp32_to_fp16(k[i]);
                    v16[i] = fp32_to_fp16(v[i]);
                }
                auto run = [&](const AttnKernel& ak, bool f16) {
                    std::vector<float> m(ng, -INFINITY), l(ng, 0.0f), acc(ng * nd, 0.0f), kt(kAttnTile * nd),
                        vf(kAttnTile * nd, NAN);
                    for (size_t t = 0; t < ranges.size(); ++t) {
                        const auto [i0, i1] = ranges[t];
                        const size_t base = t * kAttnTile * nd;
                        if (f16) {
                            ak.load_f16(reinterpret_cast<const uint8_t*>(k16.data() + base),
                                        reinterpret_cast<const uint8_t*>(v16.data() + base), nd * sizeof(fp16_t), d, i0,
                                        i1, kt.data(), vf.data());
                            ak.block(q.data(), g, d, kt.data(), vf.data(), i0, i1, 0.125f, cap, m.data(), l.data(),
                                     acc.data());
                        } else {
                            ak.pack_k(k.data() + base, d, i0, i1, kt.data());
                            ak.block(q.data(), g, d, kt.data(), v.data() + base, i0, i1, 0.125f, cap, m.data(), l.data(),
                                     acc.data());
                        }
                    }
                    for (size_t j = 0; j < ng; ++j)
                        for (size_t c = 0; c < nd; ++c) acc[j * nd + c] /= l[j];
                    return acc;
                };
                const auto want = run(scalar::attn, false);
                for (const auto& [name, ak] : isas) {
                    if (d % (std::string(name) == "avx512" ? 16 : 8) != 0) continue;
                    for (bool f16 : {false, true}) {
                        const auto got = run(*ak, f16);
                        double err = 0;
                        for (size_t i = 0; i < got.size(); ++i)
                            err = std::max(err, std::isnan(got[i]) ? INFINITY : std::abs(double(got[i]) - want[i]));
                        EXPECT_LT(err, 1e-5) << name << " d " << d << " g " << g << " cap " << cap << " f16 " << f16;
                    }
                }
            }
        }
    }
}

TEST(Attention, Avx2PolynomialExp) {
    if (detected_isa() != Isa::Avx2) GTEST_SKIP() << "no AVX2";
    float x[8], y[8];
    int worst_ulp = 0;
    for (int it = 0; it < 20000; ++it) {
        for (int i = 0; i < 8; ++i) x[i] = -86.9f + 87.4f * static_cast<float>(it * 8 + i) / (20000.0f * 8);
        avx2::attn_exp8(x, y);
        for (int i = 0; i < 8; ++i) {
            const float want = static_cast<float>(std::exp(static_cast<double>(x[i])));
            int32_t a, b;
            std::memcpy(&a, &y[i], 4);
            std::memcpy(&b, &want, 4);
            worst_ulp = std::max(worst_ulp, std::abs(a - b));
        }
    }
    EXPECT_LE(worst_ulp, 2);
    const float special[8] = {-INFINITY, -200.0f, 0.0f, -1e30f, -87.5f, -1.0f, 0.5f, -20.0f};
    avx2::attn_exp8(special, y);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_EQ(y[2], 1.0f);
    EXPECT_EQ(y[3], 0.0f);
    EXPECT_EQ(y[4], 0.0f);
}
