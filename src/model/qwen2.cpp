// qwen2: Qwen1.5 / Qwen2 / Qwen2.5. The llama layout plus biases on Q, K and V, and
// NEOX-style RoPE (rotating the two halves of each head).
#include "model/model.h"

namespace hearth {

void load_qwen2(Model& m) {
    m.hp_ = read_decoder_hparams(m.file(), "qwen2");
    m.hp_.rope_style = RopeStyle::Neox;
    bind_output(m);
    bind_llama_layers(m, /*biases=*/true, /*qk_norm=*/false);
}

}  // namespace hearth
