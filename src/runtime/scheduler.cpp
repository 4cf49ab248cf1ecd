#include "runtime/scheduler.h"

#include <algorithm>
#include <stdexcept>

#include "model/model.h"
#include "model/batch.h"
#include "runtime/context.h"
#include "tensor/matmul.h"

namespace hearth {

using SteadyClock = std::chrono::steady_clock;

struct Scheduler::Seq {
    Seq(SeqRequest r, const Tokenizer& tok, uint64_t seq_id)
        : req(std::move(r)),
          id(seq_id),
          tokens(req.prompt),
          n_prompt(static_cast<int32_t>(req.prompt.size())),
          sampler(req.sampling),
          stops(req.stop),
          detok(tok, req.render_special) {
        if (req.grammar) grammar.emplace(req.grammar, tok);
        for (int32_t t : tokens) sampler.accept(t);
        result.n_prompt = n_prompt;
    }

    SeqRequest req;
    uint64_t id;                  // arrival order: the newest has the largest
    int32_t slot = -1;            // KV sequence while admitted
    std::vector<int32_t> tokens;  // prompt + generated; the last one's KV is not computed yet
    int32_t n_prompt;
    int32_t n_computed = 0;       // positions whose K/V are in the cache
    int32_t n_registered = 0;     // leading full blocks handed to the prefix cache
    uint64_t chain_key = 0;       // prefix-cache key of block n_registered - 1 (0: unknown)
    int32_t step_n = 0;           // tokens scheduled in the current step
    int32_t in_flight = 0;        // micro-batches holding this sequence's tokens (step_pipelined)
    uint64_t epoch = 0;           // bumped whenever the slot is released
    Sampler sampler;
    StopMatcher stops;
    StreamDecoder detok;
    std::optional<GrammarConstraint> grammar;
    SeqResult result;
    bool admitted = false, done = false, prefilled = false;
    SteadyClock::time_point t_admit, t_prefilled;

