// qwen3moe (Qwen3-30B-A3B, Qwen3-235B-A22B): qwen3's attention (per-head Q/K RMSNorm, RoPE on
// halves) with a mixture-of-experts FFN in every layer: softmax router, top-k experts,
// their weights renormalized to sum 1. Tied or separate output.
#include <stdexcept>

#include "model/model.h"

namespace hearth {

void load_qwen3moe(Model& m) {
    m.hp_ = read_decoder_hparams(m.file(), "qwen3moe", /*need_ff=*/false);
    m.hp_.rope_style = RopeStyle::Neox;
    m.hp_.expert_weights_norm = true;
    if (m.hp_.n_expert == 0) throw std::runtime_error("model metadata is missing 'qwen3moe.expert_count'");
    bind_output(m);
    bind_llama_layers(m, /*biases=*/false, /*qk_norm=*/true);
}

}  // namespace hearth
