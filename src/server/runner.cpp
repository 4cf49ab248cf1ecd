#include "server/runner.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "model/encoder.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/embedding.h"
#include "runtime/kv_cache.h"
#include "runtime/scheduler.h"
#include "tensor/threadpool.h"
#include "server/model_info.h"
#include "server/prompt.h"
#include "server/tool_choice.h"

namespace hearth::server {

namespace {

constexpr int32_t kBlock = 16;  // KV positions per block

int32_t default_ctx(const Model& m) {
    const int32_t train = m.hparams().n_ctx_train;
    return std::min(train > 0 ? train : 4096, 4096);
}

int32_t wanted_ctx(const Model& m, const GenerateJob& job) {
    if (job.num_ctx <= 0) return default_ctx(m);
    const int32_t train = m.hparams().n_ctx_train;
    return train > 0 ? std::min(job.num_ctx, train) : job.num_ctx;
}

// The KV pool of a model: HEARTH_KV_BLOCKS, or num_parallel full contexts capped by what the
// memory budget leaves beside the weights; never less than one full context, so every
// request that fits its context can run (alone, if need be).
struct KvPlan {
    int32_t blocks = 0;
    uint64_t bytes = 0;
};

KvPlan plan_kv(const Model& m, int32_t n_ctx, const ManagerOptions& o, uint64_t weights, uint64_t budget) {
    if (m.is_encoder()) return {};
    const HParams& hp = m.hparams();
    // A pipeline stage caches only its own layers.
    const uint64_t per_block = KvCache::block_bytes(m.layer_end() - m.layer_begin(), hp.n_head_kv, hp.head_dim, GgmlType::F16, kBlock);
    const int32_t per_seq = (n_ctx + kBlock - 1) / kBlock;
    int64_t blocks = 0;
    if (o.kv_blocks > 0) {
        blocks = std::max<int64_t>(o.kv_blocks, per_seq);
    } else {
        blocks = int64_t(std::max(1, o.num_parallel)) * per_seq;
        const uint64_t room = budget > weights ? budget - weights : 0;
        if (uint64_t(blocks) * per_block > room) blocks = std::max<int64_t>(per_seq, int64_t(room / per_block));
    }
    return {static_cast<int32_t>(blocks), uint64_t(blocks) * per_block};
}

TokenProb token_prob(const Tokenizer& tok, const SampleResult& s) {
    TokenProb p;
    p.token = tok.token_to_piece(s.id, true);
    p.logprob = s.logprob;
    for (const TokenLogprob& t : s.top) p.top.emplace_back(tok.token_to_piece(t.id, true), t.logprob);
    return p;
}

}  // namespace

Runner::Runner(ModelManager& mgr, ResolvedModel model, Request first) : mgr_(mgr), model_(std::move(model)) {
    queue_.push_back(std::move(first));
    thread_ = std::thread([this] { loop(); });
}

Runner::~Runner() { join(); }

void Runner::join() {
    if (thread_.joinable()) thread_.join();
}

bool Runner::push(Request&& r, size_t max_queue) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (stopping_ || queue_.size() >= max_queue) return false;
        queue_.push_back(std::move(r));
    }
    cv_.notify_one();
    return true;
}

bool Runner::idle() {
    std::lock_guard<std::mutex> lk(mu_);
    return loaded_ && !busy_ && live_.empty() && queue_.empty() && !stopping_;
}

bool Runner::quiescent() {
    std::lock_guard<std::mutex> lk(mu_);
    return !busy_ && live_.empty() && queue_.empty();
}

void Runner::stop() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
        if (current_) current_->cancelled = true;
        for (auto& st : live_) st->cancelled = true;
    }
    cv_.notify_all();
}

void Runner::cancel_queued(const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    for (Request& r : queue_) r.state->events.push(Event::error(503, why));
    queue_.clear();
}

void Runner::fail_requests(const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    auto fail = [&](const std::shared_ptr<RequestState>& st) {
        if (!st || st->cancelled.exchange(true)) return;  // cancelled already: the client is gone
        st->events.push(Event::error(503, why));
    };
    fail(current_);
    for (auto& st : live_) fail(st);
    for (Request& r : queue_) fail(r.state);
    queue_.clear();
}

