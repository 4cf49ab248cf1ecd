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

// How positions become rotation angles: theta_i = pos * freq_scale * base^(-2i/dims), with
// YaRN's blend of scaled and unscaled angles (ext_factor > 0) and its magnitude factor, as
// ggml computes them.
struct RopeParams {
    int32_t dims = 0;
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;   // 1 / scaling factor
    float ext_factor = 0.0f;   // YaRN: 1 when the model uses it, 0 otherwise
    float attn_factor = 1.0f;  // YaRN magnitude multiplier (before its own 1 + 0.1 ln(factor))
    float beta_fast = 32.0f;
    float beta_slow = 1.0f;
    int32_t n_ctx_orig = 0;    // YaRN: the training context before scaling
};

enum class ExpertGating { Softmax = 1, Sigmoid = 2 };

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
    float attn_scale = 0.0f;       // 0 = 1/sqrt(head_dim)
    float embd_scale = 1.0f;       // gemma: sqrt(n_embd); granite: embedding_scale
    float residual_scale = 1.0f;   // granite: attention and FFN outputs scaled before the add
    float logit_scale = 1.0f;      // granite: logits divided by it
    bool qk_norm_full = false;     // olmo2: Q/K RMSNorm over the whole projection, not per head

    // YaRN and the other rope settings; `rope_swa` for sliding-window layers when they use
    // their own base (gemma3), else equal to `rope`. Filled by finish_rope().
    float rope_ext_factor = 0.0f;
    float rope_attn_factor = 1.0f;
    int32_t rope_n_ctx_orig = 0;
    bool rope_swa_own = false;
    float rope_freq_base_swa = 10000.0f;
    float rope_freq_scale_swa = 1.0f;
    RopeParams rope_params(bool swa) const;

    // Mixture of experts (0 experts: dense).
    int32_t n_expert = 0;
    int32_t n_expert_used = 0;
    int32_t n_ff_exp = 0;            // FFN width of one expert
    int32_t n_ff_shexp = 0;          // FFN width of the shared experts together (deepseek2)
    int32_t n_layer_dense_lead = 0;  // leading layers with a dense FFN (deepseek2)
    ExpertGating expert_gating = ExpertGating::Softmax;
    bool expert_weights_norm = false;  // renormalize the chosen experts' weights to sum 1
    float expert_weights_scale = 1.0f;

    // Multi-head latent attention (deepseek2): the cache holds [c (kv_lora_rank), k_pe] per
    // position as one KV head of head_dim = kv_lora_rank + rope dims.
    int32_t q_lora_rank = 0;
    int32_t kv_lora_rank = 0;
    int32_t mla_nope_dim = 0;  // per-head q/k dims without rope
    int32_t mla_v_dim = 0;     // per-head value dims

    int32_t q_dim() const { return n_head * head_dim; }
    int32_t kv_dim() const { return n_head_kv * head_dim; }
    int32_t v_dim() const { return n_head_kv * head_dim_v; }
};

// Reads the keys shared by the llama family (and the MoE and YaRN keys when present).
// Throws std::runtime_error naming the key. `need_ff`: feed_forward_length is required.
HParams read_decoder_hparams(const gguf::File& f, const std::string& arch, bool need_ff = true);

}  // namespace hearth
