// Q|K|V and gate|up matrices that the loader packed or copied back to back are also one
// matrix (model/model.cpp, fused_view): its product is, row for row and bit for bit, the
// products of the separate matrices (decode, multi-token and prompt kernels / GEMM).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "support/paths.h"
#include "tensor/matmul.h"
#include "tensor/repack.h"
#include "tensor/threadpool.h"

namespace hearth {
namespace {

bool copies_off() {
    const char* env = std::getenv("HEARTH_REPACK");
    return env && std::strcmp(env, "0") == 0;
}

using Parts = std::vector<const MatrixView*>;

void expect_fused_equals_parts(const MatrixView& fused, const Parts& parts) {
    int64_t rows = 0;
    for (const MatrixView* p : parts) rows += p->rows;
    ASSERT_EQ(fused.rows, rows);
    ASSERT_EQ(fused_view(fused), &fused);
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t K = fused.cols, R = fused.rows;
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{40}}) {  // one token, multi-token rows, the GEMM
        std::vector<float> x(static_cast<size_t>(n * K));
        for (float& v : x) v = nd(rng);
        ThreadPool pool(2);
        MatmulScratch s;
        std::vector<float> y(static_cast<size_t>(n * R)), part;
        matmul(fused, x.data(), K, n, y.data(), R, &pool, s);
        int64_t r0 = 0;
        for (const MatrixView* p : parts) {
            part.assign(static_cast<size_t>(n * p->rows), 0.0f);
            matmul(*p, x.data(), K, n, part.data(), p->rows, &pool, s);
            for (int64_t t = 0; t < n; ++t)
                ASSERT_EQ(0, std::memcmp(y.data() + t * R + r0, part.data() + t * p->rows, p->rows * sizeof(float)))
                    << "n=" << n << " t=" << t << " rows from " << r0;
            r0 += p->rows;
        }
    }
}

TEST(FusedWeights, CopiedQkvAndGateUpAreOneMatrix) {
    if (copies_off()) GTEST_SKIP() << "HEARTH_REPACK=0: weights are read from the mapping, nothing is fused";
    auto m = Model::load(test::shared_path("models/synthetic/llama-f32.gguf"));
    for (const LayerWeights& L : m->weights().layers) {
        ASSERT_EQ(L.wq.packed, nullptr);  // F32 has no packed layout: copied
        ASSERT_EQ(L.wqkv_packed.packed, nullptr);
        ASSERT_NE(L.wqkv_packed.data, nullptr);
        EXPECT_EQ(L.wqkv_packed.data, L.wq.data);
        EXPECT_EQ(L.wk.data, L.wq.data + L.wq.rows * L.wq.row_bytes);
        EXPECT_EQ(L.w_gate_up_packed.data, L.w_gate.data);
    }
    const LayerWeights& L = m->weights().layers[0];
    expect_fused_equals_parts(L.wqkv_packed, {&L.wq, &L.wk, &L.wv});
    expect_fused_equals_parts(L.w_gate_up_packed, {&L.w_gate, &L.w_up});
}

TEST(FusedWeights, PackedQkvAndGateUpAreOneMatrix) {
    if (copies_off()) GTEST_SKIP() << "HEARTH_REPACK=0";
    auto m = Model::load(test::shared_path("models/synthetic/llama-q4_0.gguf"));
    const LayerWeights& L = m->weights().layers[0];
    if (!L.wq.packed) GTEST_SKIP() << "no packed kernels on this CPU";
    ASSERT_NE(L.wqkv_packed.packed, nullptr);
    ASSERT_EQ(L.wqkv_packed.packed, L.wq.packed);
    ASSERT_NE(L.w_gate_up_packed.packed, nullptr);
    expect_fused_equals_parts(L.wqkv_packed, {&L.wq, &L.wk, &L.wv});
    expect_fused_equals_parts(L.w_gate_up_packed, {&L.w_gate, &L.w_up});
}

TEST(FusedWeights, CopiedExpertGateUpAreOneMatrix) {
    if (copies_off()) GTEST_SKIP() << "HEARTH_REPACK=0";
    auto m = Model::load(test::shared_path("models/synthetic/qwen3moe-f32.gguf"));
    const LayerWeights& L = m->weights().layers[0];
    ASSERT_FALSE(L.moe.gate.empty());
    ASSERT_EQ(L.moe.gate_up_packed.size(), L.moe.gate.size());
    for (size_t e = 0; e < L.moe.gate.size(); ++e) ASSERT_NE(fused_view(L.moe.gate_up_packed[e]), nullptr) << e;
    expect_fused_equals_parts(L.moe.gate_up_packed[1], {&L.moe.gate[1], &L.moe.up[1]});
}

// A view nothing was fused into is not used.
TEST(FusedWeights, EmptyViewIsNotUsed) {
    MatrixView empty{};
    EXPECT_EQ(fused_view(empty), nullptr);
}

}  // namespace
}  // namespace hearth
