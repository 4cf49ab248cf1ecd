// Pipeline stages (cluster/pipeline_*) in one process: every rank on its own thread with the
// in-process Comm, each loading only its layers; greedy output and logits must be bit-identical
// to the whole model in one Context. The same stages under mpirun are scripts/test-pipeline.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "cluster/pipeline_comm.h"
#include "cluster/pipeline_group.h"
#include "cluster/pipeline_stage.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/generate.h"
#include "runtime/scheduler.h"
#include "support/model_checks.h"
#include "support/paths.h"

namespace hearth {
namespace {

using pipeline::StageRange;

ContextParams small_params(int32_t n_batch = 512, int32_t n_seq = 1) {
    ContextParams p;
    p.n_ctx = 256;
    p.n_batch = n_batch;
    p.n_threads = 1;
    p.n_seq = n_seq;
    return p;
}

// Runs `body` with rank 0's Context of a pipeline of n stages over `path` (split `split`),
// the other ranks serving their stages on threads; then ends the group.
void with_pipeline(const std::string& path, int n, const std::string& split, const ContextParams& params,
                   const std::function<void(Context&)>& body) {
    auto comms = pipeline::make_local_comms(n);
    const auto ranges = pipeline::split_layers(path, n, split);
    std::vector<std::thread> stages;
    std::vector<std::string> errors(static_cast<size_t>(n));
    for (int r = 1; r < n; ++r)
        stages.emplace_back([&, r] {
            try {
                pipeline::Member m = pipeline::join(*comms[static_cast<size_t>(r)], path, split);
                Context ctx(*m.model, pipeline::later_stage_params(params));
                pipeline::run_stage(ctx, *m.comm);
            } catch (const std::exception& e) {
                errors[static_cast<size_t>(r)] = e.what();
            }
        });
    try {
        pipeline::Member m = pipeline::join(*comms[0], path, split);
        EXPECT_EQ(m.model->layer_begin(), 0);
        EXPECT_EQ(m.model->layer_end(), ranges[0].end);
        Context ctx(*m.model, params);
        pipeline::CommDownstream down(*m.comm, *m.model, /*timeout_ms=*/60000);
        ctx.set_downstream(&down);
        body(ctx);
        down.finish();
    } catch (const std::exception& e) {
        comms[0]->abort(1);
        ADD_FAILURE() << "rank 0: " << e.what();
    }
    for (auto& t : stages) t.join();
    for (int r = 1; r < n; ++r) EXPECT_EQ(errors[static_cast<size_t>(r)], "") << "rank " << r;
}

std::vector<int32_t> greedy_ids(Context& ctx, const std::vector<int32_t>& prompt, int n) {
    return generate(ctx, prompt, test::greedy(n)).tokens;
}

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 300, 290, 274, 313};

TEST(Pipeline, SplitLayers) {
    const std::string path = test::shared_path("models/stories260K.gguf");
    const gguf::File f = gguf::File::open(path);
    const auto n_layer = static_cast<int32_t>(*f.get_u64("llama.block_count"));
    for (int n = 1; n <= n_layer; ++n) {
        const auto r = pipeline::split_layers(f, n_layer, n, "auto");
        ASSERT_EQ(static_cast<int>(r.size()), n);
        EXPECT_EQ(r.front().begin, 0);
        EXPECT_EQ(r.back().end, n_layer);
        for (size_t i = 0; i < r.size(); ++i) {
            EXPECT_LT(r[i].begin, r[i].end);
            if (i) {
                EXPECT_EQ(r[i].begin, r[i - 1].end);
            }
        }
    }
    const auto two = pipeline::split_layers(f, n_layer, 2, "2," + std::to_string(n_layer - 2));
    EXPECT_EQ(two[0].end, 2);
    EXPECT_EQ(pipeline::describe(two), "0-2 | 2-" + std::to_string(n_layer));
    EXPECT_THROW(pipeline::split_layers(f, n_layer, 2, "1,1"), std::invalid_argument);        // not all layers
    EXPECT_THROW(pipeline::split_layers(f, n_layer, 2, "0," + std::to_string(n_layer)), std::invalid_argument);
    EXPECT_THROW(pipeline::split_layers(f, n_layer, 3, "2,3"), std::invalid_argument);        // wrong count
    EXPECT_THROW(pipeline::split_layers(f, n_layer, 2, "two"), std::invalid_argument);
    EXPECT_THROW(pipeline::split_layers(f, n_layer, n_layer + 1, "auto"), std::invalid_argument);
}

TEST(Pipeline, AutoSplitBalancesBytes) {
    // Two layers of equal bytes, the head on the last stage: 2 stages split 1 | 1.
    const std::string path = test::shared_path("models/synthetic/llama-f32.gguf");
    const gguf::File f = gguf::File::open(path);
    const auto r = pipeline::split_layers(f, 2, 2, "auto");
    EXPECT_EQ(pipeline::describe(r), "0-1 | 1-2");
}

// With each rank's memory budget, the auto split gives each stage bytes in proportion, and a
// stage whose weights exceed its rank's budget is refused with a message naming it.
TEST(Pipeline, AutoSplitFollowsRankMemory) {
    const std::string path = test::shared_path("models/stories260K.gguf");
    const gguf::File f = gguf::File::open(path);
    const auto n_layer = static_cast<int32_t>(*f.get_u64("llama.block_count"));
    uint64_t total = 0;
    for (const auto& t : f.tensors()) total += t.nbytes;
    const auto even = pipeline::split_layers(f, n_layer, 2, "auto", {total, total});
    EXPECT_EQ(pipeline::describe(even), pipeline::describe(pipeline::split_layers(f, n_layer, 2, "auto")));
    // Rank 0 with 4x rank 1's memory: more layers on stage 0 than the even split gives.
    const auto lopsided = pipeline::split_layers(f, n_layer, 2, "auto", {4 * total, total});
    EXPECT_GT(lopsided[0].end, even[0].end);
    EXPECT_EQ(lopsided.back().end, n_layer);
    const auto other_way = pipeline::split_layers(f, n_layer, 2, "auto", {total, 4 * total});
    EXPECT_LT(other_way[0].end, even[0].end);
    EXPECT_EQ(pipeline::counts_of(even), std::to_string(even[0].end) + "," + std::to_string(n_layer - even[0].end));
    // Each rank holds 60% of the model: two stages fit, one process would not.
    const uint64_t share = total * 6 / 10;
    EXPECT_NO_THROW(pipeline::split_layers(f, n_layer, 2, "auto", {share, share}));
    try {
        pipeline::split_layers(f, n_layer, 2, "auto", {share, total / 10});
        ADD_FAILURE() << "a stage larger than its rank's budget was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("stage 1"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
    }
    EXPECT_THROW(pipeline::split_layers(f, n_layer, 2, "1," + std::to_string(n_layer - 1), {total, total / 10}), std::invalid_argument);
    EXPECT_THROW(pipeline::split_layers(f, n_layer, 2, "auto", {total}), std::invalid_argument);  // one budget per stage
}

// interrupt(): a receive waiting on another thread, and every later send or receive, throws
// CommError with the reason (rank 0 gives up on a group that mpirun is ending).
TEST(Pipeline, InterruptWakesAWaitingReceive) {
    auto comms = pipeline::make_local_comms(2);
    std::string caught;
    std::thread waiter([&] {
        std::vector<uint8_t> msg;
        try {
            comms[0]->recv(1, msg);
        } catch (const pipeline::CommError& e) {
            caught = e.what();
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    comms[0]->interrupt("the group is ending");
    waiter.join();
    EXPECT_EQ(caught, "the group is ending");
    const uint8_t byte = 1;
    EXPECT_THROW(comms[0]->send(1, &byte, 1), pipeline::CommError);
    // The other rank is not interrupted.
    comms[1]->send(0, &byte, 1);
    std::vector<uint8_t> msg;
    EXPECT_TRUE(comms[1]->recv(0, msg, 0) == false);
}

TEST(Pipeline, StageLoadsOnlyItsLayers) {
    const std::string path = test::shared_path("models/synthetic/llama-q8_0.gguf");
    auto whole = Model::load(path);
    auto first = Model::load(path, LoadOptions{0, 1});
    auto second = Model::load(path, LoadOptions{1, 2});
    EXPECT_TRUE(whole->whole());
    EXPECT_FALSE(first->whole());
    EXPECT_TRUE(first->weights().layers[0].wo.rows > 0);
    EXPECT_EQ(first->weights().layers[1].wo.rows, 0);  // dropped before the weight copy
    EXPECT_EQ(first->weights().output.rows, 0);        // the head is the last stage's
    EXPECT_EQ(second->weights().layers[0].wo.rows, 0);
    EXPECT_EQ(second->weights().output.rows, whole->weights().output.rows);
    if (whole->packed_bytes() > 0) {
        EXPECT_LT(first->packed_bytes(), whole->packed_bytes());
    }
    EXPECT_THROW(Model::load(path, LoadOptions{1, 1}), std::runtime_error);
    EXPECT_THROW(Model::load(path, LoadOptions{0, 3}), std::runtime_error);
    // A stage's context holds the KV cache of its layers only.
    Context c1(*first, small_params()), cw(*whole, small_params());
    EXPECT_EQ(c1.kv().bytes() * 2, cw.kv().bytes());
    // Its first stage cannot decode without the later ones.
    Batch b;
    b.add(1, 0, 0, true);
    EXPECT_THROW(c1.decode(b), std::logic_error);
}

// Greedy ids through n stages equal one process's, with prompts split in chunks of 4 tokens
// (each chunk crosses the stages on its own) and a second generation on the same contexts.
void expect_same_ids(const std::string& path, int n, const std::string& split = "auto") {
    SCOPED_TRACE(path + " over " + std::to_string(n) + " stages");
    auto whole = Model::load(path);
    std::vector<int32_t> prompt;
    for (int32_t t : kPrompt) prompt.push_back(t % whole->hparams().n_vocab);
    Context ref(*whole, small_params(4));
    const auto want = greedy_ids(ref, prompt, 24);
    const auto want2 = greedy_ids(ref, {prompt[0], prompt[2]}, 8);
    EXPECT_FALSE(want.empty());
    with_pipeline(path, n, split, small_params(4), [&](Context& ctx) {
        EXPECT_EQ(greedy_ids(ctx, prompt, 24), want);
        EXPECT_EQ(greedy_ids(ctx, {prompt[0], prompt[2]}, 8), want2);
    });
}

TEST(Pipeline, Stories260kTwoAndThreeStages) {
    const std::string path = test::shared_path("models/stories260K.gguf");
    expect_same_ids(path, 2);
    expect_same_ids(path, 3);
    expect_same_ids(path, 2, "1,4");
}

TEST(Pipeline, EverySyntheticDecoderTwoStages) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(test::shared_path("models/synthetic"))) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() != ".gguf" || name.find("bert") != std::string::npos) continue;
        expect_same_ids(e.path().string(), 2);
        ++n;
    }
    EXPECT_GE(n, 20);
}

