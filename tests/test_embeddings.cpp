#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/encoder.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/embedding.h"
#include "tensor/matmul.h"
#include "tensor/threadpool.h"
#include "support/model_checks.h"
#include "support/paths.h"

namespace hearth {
namespace {

using test::cosine_distance;

// The BERT references: llama.cpp's tokenization (CLS ... SEP) and its pooled embeddings,
// normalized and raw, for mean and CLS pooling.
TEST(BertEmbeddings, MatchLlamaCppReferences) {
    std::ifstream f(test::shared_path("models/synthetic/bert-embeddings.json"));
    const auto refs = nlohmann::json::parse(f);
    ASSERT_EQ(refs.size(), 6u);
    ThreadPool pool(2);
    for (const auto& r : refs) {
        auto model = Model::load(test::shared_path(r["file"].get<std::string>()));
        EXPECT_TRUE(model->is_encoder());
        const std::string text = r["text"];
        const std::vector<int32_t> ids = model->tokenizer().encode(text, true, false);
        ASSERT_EQ(ids, r["token_ids"].get<std::vector<int32_t>>()) << text;
        const auto norm = encode_embedding(*model, ids, pool, true);
        const auto raw = encode_embedding(*model, ids, pool, false);
        const auto want_norm = r["embedding_normalized"].get<std::vector<double>>();
        const auto want_raw = r["embedding_raw"].get<std::vector<double>>();
        ASSERT_EQ(norm.size(), want_norm.size());
        EXPECT_LT(cosine_distance(norm, want_norm), 1e-4) << r["file"] << " '" << text << "'";
        EXPECT_LT(cosine_distance(raw, want_raw), 1e-4) << r["file"] << " '" << text << "'";
        double n2 = 0, r2 = 0, w2 = 0;
        for (size_t i = 0; i < raw.size(); ++i) {
            n2 += double(norm[i]) * norm[i];
            r2 += double(raw[i]) * raw[i];
            w2 += want_raw[i] * want_raw[i];
        }
        EXPECT_NEAR(n2, 1.0, 1e-5);
        EXPECT_NEAR(std::sqrt(r2), std::sqrt(w2), 1e-3 * std::sqrt(w2));  // raw magnitude kept
    }
}

TEST(BertEmbeddings, RejectsEmptyAndOverlongInputAndDecoderModels) {
    ThreadPool pool(1);
    auto model = Model::load(test::shared_path("models/synthetic/bert-cls-f32.gguf"));
    EXPECT_THROW(encode_embedding(*model, {}, pool, true), std::invalid_argument);
    EXPECT_THROW(encode_embedding(*model, std::vector<int32_t>(129, 1000), pool, true), std::invalid_argument);
    EXPECT_THROW(encode_embedding(*model, {101, 40000, 102}, pool, true), std::invalid_argument);
    auto llama = Model::load(test::shared_path("models/stories260K.gguf"));
    EXPECT_THROW(encode_embedding(*llama, {1, 2}, pool, true), std::invalid_argument);
}

}  // namespace
}  // namespace hearth

// ---- Decoder models: pooled final hidden states.
namespace hearth {
namespace {

std::vector<float> logits_from_hidden(const Model& model, const std::vector<float>& h) {
    const HParams& hp = model.hparams();
    std::vector<float> out(static_cast<size_t>(hp.n_vocab));
    MatmulScratch scratch;
    matmul(model.weights().output, h.data(), hp.n_embd, 1, out.data(), hp.n_vocab, nullptr, scratch);
    return out;
}

// The raw last-token embedding is exactly what the LM head reads: multiplying it by the
// output matrix must give the logits a normal decode computes for that position.
TEST(DecoderEmbeddings, LastTokenHiddenStateFeedsTheLmHead) {
    for (const char* file : {"models/stories260K.gguf", "models/synthetic/qwen2-f32.gguf", "models/synthetic/llama-q8_0.gguf"}) {
        auto model = Model::load(test::shared_path(file));
        ASSERT_FALSE(model->is_encoder());
        EXPECT_EQ(model->pooling(), Pooling::Last) << file;
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_threads = 1;
        cp.n_batch = 5;  // several chunks
        Context ctx(*model, cp);
        const std::vector<int32_t> ids = model->tokenizer().encode("Once upon a time there was a cat", true, false);
        ASSERT_GT(ids.size(), 6u);
        const auto h = embed_sequence(ctx, 0, ids, Pooling::Last, false);
        ASSERT_EQ(h.size(), static_cast<size_t>(model->hparams().n_embd));
        EXPECT_EQ(ctx.kv().capacity(0), 0) << "the sequence is left empty";

        Batch b;
        for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int32_t>(i), 0, i + 1 == ids.size());
        ctx.decode(b);
        const auto want = logits_from_hidden(*model, h);
        const float* got = ctx.logits(0);
        for (size_t t = 0; t < want.size(); ++t) ASSERT_NEAR(got[t], want[t], 1e-3f * (1 + std::fabs(want[t]))) << file << " token " << t;
    }
}

TEST(DecoderEmbeddings, MeanPoolingIsChunkInvariantAndNormalized) {
    auto model = Model::load(test::shared_path("models/stories260K.gguf"));
    const std::vector<int32_t> ids = model->tokenizer().encode("The little dog ran to the park and played", true, false);
    std::vector<std::vector<float>> runs;
    for (int32_t n_batch : {1, 4, 512}) {
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_threads = 1;
        cp.n_batch = n_batch;
        Context ctx(*model, cp);
        runs.push_back(embed_sequence(ctx, 0, ids, Pooling::Mean, true));
    }
    double norm = 0;
    for (float v : runs[0]) norm += double(v) * v;
    EXPECT_NEAR(norm, 1.0, 1e-5);
    for (size_t r = 1; r < runs.size(); ++r)
        for (size_t i = 0; i < runs[0].size(); ++i) EXPECT_NEAR(runs[r][i], runs[0][i], 1e-4f);
    // Mean differs from last-token pooling (it averages every position).
    ContextParams cp;
    cp.n_ctx = 64;
    cp.n_threads = 1;
    Context ctx(*model, cp);
    const auto last = embed_sequence(ctx, 0, ids, Pooling::Last, true);
    double diff = 0;
    for (size_t i = 0; i < last.size(); ++i) diff += std::fabs(last[i] - runs[0][i]);
    EXPECT_GT(diff, 1e-3);
    // The context is back in logits mode: a normal decode still gives logits.
    Batch b;
    b.add(ids[0], 0, 0, true);
    EXPECT_EQ(ctx.decode(b), 1);
    EXPECT_TRUE(std::isfinite(ctx.logits(0)[0]));
}

TEST(DecoderEmbeddings, RejectsEmptyAndOverlongInput) {
    auto model = Model::load(test::shared_path("models/stories260K.gguf"));
    ContextParams cp;
    cp.n_ctx = 8;
    cp.n_threads = 1;
    Context ctx(*model, cp);
    EXPECT_THROW(embed_sequence(ctx, 0, {}, Pooling::Last, true), std::invalid_argument);
    EXPECT_THROW(embed_sequence(ctx, 0, std::vector<int32_t>(9, 1), Pooling::Last, true), std::invalid_argument);
    EXPECT_EQ(embed_sequence(ctx, 0, std::vector<int32_t>(8, 1), Pooling::Last, true).size(),
              static_cast<size_t>(model->hparams().n_embd));
}

}  // namespace
}  // namespace hearth