LoadedModel Runner::info() {
    std::lock_guard<std::mutex> lk(mu_);
    LoadedModel m;
    m.name = model_.name;
    m.path = model_.path;
    m.digest = model_.digest;
    m.details = details_;
    m.size = loaded_ ? size_ : 0;
    m.context_length = n_ctx_;
    m.forever = forever_;
    m.expires_at = expires_wall_;
    m.busy = busy_ || !live_.empty() || !queue_.empty();
    return m;
}

Clock::time_point Runner::last_used() {
    std::lock_guard<std::mutex> lk(mu_);
    return last_used_;
}

bool Runner::needs_new_context(const GenerateJob& job) const {
    if (!engine_model_ || engine_model_->is_encoder()) return false;
    if (!ctx_) return true;
    return ctx_->n_ctx() != wanted_ctx(*engine_model_, job) || (job.num_batch > 0 && ctx_->n_batch() != job.num_batch);
}

// While sequences run, a queued request is taken between two steps only when it does not
// disturb them: embeddings and loads run at once, a generate request joins the batch when
// there is a free sequence and its context size matches; an unload, or a generate request
// wanting another context size, waits until the batch has drained.
bool Runner::can_take_while_running(const Request& r) const {
    if (r.state->cancelled) return true;
    switch (r.kind) {
    case JobKind::Embed:
    case JobKind::Load: return true;
    case JobKind::Unload: return false;
    case JobKind::Generate:
        return !needs_new_context(r.gen) && static_cast<int>(sched_->active()) < std::max(1, mgr_.options().num_parallel);
    }
    return false;
}

Runner::Action Runner::next_action(std::optional<Request>& job) {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        const bool running = sched_ && sched_->has_work();
        if (!queue_.empty() && (!running || can_take_while_running(queue_.front()))) {
            job.emplace(std::move(queue_.front()));
            queue_.pop_front();
            busy_ = true;
            current_ = job->state;
            return Action::Job;
        }
        if (running) return Action::Step;
        if (stopping_) return Action::Exit;
        if (!loaded_ || (!forever_ && Clock::now() >= expires_at_)) {
            lk.unlock();
            if (mgr_.retire(this)) return Action::Exit;
            lk.lock();
            continue;
        }
        if (forever_) cv_.wait(lk);
        else cv_.wait_until(lk, expires_at_);
    }
}

void Runner::loop() {
    for (;;) {
        std::optional<Request> job;
        const Action a = next_action(job);
        if (a == Action::Exit) break;
        if (a == Action::Step) {
            run_step();
            continue;
        }
        bool joined = false;
        try {
            joined = handle(*job);
        } catch (const std::exception& e) {
            job->state->events.push(Event::error(500, e.what()));
            mgr_.count_done("error");
        }
        {
            std::lock_guard<std::mutex> lk(mu_);
            busy_ = false;
            current_.reset();
        }
        if (!joined) touch(job->kind == JobKind::Unload ? KeepAlive(0) : job->keep_alive.value_or(mgr_.options().keep_alive));
        if (sched_) report_gauges();
    }
    sched_.reset();  // cancelled sequences were answered; frees the prefix cache's blocks
    unload();
    finished_ = true;
    mgr_.notify_idle();
}

void Runner::touch(KeepAlive ka) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        last_used_ = Clock::now();
        forever_ = ka.count() < 0;
        if (!forever_) {
            expires_at_ = last_used_ + ka;
            expires_wall_ = std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(ka);
        }
    }
    mgr_.notify_idle();
}

void Runner::run_step() {
    try {
        sched_->step();
    } catch (const std::exception& e) {  // a bug, not a request's fault: fail what runs, keep serving
        std::fprintf(stderr, "hearth: %s: scheduler step failed: %s\n", model_.name.c_str(), e.what());
        std::vector<std::shared_ptr<RequestState>> states;
        {
            std::lock_guard<std::mutex> lk(mu_);
            states = live_;
        }
        for (auto& st : states) st->cancelled = true;
    }
    report_gauges();
    const auto delay = mgr_.options().debug_token_delay;
    if (delay.count() > 0 && sched_->has_work()) std::this_thread::sleep_for(delay);
}

