// runtime/ owns what runs a model over time: the paged KV cache and prefix cache, the
// context that drives the forward pass (model/forward.h), the continuous-batching scheduler,
// one-sequence generation and embeddings.
//
// An inference context over a loaded model: the KV cache, the thread pool and the scratch
// buffers of the forward pass (allocated once, never per token).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "model/batch.h"
#include "model/forward.h"
#include "model/hparams.h"
#include "model/model.h"
#include "runtime/kv_cache.h"
#include "tensor/threadpool.h"
#include "tensor/matmul.h"

namespace hearth {

class Model;

// The stages after this process's part of a model split into a pipeline (cluster/pipeline_*):
// the first stage's Context hands them each chunk's hidden states and gets the logits back,
// so runtime/ knows nothing of the transport.
class Downstream {
public:
    virtual ~Downstream() = default;
    // Hands tokens [begin, end) of `batch` on to the later stages, from `hidden` ((end - begin)
    // x n_embd floats: this stage's output), without waiting for them. `path` is the matmul
    // path the scheduler pinned for these tokens: every stage computes them the same way.
    virtual void submit(const Batch& batch, size_t begin, size_t end, const float* hidden, int32_t n_out,
                        MatmulScratch::Path path) = 0;
    // Waits for the oldest submitted chunk's n_out flagged rows' logits (n_out x n_vocab) and
    // writes them to `logits`; chunks come back in submission order. Throws when a stage
    // fails or does not answer.
    virtual void collect(float* logits, int32_t n_out) = 0;
    // The stages after this process.
    virtual int32_t stages() const = 0;
    void run(const Batch& batch, size_t begin, size_t end, const float* hidden, float* logits, int32_t n_out,
             MatmulScratch::Path path) {
        submit(batch, begin, end, hidden, n_out, path);
        collect(logits, n_out);
    }
};

struct ContextParams;

// A model split into pipeline stages over several processes, as the daemon's runner uses it
// (server/runner.cpp; implemented by cluster/pipeline_group.*): rank 0 loads its layers and
// the group's other ranks load the rest.
class StageGroup {
public:
    virtual ~StageGroup() = default;
    // Tells the later stages to load their layers of the model at `path` (the same path on
    // every machine) and returns rank 0's part. Throws when a stage cannot load it.
    virtual LoadOptions open_model(const std::string& path) = 0;
    // Tells them to make their contexts like `params` (fresh KV caches); returns the
    // Downstream for rank 0's Context.
    virtual Downstream* open_context(const ContextParams& params) = 0;
};

struct ContextParams {
    int32_t n_ctx = 0;      // positions per sequence; 0 = min(model's training context, 4096)
    int32_t n_batch = 512;  // tokens per forward pass (longer batches are split)
    int32_t n_threads = 0;  // 0 = physical cores
    GgmlType kv_type = GgmlType::F16;
    int32_t n_seq = 1;      // sequences that may be cached at once
    int32_t n_kv_blocks = 0;  // KV blocks in the pool; 0 = n_seq full contexts' worth
};

class Context {
public:
    Context(const Model& model, ContextParams params);

    // Runs the batch, appending each token's K/V at its (seq, pos). Throws
    // std::invalid_argument for tokens, positions or sequences out of range,
    // std::runtime_error when the KV cache has no room, and std::logic_error when a token
    // would write into a KV block shared with another sequence or the prefix cache.
    // Returns the number of logit rows.
    int32_t decode(const Batch& batch);
    // A pipeline's first stage (a model loaded with a layer range that ends early): decode()
    // runs this process's layers and passes each chunk on to `d` for the rest.
    void set_downstream(Downstream* d) {
        downstream_ = d;
        in_flight_.clear();
    }
    // Micro-batches (runtime/scheduler.cpp): with a Downstream, submit() runs this process's
    // layers over `batch` and hands it on without waiting, so this stage can start the next
    // batch while the later ones work on it; collect() waits for the oldest submitted batch
    // and makes its logits rows logits(0..n_out). Without one, submit() decodes and collect()
    // returns that batch's rows. pipeline_depth(): the stages, i.e. the micro-batches worth
    // keeping in flight (1 without a pipeline).
    int32_t pipeline_depth() const { return downstream_ ? 1 + downstream_->stages() : 1; }
    void submit(const Batch& batch);
    int32_t collect();
    size_t in_flight() const { return in_flight_.size(); }
    // A later pipeline stage: runs this model's layers over `batch` (one chunk, at most
    // n_batch tokens) from the previous stage's hidden states `in` (batch.size() x n_embd).
    // Each sequence's cached positions from its first position in the batch on are dropped
    // first (the first stage decides what is cached). Returns the output: hidden states
    // (batch.size() x n_embd) or, in the last stage, the flagged rows' logits (n_out x n_vocab).
    const std::vector<float>& decode_stage(const Batch& batch, const float* in);
    // Embeddings mode: decode() writes each flagged row's final hidden state (after the output
    // norm, n_embd floats) to embeddings(row) instead of computing logits.
    void set_embeddings_mode(bool on) { embeddings_mode_ = on; }
    bool embeddings_mode() const { return embeddings_mode_; }
    const float* embeddings(int32_t row) const { return embd_.data() + static_cast<size_t>(row) * static_cast<size_t>(n_embd_); }
    std::vector<float>& embeddings_buffer() { return embd_; }
    const float* logits(int32_t row) const { return logits_.data() + static_cast<size_t>(row) * static_cast<size_t>(n_vocab_); }
    int32_t n_vocab() const { return n_vocab_; }
    int32_t n_ctx() const { return params_.n_ctx; }
    int32_t n_batch() const { return params_.n_batch; }
    int32_t n_threads() const { return pool_.size(); }
    int32_t n_seq() const { return params_.n_seq; }

    void clear(int32_t seq);  // forget a sequence's cached positions
    void clear_all();
    void truncate(int32_t seq, int32_t n_pos) { kv_.truncate(seq, n_pos); }

    const Model& model() const { return model_; }
    KvCache& kv() { return kv_; }
    ThreadPool& pool() { return pool_; }
    ForwardScratch& scratch() { return scratch_; }
    std::vector<float>& logits_buffer() { return logits_; }

private:
    const Model& model_;
    ContextParams params_;
    int32_t n_vocab_;
    ThreadPool pool_;
    KvCache kv_;
    ForwardScratch scratch_;
    std::vector<float> logits_;
    std::vector<float> embd_;
    int32_t n_embd_ = 0;
    bool embeddings_mode_ = false;
    std::vector<int32_t> min_pos_, max_pos_;  // per sequence, reused by decode
    Downstream* downstream_ = nullptr;
    std::deque<std::vector<int32_t>> in_flight_;  // per submitted batch: its chunks' n_out
    std::vector<float> stage_out_;  // a pipeline stage's hidden states
    // Checks ids/positions/sequences and reserves each sequence's KV rows; returns n_out.
    int32_t check_and_reserve(const Batch& batch, bool truncate_first);
};

}  // namespace hearth
