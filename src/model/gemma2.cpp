// gemma2: embeddings scaled by sqrt(n_embd), GeGLU (tanh GELU) feed-forward, RMSNorm after
// attention and after the FFN (before each residual add), attention logit soft-capping,
// a sliding window on the even layers, a soft-capped final logit, tied output.
#include <cmath>

#include "model/model.h"

namespace hearth {

void load_gemma2(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "gemma2");
    hp.rope_style = RopeStyle::Neox;
    hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
    if (hp.attn_softcap == 0.0f) hp.attn_softcap = 50.0f;
    if (hp.final_softcap == 0.0f) hp.final_softcap = 30.0f;
    if (hp.sliding_window == 0) hp.sliding_window = 4096;
    m.act_ = FfnActivation::GeluTanh;
    bind_output(m);
    bind_llama_layers(m, /*biases=*/false, /*qk_norm=*/false);
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        L.post_attn_norm = m.vector(b + "post_attention_norm.weight", hp.n_embd);
        L.post_ffn_norm = m.vector(b + "post_ffw_norm.weight", hp.n_embd);
        L.sliding_window = l % 2 == 0;
    }
}

}  // namespace hearth