void Runner::report_gauges() {
    const SchedulerGauges g = sched_->gauges();
    EngineGauges e;
    e.running = g.running;
    e.kv_blocks_used = g.kv_used;
    e.kv_blocks_total = g.kv_total;
    e.kv_blocks_cached = g.kv_cached;
    {
        std::lock_guard<std::mutex> lk(mu_);
        e.waiting = g.waiting + static_cast<int64_t>(queue_.size());
    }
    mgr_.metrics().set_gauges(model_.name, e);
}

void Runner::unload() {
    const bool had = engine_model_ != nullptr;
    sched_.reset();
    ctx_.reset();
    pool_.reset();
    embed_ctx_.reset();
    engine_model_.reset();
    {
        std::lock_guard<std::mutex> lk(mu_);
        loaded_ = false;
        size_ = 0;
    }
    if (had) {
        mgr_.count_unload();
        mgr_.metrics().model_unloaded(model_.name);
    }
}

bool Runner::ensure_loaded(Request& job, Nanos& load_time) {
    if (engine_model_) return true;
    const auto t0 = Clock::now();
    std::unique_ptr<Model> m;
    try {
        StageGroup* group = mgr_.options().pipeline.get();  // serve --pipeline: this process's layers only
        m = Model::load(model_.path, group ? group->open_model(model_.path) : LoadOptions{});
    } catch (const std::exception& e) {
        job.state->events.push(Event::error(500, "failed to load model \"" + model_.name + "\": " + e.what()));
        mgr_.count_done("error");
        return false;
    }
    std::error_code ec;
    file_size_ = static_cast<uint64_t>(std::filesystem::file_size(model_.path, ec));
    if (!m->whole()) file_size_ = m->stage_bytes();  // serve --pipeline: this rank's share of the weights
    const int32_t n_ctx = m->is_encoder() ? m->hparams().n_ctx_train
                                          : (job.kind == JobKind::Generate ? wanted_ctx(*m, job.gen) : default_ctx(*m));
    const KvPlan kv = plan_kv(*m, n_ctx, mgr_.options(), file_size_, mgr_.memory_budget());
    const uint64_t bytes = file_size_ + kv.bytes;
    if (std::string err = mgr_.reserve(this, bytes, job.state->cancelled); !err.empty()) {
        job.state->events.push(Event::error(bytes > mgr_.memory_budget() ? 500 : 503, err));
        mgr_.count_done("error");
        return false;
    }
    threads_ = mgr_.options().n_threads > 0 ? mgr_.options().n_threads : physical_core_count();
    engine_model_ = std::move(m);
    try {
        if (engine_model_->is_encoder()) pool_ = std::make_unique<ThreadPool>(threads_);
        else make_context(n_ctx, job.gen);
    } catch (const std::exception& e) {
        engine_model_.reset();
        mgr_.adjust_reservation(this, 0);
        job.state->events.push(Event::error(500, "failed to set up model \"" + model_.name + "\": " + e.what()));
        mgr_.count_done("error");
        return false;
    }
    const std::string src = model_.template_override ? *model_.template_override : model_template_source(*engine_model_);
    // No template: Ollama's `{{ .Prompt }}` default (the prompt goes in as it is).
    has_template_ = !src.empty();
    tool_format_ = detect_tool_call_format(src);
    thinks_ = template_thinks(src);
    try {
        if (has_template_) template_ = Template::parse(src);
    } catch (const TemplateError& e) {
        std::fprintf(stderr, "hearth: %s: chat template does not parse (%s); prompts go in as they are\n",
                     model_.name.c_str(), e.what());
        has_template_ = false;  // as a model without one: Ollama's `{{ .Prompt }}`
        tool_format_ = ToolCallFormat::None;
        thinks_ = false;
    }
    mgr_.count_load();
    {
        std::lock_guard<std::mutex> lk(mu_);
        loaded_ = true;
        size_ = bytes;
        n_ctx_ = n_ctx;
        details_ = model_details(engine_model_->file()).to_json();
    }
    // Loaded models always show an expiry (/api/ps), refreshed when the request ends.
    touch(job.keep_alive.value_or(mgr_.options().keep_alive));
    load_time = Clock::now() - t0;
    return true;
}

