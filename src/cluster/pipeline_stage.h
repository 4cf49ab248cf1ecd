// pipeline_stage.*: the pipeline's stages over a Comm (pipeline_comm.h): how the layers are
// split between ranks, the messages between stages, the first stage's Downstream (runtime/
// context.h: rank 0's Context hands each chunk on and waits for its logits) and the loop
// every later rank runs.
//
// Messages (one Comm message each, little-endian host layout: the ranks run one binary):
//   Batch  rank r -> r+1: header (with the matmul path rank 0's scheduler pinned), then n token ids, positions, sequence ids (int32), n logits
//          flags (bytes, padded to 4), then n x n_embd floats: the hidden states after rank
//          r's layers.
//   Logits last rank -> 0: header, then n_out x n_vocab floats (only the flagged rows).
//   Quit   rank r -> r+1: the group is done; each rank passes it on and returns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/pipeline_comm.h"
#include "runtime/context.h"

namespace hearth {
class Model;
namespace gguf {
class File;
}
}  // namespace hearth

namespace hearth::pipeline {

// Every message starts with this header; the daemon's group (pipeline_group.*) adds its
// control messages (Hello, Open, Configure, Ready, Error) to the kinds.
enum class Kind : uint32_t { Batch = 1, Logits = 2, Quit = 3, Open = 4, Configure = 5, Ready = 6, Error = 7, Hello = 8 };
struct Header {
    uint32_t kind = 0;
    uint32_t n = 0;      // Batch: tokens; Open/Configure/Error: payload bytes
    uint32_t n_out = 0;  // flagged rows
    uint32_t n_embd = 0;
    uint32_t path = 0;   // Batch: the pinned MatmulScratch::Path of its tokens
};
Header read_header(const std::vector<uint8_t>& msg);  // throws on a short message

// Layers [begin, end) of one stage.
struct StageRange {
    int32_t begin = 0, end = 0;
};

// The layer ranges of n_stages stages of the model in `f` (n_layer layers). spec "auto":
// contiguous ranges of about equal weight bytes (blk.N.* tensors; the last stage also counts
// the output matrix, which it streams every token), or, given each rank's memory budget
// (`budgets`, one per stage), bytes in proportion to the budgets; "11,11": layer counts per
// stage (must add up to n_layer). Every stage gets at least one layer. With budgets, a
// split whose stage's weights exceed its rank's budget is refused. Throws std::invalid_argument.
std::vector<StageRange> split_layers(const gguf::File& f, int32_t n_layer, int n_stages, const std::string& spec,
                                     const std::vector<uint64_t>& budgets = {});
// The model's layer count (<arch>.block_count); throws std::invalid_argument without one.
int32_t layer_count(const gguf::File& f);
// "11,11": the layer counts of `ranges`, a spec split_layers takes.
std::string counts_of(const std::vector<StageRange>& ranges);
// The same from a model file path (reads only the header and tensor table).
std::vector<StageRange> split_layers(const std::string& path, int n_stages, const std::string& spec);

// "0-11 | 11-22" for logs.
std::string describe(const std::vector<StageRange>& ranges);

// Rank 0's side: the later stages behind a Comm. submit() sends a chunk to rank 1; collect()
// waits for the last rank's logits of the oldest one (a CommError when none come within
// timeout_ms, if >= 0).
class CommDownstream final : public Downstream {
public:
    CommDownstream(Comm& comm, const Model& model, int timeout_ms = -1);
    CommDownstream(Comm& comm, int32_t n_embd, int32_t n_vocab, int timeout_ms = -1)
        : comm_(comm), n_embd_(n_embd), n_vocab_(n_vocab), timeout_ms_(timeout_ms) {}
    void submit(const Batch& batch, size_t begin, size_t end, const float* hidden, int32_t n_out,
                MatmulScratch::Path path) override;
    void collect(float* logits, int32_t n_out) override;
    int32_t stages() const override { return comm_.size() - 1; }
    // Sends Quit down the pipeline (once; the later ranks then return from run_stage).
    void finish();
    // Called (before run() throws) when the last stage does not answer in time: the
    // daemon's watchdog tears the group down there.
    void on_timeout(std::function<void()> f) { on_timeout_ = std::move(f); }

private:
    Comm& comm_;
    int32_t n_embd_, n_vocab_;
    int timeout_ms_;
    bool finished_ = false;
    std::vector<uint8_t> msg_, reply_;
    std::function<void()> on_timeout_;
    double wait_s_ = 0;  // in collect (HEARTH_PIPELINE_STATS)
    int64_t collected_ = 0;
};

// This process's part of a pipeline group: its Comm, every stage's layers, and its model
// (loaded with only its own layers).
struct Member {
    Comm* comm = nullptr;
    std::vector<StageRange> ranges;
    std::unique_ptr<Model> model;
    int rank() const { return comm->rank(); }
    int size() const { return comm->size(); }
};
// Splits the model in `path` between comm's ranks (split_layers) and loads this rank's part.
Member join(Comm& comm, const std::string& path, const std::string& split);

// The Context a later stage makes for rank 0's `p`: a full context for every sequence slot,
// since rank 0's scheduler decides what is cached and a later stage frees a finished
// sequence's blocks only when its slot is used again (Context::decode_stage).
ContextParams later_stage_params(ContextParams p);

// A later rank's loop: receives chunks from rank - 1, runs its layers (Context::decode_stage)
// and passes the hidden states on, or (the last rank) sends the logits to rank 0; returns at
// Quit. An error here (a bad message, the KV cache full) is fatal to the group: it is
// written to stderr and the group aborted (Comm::abort).
void run_stage(Context& ctx, Comm& comm);
// One Batch message `msg` (from rank - 1) through ctx, the result sent on (run_stage's step;
// `out` and `batch` are reused buffers). Throws on a malformed message.
void stage_batch(Context& ctx, Comm& comm, std::vector<uint8_t>& msg, std::vector<uint8_t>& out, Batch& batch);

}  // namespace hearth::pipeline
