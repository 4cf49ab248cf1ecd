// The threads route handlers run on. Most handlers are short (parse, submit, return), but some
// block (model loads, registry transfers, file downloads), so the pool keeps a few threads and
// grows by one only when a task waits while every thread has been on its current task for a
// while (a blocked pool; a burst of short tasks, or a CPU-starved machine, keeps turning
// tasks over and adds nothing); threads idle for a while exit. The count follows
// what is blocked now, not the number of requests or open connections.
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
    explicit HandlerPool(size_t max_threads, size_t min_threads = 4,
                         std::chrono::milliseconds idle_exit = std::chrono::seconds(30));
    ~HandlerPool();  // runs what is queued, then joins
    HandlerPool(const HandlerPool&) = delete;
    HandlerPool& operator=(const HandlerPool&) = delete;

    void post(std::function<void()> task);
    void shutdown();
    size_t threads() const;

    // A task waiting while every thread has been on its task this long adds a thread.
    static constexpr std::chrono::milliseconds kGrowAfter{50};

private:
    using Clock = std::chrono::steady_clock;
    struct Worker {
        std::thread thread;
        bool finished = false;
        std::chrono::steady_clock::time_point busy_since = std::chrono::steady_clock::time_point::max();  // max: idle
    };
    struct Task {
        std::function<void()> fn;
        Clock::time_point queued;
    };
    void work(std::list<Worker>::iterator self);
    void supervise();
    void spawn();  // mu_ held
    // The latest task start among the busy workers (max when one is idle); mu_ held.
    std::chrono::steady_clock::time_point newest_task_start() const;
    void reap();   // joins finished workers; mu_ held

    mutable std::mutex mu_;
    std::condition_variable cv_;      // workers
    std::condition_variable sup_cv_;  // the supervisor
    std::deque<Task> queue_;
    std::list<Worker> workers_;
    std::thread supervisor_;
    size_t max_, min_, idle_ = 0, live_ = 0;
    std::chrono::milliseconds idle_exit_;
    bool stop_ = false;
};

}  // namespace hearth::http
