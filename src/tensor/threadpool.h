// The worker thread pool the kernels and the forward pass split their work on (matmul rows,
// attention items, token rows).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hearth {

// Number of physical cores (hyper-thread siblings counted once); at least 1.
int physical_core_count();

// A persistent pool of worker threads. run() executes one job on every thread (the caller
// is thread 0) and returns when all have finished. Workers spin briefly on a generation
// counter before sleeping on a condition variable, so the back-to-back jobs of a forward
// pass (one per matmul) cost microseconds, not a wake-up each.
class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // fn(ith, nth) on every thread. Not reentrant: call from one thread at a time.
    void run(const std::function<void(int ith, int nth)>& fn);

    // Splits [0, n) into chunks of at least `grain` items that threads claim dynamically,
    // calling fn(begin, end, ith) for each chunk.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);

private:
    void worker(int ith);

    int n_threads_;
    std::vector<std::thread> threads_;
    const std::function<void(int, int)>* job_ = nullptr;
    alignas(64) std::atomic<uint64_t> generation_{0};
    alignas(64) std::atomic<int> pending_{0};
    alignas(64) std::atomic<int64_t> next_chunk_{0};
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::condition_variable cv_;
};

}  // namespace hearth
