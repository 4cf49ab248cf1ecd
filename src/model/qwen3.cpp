// qwen3: like qwen2 without the QKV biases, plus a per-head RMSNorm on Q and K after the
// projection and before RoPE.
#include "model/model.h"

namespace hearth {

void load_qwen3(Model& m) {
    m.hp_ = read_decoder_hparams(m.file(), "qwen3");
    m.hp_.rope_style = RopeStyle::Neox;
    bind_output(m);
    bind_llama_layers(m, /*biases=*/false, /*qk_norm=*/true);
}

}  // namespace hearth
