// A loaded model: the mapped GGUF, its hyperparameters, tokenizer and weight views. Weights
// that are used as stored are zero-copy views into the mapping; small 1-D tensors (norms,
// biases) are converted to F32 once at load.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/hparams.h"
#include "tensor/matmul.h"
#include "tokenizer/tokenizer.h"

namespace hearth {

// The FFN's activation: gated (down(act(gate) * up)) for SiLU / GeluTanh / SwigluOai; a plain
// MLP down(gelu(up)) for GeluMlp (starcoder2). SwigluOai is gpt-oss's clamped variant:
// g = min(g, 7), u = clamp(u, -7, 7), g * sigmoid(1.702 g) * (u + 1).
enum class FfnActivation { SiLU, GeluTanh, GeluMlp, SwigluOai };

// The experts of one MoE layer: a router and n_expert small FFNs stored as 3-D tensors,
// bound as one 2-D view per expert (each repacked at load like a dense matrix).
struct MoeWeights {
    MatrixView router;                       // n_embd -> n_expert logits
    const float* router_b = nullptr;         // gpt-oss
    const float* select_b = nullptr;         // DeepSeek-V3: added to the scores for the choice only
    std::vector<MatrixView> gate, up, down;  // per expert
    const float* b_gate = nullptr;           // [n_expert][n_ff_exp] (gpt-oss), or null
    const float* b_up = nullptr;
    const float* b_down = nullptr;           // [n_expert][n_embd]
    MatrixView shared_gate, shared_up, shared_down;  // shared experts (deepseek2), or empty
    // Per expert: its gate and up matrices packed back to back (Model::pack_weights), as one
    // view of 2 x n_ff_exp rows, so they run as one matmul; empty otherwise.
    std::vector<MatrixView> gate_up_packed;
    bool present() const { return !gate.empty(); }
};

// Multi-head latent attention (deepseek2) projections.
struct MlaWeights {
    MatrixView wq_a, wq_b;          // low-rank query: n_embd -> q_lora_rank -> n_head * (nope + rope)
    MatrixView wq;                  // or the full query projection (no q LoRA)
    const float* q_a_norm = nullptr;
    MatrixView wkv_a;               // n_embd -> kv_lora_rank + rope dims
    const float* kv_a_norm = nullptr;
    std::vector<MatrixView> wk_b;   // per head: kv_lora_rank rows x nope cols (absorbed into q)
    std::vector<MatrixView> wv_b;   // per head: v_dim rows x kv_lora_rank cols
    bool present() const { return wkv_a.rows > 0; }
};

struct LayerWeights {
    const float* attn_norm = nullptr;
    MatrixView wq, wk, wv, wqkv, wo;  // wqkv: fused Q|K|V (phi3); then wq/wk/wv are empty
    const float* bq = nullptr;
    const float* bk = nullptr;
    const float* bv = nullptr;
    const float* q_norm = nullptr;  // per-head RMSNorm (qwen3)
    const float* k_norm = nullptr;
    const float* post_attn_norm = nullptr;  // gemma2
    const float* ffn_norm = nullptr;
    MatrixView w_gate, w_up, w_down, w_gate_up;  // w_gate_up: fused gate|up (phi3)
    // Separate Q/K/V (gate/up) matrices packed or copied back to back (Model::pack_weights):
    // one view of all their rows, so one matmul streams them (decode) and converts the shared
    // input once (prompt); empty otherwise. Use through fused_view().
    MatrixView wqkv_packed, w_gate_up_packed;
    const float* post_ffn_norm = nullptr;  // gemma2
    bool sliding_window = false;
    const float* attn_norm_b = nullptr;  // LayerNorm biases (starcoder2)
    const float* ffn_norm_b = nullptr;
    const float* sinks = nullptr;        // per query head attention sink logits (gpt-oss)
    MoeWeights moe;                      // MoE FFN, or empty (dense)
    MlaWeights mla;                      // latent attention, or empty
    // Encoder (bert) extras: biases and post-residual LayerNorms (weight + bias).
    const float* bo = nullptr;
    const float* b_up = nullptr;
    const float* b_down = nullptr;
    const float* attn_out_norm = nullptr;
    const float* attn_out_norm_b = nullptr;
    const float* layer_out_norm = nullptr;
    const float* layer_out_norm_b = nullptr;
};

enum class Pooling { None = 0, Mean = 1, Cls = 2, Last = 3 };

// A fused Q|K|V or gate|up view of LayerWeights (wqkv_packed, w_gate_up_packed, MoE
// gate_up_packed) if it can be used now, else null.
const MatrixView* fused_view(const MatrixView& v);

struct ModelWeights {
    MatrixView tok_embd;
    std::vector<LayerWeights> layers;
    const float* output_norm = nullptr;
    const float* output_norm_b = nullptr;  // LayerNorm bias (starcoder2)
    MatrixView output;                 // may alias tok_embd (tied)
    const float* rope_freqs = nullptr; // llama3-style per-dimension frequency factors
    // Encoders (bert): learned positions, token-type embeddings, embedding LayerNorm.
    const float* pos_embd = nullptr;     // [n_ctx_train][n_embd]
    const float* token_types = nullptr;  // [n_types][n_embd]
    const float* embd_norm = nullptr;
    const float* embd_norm_b = nullptr;
};

// Frees the anonymous mapping that holds a model's packed weights.
struct PackedUnmap {
    size_t size = 0;
    void operator()(uint8_t* p) const;
};

// What part of a model to load. A pipeline stage (cluster/pipeline_*) holds layers
// [layer_begin, layer_end): the other layers' matrices are dropped before the weights are
// copied or repacked (their pages of the mapping are never touched), the output head is kept
// only by the last stage, and the token embedding is read (by rows) only by the first.
// Bytes of the tensors a stage holding layers [begin, end) of n_layer uses: its blk.N.*
// tensors; the other tensors on the first stage, the output matrix and final norm also on the
// last; a tied embedding counts on both. All of them for [0, n_layer).
uint64_t stage_tensor_bytes(const gguf::File& f, int32_t begin, int32_t end, int32_t n_layer);

struct LoadOptions {
    int32_t layer_begin = 0;
    int32_t layer_end = -1;  // -1: the last layer
};

class Model {
public:
    // Maps and validates the file, reads hyperparameters, builds the tokenizer and binds
    // the weights for its architecture. Throws std::runtime_error (or gguf::GgufError).
    static std::unique_ptr<Model> load(const std::string& path, LoadOptions opts = {});

