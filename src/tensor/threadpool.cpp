#include "tensor/threadpool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HEARTH_PAUSE() _mm_pause()
#else
#define HEARTH_PAUSE() std::this_thread::yield()
#endif

namespace hearth {

int physical_core_count() {
    const unsigned logical = std::max(1u, std::thread::hardware_concurrency());
    std::set<std::string> cores;
    for (unsigned cpu = 0; cpu < logical; ++cpu) {
        std::ifstream f("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
        std::string s;
        if (!(f >> s)) return static_cast<int>(logical);
        cores.insert(s);
    }
    return cores.empty() ? static_cast<int>(logical) : static_cast<int>(cores.size());
}

namespace {
constexpr std::chrono::microseconds kSpinTime{2000};

// Back-off inside spin loops: a pause first; after a few thousand polls, give the core
// away so a thread we wait for can run when the machine is oversubscribed.
inline void relax(unsigned polls) {
    if (polls < 4096) HEARTH_PAUSE();
    else std::this_thread::yield();
}
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    threads_.reserve(n_threads_ - 1);
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int ith) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        // Spin for a bounded time before sleeping. The clock is read only every 256 polls,
        // and pause is used sparingly: under virtualization a dense pause loop makes the
        // hypervisor deschedule the vCPU, which costs far more than the spin saves.
        const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
        for (unsigned polls = 1; gen == seen; ++polls) {
            if ((polls & 255u) == 0 && std::chrono::steady_clock::now() > spin_until) break;
            if ((polls & 15u) == 0) relax(polls);
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load()) return;
        (*job_)(ith, n_threads_);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    job_ = &fn;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
        // Taking the lock orders the increment with a sleeping worker's predicate check.
        std::lock_guard<std::mutex> lock(mu_);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    cv_.notify_all();
    fn(0, n_threads_);
    for (unsigned polls = 1; pending_.load(std::memory_order_acquire) != 0; ++polls)
        if ((polls & 15u) == 0) relax(polls);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    // Aim for several chunks per thread so uneven threads balance out.
    const int64_t chunk = std::max(grain, n / (int64_t(n_threads_) * 4));
    if (n_threads_ == 1 || n <= chunk) {
        fn(0, n, 0);
        return;
    }
    next_chunk_.store(0, std::memory_order_relaxed);
    run([&](int ith, int) {
        for (;;) {
            const int64_t begin = next_chunk_.fetch_add(chunk, std::memory_order_relaxed);
            if (begin >= n) break;
            fn(begin, std::min(n, begin + chunk), ith);
        }
    });
}

}  // namespace hearth
