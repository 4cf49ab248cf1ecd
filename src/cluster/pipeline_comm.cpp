// The in-process Comm: one queue of whole messages per (from, to) pair, shared by the
// group's ranks (threads). Used by the tests to run every stage of a pipeline in one process.
#include "cluster/pipeline_comm.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace hearth::pipeline {

namespace {

struct LocalGroup {
    explicit LocalGroup(int n) : n(n), queues(static_cast<size_t>(n * n)) {}
    int n;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::deque<std::vector<uint8_t>>> queues;  // [from * n + to]
    bool aborted = false;
};

class LocalComm final : public Comm {
public:
    LocalComm(std::shared_ptr<LocalGroup> g, int rank) : g_(std::move(g)), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return g_->n; }

    void send(int to, const void* data, size_t bytes) override {
        if (to < 0 || to >= g_->n) throw std::invalid_argument("send to rank " + std::to_string(to) + " of " + std::to_string(g_->n));
        const auto* p = static_cast<const uint8_t*>(data);
        std::lock_guard lock(g_->mu);
        if (g_->aborted) throw CommError("the pipeline group was aborted");
        if (!interrupted_.empty()) throw CommError(interrupted_);
        g_->queues[static_cast<size_t>(rank_ * g_->n + to)].emplace_back(p, p + bytes);
        g_->cv.notify_all();
    }

    bool recv(int from, std::vector<uint8_t>& out, int timeout_ms) override {
        if (from < 0 || from >= g_->n) throw std::invalid_argument("recv from rank " + std::to_string(from));
        auto& q = g_->queues[static_cast<size_t>(from * g_->n + rank_)];
        std::unique_lock lock(g_->mu);
        auto ready = [&] { return g_->aborted || !interrupted_.empty() || !q.empty(); };
        if (timeout_ms < 0) g_->cv.wait(lock, ready);
        else if (!g_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) return false;
        if (g_->aborted) throw CommError("the pipeline group was aborted");
        if (!interrupted_.empty()) throw CommError(interrupted_);
        out = std::move(q.front());
        q.pop_front();
        return true;
    }

    void abort(int) override {
        std::lock_guard lock(g_->mu);
        g_->aborted = true;
        g_->cv.notify_all();
    }

    void interrupt(const std::string& why) override {
        std::lock_guard lock(g_->mu);
        interrupted_ = why.empty() ? "the pipeline group is ending" : why;
        g_->cv.notify_all();
    }

private:
    std::shared_ptr<LocalGroup> g_;
    int rank_;
    std::string interrupted_;  // guarded by g_->mu
};

}  // namespace

std::vector<std::unique_ptr<Comm>> make_local_comms(int n) {
    if (n <= 0) throw std::invalid_argument("a pipeline group needs at least one rank");
    auto g = std::make_shared<LocalGroup>(n);
    std::vector<std::unique_ptr<Comm>> out;
    for (int r = 0; r < n; ++r) out.push_back(std::make_unique<LocalComm>(g, r));
    return out;
}

}  // namespace hearth::pipeline
