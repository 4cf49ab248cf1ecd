#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "gguf/gguf.h"
#include "model/synthetic.h"
#include "support/paths.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

TEST(SyntheticModel, TinyPresetHasRealShapesAndStatistics) {
    test::TempDir dir;
    MakeModelOptions o;
    o.preset = "tiny";
    o.type = "f16";
    o.output = dir.file("tiny.gguf");
    o.threads = 2;
    make_synthetic_model(o);
    const gguf::File f = gguf::File::open(o.output);
    EXPECT_EQ(f.architecture(), "llama");
    EXPECT_EQ(f.get_u64("llama.embedding_length"), 256u);
    EXPECT_EQ(f.get_u64("llama.block_count"), 2u);
    EXPECT_EQ(f.get_u64("general.file_type"), 1u);
    const gguf::Array* toks = f.get_array("tokenizer.ggml.tokens");
    ASSERT_NE(toks, nullptr);
    EXPECT_EQ(toks->items.size(), 512u);
    EXPECT_EQ(toks->items[3 + 0x41].as_string(), "<0x41>");

    const gguf::TensorInfo* q = f.tensor("blk.1.attn_q.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->type, GgmlType::F16);
    EXPECT_EQ(q->dims, (std::vector<int64_t>{256, 256}));
    std::vector<float> row(256);
    double sum = 0, sq = 0;
    for (int64_t r = 0; r < q->n_rows(); ++r) {
        dequantize_row(q->type, q->data + r * q->row_bytes(), row.data(), 256);
        for (float v : row) {
            sum += v;
            sq += double(v) * v;
        }
    }
    const double n = 256.0 * 256.0, mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.001);
    EXPECT_NEAR(sd, 0.02, 0.0005);

    const gguf::TensorInfo* norm = f.tensor("blk.0.ffn_norm.weight");
    ASSERT_NE(norm, nullptr);
    EXPECT_EQ(norm->type, GgmlType::F32);
    const float* nw = reinterpret_cast<const float*>(norm->data);
    for (int i = 0; i < 256; ++i) ASSERT_EQ(nw[i], 1.0f);
    EXPECT_NE(f.tensor("output.weight"), nullptr);
}

TEST(SyntheticModel, SeedDeterminesTheBytesAndThreadsDoNot) {
    test::TempDir dir;
    MakeModelOptions o;
    o.type = "q4_0";
    o.output = dir.file("a.gguf");
    o.threads = 1;
    make_synthetic_model(o);
    o.output = dir.file("b.gguf");
    o.threads = 3;
    make_synthetic_model(o);
    o.output = dir.file("c.gguf");
    o.seed = 2;
    make_synthetic_model(o);
    EXPECT_EQ(slurp(dir.file("a.gguf")), slurp(dir.file("b.gguf")));
    EXPECT_NE(slurp(dir.file("a.gguf")), slurp(dir.file("c.gguf")));
    const gguf::File f = gguf::File::open(dir.file("a.gguf"));
    EXPECT_EQ(f.tensor("output.weight")->type, GgmlType::Q6_K);  // llama.cpp's rule for the output matrix
    EXPECT_EQ(f.tensor("blk.0.ffn_up.weight")->type, GgmlType::Q4_0);
}

TEST(SyntheticModel, CopiesTokenizerFromVocabFile) {
    test::TempDir dir;
    MakeModelOptions o;
    o.preset = "tiny";
    o.arch = "qwen2";
    o.type = "f32";
    o.vocab = test::shared_path("vocab/ggml-vocab-llama-spm.gguf");
    o.output = dir.file("v.gguf");
    make_synthetic_model(o);
    const gguf::File f = gguf::File::open(o.output);
    const gguf::File v = gguf::File::open(o.vocab);
    EXPECT_EQ(f.architecture(), "qwen2");
    EXPECT_EQ(f.get_u64("qwen2.vocab_size"), 32000u);
    EXPECT_EQ(f.tensor("token_embd.weight")->dims, (std::vector<int64_t>{256, 32000}));
    EXPECT_NE(f.tensor("blk.0.attn_k.bias"), nullptr);
    for (const auto& [key, value] : v.metadata())
        if (key.rfind("tokenizer.", 0) == 0) {
            ASSERT_NE(f.find(key), nullptr) << key;
            EXPECT_EQ(f.find(key)->to_string(3), value.to_string(3)) << key;
        }
}

TEST(SyntheticModel, RejectsUnknownPresetAndType) {
    test::TempDir dir;
    MakeModelOptions o;
    o.output = dir.file("x.gguf");
    o.preset = "gpt-5";
    EXPECT_THROW(make_synthetic_model(o), std::invalid_argument);
    o.preset = "tiny";
    o.type = "q9_9";
    EXPECT_THROW(make_synthetic_model(o), std::invalid_argument);
    EXPECT_FALSE(std::filesystem::exists(o.output));
}

}  // namespace
}  // namespace hearth