// (Re)creates the Context and the scheduler over it; only while no sequence runs.
void Runner::make_context(int32_t n_ctx, const GenerateJob& job) {
    sched_.reset();
    ctx_.reset();  // frees the old KV cache first; if the new one throws, the next request retries
    const int parallel = std::max(1, mgr_.options().num_parallel);
    const KvPlan kv = plan_kv(*engine_model_, n_ctx, mgr_.options(), file_size_, mgr_.memory_budget());
    ContextParams cp;
    cp.n_ctx = n_ctx;
    if (job.num_batch > 0) cp.n_batch = job.num_batch;
    cp.n_threads = job.num_thread > 0 ? job.num_thread : threads_;
    cp.n_seq = parallel;
    cp.n_kv_blocks = kv.blocks;
    ctx_ = std::make_unique<Context>(*engine_model_, cp);
    SchedulerParams sp;
    sp.max_running = parallel;
    if (StageGroup* group = mgr_.options().pipeline.get(); group && !engine_model_->whole()) {
        ctx_->set_downstream(group->open_context(cp));
        sp.prefix_cache = false;  // the later stages hold no copies of cached blocks
    }
    sched_ = std::make_unique<Scheduler>(*ctx_, sp);
    const uint64_t bytes = file_size_ + kv.bytes;
    mgr_.adjust_reservation(this, bytes);
    std::lock_guard<std::mutex> lk(mu_);
    size_ = bytes;
    n_ctx_ = n_ctx;
}

bool Runner::handle(Request& job) {
    RequestState& st = *job.state;
    if (st.cancelled) {  // the client left while the request waited, or the server is stopping
        st.events.push(Event::error(503, "the request was cancelled"));
        mgr_.count_done("cancelled");
        return false;
    }
    if (job.kind == JobKind::Unload) {
        Event e;
        e.kind = Event::Kind::Done;
        e.done_reason = "unload";
        e.stats.total = Clock::now() - job.received;
        st.events.push(std::move(e));
        mgr_.count_done("unload");
        return false;
    }
    Nanos load{0};
    if (!ensure_loaded(job, load)) return false;
    switch (job.kind) {
    case JobKind::Load: {
        Event e;
        e.kind = Event::Kind::Done;
        e.done_reason = "load";
        e.stats.load = load;
        e.stats.total = Clock::now() - job.received;
        st.events.push(std::move(e));
        mgr_.count_done("load");
        return false;
    }
    case JobKind::Embed: run_embed(job, load); return false;
    case JobKind::Generate: {
        const size_t before = sched_ ? sched_->active() : 0;
        run_generate(job, load);
        return sched_ && sched_->active() > before;
    }
    case JobKind::Unload: return false;
    }
    return false;
}

// Per request: what the scheduler's callbacks need to turn its progress into Events.
namespace {
struct Tracker {
    std::shared_ptr<RequestState> state;
    std::string model;
    Clock::time_point received, last_token;
    KeepAlive keep_alive{0};
    Nanos load{0};
    std::vector<int32_t> prompt;
    bool want_probs = false;
    bool any_token = false;
};
}  // namespace

