// Microbenchmarks of the matmul kernels: GB/s of weight bytes for matrix x vector (decode,
// memory-bound) and GFLOP/s for matrix x matrix (prefill, compute-bound; matmat8 is an
// 8-token decode step through the dot path), per weight type and ISA; and the thread pool's
// cost per job (threadpool/*).
// Run: build/hearth_microbench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <vector>

#include "tensor/threadpool.h"
#include "tensor/matmul.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

struct Fixture {
    std::vector<uint8_t> w;
    MatrixView view;
    std::vector<float> x, y;
};

// TinyLlama's ffn_up shape: 5632 rows of 2048 (~23 MB in F16, beyond the last-level cache).
Fixture make(GgmlType type, int64_t rows, int64_t cols, int64_t n_tokens) {
    Fixture f;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    const size_t rb = row_size(type, cols);
    f.w.resize(rb * static_cast<size_t>(rows));
    std::vector<float> row(static_cast<size_t>(cols));
    // Quantize a few distinct rows and tile them: the quantizers are slow for K-types, and
    // the kernels' speed does not depend on the values.
    for (int64_t r = 0; r < rows; ++r) {
        if (r < 16 || getenv("BENCH_FULL")) {
            for (float& v : row) v = nd(rng);
            quantize_row(type, row.data(), f.w.data() + static_cast<size_t>(r) * rb, cols);
        } else {
            std::copy_n(f.w.data() + static_cast<size_t>(r % 16) * rb, rb, f.w.data() + static_cast<size_t>(r) * rb);
        }
    }
    f.view = MatrixView{type, rows, cols, f.w.data(), rb};
    f.x.resize(static_cast<size_t>(cols * n_tokens));
    for (float& v : f.x) v = nd(rng) * 50.0f;
    f.y.resize(static_cast<size_t>(rows * n_tokens));
    return f;
}

void run(benchmark::State& state, GgmlType type, Isa isa, int64_t n_tokens,
         MatmulScratch::Path path = MatmulScratch::Path::BySize) {
    if (isa == Isa::Avx2 && detected_isa() != Isa::Avx2) {
        state.SkipWithError("no AVX2 on this CPU");
        return;
    }
    const Isa saved = active_isa();
    set_active_isa(isa);
    const int threads = static_cast<int>(state.range(0));
    const int64_t rows = 5632, cols = 2048;
    Fixture f = make(type, rows, cols, n_tokens);
    ThreadPool pool(threads);
    MatmulScratch scratch;
    scratch.path = path;
    for (auto _ : state) {
        matmul(f.view, f.x.data(), cols, n_tokens, f.y.data(), rows, &pool, scratch);
        benchmark::DoNotOptimize(f.y.data());
    }
    set_active_isa(saved);
    const double iters = static_cast<double>(state.iterations());
    state.counters["GB/s"] = benchmark::Counter(iters * static_cast<double>(f.w.size()) / 1e9, benchmark::Counter::kIsRate);
    state.counters["GFLOP/s"] =
        benchmark::Counter(iters * 2.0 * double(rows) * double(cols) * double(n_tokens) / 1e9, benchmark::Counter::kIsRate);
    state.SetLabel(std::string(type_name(type)) + "/" + isa_name(isa));
}

// The thread pool's cost per job: one run() of an empty job (a forward pass syncs ~10 times
// per layer), and one parallel_for over a decode-sized row range with no work per row.
void pool_run(benchmark::State& state) {
    ThreadPool pool(static_cast<int>(state.range(0)));
    std::atomic<int> sink{0};
    for (auto _ : state) pool.run([&](int ith, int) { sink.fetch_add(ith, std::memory_order_relaxed); });
    benchmark::DoNotOptimize(sink.load());
}
void pool_parallel_for(benchmark::State& state) {
    ThreadPool pool(static_cast<int>(state.range(0)));
    std::vector<int64_t> out(static_cast<size_t>(pool.size()) * 16);
    for (auto _ : state)
        pool.parallel_for(5632, 64, [&](int64_t r0, int64_t r1, int ith) { out[static_cast<size_t>(ith) * 16] += r1 - r0; });
    benchmark::DoNotOptimize(out.data());
}

void register_all() {
    benchmark::RegisterBenchmark("threadpool/run", pool_run)->Arg(1)->Arg(2)->UseRealTime();
    benchmark::RegisterBenchmark("threadpool/parallel_for", pool_parallel_for)->Arg(1)->Arg(2)->UseRealTime();
    for (GgmlType t : kTypes) {
        for (Isa isa : {Isa::Scalar, Isa::Avx2}) {
            const std::string base = std::string(type_name(t)) + "/" + isa_name(isa);
            benchmark::RegisterBenchmark(("matvec/" + base).c_str(), [t, isa](benchmark::State& s) { run(s, t, isa, 1); })
                ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
            benchmark::RegisterBenchmark(("matmat128/" + base).c_str(), [t, isa](benchmark::State& s) { run(s, t, isa, 128); })
                ->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
            // A decode step of 8 sequences: generated tokens always take the per-row dot
            // kernels (vec_dot_multi where the type has one), never the GEMM.
            benchmark::RegisterBenchmark(("matmat8/" + base).c_str(), [t, isa](benchmark::State& s) {
                run(s, t, isa, 8, MatmulScratch::Path::Dot);
            })->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
        }
    }
}

}  // namespace
}  // namespace hearth

int main(int argc, char** argv) {
    hearth::register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
