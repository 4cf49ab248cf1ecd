// gpt-oss: biased Q/K/V/output projections, attention sinks (one learned logit per head in
// each softmax), a sliding window on the even layers, RoPE on halves with YaRN, and a
// mixture of biased experts (top-k by router logit, softmax over the chosen ones) with the
// clamped SwiGLU; experts usually in MXFP4. The pre-MoE norm is post_attention_norm.
#include <stdexcept>

#include "model/model.h"

namespace hearth {

void load_gpt_oss(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "gpt-oss", /*need_ff=*/false);
    hp.rope_style = RopeStyle::Neox;
    hp.expert_weights_norm = true;  // softmax over the chosen = all-expert softmax renormalized
    if (hp.n_expert == 0) throw std::runtime_error("model metadata is missing 'gpt-oss.expert_count'");
    m.act_ = FfnActivation::SwigluOai;
    bind_output(m);
    m.w_.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        L.attn_norm = m.vector(b + "attn_norm.weight", hp.n_embd);
        bind_attention(m, l, /*biases=*/true);
        L.bo = m.vector(b + "attn_output.bias", hp.n_embd);
        L.sinks = m.vector(b + "attn_sinks.weight", hp.n_head);
        L.ffn_norm = m.vector(b + "post_attention_norm.weight", hp.n_embd);
        L.sliding_window = hp.sliding_window > 0 && l % 2 == 0;
        if (m.file().tensor(b + "ffn_gate_up_exps.weight"))
            throw std::runtime_error("gpt-oss files with fused ffn_gate_up_exps are not supported yet: convert with split gate/up experts");
        bind_moe(m, l, /*biases=*/true);
    }
}

}  // namespace hearth
