#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "gguf/gguf.h"
#include "model/quantize.h"
#include "support/paths.h"

namespace hearth {
namespace {

using test::shared_path;

QuantMix mix(const char* name) {
    auto m = find_quant_mix(name);
    EXPECT_TRUE(m.has_value()) << name;
    return *m;
}

TEST(QuantMixes, NamesAndFileTypesMatchLlamaCpp) {
    EXPECT_EQ(mix("q4_0").file_type, 2u);
    EXPECT_EQ(mix("q8_0").file_type, 7u);
    EXPECT_EQ(mix("Q4_K_M").file_type, 15u);
    EXPECT_EQ(mix("q4_k_m").base, GgmlType::Q4_K);
    EXPECT_EQ(mix("q3_K_S").base, GgmlType::Q3_K);
    EXPECT_EQ(mix("q6_k").file_type, 18u);
    EXPECT_EQ(mix("bf16").file_type, 32u);
    EXPECT_FALSE(find_quant_mix("q7_0").has_value());
}

// TinyLlama-1.1B (22 layers, GQA 8): llama.cpp's q4_K_M gives attn_v and ffn_down q6_K in
// layers 0, 1, 4, 7, 10, 13, 16, 19, 20, 21 and q4_K elsewhere; output q6_K; embeddings q4_K.
TEST(QuantMixes, Q4KMBumpsTheSameLayersAsLlamaCpp) {
    QuantContext ctx;
    ctx.arch = "llama";
    ctx.has_output = true;
    ctx.n_gqa = 8;
    ctx.n_attention_wv = 22;
    ctx.n_ffn_down = 22;
    const QuantMix m = mix("q4_K_M");
    auto type_of = [&](const std::string& name, std::vector<int64_t> dims) {
        return choose_tensor_type(m, TensorDesc{name, GgmlType::F16, dims}, ctx);
    };
    EXPECT_EQ(type_of("token_embd.weight", {2048, 32000}), GgmlType::Q4_K);
    const std::set<int> bumped = {0, 1, 4, 7, 10, 13, 16, 19, 20, 21};
    for (int l = 0; l < 22; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        EXPECT_EQ(type_of(b + "attn_q.weight", {2048, 2048}), GgmlType::Q4_K);
        EXPECT_EQ(type_of(b + "attn_v.weight", {2048, 256}), bumped.count(l) ? GgmlType::Q6_K : GgmlType::Q4_K) << l;
        EXPECT_EQ(type_of(b + "ffn_down.weight", {5632, 2048}), bumped.count(l) ? GgmlType::Q6_K : GgmlType::Q4_K) << l;
    }
    EXPECT_EQ(type_of("output.weight", {2048, 32000}), GgmlType::Q6_K);
}

TEST(QuantMixes, RowsNotMultipleOfTheBlockFallBack) {
    QuantContext ctx;
    ctx.arch = "qwen2";
    ctx.has_output = false;
    // 896 is a multiple of 32 but not of 256: q4_K falls back to q5_0, the tied output to q8_0.
    EXPECT_EQ(choose_tensor_type(mix("q4_K_M"), {"blk.0.attn_q.weight", GgmlType::F16, {896, 896}}, ctx), GgmlType::Q5_0);
    EXPECT_EQ(choose_tensor_type(mix("q4_K_M"), {"token_embd.weight", GgmlType::F16, {896, 151936}}, ctx), GgmlType::Q8_0);
    EXPECT_EQ(choose_tensor_type(mix("q6_K"), {"blk.0.ffn_up.weight", GgmlType::F16, {896, 4864}}, ctx), GgmlType::Q8_0);
    EXPECT_EQ(choose_tensor_type(mix("q4_0"), {"blk.0.ffn_up.weight", GgmlType::F16, {100, 4864}}, ctx), GgmlType::F16);
}

TEST(QuantMixes, WhichTensorsAreQuantized) {
    EXPECT_TRUE(should_quantize({"blk.0.attn_q.weight", GgmlType::F32, {256, 256}}));
    EXPECT_FALSE(should_quantize({"blk.0.attn_norm.weight", GgmlType::F32, {256}}));
    EXPECT_FALSE(should_quantize({"blk.0.attn_q_norm.weight", GgmlType::F32, {32}}));
    EXPECT_FALSE(should_quantize({"blk.0.attn_q.bias", GgmlType::F32, {256}}));
    EXPECT_FALSE(should_quantize({"position_embd.weight", GgmlType::F32, {64, 128}}));
    EXPECT_FALSE(should_quantize({"rope_freqs.weight", GgmlType::F32, {32}}));
}

// Quantizing the shared F32 models reproduces llama-quantize's per-tensor type choice for
// every tensor, the same tensor sizes, and keeps the metadata.
class QuantizeSharedModels : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(QuantizeSharedModels, SameTensorTypesAsLlamaQuantize) {
    const auto [arch, type] = GetParam();
    test::TempDir dir;
    const std::string in = shared_path(std::string("models/synthetic/") + arch + "-f32.gguf");
    std::string lower = type;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "mxfp4_moe") lower = "mxfp4";  // the shared file's name
    const std::string ref_path = shared_path(std::string("models/synthetic/") + arch + "-" + lower + ".gguf");
    QuantizeOptions opts;
    opts.input = in;
    opts.output = dir.file("out.gguf");
    opts.mix = mix(type);
    opts.threads = 2;
    const QuantizeResult r = quantize_model(opts);
    EXPECT_GT(r.n_quantized, 0u);

