// model/ owns model architectures and whole-model transformations: today the quantizer
// (llama.cpp-compatible per-tensor type mixes) and the synthetic model generator.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/types.h"

namespace hearth {

// A target of `hearth quantize`: a file type (llama.cpp's LLAMA_FTYPE_*) and its base type.
struct QuantMix {
    const char* name;     // "q4_K_M"
    uint32_t file_type;   // general.file_type value
    GgmlType base;        // type of most 2-D weights
};

const std::vector<QuantMix>& quant_mixes();
std::optional<QuantMix> find_quant_mix(std::string_view name);  // case-insensitive

// Facts about the model the per-tensor rules need.
struct QuantContext {
    std::string arch;
    bool has_output = false;  // output.weight present (else token_embd is the output matrix)
    int n_gqa = 1;            // head_count / head_count_kv
    int n_attention_wv = 0;   // number of attn_v / attn_qkv / attn_kv_b tensors
    int n_ffn_down = 0;       // the layer count (llama.cpp counts layers, not tensors)
    int n_expert = 0;         // <arch>.expert_count (MoE rules; layers read from tensor names)
    // Counters advanced as tensors are visited in file order.
    int i_attention_wv = 0;
    int i_ffn_down = 0;
};

struct TensorDesc {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
};

// Whether a tensor is quantized at all (2-D+ weights except norms, position/type
// embeddings and similar small tensors), as llama.cpp decides.
bool should_quantize(const TensorDesc& t);

// The type a tensor gets under a mix, with llama.cpp's rules (output/token embedding,
// attn_v and ffn_down bumps of the _M mixes, fused attn_qkv, the 8-expert bumps of attn_k /
// attn_v / attn_output, MXFP4_MOE's MXFP4 experts with Q8_0 elsewhere), including the
// fallback for rows that are not a multiple of the block size. Advances the counters in `ctx`.
GgmlType choose_tensor_type(const QuantMix& mix, const TensorDesc& t, QuantContext& ctx);

struct QuantizeOptions {
    std::string input;
    std::string output;
    QuantMix mix;
    int threads = 1;
    // (tensor index, tensor count, name, chosen type) before each tensor is processed.
    std::function<void(size_t, size_t, const std::string&, GgmlType)> progress;
};

struct QuantizeResult {
    uint64_t input_bytes = 0;
    uint64_t output_bytes = 0;
    size_t n_tensors = 0;
    size_t n_quantized = 0;
};

// Reads a GGUF, writes it quantized (metadata kept, general.file_type and
// general.quantization_version set). Refuses to overwrite its input. Throws on error.
QuantizeResult quantize_model(const QuantizeOptions& opts);

}  // namespace hearth
