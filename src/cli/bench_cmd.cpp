// `hearth bench`: llama-bench-style prompt-processing and generation throughput, printed
// as a markdown table or llama-bench's JSON shape.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/bench_extras.h"
#include "cli/commands.h"
#include "cli/engine_common.h"
#include "model/model.h"
#include "tensor/cpu.h"

namespace hearth::cli {

CLI::App* add_bench_serve_command(CLI::App& bench);  // bench_serve.cpp: `hearth bench serve`

namespace {

struct BenchArgs {
    EngineArgs engine;
    std::vector<int> n_prompt{128};
    std::vector<int> n_gen{64};
    std::vector<int> depth{0};
    std::vector<int> parallel{1};
    int reps = 5;
    std::string output = "md";
    bool profile = false;
    bool bandwidth = true;
};

struct BenchResult {
    int n_prompt, n_gen, depth, n_seq;
    std::vector<double> ns;  // per repetition
};

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / double(v.size());
}
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
}

// Fills positions [start, start + n) of sequence `seq` with random tokens in n_batch chunks.
void prefill(Context& ctx, int n, int start, std::mt19937& rng, int seq = 0) {
    const Model& m = ctx.model();
    std::uniform_int_distribution<int32_t> pick(0, m.hparams().n_vocab - 1);
    Batch b;
    for (int i = 0; i < n; ++i) {
        const int32_t tok = (start + i == 0 && m.tokenizer().bos() >= 0) ? m.tokenizer().bos() : pick(rng);
        b.add(tok, start + i, seq, i == n - 1);
    }
    ctx.decode(b);
}

// n decode steps; each step is one forward pass with one new token of each of n_seq
// sequences (what a serving engine runs for n_seq concurrent requests).
void generate_tokens(Context& ctx, int n, int start, std::mt19937& rng, int n_seq = 1) {
    std::uniform_int_distribution<int32_t> pick(0, ctx.model().hparams().n_vocab - 1);
    Batch b;
    int32_t tok = ctx.model().tokenizer().bos() >= 0 ? ctx.model().tokenizer().bos() : 0;
    for (int i = 0; i < n; ++i) {
        b.clear();
        for (int s = 0; s < n_seq; ++s) b.add(s == 0 ? tok : pick(rng), start + i, s, true);
        ctx.decode(b);
        tok = pick(rng);
    }
}

std::string model_type(const Model& m) {
    const uint64_t params = [&] {
        uint64_t n = 0;
        for (const auto& t : m.file().tensors()) n += static_cast<uint64_t>(t.n_elements());
        return n;
    }();
    char buf[64];
    if (params >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.1fB", double(params) / 1e9);
    else std::snprintf(buf, sizeof buf, "%.0fM", double(params) / 1e6);
    std::string ftype = "?";
    if (auto ft = m.file().get_u64("general.file_type")) {
        static const char* names[] = {"all F32", "F16", "Q4_0", "Q4_1", "?", "?", "?", "Q8_0", "Q5_0", "Q5_1",
                                      "Q2_K", "Q3_K - Small", "Q3_K - Medium", "Q3_K - Large", "Q4_K - Small",
                                      "Q4_K - Medium", "Q5_K - Small", "Q5_K - Medium", "Q6_K"};
        if (*ft < sizeof(names) / sizeof(names[0])) ftype = names[*ft];
        else if (*ft == 32) ftype = "BF16";
        else if (*ft == 38) ftype = "MXFP4 MoE";
    } else {
        ftype = "all F32";
    }
    return m.hparams().arch + " " + buf + " " + ftype;
}

}  // namespace