    const gguf::File out = gguf::File::open(opts.output);
    const gguf::File ref = gguf::File::open(ref_path);
    const gguf::File src = gguf::File::open(in);
    EXPECT_EQ(out.get_u64("general.file_type"), ref.get_u64("general.file_type"));
    EXPECT_EQ(out.get_u64("general.quantization_version"), 2u);
    EXPECT_EQ(out.architecture(), src.architecture());
    for (const auto& [key, value] : src.metadata()) {
        if (key == "general.file_type") continue;
        ASSERT_NE(out.find(key), nullptr) << "lost metadata key " << key;
        EXPECT_EQ(out.find(key)->to_string(), value.to_string()) << key;
    }
    ASSERT_EQ(out.tensors().size(), ref.tensors().size());
    for (const auto& t : ref.tensors()) {
        const gguf::TensorInfo* o = out.tensor(t.name);
        ASSERT_NE(o, nullptr) << t.name;
        EXPECT_EQ(type_name(o->type), std::string(type_name(t.type))) << t.name;
        EXPECT_EQ(o->dims, t.dims) << t.name;
        EXPECT_EQ(o->nbytes, t.nbytes) << t.name;
    }
}

INSTANTIATE_TEST_SUITE_P(
    AllArchs, QuantizeSharedModels,
    ::testing::Combine(::testing::Values("llama", "qwen2", "qwen3", "gemma2", "phi3"),
                       ::testing::Values("q8_0", "q4_0", "q4_K_M")),
    [](const auto& info) { return std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param); });

// The architectures added later, each with the mix its shared quantized file was made with
// (gpt-oss: MXFP4 experts, Q8_0 elsewhere, as ik_llama.cpp's custom mix and llama.cpp's
// MXFP4_MOE write it).
INSTANTIATE_TEST_SUITE_P(
    MoreArchs, QuantizeSharedModels,
    ::testing::Values(std::make_tuple("gemma3", "q4_K_M"), std::make_tuple("qwen3moe", "q4_K_M"),
                      std::make_tuple("mixtral", "q4_0"), std::make_tuple("olmo2", "q4_K_M"),
                      std::make_tuple("deepseek2", "q4_0"), std::make_tuple("starcoder2", "q4_K_M"),
                      std::make_tuple("granite", "q4_K_M"), std::make_tuple("gpt-oss", "mxfp4_moe")),
    [](const auto& info) {
        std::string s = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
        for (char& c : s)
            if (c == '-') c = '_';
        return s;
    });

TEST(Quantize, RefusesToOverwriteItsInput) {
    test::TempDir dir;
    const std::string copy = dir.file("m.gguf");
    std::filesystem::copy_file(shared_path("models/stories260K.gguf"), copy);
    QuantizeOptions opts;
    opts.input = copy;
    opts.output = copy;
    opts.mix = mix("q8_0");
    EXPECT_THROW(quantize_model(opts), std::runtime_error);
    // Through another spelling of the same path too.
    opts.output = (dir.path() / "." / "m.gguf").string();
    EXPECT_THROW(quantize_model(opts), std::runtime_error);
    EXPECT_EQ(std::filesystem::file_size(copy), std::filesystem::file_size(shared_path("models/stories260K.gguf")));
}

TEST(Quantize, RowsNotMultipleOfBlockStayUsable) {
    // stories260K has 64-wide rows: q4_K_M cannot use 256-blocks and falls back per llama.cpp.
    test::TempDir dir;
    QuantizeOptions opts;
    opts.input = shared_path("models/stories260K.gguf");
    opts.output = dir.file("s.gguf");
    opts.mix = mix("q4_K_M");
    quantize_model(opts);
    const gguf::File out = gguf::File::open(opts.output);
    EXPECT_EQ(out.tensor("blk.0.attn_q.weight")->type, GgmlType::Q5_0);
    EXPECT_EQ(out.tensor("output.weight")->type, GgmlType::Q8_0);
    EXPECT_EQ(out.tensor("blk.0.attn_norm.weight")->type, GgmlType::F32);
}

}  // namespace
}  // namespace hearth
