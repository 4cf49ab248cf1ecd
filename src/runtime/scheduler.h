// The serving engine's scheduler: continuous batching over one Context. Every step() runs
// ONE forward pass over a decode token of every running sequence plus chunks of prompts
// being prefilled (chunked prefill within a per-step token budget), then samples, streams
// and stops each sequence on its own (sampler, stop strings, grammar, detokenizer).
// Sequences share the Context's paged KV pool through slot ids; full blocks go to a prefix
// cache so a later prompt with the same beginning only computes the rest. When a sequence
// needs a block and none is free (after evicting cached-only blocks), the newest running
// sequence is preempted: its blocks are freed and it is recomputed later from its prompt
// and the tokens it already produced; its output stream just continues.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/batch.h"
#include "runtime/prefix_cache.h"
#include "sampling/grammar.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace hearth {

class Context;

// What a sequence reports when it ends.
struct SeqResult {
    std::string reason;        // "stop" (EOS/EOT, stop string, grammar end), "length", "cancelled", "error"
    std::string error;         // reason "error": the message
    std::vector<int32_t> generated;  // ids (EOS/EOT excluded)
    int32_t n_prompt = 0;
    int32_t n_cached = 0;      // prompt tokens served from the prefix cache at first admission
    std::chrono::nanoseconds prompt_time{0};  // first admission -> first token sampled
    std::chrono::nanoseconds gen_time{0};     // first token -> end
    int32_t preemptions = 0;
};

struct SeqRequest {
    std::vector<int32_t> prompt;
    int32_t n_predict = -1;  // < 0: until the end of generation or of the context
    SamplingParams sampling;
    std::vector<std::string> stop;
    std::shared_ptr<const Grammar> grammar;  // null: unconstrained
    bool render_special = false;
    std::shared_ptr<const std::atomic<bool>> cancel;  // checked before every step
    // Called on the scheduler's thread. on_token: a generated id (-1 for the final text held
    // back by the detokenizer / stop matcher) and its new text (possibly empty); `sample`
    // is the draw (log-probabilities) or null for the final text.
    std::function<void(int32_t id, std::string text, const SampleResult* sample)> on_token;
    std::function<void(const SeqResult&)> on_done;
    std::function<void(int32_t cached_tokens)> on_admit;  // first admission only
    std::function<void()> on_preempt;
};

struct SchedulerParams {
    int32_t max_running = 4;  // sequences decoded together (<= the context's n_seq)
    int32_t step_tokens = 0;  // tokens per forward pass; 0: the context's n_batch
    bool prefix_cache = true;
};

struct SchedulerGauges {
    int64_t running = 0, waiting = 0;
    int64_t kv_used = 0, kv_total = 0, kv_cached = 0;  // blocks; cached: held only by the prefix cache
};

class Scheduler {
public:
    Scheduler(Context& ctx, SchedulerParams params);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queues a sequence. Throws std::invalid_argument (nothing queued, no callback) when the
    // prompt is empty or longer than the context.
    void submit(SeqRequest req);
    // One forward pass (and the sampling after it). Cancelled sequences are removed first,
    // their blocks freed at once. Returns false when there was nothing to do.
    bool step();
    bool has_work() const { return !running_.empty() || !waiting_.empty(); }
    size_t active() const { return running_.size() + waiting_.size(); }
    SchedulerGauges gauges() const;
    int64_t preemptions() const { return preemptions_; }
    Context& context() { return ctx_; }
    PrefixCache& prefix_cache() { return cache_; }

private:
    struct Seq;
    using SeqPtr = std::unique_ptr<Seq>;

    void remove_cancelled();
    void admit();
    bool ensure_blocks(int32_t slot, int32_t n_pos);  // evicts cached blocks as needed
    void preempt(SeqPtr& s);
    bool preempt_newest(const Seq* except);
    void finish(Seq& s, const std::string& reason);
    void register_full_blocks(Seq& s);
    void release(Seq& s);
    void fail_all(const std::string& message);
    bool run_pass(bool prompt);
    // Micro-batches (a model split into pipeline stages, Context::pipeline_depth() > 1): each
    // step submits the next group of sequences that are not in flight (about running / depth
    // of them) and collects the oldest group once depth groups are in flight, so every stage
    // has work; each sequence's tokens are computed exactly as in step()'s passes.
    struct MicroBatch {
        std::vector<Seq*> seqs;
        std::vector<uint64_t> epochs;  // a sequence released meanwhile (preempted, ended) is skipped
        std::vector<int32_t> n, row;
    };
    bool step_pipelined();
    bool submit_pass(const std::vector<Seq*>& pick, bool prompt);
    bool collect_oldest();
    void drop_in_flight(const std::string& message);
    std::deque<MicroBatch> flight_;
    void sample(Seq& s, int32_t row);
    void emit_tail(Seq& s);

    Context& ctx_;
    SchedulerParams params_;
    PrefixCache cache_;
    const Tokenizer& tok_;
    std::vector<SeqPtr> running_;  // admission order (oldest first)
    std::deque<SeqPtr> waiting_;   // preempted ones at the front
    std::vector<int32_t> free_slots_;
    std::vector<float> logits_;    // one row kept for grammar re-sampling
    Batch batch_;                  // reused by every pass
    std::vector<int32_t> row_of_;  // per running sequence: its logits row in the pass, or -1
    std::vector<int32_t> pass_n_;  // per running sequence: its tokens in the pass
    uint64_t next_id_ = 0;
    int64_t preemptions_ = 0;
};

}  // namespace hearth
