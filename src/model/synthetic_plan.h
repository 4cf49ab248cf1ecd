// Internal to the synthetic model generator (model/synthetic.cpp): the shape of the model to
// write and, per architecture, its metadata keys and tensor list in the layout llama.cpp's
// converter writes (model/synthetic_archs.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace hearth::synth {

struct Shape {
    std::string arch;
    int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0, n_ctx = 0;
    double rope_theta = 10000.0;
    float norm_eps = 1e-5f;
    bool tied_output = false, qkv_bias = false, llama3_rope = false;
    int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;  // MoE archs
};

enum class Init { Normal, Ones, Values };

struct PlannedTensor {
    std::string name;
    std::vector<int64_t> dims;
    Init init;
    std::vector<float> values;  // Init::Values
};

// The architectures plan() knows, for error messages: "llama, qwen2, ...".
const std::vector<std::string>& architectures();

// Writes the architecture's metadata keys (<arch>.*) and appends its tensors, in file order,
// to `plan`. MoE archs get defaults (4 experts, 2 used) when the shape has none. Throws
// std::invalid_argument for an unknown architecture.
void plan(Shape& s, gguf::Writer& w, std::vector<PlannedTensor>& plan);

}  // namespace hearth::synth