void Runner::run_generate(Request& job, Nanos load_time) {
    RequestState& st = *job.state;
    auto fail = [&](int status, const std::string& msg) {
        st.events.push(Event::error(status, msg));
        mgr_.count_done("error");
        mgr_.metrics().request_finished(model_.name, "error");
    };
    if (engine_model_->is_encoder()) return fail(400, "\"" + model_.name + "\" does not support generate");
    if (needs_new_context(job.gen)) make_context(wanted_ctx(*engine_model_, job.gen), job.gen);
    const Tokenizer& tok = engine_model_->tokenizer();

    const PromptSpec& spec = job.gen.prompt;
    const bool thinks = spec.template_override ? template_thinks(*spec.template_override) : thinks_;
    const ToolCallFormat tool_format =
        spec.template_override ? detect_tool_call_format(*spec.template_override) : tool_format_;
    if (spec.think.value_or(false) && !spec.raw && !thinks)
        return fail(400, "\"" + model_.name + "\" does not support thinking");
    if (!spec.raw && !spec.template_override && !has_template_ && spec.tools.is_array() && !spec.tools.empty())
        return fail(400, "\"" + model_.name + "\" does not support tools");
    // logit_bias ids must be tokens of the model: below the tokenizer's vocabulary (the logits
    // may be padded beyond it) and the logits' width. The message starts with the field, so
    // OpenAI's error names it as `param`.
    const int32_t n_tokens = tok.n_vocab() > 0 ? std::min(tok.n_vocab(), ctx_->n_vocab()) : ctx_->n_vocab();
    for (const auto& [id, bias] : job.gen.options.sampling.logit_bias)
        if (id < 0 || id >= n_tokens)
            return fail(400, "logit_bias is out of range: " + std::to_string(id) +
                                 " is not a token id of this model (vocabulary: " + std::to_string(n_tokens) +
                                 " tokens)");
    std::vector<int32_t> prompt;
    std::string rendered;
    try {
        prompt = build_prompt(*engine_model_, has_template_ ? &template_ : nullptr, spec, &rendered);
    } catch (const PromptError& e) {
        return fail(400, e.what());
    }
    const int32_t n_prompt = static_cast<int32_t>(prompt.size());
    if (n_prompt == 0)  // e.g. a template that renders nothing: nothing to continue from
        return fail(400, "the prompt is empty after applying the template");
    if (n_prompt > ctx_->n_ctx())
        return fail(400, "the prompt has " + std::to_string(n_prompt) + " tokens, more than the context length of " +
                             std::to_string(ctx_->n_ctx()) + " tokens (num_ctx)");
    for (int32_t id : prompt)
        if (id < 0 || id >= ctx_->n_vocab())
            return fail(400, "token id " + std::to_string(id) + " in the context is outside the vocabulary (" +
                                 std::to_string(ctx_->n_vocab()) + " tokens)");

    const GenerateJob& g = job.gen;
    auto tr = std::make_shared<Tracker>();
    tr->state = job.state;
    tr->model = model_.name;
    tr->received = job.received;
    tr->keep_alive = job.keep_alive.value_or(mgr_.options().keep_alive);
    tr->load = load_time;
    tr->prompt = prompt;
    tr->want_probs = g.options.sampling.logprobs || g.options.sampling.n_probs > 0;

    SeqRequest sr;
    sr.prompt = std::move(prompt);
    sr.n_predict = g.options.n_predict;
    sr.sampling = g.options.sampling;
    sr.stop = g.options.stop;
    sr.grammar = g.grammar;
    if (!sr.grammar && g.force_tool_call && !g.prompt.raw) {  // tool_choice requires a call
        try {
            const nlohmann::json tools = nlohmann::json::parse(g.prompt.tools.dump());
            sr.grammar = forced_tool_grammar(tool_format, tools, *g.force_tool_call);
        } catch (const std::exception& e) {
            return fail(400, std::string("tools: ") + e.what());
        }
    }
    sr.cancel = std::shared_ptr<const std::atomic<bool>>(job.state, &job.state->cancelled);
    ModelManager& mgr = mgr_;
    sr.on_admit = [tr, &mgr, n_prompt](int32_t cached) {
        mgr.metrics().request_started(tr->model, static_cast<uint64_t>(n_prompt), static_cast<uint64_t>(cached));
    };
    sr.on_preempt = [tr, &mgr] { mgr.metrics().preempted(tr->model); };
    sr.on_token = [tr, &mgr, &tok](int32_t id, std::string text, const SampleResult* s) {
        Event e;
        e.kind = Event::Kind::Token;
        e.text = std::move(text);
        if (s && tr->want_probs) e.prob = token_prob(tok, *s);
        tr->state->events.push(std::move(e));
        if (id < 0) return;
        const auto now = Clock::now();
        mgr.metrics().token_generated(tr->model);
        if (!tr->any_token) mgr.metrics().observe_ttft(tr->model, std::chrono::duration<double>(now - tr->received).count());
        else mgr.metrics().observe_itl(tr->model, std::chrono::duration<double>(now - tr->last_token).count());
        tr->any_token = true;
        tr->last_token = now;
    };
    sr.on_done = [this, tr, &tok, stops = g.options.stop](const SeqResult& r) {
        // Counters first, so a client that reads /metrics right after its answer sees it.
        mgr_.count_done(r.reason);
        mgr_.metrics().observe_e2e(tr->model, std::chrono::duration<double>(Clock::now() - tr->received).count());
        mgr_.metrics().request_finished(tr->model, r.reason);
        if (r.reason == "error") {
            tr->state->events.push(Event::error(500, r.error));
        } else {
            Event done;
            done.kind = Event::Kind::Done;
            done.done_reason = r.reason;
            done.stats.load = tr->load;
            done.stats.prompt_eval = r.prompt_time;
            done.stats.eval = r.gen_time;
            done.stats.prompt_eval_count = r.n_prompt;
            done.stats.eval_count = static_cast<int32_t>(r.generated.size());
            done.stats.cached_tokens = r.n_cached;
            done.stats.total = Clock::now() - tr->received;
            // Which stop string ended it (Anthropic's stop_sequence): the first one in the text.
            if (r.reason == "stop" && !stops.empty() && !r.generated.empty() && !tok.is_eog(r.generated.back())) {
                const std::string text = tok.decode(r.generated);
                size_t best = std::string::npos;
                for (const std::string& stop : stops)
                    if (size_t at = text.find(stop); at < best) best = at, done.stop_sequence = stop;
            }
            done.context = std::move(tr->prompt);
            done.context.insert(done.context.end(), r.generated.begin(), r.generated.end());
            tr->state->events.push(std::move(done));
        }
        {
            std::lock_guard<std::mutex> lk(mu_);
            std::erase(live_, tr->state);
        }
        touch(tr->keep_alive);
    };

    Event started;
    started.kind = Event::Kind::Started;
    started.tool_format = tool_format;
    started.stats.prompt_eval_count = n_prompt;
    started.thinking = thinks && !g.prompt.raw && g.prompt.think.value_or(true);
    started.reasoning_open = started.thinking && prompt_opens_reasoning(rendered);
    st.events.push(std::move(started));
    {
        std::lock_guard<std::mutex> lk(mu_);
        live_.push_back(job.state);
    }
    sched_->submit(std::move(sr));  // checked above: cannot throw for this prompt
}

