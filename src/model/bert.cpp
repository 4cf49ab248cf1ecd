// bert and nomic-bert: encoders for embeddings (WordPiece tokenizer). bert: learned position
// and token-type embeddings, LayerNorm (with bias) after each residual, GELU feed-forward,
// bidirectional attention, then mean / CLS / last pooling per bert.pooling_type.
#include <stdexcept>

#include "gguf/gguf.h"
#include "model/model.h"

namespace hearth {

namespace {

// What both encoders share: LayerNorm, pooling from <arch>.pooling_type (mean by default),
// bidirectional attention only, the token and token-type embeddings and their LayerNorm.
void bind_encoder_base(Model& m, const std::string& arch) {
    HParams& hp = m.hp_;
    hp = read_decoder_hparams(m.file(), arch);
    hp.layer_norm = true;
    m.encoder_ = true;
    const uint64_t pooling = m.file().get_u64(arch + ".pooling_type").value_or(1);
    if (pooling > 3) throw std::runtime_error(arch + ".pooling_type " + std::to_string(pooling) + " is not supported");
    m.pooling_ = static_cast<Pooling>(pooling);
    if (m.file().get_bool(arch + ".attention.causal").value_or(false))
        throw std::runtime_error("causal " + arch + " models are not supported");
    const gguf::TensorInfo* emb = m.file().tensor("token_embd.weight");
    if (!emb || emb->dims.size() != 2) throw std::runtime_error("model is missing tensor 'token_embd.weight'");
    ModelWeights& w = m.w_;
    w.tok_embd = m.matrix("token_embd.weight", hp.n_embd, emb->dims[1]);
    const gguf::TensorInfo* types = m.file().tensor("token_types.weight");
    if (types) w.token_types = m.vector("token_types.weight", types->n_elements());
    w.embd_norm = m.vector("token_embd_norm.weight", hp.n_embd);
    w.embd_norm_b = m.vector("token_embd_norm.bias", hp.n_embd);
    w.layers.resize(static_cast<size_t>(hp.n_layer));
}

}  // namespace

void load_bert(Model& m) {
    bind_encoder_base(m, "bert");
    m.act_ = FfnActivation::GeluTanh;
    const HParams& hp = m.hp_;
    ModelWeights& w = m.w_;
    w.pos_embd = m.vector("position_embd.weight", int64_t(hp.n_embd) * hp.n_ctx_train);
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = w.layers[static_cast<size_t>(l)];
        bind_attention(m, l, /*biases=*/true);
        L.bo = m.vector(b + "attn_output.bias", hp.n_embd);
        L.attn_out_norm = m.vector(b + "attn_output_norm.weight", hp.n_embd);
        L.attn_out_norm_b = m.vector(b + "attn_output_norm.bias", hp.n_embd);
        L.w_up = m.matrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.b_up = m.vector(b + "ffn_up.bias", hp.n_ff);
        L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
        L.b_down = m.vector(b + "ffn_down.bias", hp.n_embd);
        L.layer_out_norm = m.vector(b + "layer_output_norm.weight", hp.n_embd);
        L.layer_out_norm_b = m.vector(b + "layer_output_norm.bias", hp.n_embd);
    }
}

}  // namespace hearth

namespace hearth {

// nomic-bert (nomic-embed-text): a BERT encoder without learned positions: RoPE on halves
// over whole heads, a fused Q|K|V projection, no projection biases, a SwiGLU feed-forward,
// LayerNorm after each residual, pooled per nomic-bert.pooling_type.
void load_nomic_bert(Model& m) {
    bind_encoder_base(m, "nomic-bert");
    HParams& hp = m.hp_;
    hp.rope_style = RopeStyle::Neox;
    m.act_ = FfnActivation::SiLU;
    ModelWeights& w = m.w_;
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = w.layers[static_cast<size_t>(l)];
        L.wqkv = m.matrix(b + "attn_qkv.weight", hp.n_embd, hp.q_dim() + hp.kv_dim() + hp.v_dim());
        L.wo = m.matrix(b + "attn_output.weight", hp.q_dim(), hp.n_embd);
        L.attn_out_norm = m.vector(b + "attn_output_norm.weight", hp.n_embd);
        L.attn_out_norm_b = m.vector(b + "attn_output_norm.bias", hp.n_embd);
        L.w_gate = m.matrix(b + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        L.w_up = m.matrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
        L.layer_out_norm = m.vector(b + "layer_output_norm.weight", hp.n_embd);
        L.layer_out_norm_b = m.vector(b + "layer_output_norm.bias", hp.n_embd);
    }
}

}  // namespace hearth
