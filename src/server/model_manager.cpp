#include "server/model_manager.h"

#include <algorithm>
#include <cstdio>

#include "server/runner.h"

namespace hearth::server {

namespace {

std::string human_bytes(uint64_t b) {
    char buf[64];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", double(b) / double(1ull << 30));
    else std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
    return buf;
}

}  // namespace

ModelManager::ModelManager(ManagerOptions options) : opts_(std::move(options)) {
    budget_ = opts_.max_memory ? opts_.max_memory : default_memory_budget();
    if (opts_.max_loaded < 1) opts_.max_loaded = 1;
    if (opts_.max_queue < 1) opts_.max_queue = 1;
}

ModelManager::~ModelManager() {
    shutdown();
    std::vector<std::shared_ptr<Runner>> all;
    {
        std::lock_guard<std::mutex> lk(mu_);
        all.swap(retired_);
    }
    for (auto& r : all) r->join();
}

void ModelManager::shutdown() {
    std::lock_guard<std::mutex> lk(mu_);
    shutting_down_ = true;
    while (!runners_.empty()) {
        Runner* r = runners_.begin()->second.get();
        r->cancel_queued("the server is shutting down");
        r->stop();
        drop_locked(r);
    }
    cv_.notify_all();
}

SubmitResult ModelManager::submit(Request req) {
    reap();
    if (req.state && !req.state->in_flight) {
        // Counted until the request's state is released by both the runner and the reply.
        auto counter = in_flight_;
        ++*counter;
        req.state->in_flight = std::shared_ptr<void>(counter.get(), [counter](void*) { --*counter; });
    }
    std::lock_guard<std::mutex> lk(mu_);
    if (shutting_down_) return SubmitResult::ShuttingDown;
    auto it = runners_.find(req.model.name);
    if (it == runners_.end()) {
        if (req.kind == JobKind::Unload) {  // nothing loaded: nothing to do
            Event e;
            e.kind = Event::Kind::Done;
            e.done_reason = "unload";
            e.stats.total = Clock::now() - req.received;
            req.state->events.push(std::move(e));
            return SubmitResult::Queued;
        }
        const std::string name = req.model.name;
        ResolvedModel model = req.model;
        runners_[name] = std::make_shared<Runner>(*this, std::move(model), std::move(req));
        return SubmitResult::Queued;
    }
    if (!it->second->push(std::move(req), opts_.max_queue)) {
        rejected_++;
        return SubmitResult::QueueFull;
    }
    return SubmitResult::Queued;
}

std::vector<LoadedModel> ModelManager::loaded() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<LoadedModel> out;
    for (const auto& [name, r] : runners_) {
        LoadedModel m = r->info();
        if (m.size > 0) out.push_back(std::move(m));
    }
    return out;
}

ManagerStats ModelManager::stats() const {
    ManagerStats s;
    s.loads = loads_;
    s.unloads = unloads_;
    s.completed = completed_;
    s.cancelled = cancelled_;
    s.rejected = rejected_;
    return s;
}

void ModelManager::count_done(const std::string& done_reason) {
    completed_++;
    if (done_reason == "cancelled") cancelled_++;
}

void ModelManager::drop_locked(Runner* r) {
    auto it = runners_.find(r->model().name);
    if (it != runners_.end() && it->second.get() == r) {
        retired_.push_back(it->second);
        runners_.erase(it);
    }
    r->counted = false;
    r->reserved = 0;
    cv_.notify_all();
}

void ModelManager::fail_requests(const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [name, r] : runners_) r->fail_requests(why);
}

bool ModelManager::evict_one_locked(Runner* self) {
    Runner* victim = nullptr;
    Clock::time_point oldest = Clock::time_point::max();
    for (auto& [name, r] : runners_) {
        if (r.get() == self || !r->counted || !r->idle()) continue;
        const auto t = r->last_used();
        if (t < oldest) {
            oldest = t;
            victim = r.get();
        }
    }
    if (!victim) return false;
    victim->stop();
    drop_locked(victim);
    return true;
}

std::string ModelManager::reserve(Runner* self, uint64_t bytes, const std::atomic<bool>& cancel) {
    std::unique_lock<std::mutex> lk(mu_);
    if (bytes > budget_)
        return "the model needs about " + human_bytes(bytes) + " of memory, more than the budget of " + human_bytes(budget_) +
               " (HEARTH_MAX_MEMORY)";
    for (;;) {
        if (shutting_down_) return "the server is shutting down";
        if (cancel) return "the request was cancelled";
        uint64_t used = 0;
        int count = 0;
        for (const auto& [name, r] : runners_) {
            if (r.get() == self || !r->counted) continue;
            used += r->reserved;
            ++count;
        }
        if (count + 1 <= opts_.max_loaded && used + bytes <= budget_) {
            self->counted = true;
            self->reserved = bytes;
            return {};
        }
        if (!evict_one_locked(self)) cv_.wait_for(lk, std::chrono::milliseconds(100));
    }
}

void ModelManager::adjust_reservation(Runner* self, uint64_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    if (self->counted) self->reserved = bytes;
}

bool ModelManager::retire(Runner* self) {
    std::lock_guard<std::mutex> lk(mu_);
    if (!self->quiescent()) return false;
    self->stop();
    drop_locked(self);
    return true;
}

void ModelManager::notify_idle() {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
}

void ModelManager::reap() {
    std::vector<std::shared_ptr<Runner>> done;
    {
        std::lock_guard<std::mutex> lk(mu_);
        auto mid = std::partition(retired_.begin(), retired_.end(), [](const auto& r) { return !r->finished(); });
        done.assign(std::make_move_iterator(mid), std::make_move_iterator(retired_.end()));
        retired_.erase(mid, retired_.end());
    }
    for (auto& r : done) r->join();
}

}  // namespace hearth::server