void Runner::run_embed(Request& job, Nanos load_time) {
    RequestState& st = *job.state;
    const bool encoder = engine_model_->is_encoder();
    if (!encoder && !embed_ctx_) {
        // Decoder models pool their final hidden states (runtime/embedding.h) in a context of
        // their own, so embeddings never wait for or disturb the running batch.
        ContextParams cp;
        cp.n_ctx = default_ctx(*engine_model_);
        cp.n_threads = threads_;
        cp.n_seq = 1;
        embed_ctx_ = std::make_unique<Context>(*engine_model_, cp);
    }
    const Tokenizer& tok = engine_model_->tokenizer();
    const size_t limit = static_cast<size_t>(std::max(encoder ? engine_model_->hparams().n_ctx_train : embed_ctx_->n_ctx(), 1));
    Event e;
    e.kind = Event::Kind::Embeddings;
    const auto t0 = Clock::now();
    for (const std::string& text : job.embed.inputs) {
        if (st.cancelled) break;
        std::vector<int32_t> ids = tok.encode(text, true, false);
        if (ids.empty()) {
            st.events.push(Event::error(400, "input text is empty"));
            mgr_.count_done("error");
            return;
        }
        if (ids.size() > limit) {
            if (!job.embed.truncate) {
                st.events.push(Event::error(400, "the input has " + std::to_string(ids.size()) +
                                                     " tokens, more than the context length of " + std::to_string(limit)));
                mgr_.count_done("error");
                return;
            }
            const int32_t last = ids.back();
            ids.resize(limit);
            if (tok.sep() >= 0 && last == tok.sep()) ids.back() = last;  // keep the closing [SEP]
        }
        e.stats.prompt_eval_count += static_cast<int32_t>(ids.size());
        e.embeddings.push_back(encoder ? encode_embedding(*engine_model_, ids, *pool_, job.embed.normalize)
                                       : embed_sequence(*embed_ctx_, 0, ids, engine_model_->pooling(), job.embed.normalize));
    }
    e.stats.prompt_eval = Clock::now() - t0;
    e.stats.load = load_time;
    e.stats.total = Clock::now() - job.received;
    st.events.push(std::move(e));
    mgr_.count_done(st.cancelled ? "cancelled" : "stop");
}

}  // namespace hearth::server
