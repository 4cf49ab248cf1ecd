#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/encoder.h"
#include "model/model.h"
#include "runtime/threadpool.h"
#include "support/paths.h"

namespace hearth {
namespace {

double cosine_distance(const std::vector<float>& a, const std::vector<double>& b) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        dot += a[i] * b[i];
        na += double(a[i]) * a[i];
        nb += b[i] * b[i];
    }
    return 1.0 - dot / std::sqrt(na * nb);
}

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