    bool cancelled() const { return req.cancel && req.cancel->load(); }
    int32_t pending() const { return static_cast<int32_t>(tokens.size()) - n_computed; }
};

Scheduler::Scheduler(Context& ctx, SchedulerParams params)
    : ctx_(ctx), params_(params), cache_(ctx.kv()), tok_(ctx.model().tokenizer()) {
    if (params_.max_running <= 0) throw std::invalid_argument("the number of parallel sequences must be positive");
    if (params_.max_running > ctx.n_seq())
        throw std::invalid_argument("the context holds " + std::to_string(ctx.n_seq()) + " sequences, fewer than " +
                                    std::to_string(params_.max_running));
    if (params_.step_tokens <= 0) params_.step_tokens = ctx.n_batch();
    const int32_t bs = ctx.kv().block_size();
    const int32_t per_seq = (ctx.n_ctx() + bs - 1) / bs;
    if (ctx.kv().n_blocks() < per_seq)
        throw std::invalid_argument("the KV cache has " + std::to_string(ctx.kv().n_blocks()) + " blocks, fewer than the " +
                                    std::to_string(per_seq) + " one sequence of " + std::to_string(ctx.n_ctx()) +
                                    " positions needs");
    for (int32_t s = params_.max_running - 1; s >= 0; --s) free_slots_.push_back(s);
    logits_.resize(static_cast<size_t>(ctx.n_vocab()));
}

Scheduler::~Scheduler() {
    // Micro-batches still in flight are collected (and dropped), so the pipeline's later
    // stages hold no answers for the next scheduler over this context.
    try {
        while (ctx_.in_flight() > 0) ctx_.collect();
    } catch (const std::exception&) {
    }
    for (auto& s : running_) ctx_.kv().release(s->slot);
    cache_.clear();
}

void Scheduler::submit(SeqRequest req) {
    const int32_t n = static_cast<int32_t>(req.prompt.size());
    if (n == 0) throw std::invalid_argument("the prompt is empty");
    if (n > ctx_.n_ctx())
        throw std::invalid_argument("the prompt has " + std::to_string(n) + " tokens, more than the context length of " +
                                    std::to_string(ctx_.n_ctx()) + " tokens");
    for (int32_t t : req.prompt)
        if (t < 0 || t >= ctx_.n_vocab())
            throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary (" +
                                        std::to_string(ctx_.n_vocab()) + " tokens)");
    waiting_.push_back(std::make_unique<Seq>(std::move(req), tok_, next_id_++));
}

SchedulerGauges Scheduler::gauges() const {
    SchedulerGauges g;
    g.running = static_cast<int64_t>(running_.size());
    g.waiting = static_cast<int64_t>(waiting_.size());
    g.kv_used = ctx_.kv().used_blocks();
    g.kv_total = ctx_.kv().n_blocks();
    g.kv_cached = cache_.evictable();
    return g;
}

bool Scheduler::ensure_blocks(int32_t slot, int32_t n_pos) {
    KvCache& kv = ctx_.kv();
    const int32_t need = kv.blocks_needed(slot, n_pos);
    if (need > kv.free_blocks()) cache_.evict(need - kv.free_blocks());
    return kv.reserve(slot, n_pos);
}

// Hands the sequence's newly full computed blocks to the prefix cache.
void Scheduler::register_full_blocks(Seq& s) {
    if (!params_.prefix_cache || s.slot < 0) return;
    KvCache& kv = ctx_.kv();
    const int32_t full = s.n_computed / kv.block_size();
    if (full <= s.n_registered) return;
    cache_.insert(s.tokens, kv.table(s.slot), s.n_registered, full, &s.chain_key);
    s.n_registered = full;
}

// Gives the sequence's slot back; its full computed blocks stay in the prefix cache.
void Scheduler::release(Seq& s) {
    if (s.slot < 0) return;
    KvCache& kv = ctx_.kv();
    register_full_blocks(s);
    kv.release(s.slot);
    free_slots_.push_back(s.slot);
    s.slot = -1;
    s.epoch++;
    s.n_computed = 0;
    s.n_registered = 0;
    s.chain_key = 0;
}

void Scheduler::emit_tail(Seq& s) {
    std::string rest = s.stops.push(s.detok.flush());
    if (s.stops.stopped()) s.result.reason = "stop";
    else rest += s.stops.flush();
    if (!rest.empty() && s.req.on_token) s.req.on_token(-1, std::move(rest), nullptr);
}

void Scheduler::finish(Seq& s, const std::string& reason) {
    s.result.reason = reason;
    if (reason != "cancelled" && reason != "error" && !s.stops.stopped()) emit_tail(s);
    const auto now = SteadyClock::now();
    if (s.admitted) {
        const auto prefilled = s.prefilled ? s.t_prefilled : now;
        s.result.prompt_time = prefilled - s.t_admit;
        s.result.gen_time = now - prefilled;
    }
    release(s);
    s.done = true;
    if (s.req.on_done) s.req.on_done(s.result);
}

void Scheduler::remove_cancelled() {
    for (auto& s : running_)
        if (s->cancelled() && !s->done) finish(*s, "cancelled");
    // A sequence in a micro-batch in flight stays until that batch is collected.
    std::erase_if(running_, [](const SeqPtr& s) { return s->done && s->in_flight == 0; });
    for (auto& s : waiting_)
        if (s->cancelled()) finish(*s, "cancelled");
    std::erase_if(waiting_, [](const SeqPtr& s) { return s->done; });
}

void Scheduler::preempt(SeqPtr& sp) {
    Seq& s = *sp;
    release(s);
    s.result.preemptions++;
    preemptions_++;
    if (s.req.on_preempt) s.req.on_preempt();
    waiting_.push_front(std::move(sp));
}

// Preempts the newest running sequence (other than `except`); false when there is none.
bool Scheduler::preempt_newest(const Seq* except) {
    for (size_t i = running_.size(); i-- > 0;) {
        if (running_[i].get() == except || running_[i]->in_flight > 0 || running_[i]->done) continue;
        preempt(running_[i]);
        running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
    }
    return false;
}

void Scheduler::admit() {
    KvCache& kv = ctx_.kv();
    const int32_t bs = kv.block_size();
    while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < params_.max_running && !free_slots_.empty()) {
        Seq& s = *waiting_.front();
        const int32_t slot = free_slots_.back();
        // Reuse the longest cached run of whole blocks, leaving at least one token to compute
        // so the step has logits to sample from.
        int32_t cached = 0;
        if (params_.prefix_cache) {
            const int32_t max_blocks = (static_cast<int32_t>(s.tokens.size()) - 1) / bs;
            const std::vector<int32_t> blocks = cache_.lookup(s.tokens, max_blocks, &s.chain_key);
            kv.attach(slot, blocks);
            cached = static_cast<int32_t>(blocks.size());
        }
        // Blocks for everything still to compute are reserved now, so prefill never stalls.
        if (!ensure_blocks(slot, static_cast<int32_t>(s.tokens.size()))) {
            kv.release(slot);
            break;  // first come, first served: later ones wait too
        }
        free_slots_.pop_back();
        s.slot = slot;
        s.n_computed = cached * bs;
        s.n_registered = cached;
        if (!s.admitted) {
            s.admitted = true;
            s.t_admit = SteadyClock::now();
            s.result.n_cached = std::min(s.n_computed, s.n_prompt);
            if (s.req.on_admit) s.req.on_admit(s.result.n_cached);
        }
        // Running stays in arrival order (a re-admitted preempted sequence goes back in its place).
        SeqPtr sp = std::move(waiting_.front());
        waiting_.pop_front();
        auto at = std::upper_bound(running_.begin(), running_.end(), sp->id,
                                   [](uint64_t id, const SeqPtr& o) { return id < o->id; });
        running_.insert(at, std::move(sp));
    }
}

