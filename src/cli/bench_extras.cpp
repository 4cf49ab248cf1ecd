#include "cli/bench_extras.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <sys/mman.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "model/model.h"
#include "runtime/context.h"
#include "model/profile.h"
#include "tensor/threadpool.h"
#include "sampling/sampler.h"
#include "tensor/quants.h"

namespace hearth::cli {

namespace {

// Sum of n 64-bit words: eight independent sums per 64-byte line, so the loop is bound by
// the memory system, not by the adds.
uint64_t sum_words(const uint64_t* p, size_t n) {
    uint64_t s[8] = {};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) s[j] += p[i + static_cast<size_t>(j)];
    uint64_t total = 0;
    for (uint64_t v : s) total += v;
    return total;
}

#if defined(__x86_64__)
// The same with 256-bit loads, two lines per step: what the decode kernels issue. Without
// it (baseline x86-64: 16-byte loads) the measured figure is below what the kernels reach.
__attribute__((target("avx2"))) uint64_t sum_words_avx2(const uint64_t* p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const auto* v = reinterpret_cast<const __m256i*>(p + i);
        a = _mm256_add_epi64(a, _mm256_load_si256(v));
        b = _mm256_add_epi64(b, _mm256_load_si256(v + 1));
        c = _mm256_add_epi64(c, _mm256_load_si256(v + 2));
        d = _mm256_add_epi64(d, _mm256_load_si256(v + 3));
    }
    alignas(32) uint64_t l[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
    return l[0] + l[1] + l[2] + l[3] + sum_words(p + i, n - i);
}
#endif

}  // namespace

double measure_read_bandwidth(int threads) {
    constexpr size_t kBytes = size_t{1} << 30;
    const size_t n = kBytes / sizeof(uint64_t);
    // Huge pages where the kernel gives them (as the packed weights get): with 4 KiB pages
    // the TLB misses, not DRAM, set the figure.
    void* mem = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 0.0;
    ::madvise(mem, kBytes, MADV_HUGEPAGE);
    auto* buf = static_cast<uint64_t*>(mem);
    ThreadPool pool(std::max(threads, 1));
    // First touch from the threads that read it, so pages are spread as they will be read.
    pool.parallel_for(static_cast<int64_t>(n), 1 << 16, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) buf[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
    });
    const bool avx2 = active_isa() == Isa::Avx2;
    std::vector<uint64_t> sink(64 * static_cast<size_t>(pool.size()));
    double best = 0;
    for (int pass = 0; pass < 5; ++pass) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.run([&](int ith, int nth) {
            const size_t per = n / static_cast<size_t>(nth) / 16 * 16;
            const uint64_t* p = buf + per * static_cast<size_t>(ith);
#if defined(__x86_64__)
            sink[static_cast<size_t>(ith) * 64] = avx2 ? sum_words_avx2(p, per) : sum_words(p, per);
#else
            sink[static_cast<size_t>(ith) * 64] = sum_words(p, per);
#endif
        });
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(kBytes) / sec / 1e9);
    }
    ::munmap(mem, kBytes);
    return best;
}

namespace {

void print_table(const char* title, double divisor, const char* unit) {
    const auto entries = prof::snapshot();
    uint64_t total = 0;
    for (const auto& e : entries) total += e.ns;
    std::printf("\n%s\n\n| op | %s | share |\n| --- | ---: | ---: |\n", title, unit);
    for (const auto& e : entries)
        std::printf("| %s | %.3f | %.1f%% |\n", e.name.c_str(), double(e.ns) / 1e6 / divisor,
                    total ? 100.0 * double(e.ns) / double(total) : 0.0);
    std::printf("| **total** | %.3f | 100%% |\n", double(total) / 1e6 / divisor);
}

}  // namespace

void print_profile(Context& ctx, int n_prompt, int n_gen, int n_seq) {
    const Model& m = ctx.model();
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> pick(0, m.hparams().n_vocab - 1);
    prof::set_enabled(true);
    if (n_prompt > 0) {
        ctx.clear(0);
        Batch b;
        for (int i = 0; i < n_prompt; ++i) b.add(pick(rng), i, 0, i == n_prompt - 1);
        ctx.decode(b);  // warm-up (pages in the weights)
        ctx.clear(0);
        prof::reset();
        ctx.decode(b);
        char title[96];
        std::snprintf(title, sizeof title, "Profile: one prefill of %d tokens (%d threads)", n_prompt, ctx.n_threads());
        print_table(title, 1.0, "ms");
    }
    if (n_gen > 0) {
        for (int s = 0; s < n_seq; ++s) ctx.clear(s);
        SamplingParams sp;
        std::vector<Sampler> samplers;
        for (int s = 0; s < n_seq; ++s) samplers.emplace_back(sp);
        std::vector<float> logits(static_cast<size_t>(ctx.n_vocab()));
        std::vector<int32_t> tok(static_cast<size_t>(n_seq));
        for (int32_t& t : tok) t = pick(rng);
        Batch b;
        prof::reset();
        for (int i = 0; i < n_gen; ++i) {
            b.clear();
            for (int s = 0; s < n_seq; ++s) b.add(tok[static_cast<size_t>(s)], i, s, true);
            ctx.decode(b);
            const uint64_t t0 = prof::now_ns();
            for (int s = 0; s < n_seq; ++s) {
                std::memcpy(logits.data(), ctx.logits(s), logits.size() * sizeof(float));
                tok[static_cast<size_t>(s)] = samplers[static_cast<size_t>(s)].sample(logits.data(), ctx.n_vocab()).id;
            }
            prof::add(prof::Op::Sampling, prof::now_ns() - t0);
        }
        char title[128];
        if (n_seq == 1)
            std::snprintf(title, sizeof title, "Profile: one decode step, average of %d (%d threads, Ollama's default sampling)",
                          n_gen, ctx.n_threads());
        else
            std::snprintf(title, sizeof title,
                          "Profile: one decode step of %d sequences (a token each), average of %d (%d threads)", n_seq,
                          n_gen, ctx.n_threads());
        print_table(title, double(n_gen), n_seq == 1 ? "ms/token" : "ms/step");
    }
    prof::set_enabled(false);
    for (int s = 0; s < n_seq; ++s) ctx.clear(s);
}

}  // namespace hearth::cli
