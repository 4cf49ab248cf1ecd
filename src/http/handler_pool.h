// The threads route handlers run on. Handlers may block (model loads, registry transfers,
// file downloads), so the pool grows by a thread whenever work arrives and none is idle, up
// to a cap, and threads idle for a while exit: the count follows what is blocked now, not
// the number of open connections.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace hearth::http {

class HandlerPool {
public:
    explicit HandlerPool(size_t max_threads, std::chrono::milliseconds idle_exit = std::chrono::seconds(30));
    ~HandlerPool();  // runs what is queued, then joins
    HandlerPool(const HandlerPool&) = delete;
    HandlerPool& operator=(const HandlerPool&) = delete;

    void post(std::function<void()> task);
    void shutdown();
    size_t threads() const;

private:
    struct Worker {
        std::thread thread;
        bool finished = false;
    };
    void work(std::list<Worker>::iterator self);
    void reap();  // joins finished workers; mu_ held

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    std::list<Worker> workers_;
    size_t max_, idle_ = 0, live_ = 0;
    std::chrono::milliseconds idle_exit_;
    bool stop_ = false;
};

}  // namespace hearth::http
