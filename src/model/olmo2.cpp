// olmo2: no pre-norms; RMSNorm after attention and after the FFN (before each residual
// add), Q and K RMSNorm over the whole projection (not per head), RoPE on halves, SwiGLU.
#include "model/model.h"

namespace hearth {

void load_olmo2(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "olmo2");
    hp.rope_style = RopeStyle::Neox;
    hp.qk_norm_full = true;
    bind_output(m);
    m.w_.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        bind_attention(m, l, /*biases=*/false);
        L.q_norm = m.vector(b + "attn_q_norm.weight", hp.q_dim());
        L.k_norm = m.vector(b + "attn_k_norm.weight", hp.kv_dim());
        L.post_attn_norm = m.vector(b + "post_attention_norm.weight", hp.n_embd);
        L.w_gate = m.matrix(b + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        L.w_up = m.matrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
        L.post_ffn_norm = m.vector(b + "post_ffw_norm.weight", hp.n_embd);
    }
}

}  // namespace hearth