// A batch that mixes two sequences (as the scheduler's steps do), prompt rows and decode rows:
// every logits row is bit-identical to the whole model's.
TEST(Pipeline, MixedBatchLogitsBitIdentical) {
    const std::string path = test::shared_path("models/synthetic/qwen3-q4_k_m.gguf");
    auto whole = Model::load(path);
    auto run = [&](Context& ctx, std::vector<std::vector<float>>& rows) {
        Batch a;
        for (int32_t i = 0; i < 5; ++i) a.add(kPrompt[static_cast<size_t>(i)], i, 0, i == 4);
        for (int32_t i = 0; i < 3; ++i) a.add(kPrompt[static_cast<size_t>(i + 3)], i, 1, true);
        const int32_t n_out = ctx.decode(a);
        Batch b;
        b.add(7, 5, 0, true);
        b.add(9, 3, 1, true);
        const int32_t n2 = ctx.decode(b);
        (void)n_out;
        for (int32_t r = 0; r < n2; ++r) rows.emplace_back(ctx.logits(r), ctx.logits(r) + ctx.n_vocab());
    };
    std::vector<std::vector<float>> want, got;
    Context ref(*whole, small_params(512, 2));
    run(ref, want);
    with_pipeline(path, 2, "auto", small_params(512, 2), [&](Context& ctx) { run(ctx, got); });
    ASSERT_EQ(got.size(), want.size());
    for (size_t r = 0; r < want.size(); ++r)
        EXPECT_EQ(std::memcmp(got[r].data(), want[r].data(), want[r].size() * sizeof(float)), 0) << "row " << r;
}

