#include "server/runner.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "model/encoder.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/threadpool.h"
#include "server/prompt.h"

namespace hearth::server {

namespace {

// Bytes of an F16 KV cache of n_ctx positions.
uint64_t kv_bytes(const Model& m, int32_t n_ctx) {
    if (m.is_encoder()) return 0;
    const HParams& hp = m.hparams();
    return uint64_t(hp.n_layer) * uint64_t(n_ctx) * uint64_t(hp.kv_dim() + hp.v_dim()) * 2u;
}

int32_t default_ctx(const Model& m) {
    const int32_t train = m.hparams().n_ctx_train;
    return std::min(train > 0 ? train : 4096, 4096);
}

int32_t wanted_ctx(const Model& m, const GenerateJob& job) {
    if (job.num_ctx <= 0) return default_ctx(m);
    const int32_t train = m.hparams().n_ctx_train;
    return train > 0 ? std::min(job.num_ctx, train) : job.num_ctx;
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
    return loaded_ && !busy_ && queue_.empty() && !stopping_;
}

bool Runner::quiescent() {
    std::lock_guard<std::mutex> lk(mu_);
    return !busy_ && queue_.empty();
}

void Runner::stop() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
        if (current_) current_->cancelled = true;
    }
    cv_.notify_all();
}

void Runner::cancel_queued(const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    for (Request& r : queue_) r.state->events.push(Event::error(503, why));
    queue_.clear();
}

LoadedModel Runner::info() {
    std::lock_guard<std::mutex> lk(mu_);
    LoadedModel m;
    m.name = model_.name;
    m.path = model_.path;
    m.size = loaded_ ? size_ : 0;
    m.context_length = n_ctx_;
    m.forever = forever_;
    m.expires_at = expires_wall_;
    m.busy = busy_ || !queue_.empty();
    return m;
}

Clock::time_point Runner::last_used() {
    std::lock_guard<std::mutex> lk(mu_);
    return last_used_;
}

std::optional<Request> Runner::next_job() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        if (!queue_.empty()) {
            Request r = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
            current_ = r.state;
            return r;
        }
        if (stopping_) return std::nullopt;
        if (!loaded_ || (!forever_ && Clock::now() >= expires_at_)) {
            lk.unlock();
            if (mgr_.retire(this)) return std::nullopt;
            lk.lock();
            continue;
        }
        if (forever_) cv_.wait(lk);
        else cv_.wait_until(lk, expires_at_);
    }
}

void Runner::loop() {
    while (auto job = next_job()) {
        try {
            handle(*job);
        } catch (const std::exception& e) {
            job->state->events.push(Event::error(500, e.what()));
            mgr_.count_done("error");
        }
        KeepAlive ka = job->keep_alive.value_or(mgr_.options().keep_alive);
        if (job->kind == JobKind::Unload) ka = KeepAlive(0);
        {
            std::lock_guard<std::mutex> lk(mu_);
            busy_ = false;
            current_.reset();
            last_used_ = Clock::now();
            forever_ = ka.count() < 0;
            if (!forever_) {
                expires_at_ = last_used_ + ka;
                expires_wall_ = std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(ka);
            }
        }
        mgr_.notify_idle();
    }
    unload();
    finished_ = true;
    mgr_.notify_idle();
}

void Runner::unload() {
    const bool had = engine_model_ != nullptr;
    ctx_.reset();
    pool_.reset();
    engine_model_.reset();
    {
        std::lock_guard<std::mutex> lk(mu_);
        loaded_ = false;
        size_ = 0;
    }
    if (had) mgr_.count_unload();
}