void Scheduler::fail_all(const std::string& message) {
    for (auto& s : running_) {
        if (s->done) continue;
        s->result.error = message;
        finish(*s, "error");
    }
    running_.clear();
}

void Scheduler::sample(Seq& s, int32_t row) {
    if (!s.prefilled) {
        s.prefilled = true;
        s.t_prefilled = SteadyClock::now();
    }
    if (s.req.n_predict == 0) return finish(s, "length");
    const int32_t n_vocab = ctx_.n_vocab();
    float* logits = ctx_.logits_buffer().data() + static_cast<size_t>(row) * static_cast<size_t>(n_vocab);
    // Structured output: sample freely first; only when the grammar rejects the token mask
    // the logits and sample again (most steps need no full mask).
    if (s.grammar) std::copy(logits, logits + n_vocab, logits_.begin());
    SampleResult r = s.sampler.sample(logits, n_vocab);
    if (s.grammar && !s.grammar->allows(r.id)) {
        s.grammar->apply(logits_.data(), n_vocab);
        r = s.sampler.sample(logits_.data(), n_vocab);
        if (!s.grammar->allows(r.id)) return finish(s, "stop");  // no token can continue
    }
    if (tok_.is_eog(r.id)) return finish(s, "stop");
    if (s.grammar) s.grammar->accept(r.id);
    s.sampler.accept(r.id);
    s.tokens.push_back(r.id);
    s.result.generated.push_back(r.id);
    std::string text = s.stops.push(s.detok.push(r.id));
    if (s.req.on_token) s.req.on_token(r.id, std::move(text), &r);
    if (s.stops.stopped() || (s.grammar && s.grammar->done())) return finish(s, "stop");
    const int32_t n_gen = static_cast<int32_t>(s.result.generated.size());
    if (s.req.n_predict > 0 && n_gen >= s.req.n_predict) return finish(s, "length");
    // The new token would sit at position tokens.size() - 1: past the context, "length".
    if (static_cast<int32_t>(s.tokens.size()) - 1 >= ctx_.n_ctx()) return finish(s, "length");
}

