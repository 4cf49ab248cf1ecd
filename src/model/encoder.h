// Embeddings from encoder models (bert): one pooled, optionally L2-normalized vector per input.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace hearth {

class ThreadPool;

// Runs the whole input in one pass (encoders need every token at once). Throws
// std::invalid_argument for an empty input, ids outside the vocabulary, or an input longer
// than the model's context.
std::vector<float> encode_embedding(const Model& model, const std::vector<int32_t>& tokens, ThreadPool& pool,
                                    bool normalize);

}  // namespace hearth
