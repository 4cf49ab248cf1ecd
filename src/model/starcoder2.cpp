// starcoder2: pre-norm blocks with LayerNorm (weight + bias), biases on every projection,
// RoPE on halves, and a plain MLP down(gelu(up x + b) ) + b without a gate. Tied output.
#include "model/model.h"

namespace hearth {

void load_starcoder2(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "starcoder2");
    hp.rope_style = RopeStyle::Neox;
    hp.layer_norm = true;
    m.act_ = FfnActivation::GeluMlp;
    bind_output(m);
    m.w_.output_norm_b = m.vector("output_norm.bias", hp.n_embd);
    m.w_.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        L.attn_norm = m.vector(b + "attn_norm.weight", hp.n_embd);
        L.attn_norm_b = m.vector(b + "attn_norm.bias", hp.n_embd);
        bind_attention(m, l, /*biases=*/true);
        L.bo = m.vector(b + "attn_output.bias", hp.n_embd);
        L.ffn_norm = m.vector(b + "ffn_norm.weight", hp.n_embd);
        L.ffn_norm_b = m.vector(b + "ffn_norm.bias", hp.n_embd);
        L.w_up = m.matrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.b_up = m.vector(b + "ffn_up.bias", hp.n_ff);
        L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
        L.b_down = m.vector(b + "ffn_down.bias", hp.n_embd);
    }
}

}  // namespace hearth