void add_bench_command(CLI::App& app) {
    auto a = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand("bench", "Measure prompt processing and generation speed (like llama-bench)");
    a->engine.add_to(*cmd, /*model_required=*/false);  // required unless `serve` runs
    CLI::App* serve = add_bench_serve_command(*cmd);
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt lengths (pp tests)")->delimiter(',')->capture_default_str();
    cmd->add_option("-n,--n-gen", a->n_gen, "Generation lengths (tg tests)")->delimiter(',')->capture_default_str();
    cmd->add_option("-d,--n-depth", a->depth, "Tokens already in the context")->delimiter(',')->capture_default_str();
    cmd->add_option("--parallel", a->parallel,
                    "Sequences decoding together in tg tests (one token each per forward pass; t/s is their sum)")
        ->delimiter(',')
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    cmd->add_option("-r,--repetitions", a->reps, "Repetitions per test")->capture_default_str();
    cmd->add_flag("--profile", a->profile, "Also print the time per op kind of one prefill and of decode steps");
    cmd->add_flag("!--no-bandwidth", a->bandwidth, "Skip measuring the read bandwidth (the decode speed limit)");
    cmd->add_option("-o,--output", a->output, "Output format: md or json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
    cmd->callback([a, serve] {
        if (serve->parsed()) return;
        if (a->engine.model.empty()) throw CLI::RequiredError("--model");
        auto model = Model::load(a->engine.model);
        int max_ctx = 0;
        for (int d : a->depth)
            for (int p : a->n_prompt) max_ctx = std::max(max_ctx, d + std::max(p, 1));
        for (int d : a->depth)
            for (int g : a->n_gen) max_ctx = std::max(max_ctx, d + g + 1);
        EngineArgs e = a->engine;
        if (e.ctx == 0) e.ctx = max_ctx;
        const int max_seq = *std::max_element(a->parallel.begin(), a->parallel.end());
        Context ctx(*model, e.context_params(max_seq));
        std::mt19937 rng(42);
        std::vector<BenchResult> results;
        auto run = [&](int np, int ng, int depth, int n_seq) {
            BenchResult r{np, ng, depth, n_seq, {}};
            for (int rep = -1; rep < a->reps; ++rep) {  // rep -1: warm-up
                for (int s = 0; s < n_seq; ++s) {
                    ctx.clear(s);
                    if (depth > 0) prefill(ctx, depth, 0, rng, s);
                }
                const auto t0 = std::chrono::steady_clock::now();
                if (np > 0) prefill(ctx, np, depth, rng);
                if (ng > 0) generate_tokens(ctx, ng, depth, rng, n_seq);
                const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
                if (rep >= 0) r.ns.push_back(ns);
            }
            results.push_back(r);
        };
        for (int d : a->depth) {
            for (int p : a->n_prompt)
                if (p > 0) run(p, 0, d, 1);
            for (int g : a->n_gen)
                if (g > 0)
                    for (int n_seq : a->parallel) run(0, g, d, n_seq);
        }
        const std::string type = model_type(*model);
        const uint64_t size = std::filesystem::file_size(model->path());
        // Decode reads every weight once per token: its limit is bandwidth / file size. A MoE
        // model reads only the routed experts: n_expert_used / n_expert of each expert tensor.
        double read_per_token = double(size);
        const HParams& mhp = model->hparams();
        if (mhp.n_expert > 0)
            for (const auto& t : model->file().tensors())
                if (t.name.find("_exps.") != std::string::npos)
                    read_per_token -= double(t.nbytes) * (1.0 - double(mhp.n_expert_used) / double(mhp.n_expert));
        const bool any_tg = std::any_of(results.begin(), results.end(), [](const BenchResult& r) { return r.n_gen > 0; });
        const double bw = (a->bandwidth && any_tg) ? measure_read_bandwidth(ctx.n_threads()) : 0.0;
        const double limit = bw > 0 ? bw * 1e9 / read_per_token : 0.0;
        uint64_t n_params = 0;
        for (const auto& t : model->file().tensors()) n_params += static_cast<uint64_t>(t.n_elements());
        if (a->output == "json") {
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& r : results) {
                const int n_tokens = r.n_prompt + r.n_gen * r.n_seq;
                std::vector<double> ts;
                for (double ns : r.ns) ts.push_back(1e9 * n_tokens / ns);
                arr.push_back({{"build_commit", "hearth"}, {"model_filename", model->path()}, {"model_type", type},
                               {"model_size", size}, {"model_n_params", n_params}, {"n_batch", e.batch},
                               {"n_ubatch", e.batch}, {"n_threads", ctx.n_threads()}, {"isa", isa_family_name(isa_family())}, {"type_k", e.kv_type},
                               {"type_v", e.kv_type}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"n_depth", r.depth}, {"n_parallel", r.n_seq},
                               {"avg_ns", static_cast<uint64_t>(mean(r.ns))}, {"stddev_ns", static_cast<uint64_t>(stddev(r.ns))},
                               {"avg_ts", mean(ts)}, {"stddev_ts", stddev(ts)}, {"samples_ns", r.ns}, {"samples_ts", ts}});
                if (r.n_gen > 0 && r.n_seq == 1 && limit > 0) {
                    arr.back()["read_bandwidth_gbs"] = bw;
                    arr.back()["tg_limit_ts"] = limit;
                    arr.back()["bytes_read_per_token"] = read_per_token;
                    arr.back()["fraction_of_limit"] = mean(ts) / limit;
                }
            }
            std::printf("%s\n", arr.dump(2).c_str());
            return;
        }
        std::printf("| model | size | params | backend | threads | test | t/s |\n");
        std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
        for (const auto& r : results) {
            const int n_tokens = r.n_prompt + r.n_gen * r.n_seq;
            std::vector<double> ts;
            for (double ns : r.ns) ts.push_back(1e9 * n_tokens / ns);
            std::string test = r.n_prompt > 0 ? "pp" + std::to_string(r.n_prompt) : "tg" + std::to_string(r.n_gen);
            if (r.n_seq > 1) test += " x" + std::to_string(r.n_seq);
            if (r.depth > 0) test += " @ d" + std::to_string(r.depth);
            std::printf("| %s | %.2f MiB | %.2f %s | CPU (%s) | %d | %s | %.2f ± %.2f |\n", type.c_str(), double(size) / 1048576.0,
                        n_params >= 1000000000ull ? double(n_params) / 1e9 : double(n_params) / 1e6,
                        n_params >= 1000000000ull ? "B" : "M", isa_family_name(isa_family()), ctx.n_threads(), test.c_str(), mean(ts), stddev(ts));
        }
        if (limit > 0) {
            if (mhp.n_expert > 0)
                std::printf("\nRead bandwidth: %.1f GB/s with %d threads; decode limit for the %.2f GB read per token "
                            "(%d of %d experts): %.1f t/s\n",
                            bw, ctx.n_threads(), read_per_token / 1e9, mhp.n_expert_used, mhp.n_expert, limit);
            else
                std::printf("\nRead bandwidth: %.1f GB/s with %d threads; decode limit for this %.2f GB file: %.1f t/s\n", bw,
                            ctx.n_threads(), double(size) / 1e9, limit);
            for (const auto& r : results) {
                if (r.n_gen == 0 || r.n_seq > 1) continue;
                std::vector<double> ts;
                for (double ns : r.ns) ts.push_back(1e9 * r.n_gen / ns);
                std::printf("tg%d%s: %.1f%% of the limit\n", r.n_gen, r.depth ? (" @ d" + std::to_string(r.depth)).c_str() : "",
                            100.0 * mean(ts) / limit);
            }
        }
        if (a->profile)
            for (int n_seq : a->parallel)
                print_profile(ctx, n_seq == a->parallel.front() && !a->n_prompt.empty() ? a->n_prompt.front() : 0,
                              a->n_gen.empty() ? 0 : a->n_gen.front(), n_seq);
    });
}

}  // namespace hearth::cli
