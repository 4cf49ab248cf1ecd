// phi3: fused QKV projection (rows Q | K | V) and fused gate|up FFN projection, NEOX RoPE,
// optional sliding window on every layer.
#include "model/model.h"

namespace hearth {

void load_phi3(Model& m) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), "phi3");
    hp.rope_style = RopeStyle::Neox;
    bind_output(m);
    m.w_.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        L.attn_norm = m.vector(b + "attn_norm.weight", hp.n_embd);
        L.wqkv = m.matrix(b + "attn_qkv.weight", hp.n_embd, hp.q_dim() + hp.kv_dim() + hp.v_dim(), true);
        if (!L.wqkv.data) {
            L.wq = m.matrix(b + "attn_q.weight", hp.n_embd, hp.q_dim());
            L.wk = m.matrix(b + "attn_k.weight", hp.n_embd, hp.kv_dim());
            L.wv = m.matrix(b + "attn_v.weight", hp.n_embd, hp.v_dim());
        }
        L.wo = m.matrix(b + "attn_output.weight", hp.q_dim(), hp.n_embd);
        L.ffn_norm = m.vector(b + "ffn_norm.weight", hp.n_embd);
        L.w_gate_up = m.matrix(b + "ffn_up.weight", hp.n_embd, 2 * int64_t(hp.n_ff));
        L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
        L.sliding_window = hp.sliding_window > 0;
    }
    if (m.file().tensor("rope_factors_long.weight"))
        throw std::runtime_error("phi3 LongRoPE (rope_factors_long) is not supported yet");
}

}  // namespace hearth
