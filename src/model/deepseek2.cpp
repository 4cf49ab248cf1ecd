// deepseek2 (DeepSeek-V2, V2-Lite, Coder-V2): multi-head latent attention (a low-rank query
// when the file has attn_q_a, a compressed KV of kv_lora_rank + rope dims cached as one KV
// head, per-head k_b/v_b slices), RoPE on adjacent pairs over the rope dims with YaRN, a few
// leading dense layers, then routed experts (weights scaled, optionally renormalized) plus
// shared experts.
#include <cmath>
#include <stdexcept>

#include "gguf/gguf.h"
#include "model/model.h"

namespace hearth {

void load_deepseek2(Model& m) {
    HParams& hp = m.hp_;
    const gguf::File& f = m.file();
    hp = read_decoder_hparams(f, "deepseek2");
    hp.rope_style = RopeStyle::Normal;
    hp.q_lora_rank = static_cast<int32_t>(f.get_u64("deepseek2.attention.q_lora_rank").value_or(0));
    hp.kv_lora_rank = static_cast<int32_t>(f.get_u64("deepseek2.attention.kv_lora_rank").value_or(0));
    if (hp.kv_lora_rank <= 0) throw std::runtime_error("model metadata is missing 'deepseek2.attention.kv_lora_rank'");
    const int32_t rope = hp.rope_dims;
    const int32_t k_len = static_cast<int32_t>(f.get_u64("deepseek2.attention.key_length_mla").value_or(static_cast<uint64_t>(hp.head_dim)));
    hp.mla_v_dim = static_cast<int32_t>(f.get_u64("deepseek2.attention.value_length_mla").value_or(static_cast<uint64_t>(hp.head_dim_v)));
    hp.mla_nope_dim = k_len - rope;
    if (hp.mla_nope_dim <= 0 || hp.mla_v_dim <= 0 || rope <= 0)
        throw std::runtime_error("deepseek2: key/value lengths do not fit the rope dims");
    // The cache: one KV head of [c, k_pe]; queries are absorbed onto it.
    hp.n_head_kv = 1;
    hp.head_dim = hp.head_dim_v = hp.kv_lora_rank + rope;
    const float qk_dims = static_cast<float>(hp.mla_nope_dim + rope);
    hp.attn_scale = 1.0f / std::sqrt(qk_dims);
    if (hp.rope_ext_factor != 0.0f) {
        // YaRN: scores scaled by mscale^2; the rope's own magnitude factor cancelled.
        const float factor = 1.0f / hp.rope_freq_scale;
        const float log_mul = static_cast<float>(f.get_f64("deepseek2.rope.scaling.yarn_log_multiplier").value_or(0.0));
        const float mscale = 1.0f + log_mul * std::log(factor);
        hp.attn_scale = mscale * mscale / std::sqrt(qk_dims);
        hp.rope_attn_factor = 1.0f / (1.0f + 0.1f * std::log(factor));
    }
    bind_output(m);
    const int32_t H = hp.n_head, qw = H * (hp.mla_nope_dim + rope);
    m.w_.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        MlaWeights& M = L.mla;
        L.attn_norm = m.vector(b + "attn_norm.weight", hp.n_embd);
        if (f.tensor(b + "attn_q_a.weight")) {
            if (hp.q_lora_rank <= 0) throw std::runtime_error("model metadata is missing 'deepseek2.attention.q_lora_rank'");
            M.wq_a = m.matrix(b + "attn_q_a.weight", hp.n_embd, hp.q_lora_rank);
            M.q_a_norm = m.vector(b + "attn_q_a_norm.weight", hp.q_lora_rank);
            M.wq_b = m.matrix(b + "attn_q_b.weight", hp.q_lora_rank, qw);
        } else {
            M.wq = m.matrix(b + "attn_q.weight", hp.n_embd, qw);
        }
        M.wkv_a = m.matrix(b + "attn_kv_a_mqa.weight", hp.n_embd, hp.kv_lora_rank + rope);
        M.kv_a_norm = m.vector(b + "attn_kv_a_norm.weight", hp.kv_lora_rank);
        if (!f.tensor(b + "attn_k_b.weight"))
            throw std::runtime_error("deepseek2 files without attn_k_b/attn_v_b (older conversions with attn_kv_b) are not supported: re-convert the model");
        M.wk_b = m.matrices(b + "attn_k_b.weight", hp.mla_nope_dim, hp.kv_lora_rank, H);
        M.wv_b = m.matrices(b + "attn_v_b.weight", hp.kv_lora_rank, hp.mla_v_dim, H);
        L.wo = m.matrix(b + "attn_output.weight", static_cast<int64_t>(H) * hp.mla_v_dim, hp.n_embd);
        L.ffn_norm = m.vector(b + "ffn_norm.weight", hp.n_embd);
        if (hp.n_expert > 0 && l >= hp.n_layer_dense_lead) {
            bind_moe(m, l, /*biases=*/false);
        } else {
            L.w_gate = m.matrix(b + "ffn_gate.weight", hp.n_embd, hp.n_ff);
            L.w_up = m.matrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff);
            L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
        }
    }
}

}  // namespace hearth
