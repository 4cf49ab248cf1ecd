#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "gguf/gguf.h"
#include "model/encoder.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "runtime/context.h"
#include "tensor/threadpool.h"
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

// Every architecture make-model writes loads as that architecture and runs: a forward pass
// gives finite logits (decoders) or a unit-norm embedding (encoders); the MoE ones have their
// experts, quantized with the mix's rules.
TEST(SyntheticModel, EveryArchitectureLoadsAndRuns) {
    test::TempDir dir;
    size_t archs = 0;
    std::string list = synthetic_architectures();
    for (size_t pos = 0; pos < list.size();) {
        const size_t comma = list.find(", ", pos);
        const std::string arch = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? list.size() : comma + 2;
        SCOPED_TRACE(arch);
        ++archs;
        MakeModelOptions o;
        o.arch = arch;
        o.type = "q4_K_M";
        o.threads = 2;
        o.output = dir.file(arch + ".gguf");
        make_synthetic_model(o);
        auto model = Model::load(o.output);
        EXPECT_EQ(model->hparams().arch, arch == "mixtral" ? "llama" : arch);
        const bool moe = arch == "mixtral" || arch == "qwen3moe" || arch == "gpt-oss" || arch == "deepseek2";
        EXPECT_EQ(model->hparams().n_expert > 0, moe);
        ThreadPool pool(2);
        if (model->is_encoder()) {
            const auto e = encode_embedding(*model, {1, 300, 301, 2}, pool, true);
            double n2 = 0;
            for (float v : e) n2 += double(v) * v;
            EXPECT_NEAR(n2, 1.0, 1e-4);
            continue;
        }
        const gguf::File f = gguf::File::open(o.output);
        if (moe) {
            const gguf::TensorInfo* up = f.tensor("blk.1.ffn_up_exps.weight");
            ASSERT_NE(up, nullptr);
            EXPECT_EQ(up->type, GgmlType::Q4_K);
            EXPECT_EQ(up->dims.size(), 3u);
        }
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_threads = 2;
        Context ctx(*model, cp);
        Batch b;
        for (int32_t i = 0; i < 5; ++i) b.add(300 + i, i, 0, true);
        ctx.decode(b);
        for (int32_t r = 0; r < 5; ++r)
            for (int32_t v = 0; v < ctx.n_vocab(); ++v) ASSERT_TRUE(std::isfinite(ctx.logits(r)[v])) << r << " " << v;
    }
    EXPECT_EQ(archs, 15u);
}

TEST(SyntheticModel, LayersOverrideAndUnknownArchitecture) {
    test::TempDir dir;
    MakeModelOptions o;
    o.arch = "qwen3moe";
    o.layers = 3;
    o.type = "f16";
    o.output = dir.file("m.gguf");
    make_synthetic_model(o);
    const gguf::File f = gguf::File::open(o.output);
    EXPECT_EQ(f.get_u64("qwen3moe.block_count"), 3u);
    EXPECT_EQ(f.get_u64("qwen3moe.expert_count"), 4u);
    EXPECT_NE(f.tensor("blk.2.ffn_down_exps.weight"), nullptr);
    o.arch = "mamba";
    o.output = dir.file("x.gguf");
    try {
        make_synthetic_model(o);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("deepseek2"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(o.output));
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