bool Runner::ensure_loaded(Request& job, Nanos& load_time) {
    if (engine_model_) return true;
    const auto t0 = Clock::now();
    std::unique_ptr<Model> m;
    try {
        m = Model::load(model_.path);
    } catch (const std::exception& e) {
        job.state->events.push(Event::error(500, "failed to load model \"" + model_.name + "\": " + e.what()));
        mgr_.count_done("error");
        return false;
    }
    std::error_code ec;
    file_size_ = static_cast<uint64_t>(std::filesystem::file_size(model_.path, ec));
    const int32_t n_ctx = m->is_encoder() ? m->hparams().n_ctx_train
                                          : (job.kind == JobKind::Generate ? wanted_ctx(*m, job.gen) : default_ctx(*m));
    const uint64_t bytes = file_size_ + kv_bytes(*m, n_ctx);
    if (std::string err = mgr_.reserve(this, bytes, job.state->cancelled); !err.empty()) {
        job.state->events.push(Event::error(bytes > mgr_.memory_budget() ? 500 : 503, err));
        mgr_.count_done("error");
        return false;
    }
    threads_ = mgr_.options().n_threads > 0 ? mgr_.options().n_threads : physical_core_count();
    try {
        if (m->is_encoder()) {
            pool_ = std::make_unique<ThreadPool>(threads_);
        } else {
            ContextParams cp;
            cp.n_ctx = n_ctx;
            cp.n_threads = job.gen.num_thread > 0 ? job.gen.num_thread : threads_;
            if (job.gen.num_batch > 0) cp.n_batch = job.gen.num_batch;
            ctx_ = std::make_unique<Context>(*m, cp);
        }
    } catch (const std::exception& e) {
        mgr_.adjust_reservation(this, 0);
        job.state->events.push(Event::error(500, "failed to set up model \"" + model_.name + "\": " + e.what()));
        mgr_.count_done("error");
        return false;
    }
    engine_model_ = std::move(m);
    const std::string src = model_.template_override ? *model_.template_override : model_template_source(*engine_model_);
    try {
        template_ = Template::parse(src);
    } catch (const TemplateError& e) {
        std::fprintf(stderr, "hearth: %s: chat template does not parse (%s); using the default template\n",
                     model_.name.c_str(), e.what());
        template_ = Template::parse(default_chat_template());
    }
    tool_format_ = detect_tool_call_format(src);
    mgr_.count_load();
    {
        std::lock_guard<std::mutex> lk(mu_);
        loaded_ = true;
        size_ = bytes;
        n_ctx_ = n_ctx;
    }
    load_time = Clock::now() - t0;
    return true;
}

void Runner::ensure_context(const GenerateJob& job) {
    const int32_t n_ctx = wanted_ctx(*engine_model_, job);
    if (ctx_ && ctx_->n_ctx() == n_ctx && (job.num_batch <= 0 || ctx_->n_batch() == job.num_batch)) return;
    ContextParams cp;
    cp.n_ctx = n_ctx;
    if (job.num_batch > 0) cp.n_batch = job.num_batch;
    cp.n_threads = job.num_thread > 0 ? job.num_thread : threads_;
    ctx_.reset();  // frees the old KV cache first; if the new one throws, the next request retries
    ctx_ = std::make_unique<Context>(*engine_model_, cp);
    const uint64_t bytes = file_size_ + kv_bytes(*engine_model_, n_ctx);
    mgr_.adjust_reservation(this, bytes);
    std::lock_guard<std::mutex> lk(mu_);
    size_ = bytes;
    n_ctx_ = n_ctx;
}

void Runner::handle(Request& job) {
    RequestState& st = *job.state;
    if (st.cancelled) {  // the client left while the request waited, or the server is stopping
        st.events.push(Event::error(503, "the request was cancelled"));
        mgr_.count_done("cancelled");
        return;
    }
    if (job.kind == JobKind::Unload) {
        Event e;
        e.kind = Event::Kind::Done;
        e.done_reason = "unload";
        e.stats.total = Clock::now() - job.received;
        st.events.push(std::move(e));
        mgr_.count_done("unload");
        return;
    }
    Nanos load{0};
    if (!ensure_loaded(job, load)) return;
    switch (job.kind) {
    case JobKind::Load: {
        Event e;
        e.kind = Event::Kind::Done;
        e.done_reason = "load";
        e.stats.load = load;
        e.stats.total = Clock::now() - job.received;
        st.events.push(std::move(e));
        mgr_.count_done("load");
        return;
    }
    case JobKind::Embed: run_embed(job, load); return;
    case JobKind::Generate: run_generate(job, load); return;
    case JobKind::Unload: return;
    }
}

void Runner::run_embed(Request& job, Nanos load_time) {
    RequestState& st = *job.state;
    if (!engine_model_->is_encoder()) {
        st.events.push(Event::error(400, "\"" + model_.name + "\" does not support embeddings"));
        mgr_.count_done("error");
        return;
    }
    const Tokenizer& tok = engine_model_->tokenizer();
    const size_t limit = static_cast<size_t>(std::max(engine_model_->hparams().n_ctx_train, 1));
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
        e.embeddings.push_back(encode_embedding(*engine_model_, ids, *pool_, job.embed.normalize));
    }
    e.stats.prompt_eval = Clock::now() - t0;
    e.stats.load = load_time;
    e.stats.total = Clock::now() - job.received;
    st.events.push(std::move(e));
    mgr_.count_done(st.cancelled ? "cancelled" : "stop");
}

}  // namespace hearth::server
