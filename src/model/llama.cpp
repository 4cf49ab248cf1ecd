// llama: Llama 1/2/3.x, Mistral, TinyLlama, SmolLM. RMSNorm, GQA, RoPE with adjacent pairs,
// SwiGLU, optional llama3-style rope_freqs, output tied to the embedding when absent;
// Mixtral when llama.expert_count is set (softmax router, top-k experts renormalized).
#include "model/model.h"

namespace hearth {

void load_llama(Model& m) {
    m.hp_ = read_decoder_hparams(m.file(), "llama");
    m.hp_.rope_style = RopeStyle::Normal;
    m.hp_.expert_weights_norm = true;  // Mixtral: the chosen experts' weights sum to 1
    bind_output(m);
    bind_llama_layers(m, /*biases=*/false, /*qk_norm=*/false);
    m.w_.rope_freqs = m.vector("rope_freqs.weight", m.hp_.rope_dims / 2, /*optional=*/true);
}

}  // namespace hearth
