// Synthetic models: GGUF files with random weights in the exact shapes of real models, so
// tests and benchmarks run at real sizes without downloading anything.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hearth {

struct ModelPreset {
    std::string name;
    std::string arch;  // general.architecture
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    double rope_theta;
    float norm_eps;
    bool tied_output;  // no output.weight: token_embd is the output matrix
    bool qkv_bias;
    bool llama3_rope;  // write rope_freqs.weight (llama3-style frequency scaling)
    int64_t head_dim = 0;  // 0: n_embd / n_head
    int64_t n_expert = 0, n_expert_used = 0, n_ff_exp = 0;  // MoE presets
};

const std::vector<ModelPreset>& model_presets();
// The architectures make-model can write: "llama, qwen2, ...".
std::string synthetic_architectures();
const ModelPreset* find_model_preset(const std::string& name);

struct MakeModelOptions {
    std::string preset = "tiny";
    std::string arch;       // overrides the preset's architecture when set (any of
                            // synthetic_architectures(); MoE ones get 4 experts, 2 used)
    int layers = 0;         // overrides the preset's layer count when > 0
    std::string type = "f16";  // any quant mix name (f32, f16, bf16, q4_0, q4_K_M, ...)
    uint64_t seed = 1;
    std::string vocab;      // GGUF to copy tokenizer.* metadata from ("" = synthesize)
    std::string output;
    int threads = 1;
    std::function<void(size_t, size_t, const std::string&)> progress;
};

// Writes the model; returns its size in bytes. Weights ~ N(0, 0.02²), norm weights 1.
uint64_t make_synthetic_model(const MakeModelOptions& opts);

}  // namespace hearth
