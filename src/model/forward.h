// The decoder forward pass's interface (model/transformer.cpp): what one pass over a chunk of
// a batch needs is given to it as parameters (the model, the KV cache view, a thread pool,
// scratch), so model/ does not depend on runtime/'s Context or scheduler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/batch.h"
#include "model/hparams.h"
#include "model/kv_view.h"
#include "tensor/matmul.h"

namespace hearth {

class Model;
class ThreadPool;

// Scratch of the MoE block (model/ffn_block.cpp): router output, routing, gathered rows.
struct MoeScratch {
    std::vector<float> logits, weight, probs, rows, g, u, gu, y, slot_out, shared;
    std::vector<int32_t> chosen, order;
    std::vector<size_t> slots, start, fill;
};

// Scratch of the forward pass, sized for n_batch tokens.
struct ForwardScratch {
    std::vector<float> x, h, q, k, v, attn, gate, up, ffn, rows;
    std::vector<float> mla_q, mla_c;  // latent attention (model/attention_block.cpp)
    MoeScratch moe;
    // Grows the buffers to hold nb tokens (never shrinks): a context sized for 512-token
    // batches commits that memory only once a batch that large runs.
    void ensure(const HParams& hp, size_t nb);
    MatmulScratch mm;
};

// One pipeline stage's ends (cluster/pipeline_*), for a model loaded with a layer range
// (Model::layer_begin/layer_end): `in` holds the hidden states entering the stage's first layer
// (n tokens x n_embd, from the previous stage; null: embed the tokens, the first stage), and
// `out` receives the hidden states after its last layer (n x n_embd, for the next stage; null:
// output norm and head, the last stage).
struct StageIO {
    const float* in = nullptr;
    float* out = nullptr;
};

// The forward pass over tokens [begin, end) of `batch` (at most the scratch's size), whose
// K/V rows are reserved in `kv`, through the model's layers [layer_begin, layer_end). For each
// token whose logits flag is set, in order, writes one row to `out`: its logits (n_vocab
// floats), or with `hidden` its final hidden state after the output norm (n_embd floats).
// With stage.out set, writes every token's hidden state to stage.out instead (and not `out`).
void forward(const Model& model, const Batch& batch, size_t begin, size_t end, const KvView& kv, ThreadPool& pool,
             ForwardScratch& scratch, float* out, bool hidden, StageIO stage = {});

}  // namespace hearth