// The daemon's group (pipeline_group.h): rank 0 opens a model and a context through the
// StageGroup as the runner does; the later ranks load on demand; a model that a stage cannot
// load is an error on rank 0, and the group keeps serving.
TEST(Pipeline, DaemonGroupOpensModelsOnDemand) {
    const std::string path = test::shared_path("models/stories260K.gguf");
    auto comms = pipeline::make_local_comms(3);
    std::vector<std::thread> stages;
    for (int r = 1; r < 3; ++r)
        stages.emplace_back([&, r] {
            try {
                pipeline::serve_stage(*comms[static_cast<size_t>(r)]);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "rank " << r << ": " << e.what();
            }
        });
    {
        pipeline::CommGroup group(*comms[0], "auto", 60000);
        // Hello collected every rank's memory budget.
        ASSERT_EQ(group.budgets().size(), 3u);
        for (uint64_t b : group.budgets()) EXPECT_EQ(b, pipeline::rank_memory_budget());
        EXPECT_THROW(group.open_model("/nonexistent.gguf"), std::exception);
        const LoadOptions lo = group.open_model(path);
        EXPECT_EQ(lo.layer_begin, 0);
        auto model = Model::load(path, lo);
        Context ctx(*model, small_params(4, 2));
        ctx.set_downstream(group.open_context(small_params(4, 2)));
        auto whole = Model::load(path);
        Context ref(*whole, small_params(4, 2));
        EXPECT_EQ(greedy_ids(ctx, kPrompt, 16), greedy_ids(ref, kPrompt, 16));
        // Reopened (as after an unload): fresh contexts on every stage.
        ctx.set_downstream(group.open_context(small_params(4, 2)));
        ctx.clear_all();
        EXPECT_EQ(greedy_ids(ctx, kPrompt, 16), greedy_ids(ref, kPrompt, 16));
        group.finish();
    }
    for (auto& t : stages) t.join();
}

