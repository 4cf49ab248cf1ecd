// The scalar reference kernels on real GGUF files from shared/models:
//  - every tensor of the synthetic models' quantized files (made by llama-quantize, build
//    5601, from the matching *-f32.gguf) dequantizes to finite values within its type's
//    error bound of the f32 original;
//  - re-quantizing the f32 tensors with our from_float reproduces llama-quantize's bytes
//    (required exactly for Q8_0/Q4_0, >= 99% of blocks for the K-quants; all of them
//    match today);
//  - stories260K.gguf (F32) and the BERT model's F16 token embeddings read as finite
//    tensors with plausible statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "support/paths.h"
#include "tensor/quants.h"
#include "tensor/types.h"
#include "test_quants_common.h"

namespace hearth {
namespace {

using test::ref_kernels;
using test::shared_path;

struct FileCase {
    const char* arch;
    const char* quant;
};

std::string case_name(const testing::TestParamInfo<FileCase>& info) {
    std::string arch = info.param.arch;
    for (char& c : arch)
        if (c == '-') c = '_';
    return arch + "_" + info.param.quant;
}

std::vector<FileCase> all_cases() {
    std::vector<FileCase> v;
    for (const char* arch : {"llama", "qwen2", "qwen3", "gemma2", "phi3"})
        for (const char* q : {"q8_0", "q4_0", "q4_k_m"}) v.push_back({arch, q});
    v.push_back({"gpt-oss", "mxfp4"});  // MXFP4 experts, Q8_0 attention (ik_llama.cpp's llama-quantize)
    return v;
}

// Real tensors: the synthetic weights are Gaussian, so the random-row bounds apply as they
// are (measured over all 15 files, per tensor: q8_0 0.0053-0.0054, q4_0 0.085-0.087,
// q4_K 0.0709-0.0718, q5_K 0.0360-0.0361, q6_K 0.0175-0.0178).
double file_bound(GgmlType t) { return test::rel_rmse_bound(t); }

std::vector<float> dequantize_tensor(const gguf::TensorInfo& t) {
    const int64_t ne0 = t.dims[0];
    const int64_t rows = t.n_rows();
    std::vector<float> out(static_cast<size_t>(ne0 * rows));
    const size_t rb = t.row_bytes();
    for (int64_t r = 0; r < rows; ++r) ref_kernels(t.type).to_float(t.data + r * rb, out.data() + r * ne0, ne0);
    return out;
}

class QuantsFiles : public testing::TestWithParam<FileCase> {};

TEST_P(QuantsFiles, DequantizeMatchesF32AndRequantizeMatchesLlamaQuantize) {
    const FileCase c = GetParam();
    const std::string qpath = shared_path(std::string("models/synthetic/") + c.arch + "-" + c.quant + ".gguf");
    const std::string fpath = shared_path(std::string("models/synthetic/") + c.arch + "-f32.gguf");
    const gguf::File qf = gguf::File::open(qpath);
    const gguf::File ff = gguf::File::open(fpath);

    std::map<GgmlType, std::pair<int64_t, int64_t>> blocks;  // type -> (matching, total)
    int quantized_tensors = 0;
    for (const gguf::TensorInfo& t : qf.tensors()) {
        SCOPED_TRACE(t.name + " (" + type_name(t.type) + ")");
        const gguf::TensorInfo* f = ff.tensor(t.name);
        ASSERT_NE(f, nullptr);
        ASSERT_EQ(f->type, GgmlType::F32);
        ASSERT_EQ(f->dims, t.dims);
        ASSERT_TRUE(traits(t.type).computable);

        const auto y = dequantize_tensor(t);
        const auto x = dequantize_tensor(*f);
        ASSERT_TRUE(test::all_finite(y));
        if (t.type == GgmlType::F32) {
            EXPECT_EQ(0, std::memcmp(t.data, f->data, t.nbytes));
            continue;
        }
        ++quantized_tensors;
        const double e = test::relative_rmse(y, x);
        EXPECT_LE(e, file_bound(t.type));
        EXPECT_GE(e, file_bound(t.type) * 0.4);  // it is this type's error, not another's

        // Re-quantize each f32 row and compare with llama-quantize's blocks.
        const int64_t ne0 = t.dims[0];
        const size_t rb = t.row_bytes();
        const size_t bs = traits(t.type).type_size;
        std::vector<uint8_t> row(rb);
        auto& counts = blocks[t.type];
        for (int64_t r = 0; r < t.n_rows(); ++r) {
            ref_kernels(t.type).from_float(x.data() + r * ne0, row.data(), ne0);
            for (size_t b = 0; b < rb / bs; ++b) {
                counts.first += std::memcmp(row.data() + b * bs, t.data + r * rb + b * bs, bs) == 0;
                ++counts.second;
            }
        }
    }
    EXPECT_GT(quantized_tensors, 0);

    for (const auto& [type, mc] : blocks) {
        const double frac = static_cast<double>(mc.first) / static_cast<double>(mc.second);
        std::printf("[ bytes    ] %s-%s %-5s: %lld / %lld blocks identical to llama-quantize (%.4f%%)\n", c.arch, c.quant,
                    type_name(type), static_cast<long long>(mc.first), static_cast<long long>(mc.second), 100 * frac);
        if (type == GgmlType::Q8_0 || type == GgmlType::Q4_0 || type == GgmlType::MXFP4) {
            EXPECT_EQ(mc.first, mc.second) << type_name(type);
        } else {
            EXPECT_GE(frac, 0.99) << type_name(type);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, QuantsFiles, testing::ValuesIn(all_cases()), case_name);

struct Stats {
    double mean = 0, std = 0;
};

Stats stats_of(const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) {
        s += x;
        s2 += static_cast<double>(x) * x;
    }
    const double n = static_cast<double>(v.size());
    Stats st;
    st.mean = s / n;
    st.std = std::sqrt(std::max(0.0, s2 / n - st.mean * st.mean));
    return st;
}

TEST(QuantsFilesStories, F32TensorsAreFiniteWithPlausibleStatistics) {
    const gguf::File f = gguf::File::open(shared_path("models/stories260K.gguf"));
    int norms = 0, matrices = 0;
    for (const gguf::TensorInfo& t : f.tensors()) {
        SCOPED_TRACE(t.name);
        ASSERT_EQ(t.type, GgmlType::F32);
        const auto v = dequantize_tensor(t);
        ASSERT_TRUE(test::all_finite(v));
        const Stats st = stats_of(v);
        if (t.name.find("norm") != std::string::npos) {
            // RMSNorm gains: clearly positive.
            ASSERT_EQ(t.dims.size(), 1u);
            EXPECT_GT(st.mean, 0.3);
            ++norms;
        } else {
            // Trained matrices: centred, spread well inside (0.01, 1).
            ASSERT_EQ(t.dims.size(), 2u);
            EXPECT_LT(std::fabs(st.mean), 0.25 * st.std);
            EXPECT_GT(st.std, 0.01);
            EXPECT_LT(st.std, 1.0);
            ++matrices;
        }
    }
    // 5 layers: 2 norms and 7 matrices each, plus output_norm, token_embd and output.
    EXPECT_EQ(norms, 11);
    EXPECT_EQ(matrices, 37);
    const gguf::TensorInfo* emb = f.tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->dims, (std::vector<int64_t>{64, 512}));
}

TEST(QuantsFilesBert, F16TokenEmbeddingsMatchTheirDistribution) {
    // bert-mean-f32.gguf stores token_embd.weight as F16 holding N(0, 0.1^2) draws.
    const gguf::File f = gguf::File::open(shared_path("models/synthetic/bert-mean-f32.gguf"));
    const gguf::TensorInfo* emb = f.tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    ASSERT_EQ(emb->type, GgmlType::F16);
    const auto v = dequantize_tensor(*emb);
    ASSERT_TRUE(test::all_finite(v));
    const Stats st = stats_of(v);
    EXPECT_LT(std::fabs(st.mean), 0.002);
    EXPECT_NEAR(st.std, 0.1, 0.002);
    // Every value is a half: converting back is lossless.
    std::vector<uint8_t> back(emb->nbytes);
    ref_kernels(GgmlType::F16).from_float(v.data(), back.data(), static_cast<int64_t>(v.size()));
    EXPECT_EQ(0, std::memcmp(back.data(), emb->data, emb->nbytes));
}

}  // namespace
}  // namespace hearth
