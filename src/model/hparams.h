// Hyperparameters of a decoder model, read from GGUF metadata under the architecture's
// key prefix ("llama.", "qwen2.", ...). Errors name the missing key.
#pragma once

#include <cstdint>
#include <string>

namespace hearth {
namespace gguf {
class File;
}

enum class RopeStyle { Normal, Neox };  // Normal rotates (2i, 2i+1); Neox rotates (i, i + d/2)

struct HParams {
    std::string arch;
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_ff = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;     // key_length (defaults to n_embd / n_head)
    int32_t head_dim_v = 0;   // value_length
    float norm_eps = 1e-5f;
    bool layer_norm = false;  // LayerNorm (bert) instead of RMSNorm

    RopeStyle rope_style = RopeStyle::Normal;
    int32_t rope_dims = 0;         // rotated dims per head (defaults to head_dim)
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // 1 / linear scaling factor

    float attn_softcap = 0.0f;     // 0 = off (gemma2: 50)
    float final_softcap = 0.0f;    // 0 = off (gemma2: 30)
    int32_t sliding_window = 0;    // 0 = off
    bool swa_even_layers = false;  // sliding window on layers 0, 2, 4, ... (gemma2)
    float attn_scale = 0.0f;       // 0 = 1/sqrt(head_dim)
    float embd_scale = 1.0f;       // gemma: sqrt(n_embd)

    int32_t q_dim() const { return n_head * head_dim; }
    int32_t kv_dim() const { return n_head_kv * head_dim; }
    int32_t v_dim() const { return n_head_kv * head_dim_v; }
};

// Reads the keys shared by the llama family. Throws std::runtime_error naming the key.
HParams read_decoder_hparams(const gguf::File& f, const std::string& arch);

}  // namespace hearth