// The scheduler pins the matmul path per token kind (prompt: GEMM, generated: dot); the later
// stages must compute with the same path: 20 prompt tokens forced through the dot kernels (the
// size alone would pick the GEMM) give bit-identical logits.
TEST(Pipeline, PinnedMatmulPathReachesEveryStage) {
    // F32 weights: the dot kernels and the GEMM sum in different orders (the packed types'
    // two kernels are bit-identical, so they would not show a wrong path).
    const std::string path = test::shared_path("models/synthetic/llama-f32.gguf");
    auto whole = Model::load(path);
    auto run = [&](Context& ctx, std::vector<float>& out) {
        Batch b;
        for (int32_t i = 0; i < 20; ++i) b.add(kPrompt[static_cast<size_t>(i) % kPrompt.size()], i, 0, true);
        ctx.scratch().mm.path = MatmulScratch::Path::Dot;
        const int32_t n = ctx.decode(b);
        ctx.scratch().mm.path = MatmulScratch::Path::BySize;
        out.assign(ctx.logits(0), ctx.logits(0) + static_cast<size_t>(n) * static_cast<size_t>(ctx.n_vocab()));
    };
    std::vector<float> want, got;
    Context ref(*whole, small_params());
    run(ref, want);
    with_pipeline(path, 2, "auto", small_params(), [&](Context& ctx) { run(ctx, got); });
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
}

// The serving engine over a pipeline: micro-batches in flight (Scheduler::step_pipelined), with
// prompts prefilled in chunks beside decodes, a KV pool small enough for preemption, and a
// cancellation while the sequence is in flight; every answer equals the sequence alone in one
// process.
struct Outcome {
    std::vector<int32_t> tokens;
    SeqResult result;
    bool done = false;
};

SeqRequest greedy_request(const std::vector<int32_t>& prompt, int32_t n, Outcome& out,
                          std::shared_ptr<std::atomic<bool>> cancel = nullptr) {
    SeqRequest r;
    r.prompt = prompt;
    r.n_predict = n;
    r.sampling = test::greedy(n).sampling;
    r.cancel = std::move(cancel);
    r.on_token = [&out](int32_t id, std::string, const SampleResult*) {
        if (id >= 0) out.tokens.push_back(id);
    };
    r.on_done = [&out](const SeqResult& res) {
        out.result = res;
        out.done = true;
    };
    return r;
}