    const HParams& hparams() const { return hp_; }
    const ModelWeights& weights() const { return w_; }
    const Tokenizer& tokenizer() const { return *tok_; }
    const gguf::File& file() const { return file_; }
    FfnActivation activation() const { return act_; }
    bool is_encoder() const { return encoder_; }  // bert: embeddings only, no LM head
    Pooling pooling() const { return pooling_; }
    const std::string& path() const { return file_.path(); }
    uint64_t weight_bytes() const;  // bytes of all tensors
    // Bytes of the tensors this model uses: all of them, or a pipeline stage's share
    // (stage_tensor_bytes).
    uint64_t stage_bytes() const { return stage_tensor_bytes(file_, layer_begin_, layer_end_, hp_.n_layer); }
    // The layers this model runs: all of them, or a pipeline stage's range (LoadOptions).
    int32_t layer_begin() const { return layer_begin_; }
    int32_t layer_end() const { return layer_end_; }
    bool whole() const { return layer_begin_ == 0 && layer_end_ == hp_.n_layer; }

    // Binding helpers for the architecture files. Each throws naming the tensor when it is
    // missing (unless optional) or has an unexpected shape.
    MatrixView matrix(const std::string& name, int64_t cols, int64_t rows, bool optional = false);
    // A 3-D tensor [cols, rows, n] as n matrices of rows x cols (experts, per-head slices).
    std::vector<MatrixView> matrices(const std::string& name, int64_t cols, int64_t rows, int64_t n, bool optional = false);
    const float* vector(const std::string& name, int64_t n, bool optional = false);

    HParams hp_;
    ModelWeights w_;
    FfnActivation act_ = FfnActivation::SiLU;
    bool encoder_ = false;
    Pooling pooling_ = Pooling::None;

    // Bytes of the load-time weight arena: matrices packed into the interleaved layout
    // (tensor/repack.h) plus the others copied as stored.
    size_t packed_bytes() const { return packed_size_; }

private:
    explicit Model(gguf::File f) : file_(std::move(f)) {}
    // Moves the layer and output matrices into one anonymous huge-page mapping, read from the
    // file with pread (never faulted in through the mapping): packed where a packed kernel
    // exists (tensor/repack.h), else copied as stored; then fuses Q|K|V and gate|up views
    // that ended up back to back. HEARTH_REPACK=0: nothing moves.
    void pack_weights();
    std::unique_ptr<uint8_t, PackedUnmap> packed_;
    size_t packed_size_ = 0;
    int32_t layer_begin_ = 0, layer_end_ = 0;
    gguf::File file_;
    std::unique_ptr<Tokenizer> tok_;
    std::vector<std::vector<float>> owned_;  // converted 1-D tensors
};

// Architecture registry: general.architecture -> function that reads hyperparameters and
// binds weights. Each architecture file registers itself here.
using ArchLoader = std::function<void(Model&)>;
const std::map<std::string, ArchLoader>& architectures();
std::string supported_architectures();  // "gemma2, llama, ..."

// The per-architecture loaders (model/<arch>.cpp).
void load_llama(Model& m);
void load_qwen2(Model& m);
void load_qwen3(Model& m);
void load_gemma2(Model& m);
void load_phi3(Model& m);
void load_bert(Model& m);
void load_nomic_bert(Model& m);
void load_gemma3(Model& m);
void load_qwen3moe(Model& m);
void load_gpt_oss(Model& m);
void load_deepseek2(Model& m);
void load_olmo2(Model& m);
void load_starcoder2(Model& m);
void load_granite(Model& m);

// Shared by the llama-style files: binds the standard blk.N tensors.
void bind_llama_layers(Model& m, bool biases, bool qk_norm);
void bind_output(Model& m);  // output_norm, output (or the tied token embedding)
// Binds blk.N.attn_q / attn_k / attn_v / attn_output of layer l (+ the Q/K/V biases).
void bind_attention(Model& m, int32_t l, bool biases);
// Binds blk.N.ffn_gate_inp / ffn_{gate,up,down}_exps (+ biases when `biases`) of layer l.
void bind_moe(Model& m, int32_t l, bool biases);

}  // namespace hearth