bool Scheduler::step() {
    if (ctx_.pipeline_depth() > 1 || !flight_.empty()) return step_pipelined();
    remove_cancelled();
    admit();
    if (running_.empty()) {
        if (waiting_.empty()) return false;
        // Nothing runs and the oldest waiting sequence still does not fit: cannot happen with
        // a pool of at least one context (checked at construction), but never spin.
        auto& s = waiting_.front();
        s->result.error = "the KV cache has no room for the prompt";
        finish(*s, "error");
        waiting_.pop_front();
        return true;
    }
    // Decode tokens first, oldest sequence first: each may need a new block; when none is
    // left even after evicting cached blocks, the newest running sequence is preempted.
    for (size_t i = 0; i < running_.size(); ++i) {
        Seq& s = *running_[i];
        s.step_n = 0;
        if (s.pending() != 1) continue;
        bool ok = ensure_blocks(s.slot, s.n_computed + 1);
        while (!ok) {
            if (running_.back().get() == &s) {  // itself the newest: it waits
                preempt(running_.back());
                running_.pop_back();
                break;
            }
            preempt_newest(&s);
            ok = ensure_blocks(s.slot, s.n_computed + 1);
        }
        if (!ok) break;  // s was the last one
        s.step_n = 1;
    }
    // Then prompt chunks (their blocks were reserved at admission) within the token budget.
    int32_t budget = params_.step_tokens;
    for (auto& sp : running_) budget -= sp->step_n;
    for (auto& sp : running_) {
        Seq& s = *sp;
        if (s.pending() <= 1 || s.step_n > 0) continue;
        s.step_n = std::min(s.pending(), std::max(0, budget));
        budget -= s.step_n;
    }
    if (std::all_of(running_.begin(), running_.end(), [](const SeqPtr& s) { return s->step_n == 0; }))
        return true;  // everything was preempted this round; the next step admits again
    // Prompt tokens and generated tokens go through separate passes with the matmul path
    // pinned (prompt: GEMM, generated: dot kernels), so every token is computed the same
    // way whatever it is batched with; prompts first, as a recomputed (preempted) sequence
    // may have both and its generated tokens attend to its prompt.
    if (run_pass(true)) run_pass(false);
    std::erase_if(running_, [](const SeqPtr& s) { return s->done; });
    return true;
}

// One forward pass over the scheduled tokens of one kind, then the cache bookkeeping and
// sampling of the sequences whose last known token was in it. False when decode failed.
bool Scheduler::run_pass(bool prompt) {
    batch_.clear();
    row_of_.assign(running_.size(), -1);
    pass_n_.assign(running_.size(), 0);
    int32_t rows = 0;
    for (size_t i = 0; i < running_.size(); ++i) {
        Seq& s = *running_[i];
        if (s.done || s.step_n == 0) continue;
        const int32_t end = s.n_computed + s.step_n;
        const int32_t p0 = prompt ? s.n_computed : std::max(s.n_computed, s.n_prompt);
        const int32_t p1 = prompt ? std::min(end, s.n_prompt) : end;
        for (int32_t p = p0; p < p1; ++p) {
            const bool last = p + 1 == static_cast<int32_t>(s.tokens.size());
            batch_.add(s.tokens[static_cast<size_t>(p)], p, s.slot, last);
            if (last) row_of_[i] = rows++;
        }
        pass_n_[i] = std::max(0, p1 - p0);
    }
    if (batch_.size() == 0) return true;
    auto& path = ctx_.scratch().mm.path;
    path = prompt ? MatmulScratch::Path::Gemm : MatmulScratch::Path::Dot;
    try {
        ctx_.decode(batch_);
    } catch (const std::exception& e) {
        path = MatmulScratch::Path::BySize;
        fail_all(e.what());
        return false;
    }
    path = MatmulScratch::Path::BySize;
    for (size_t i = 0; i < running_.size(); ++i) {
        Seq& s = *running_[i];
        if (pass_n_[i] == 0) continue;
        s.n_computed += pass_n_[i];
        s.step_n -= pass_n_[i];
        register_full_blocks(s);
        if (row_of_[i] >= 0) sample(s, row_of_[i]);
    }
    return true;
}