void expect_engine_matches(const std::string& path, int n_stages, int32_t kv_blocks) {
    SCOPED_TRACE(path + " over " + std::to_string(n_stages) + " stages, " + std::to_string(kv_blocks) + " KV blocks");
    auto whole = Model::load(path);
    const int32_t nv = whole->hparams().n_vocab, n_gen = 24;
    std::vector<std::vector<int32_t>> prompts;
    const int32_t lens[6] = {3, 17, 30, 9, 21, 5};
    for (int k = 0; k < 6; ++k) {
        std::vector<int32_t> p;
        for (int32_t i = 0; i < lens[k]; ++i) p.push_back(1 + (i * 13 + k * 101) % (nv - 1));
        prompts.push_back(p);
    }
    std::vector<std::vector<int32_t>> want;
    {
        Context ctx(*whole, small_params(512, 1));
        for (const auto& p : prompts) {
            Scheduler sched(ctx, SchedulerParams{1, 0, false});
            Outcome o;
            sched.submit(greedy_request(p, n_gen, o));
            while (sched.step()) {
            }
            want.push_back(o.tokens);
        }
    }
    ContextParams cp = small_params(512, 4);
    cp.n_ctx = 64;
    cp.n_kv_blocks = kv_blocks;
    with_pipeline(path, n_stages, "auto", cp, [&](Context& ctx) {
        EXPECT_EQ(ctx.pipeline_depth(), n_stages);
        SchedulerParams sp{4, 16, false};  // 16 tokens a step: prompts in chunks beside decodes
        Scheduler sched(ctx, sp);
        std::vector<Outcome> outs(prompts.size() + 1);
        for (size_t k = 0; k < prompts.size(); ++k) sched.submit(greedy_request(prompts[k], n_gen, outs[k]));
        auto cancel = std::make_shared<std::atomic<bool>>(false);
        sched.submit(greedy_request(prompts[2], 40, outs.back(), cancel));
        size_t max_flight = 0;
        for (int i = 0; i < 100000 && sched.step(); ++i) {
            max_flight = std::max(max_flight, ctx.in_flight());
            if (!outs.back().tokens.empty() && outs.back().tokens.size() >= 3) *cancel = true;
        }
        for (size_t k = 0; k < prompts.size(); ++k) {
            ASSERT_TRUE(outs[k].done) << k;
            EXPECT_NE(outs[k].result.reason, "error") << outs[k].result.error;
            EXPECT_EQ(outs[k].tokens, want[k]) << "prompt " << k;
        }
        EXPECT_TRUE(outs.back().done);
        EXPECT_EQ(outs.back().result.reason, "cancelled");
        EXPECT_EQ(max_flight, static_cast<size_t>(n_stages)) << "micro-batches kept every stage busy";
        if (kv_blocks > 0) {
            EXPECT_GT(sched.preemptions(), 0);
        }
        EXPECT_EQ(ctx.in_flight(), 0u);
    });
}

TEST(Pipeline, ServingEngineWithMicroBatches) {
    expect_engine_matches(test::shared_path("models/stories260K.gguf"), 2, 0);
    expect_engine_matches(test::shared_path("models/stories260K.gguf"), 3, 0);
    expect_engine_matches(test::shared_path("models/stories260K.gguf"), 2, 6);  // preemption
    expect_engine_matches(test::shared_path("models/synthetic/qwen3moe-q4_k_m.gguf"), 2, 0);
    expect_engine_matches(test::shared_path("models/synthetic/llama-f32.gguf"), 2, 0);
}

// A stage that does not answer: rank 0's Downstream gives up after its timeout.
TEST(Pipeline, SilentStageTimesOut) {
    const std::string path = test::shared_path("models/stories260K.gguf");
    auto comms = pipeline::make_local_comms(2);
    pipeline::Member m = pipeline::join(*comms[0], path, "auto");
    Context ctx(*m.model, small_params());
    pipeline::CommDownstream down(*m.comm, *m.model, /*timeout_ms=*/100);
    ctx.set_downstream(&down);
    Batch b;
    b.add(1, 0, 0, true);
    EXPECT_THROW(ctx.decode(b), pipeline::CommError);
    comms[0]->abort(1);
    std::vector<uint8_t> msg;
    EXPECT_THROW(comms[1]->recv(0, msg), pipeline::CommError);
}

}  // namespace
}  // namespace hearth
