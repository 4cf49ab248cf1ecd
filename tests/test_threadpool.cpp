#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <vector>

#include "tensor/threadpool.h"

namespace hearth {

TEST(ThreadPool, RunCallsEveryThreadOnceWithItsIndex) {
    for (int n : {1, 2, 3, 8}) {
        ThreadPool pool(n);
        ASSERT_EQ(pool.size(), n);
        for (int rep = 0; rep < 200; ++rep) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.run([&](int ith, int nth) {
                EXPECT_EQ(nth, n);
                hits[static_cast<size_t>(ith)].fetch_add(1);
            });
            for (int i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "thread " << i;
        }
    }
}

TEST(ThreadPool, ParallelForCoversTheRangeExactlyOnce) {
    ThreadPool pool(4);
    for (int64_t n : {0, 1, 7, 64, 1000, 100003}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        pool.parallel_for(n, 3, [&](int64_t b, int64_t e, int ith) {
            EXPECT_GE(ith, 0);
            EXPECT_LT(ith, 4);
            EXPECT_LT(b, e);
            for (int64_t i = b; i < e; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
    }
}

TEST(ThreadPool, WorkersSleepAndWakeAfterIdlePeriods) {
    ThreadPool pool(3);
    std::atomic<int> total{0};
    for (int rep = 0; rep < 3; ++rep) {
        std::this_thread::sleep_for(std::chrono::milliseconds(60));  // past the spin phase
        pool.run([&](int, int) { total.fetch_add(1); });
    }
    EXPECT_EQ(total.load(), 9);
}

TEST(ThreadPool, PhysicalCoreCountIsPositive) { EXPECT_GE(physical_core_count(), 1); }

}  // namespace hearth
