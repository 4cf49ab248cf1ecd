// gemma3 (text): gemma2's block (embeddings scaled by sqrt(n_embd), RMSNorm after attention
// and after the FFN, GeGLU) with a per-head Q/K RMSNorm, no soft-capping, and a fixed
// pattern of sliding-window layers (5 of every 6) that use RoPE base 10000 unscaled, while
// the global layers use rope.freq_base with the file's (linear) scaling.
#include <cmath>

#include "model/model.h"

namespace hearth {

void load_gemma3(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "gemma3");
    hp.rope_style = RopeStyle::Neox;
    hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
    hp.rope_swa_own = true;
    hp.rope_freq_base_swa = 10000.0f;
    hp.rope_freq_scale_swa = 1.0f;
    // Gemma 3 27B scales scores by its query_pre_attn_scalar (n_embd / n_head); the others
    // by 1/sqrt(head_dim). Files do not carry it: the 27B is recognised by its 62 layers.
    if (hp.n_layer == 62) hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.n_embd / hp.n_head));
    const int32_t pattern = static_cast<int32_t>(m.file().get_u64("gemma3.attention.sliding_window_pattern").value_or(6));
    m.act_ = FfnActivation::GeluTanh;
    bind_output(m);
    bind_llama_layers(m, /*biases=*/false, /*qk_norm=*/true);
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        L.post_attn_norm = m.vector(b + "post_attention_norm.weight", hp.n_embd);
        L.post_ffn_norm = m.vector(b + "post_ffw_norm.weight", hp.n_embd);
        L.sliding_window = hp.sliding_window > 0 && pattern > 0 && l % pattern < pattern - 1;
    }
}

}  // namespace hearth
