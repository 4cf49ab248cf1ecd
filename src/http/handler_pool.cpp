#include "http/handler_pool.h"

#include <algorithm>

namespace hearth::http {

HandlerPool::HandlerPool(size_t max_threads, size_t min_threads, std::chrono::milliseconds idle_exit)
    : max_(std::max<size_t>(max_threads, 1)), min_(std::min(std::max<size_t>(min_threads, 1), std::max<size_t>(max_threads, 1))),
      idle_exit_(idle_exit) {
    supervisor_ = std::thread([this] { supervise(); });
}

HandlerPool::~HandlerPool() { shutdown(); }

void HandlerPool::spawn() {
    reap();
    workers_.emplace_back();
    auto it = std::prev(workers_.end());
    ++live_;
    ++idle_;  // counted idle until it takes a task
    it->thread = std::thread([this, it] { work(it); });
}

void HandlerPool::post(std::function<void()> task) {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(Task{std::move(task), Clock::now()});
    if (stop_) return;
    if (idle_ >= queue_.size()) {
        cv_.notify_one();
    } else if (live_ < min_) {
        spawn();
    } else {
        sup_cv_.notify_one();  // every thread is busy: the supervisor decides whether to grow
    }
}

void HandlerPool::supervise() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
        if (queue_.empty() || idle_ >= queue_.size() || live_ >= max_) {
            sup_cv_.wait(lk);
            continue;
        }
        const auto now = Clock::now();
        const auto newest = newest_task_start();
        const auto waited = now - queue_.front().queued;
        if (waited >= kGrowAfter && newest != Clock::time_point::max() && now - newest >= kGrowAfter) {
            spawn();
            continue;
        }
        const auto stuck_for = newest == Clock::time_point::max() ? Clock::duration::zero() : now - newest;
        sup_cv_.wait_for(lk, kGrowAfter - std::min(waited, stuck_for) + std::chrono::milliseconds(1));
    }
}

HandlerPool::Clock::time_point HandlerPool::newest_task_start() const {
    Clock::time_point newest = Clock::time_point::min();
    for (const Worker& w : workers_)
        if (!w.finished) newest = std::max(newest, w.busy_since);
    return newest;
}

void HandlerPool::work(std::list<Worker>::iterator self) {
    std::unique_lock<std::mutex> lk(mu_);  // counted idle from the start (spawn())
    for (;;) {
        const bool got = cv_.wait_for(lk, idle_exit_, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty() && (stop_ || (!got && live_ > min_))) break;
        if (queue_.empty()) continue;
        std::function<void()> task = std::move(queue_.front().fn);
        queue_.pop_front();
        --idle_;
        self->busy_since = Clock::now();
        lk.unlock();
        task();
        task = nullptr;  // its captures go before the lock is taken again
        lk.lock();
        self->busy_since = Clock::time_point::max();
        ++idle_;
    }
    --idle_;
    --live_;
    self->finished = true;
}

void HandlerPool::reap() {
    for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->finished) {
            if (it->thread.joinable()) it->thread.join();  // it has left work(): the join is immediate
            it = workers_.erase(it);
        } else {
            ++it;
        }
    }
}

void HandlerPool::shutdown() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_ && !supervisor_.joinable()) return;
        stop_ = true;
        cv_.notify_all();
        sup_cv_.notify_all();
    }
    if (supervisor_.joinable()) supervisor_.join();
    // Workers drain the queue before they exit; join them without the lock held (a worker's
    // list node stays until it is joined: the worker writes to it on its way out).
    for (;;) {
        std::thread t;
        {
            std::lock_guard<std::mutex> lk(mu_);
            for (Worker& w : workers_)
                if (w.thread.joinable()) {
                    t = std::move(w.thread);
                    break;
                }
        }
        if (!t.joinable()) break;
        t.join();
    }
    std::lock_guard<std::mutex> lk(mu_);
    workers_.clear();
}

size_t HandlerPool::threads() const {
    std::lock_guard<std::mutex> lk(mu_);
    return live_;
}

}  // namespace hearth::http
