// Shared by the tests that compare the engine with llama.cpp's references: greedy generation
// options and the cosine distance used for embeddings.
#pragma once

#include <cmath>
#include <vector>

#include "runtime/generate.h"

namespace hearth::test {

// Greedy decoding of n tokens with no penalty and no truncation: llama.cpp's argmax.
inline GenerateOptions greedy(int n) {
    GenerateOptions o;
    o.n_predict = n;
    o.sampling.temperature = 0.0f;
    o.sampling.repeat_penalty = 1.0f;
    o.sampling.top_k = 0;
    o.sampling.top_p = 1.0f;
    return o;
}

// 1 - cos(a, b).
inline double cosine_distance(const std::vector<float>& a, const std::vector<double>& b) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        dot += a[i] * b[i];
        na += double(a[i]) * a[i];
        nb += b[i] * b[i];
    }
    return 1.0 - dot / std::sqrt(na * nb);
}

}  // namespace hearth::test
