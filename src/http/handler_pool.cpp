#include "http/handler_pool.h"

#include <vector>

namespace hearth::http {

HandlerPool::HandlerPool(size_t max_threads, std::chrono::milliseconds idle_exit)
    : max_(max_threads == 0 ? 1 : max_threads), idle_exit_(idle_exit) {}

HandlerPool::~HandlerPool() { shutdown(); }

void HandlerPool::post(std::function<void()> task) {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(std::move(task));
    if (idle_ >= queue_.size() || live_ >= max_ || stop_) {
        cv_.notify_one();
        return;
    }
    reap();
    workers_.emplace_back();
    auto it = std::prev(workers_.end());
    ++live_;
    it->thread = std::thread([this, it] { work(it); });
}

void HandlerPool::work(std::list<Worker>::iterator self) {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        ++idle_;
        const bool got = cv_.wait_for(lk, idle_exit_, [&] { return stop_ || !queue_.empty(); });
        --idle_;
        if (queue_.empty() && (stop_ || !got)) break;
        if (queue_.empty()) continue;
        std::function<void()> task = std::move(queue_.front());
        queue_.pop_front();
        lk.unlock();
        task();
        task = nullptr;  // its captures go before the lock is taken again
        lk.lock();
    }
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
        stop_ = true;
        cv_.notify_all();
    }
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