bool Scheduler::step_pipelined() {
    remove_cancelled();
    admit();
    const size_t depth = static_cast<size_t>(std::max(1, ctx_.pipeline_depth()));
    if (running_.empty() && flight_.empty()) {
        if (waiting_.empty()) return false;
        auto& s = waiting_.front();  // as in step(): never spin on a prompt that cannot fit
        s->result.error = "the KV cache has no room for the prompt";
        finish(*s, "error");
        waiting_.pop_front();
        return true;
    }
    bool submitted = false;
    if (flight_.size() < depth) {
        // The next group: the oldest sequences not in flight, about running / depth of them.
        const size_t k = (running_.size() + depth - 1) / depth;
        std::vector<Seq*> pick;
        for (auto& sp : running_)
            if (!sp->done && sp->in_flight == 0 && pick.size() < k) pick.push_back(sp.get());
        // Decode tokens first (each may need a block; only sequences not in flight are
        // preempted for it), then prompt chunks within the token budget.
        for (Seq* s : pick) {
            s->step_n = 0;
            if (s->slot < 0 || s->pending() != 1) continue;
            bool ok = ensure_blocks(s->slot, s->n_computed + 1);
            while (!ok && preempt_newest(s)) ok = ensure_blocks(s->slot, s->n_computed + 1);
            if (ok) s->step_n = 1;
        }
        int32_t budget = params_.step_tokens;
        for (Seq* s : pick) budget -= s->step_n;
        for (Seq* s : pick) {
            if (s->slot < 0 || s->pending() <= 1 || s->step_n > 0) continue;
            s->step_n = std::min(s->pending(), std::max(0, budget));
            budget -= s->step_n;
        }
        std::erase_if(pick, [](Seq* s) { return s->slot < 0 || s->step_n == 0; });
        if (!pick.empty()) {
            const size_t before = flight_.size();
            if (!submit_pass(pick, true) || !submit_pass(pick, false)) return true;
            submitted = flight_.size() > before;
        }
    }
    if (!flight_.empty() && (flight_.size() >= depth || !submitted)) collect_oldest();
    std::erase_if(running_, [](const SeqPtr& s) { return s->done && s->in_flight == 0; });
    return true;
}

// Submits one pass (prompt or generated tokens, the matmul path pinned as in run_pass) over
// the picked sequences as a micro-batch. False when it failed (everything was ended).
bool Scheduler::submit_pass(const std::vector<Seq*>& pick, bool prompt) {
    batch_.clear();
    MicroBatch mb;
    int32_t rows = 0;
    for (Seq* sp : pick) {
        Seq& s = *sp;
        const int32_t end = s.n_computed + s.step_n;
        const int32_t p0 = prompt ? s.n_computed : std::max(s.n_computed, s.n_prompt);
        const int32_t p1 = prompt ? std::min(end, s.n_prompt) : end;
        if (p1 <= p0) continue;
        int32_t row = -1;
        for (int32_t p = p0; p < p1; ++p) {
            const bool last = p + 1 == static_cast<int32_t>(s.tokens.size());
            batch_.add(s.tokens[static_cast<size_t>(p)], p, s.slot, last);
            if (last) row = rows++;
        }
        mb.seqs.push_back(sp);
        mb.epochs.push_back(s.epoch);
        mb.n.push_back(p1 - p0);
        mb.row.push_back(row);
    }
    if (batch_.size() == 0) return true;
    auto& path = ctx_.scratch().mm.path;
    path = prompt ? MatmulScratch::Path::Gemm : MatmulScratch::Path::Dot;
    try {
        ctx_.submit(batch_);
    } catch (const std::exception& e) {
        path = MatmulScratch::Path::BySize;
        drop_in_flight(e.what());
        return false;
    }
    path = MatmulScratch::Path::BySize;
    for (Seq* s : mb.seqs) s->in_flight++;
    // The scheduled tokens are accounted for at once (the sequence is not scheduled again
    // until the batch is back); n_computed moves when the batch is collected.
    for (size_t i = 0; i < mb.seqs.size(); ++i) mb.seqs[i]->step_n -= mb.n[i];
    flight_.push_back(std::move(mb));
    return true;
}

bool Scheduler::collect_oldest() {
    MicroBatch mb = std::move(flight_.front());
    flight_.pop_front();
    for (Seq* s : mb.seqs) s->in_flight--;
    try {
        ctx_.collect();
    } catch (const std::exception& e) {
        drop_in_flight(e.what());
        return false;
    }
    for (size_t i = 0; i < mb.seqs.size(); ++i) {
        Seq& s = *mb.seqs[i];
        if (s.done || s.epoch != mb.epochs[i]) continue;  // ended or preempted meanwhile
        s.n_computed += mb.n[i];
        register_full_blocks(s);
        if (mb.row[i] >= 0) sample(s, mb.row[i]);
    }
    return true;
}

// A pass that failed (a stage gone or silent): every sequence ends with the error.
void Scheduler::drop_in_flight(const std::string& message) {
    flight_.clear();
    for (auto& s : running_) s->in_flight = 0;
    fail_all(message);
}

}  // namespace hearth
