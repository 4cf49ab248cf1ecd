// `mpirun -np 2 hearth dev comm-bench`: the pipeline transport's hand-over cost alone (issue 15:
// "per stage boundary per token"). Rank 0 sends a message the size of one token's hidden
// states to rank 1 and waits for one the size of its logits; rank 1 keeps its core busy for
// --compute-ms first, as a stage computing its layers does, so rank 0 waits as it does while
// serving (past its spin, in its sleeping poll); rank 0 computes --rank0-ms before each send,
// so rank 1 waits as the later stage does. The round trip minus the compute is the cost
// of both hops; half of it is one boundary.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cluster/pipeline_comm.h"

namespace hearth::cli {

namespace {

struct CommBenchArgs {
    size_t out_bytes = 2048 * 4;     // TinyLlama: n_embd floats
    size_t back_bytes = 32000 * 4;   // TinyLlama: one logits row
    double compute_ms = 25;  // rank 1's compute per round
    double rank0_ms = 25;    // rank 0's compute per round, before it sends (its own layers)
    int rounds = 100;
};

void busy_for(double ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
    volatile uint64_t x = 0;
    while (std::chrono::steady_clock::now() < end)
        for (int i = 0; i < 256; ++i) x = x + static_cast<uint64_t>(i);
}

void comm_bench(const CommBenchArgs& a) {
    std::unique_ptr<pipeline::Comm> comm = pipeline::make_mpi_comm();
    if (comm->size() != 2) throw std::runtime_error("dev comm-bench runs under mpirun -np 2");
    std::vector<uint8_t> out(a.out_bytes, 1), back(a.back_bytes, 2), msg;
    const int warmup = 5;
    if (comm->rank() == 1) {
        for (int i = 0; i < a.rounds + warmup; ++i) {
            comm->recv(0, msg);
            busy_for(a.compute_ms);
            comm->send(0, back.data(), back.size());
        }
        return;
    }
    std::vector<double> cost;
    for (int i = 0; i < a.rounds + warmup; ++i) {
        busy_for(a.rank0_ms);  // rank 1 waits meanwhile, as the later stage does
        const auto t0 = std::chrono::steady_clock::now();
        comm->send(1, out.data(), out.size());
        comm->recv(1, msg);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (i >= warmup) cost.push_back(ms - a.compute_ms);
    }
    std::sort(cost.begin(), cost.end());
    double sum = 0;
    for (double c : cost) sum += c;
    const auto at = [&](double q) { return cost[std::min(cost.size() - 1, static_cast<size_t>(q * static_cast<double>(cost.size())))]; };
    std::printf("comm-bench: %zu B out, %zu B back, %.1f ms compute, %d rounds: both hops p50 %.3f ms, mean %.3f ms, p90 %.3f ms;"
                " per boundary p50 %.3f ms\n",
                a.out_bytes, a.back_bytes, a.compute_ms, a.rounds, at(0.5), sum / static_cast<double>(cost.size()), at(0.9), at(0.5) / 2);
}

}  // namespace

void add_comm_bench_command(CLI::App& dev) {
    auto a = std::make_shared<CommBenchArgs>();
    CLI::App* cmd = dev.add_subcommand("comm-bench", "Under mpirun -np 2: the pipeline transport's hand-over cost per token");
    cmd->add_option("--out-bytes", a->out_bytes, "Bytes rank 0 sends per round (hidden states)")->capture_default_str();
    cmd->add_option("--back-bytes", a->back_bytes, "Bytes rank 1 answers with (logits)")->capture_default_str();
    cmd->add_option("--compute-ms", a->compute_ms, "Milliseconds rank 1 computes before it answers")->capture_default_str();
    cmd->add_option("--rank0-ms", a->rank0_ms, "Milliseconds rank 0 computes before each send")->capture_default_str();
    cmd->add_option("--rounds", a->rounds, "Rounds measured")->capture_default_str()->check(CLI::Range(1, 1000000));
    cmd->callback([a] { comm_bench(*a); });
}

}  // namespace hearth::cli
