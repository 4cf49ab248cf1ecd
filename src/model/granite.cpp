// granite: a llama block (RMSNorm, RoPE on adjacent pairs, SwiGLU, GQA) with four
// multipliers from the metadata: the embeddings are scaled, attention uses its own score
// scale, each block's output is scaled before its residual add, and the logits are divided.
#include "model/model.h"

namespace hearth {

void load_granite(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "granite");
    hp.rope_style = RopeStyle::Normal;
    auto f = [&](const char* key, float def) { return static_cast<float>(m.file().get_f64(std::string("granite.") + key).value_or(def)); };
    hp.embd_scale = f("embedding_scale", 1.0f);
    hp.residual_scale = f("residual_scale", 1.0f);
    hp.logit_scale = f("logit_scale", 1.0f);
    hp.attn_scale = f("attention.scale", 0.0f);
    bind_output(m);
    bind_llama_layers(m, /*biases=*/false, /*qk_norm=*/false);
}

}  // namespace hearth
