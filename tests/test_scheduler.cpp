// The serving engine: ref-counted KV blocks, the prefix cache, and the continuous-batching
// scheduler (batched greedy output equals solo output, prefix reuse, cancellation, block
// exhaustion with waiting and preemption), at the engine level and over loopback HTTP.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/generate.h"
#include "runtime/kv_cache.h"
#include "runtime/prefix_cache.h"
#include "runtime/scheduler.h"
#include "server/server.h"
#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using test::shared_path;

// ---- KV cache reference counts

TEST(KvCacheRefs, AttachedBlocksLiveUntilTheLastReferenceGoes) {
    KvCache kv(2, 2, 32, GgmlType::F16, 8);
    ASSERT_TRUE(kv.reserve(0, 40));  // 3 blocks
    EXPECT_EQ(kv.used_blocks(), 3);
    const std::vector<int32_t> prefix(kv.table(0).begin(), kv.table(0).begin() + 2);
    kv.attach(1, prefix);
    EXPECT_EQ(kv.used_blocks(), 3);
    EXPECT_EQ(kv.refs(prefix[0]), 2);
    EXPECT_TRUE(kv.shared(1, 0, 32));
    EXPECT_TRUE(kv.shared(0, 20, 21));
    EXPECT_FALSE(kv.shared(0, 32, 40));  // seq 0's third block is its own
    ASSERT_TRUE(kv.reserve(1, 33));      // a fresh block after the shared ones
    EXPECT_EQ(kv.used_blocks(), 4);
    EXPECT_FALSE(kv.shared(1, 32, 33));
    EXPECT_NE(kv.table(1)[2], kv.table(0)[2]);
    kv.release(0);
    EXPECT_EQ(kv.used_blocks(), 3);  // the two shared blocks stay for seq 1
    EXPECT_EQ(kv.refs(prefix[1]), 1);
    kv.retain(prefix[0]);  // an outside holder (the prefix cache)
    kv.release(1);
    EXPECT_EQ(kv.used_blocks(), 1);
    EXPECT_EQ(kv.refs(prefix[0]), 1);
    kv.unref(prefix[0]);
    EXPECT_EQ(kv.used_blocks(), 0);
    EXPECT_EQ(kv.free_blocks(), 8);
    EXPECT_THROW(kv.unref(prefix[0]), std::logic_error);
    EXPECT_THROW(kv.attach(2, {prefix[0]}), std::logic_error);  // a free block cannot be shared
}

TEST(KvCacheRefs, ReserveFailsWithoutChangingAnything) {
    KvCache kv(1, 1, 32, GgmlType::F16, 3);
    ASSERT_TRUE(kv.reserve(0, 32));
    EXPECT_EQ(kv.blocks_needed(1, 48), 3);
    EXPECT_FALSE(kv.reserve(1, 48));
    EXPECT_EQ(kv.capacity(1), 0);
    EXPECT_EQ(kv.free_blocks(), 1);
    EXPECT_TRUE(kv.reserve(1, 16));
}

TEST(KvCacheRefs, DecodeRefusesToWriteIntoASharedBlock) {
    auto model = Model::load(shared_path("models/stories260K.gguf"));
    ContextParams p;
    p.n_ctx = 64;
    p.n_seq = 2;
    p.n_threads = 1;
    Context ctx(*model, p);
    Batch b;
    for (int32_t i = 0; i < 20; ++i) b.add(1 + i, i, 0, i == 19);
    ctx.decode(b);
    ctx.kv().attach(1, {ctx.kv().table(0)[0]});
    b.clear();
    b.add(5, 16, 1, true);  // seq 1's own next block: fine
    EXPECT_NO_THROW(ctx.decode(b));
    b.clear();
    b.add(5, 3, 1, true);  // inside the shared block
    EXPECT_THROW(ctx.decode(b), std::logic_error);
}

// ---- Prefix cache

std::vector<int32_t> iota_tokens(int32_t n, int32_t start = 1) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = start + i;
    return t;
}

TEST(PrefixCache, FindsTheLongestRunOfWholeBlocks) {
    KvCache kv(1, 1, 32, GgmlType::F16, 8);
    PrefixCache pc(kv);
    const std::vector<int32_t> a = iota_tokens(50);  // 3 full blocks + 2
    ASSERT_TRUE(kv.reserve(0, 50));
    pc.insert(a, kv.table(0), 0, 3);
    EXPECT_EQ(pc.size(), 3);
    const std::vector<int32_t> table0 = kv.table(0);
    kv.release(0);
    EXPECT_EQ(kv.used_blocks(), 3);  // the cache keeps the full blocks
    EXPECT_EQ(pc.evictable(), 3);

    EXPECT_EQ(pc.lookup(a, 10), std::vector<int32_t>(table0.begin(), table0.begin() + 3));
    EXPECT_EQ(pc.lookup(a, 2).size(), 2u);
    std::vector<int32_t> b = a;
    b[40] = 999;  // differs in the third block
    EXPECT_EQ(pc.lookup(b, 10).size(), 2u);
    b[3] = 999;   // and in the first
    EXPECT_TRUE(pc.lookup(b, 10).empty());
    // The same blocks under another parent are another prefix.
    std::vector<int32_t> shifted(a.begin() + 16, a.end());
    EXPECT_TRUE(pc.lookup(shifted, 10).empty());
}

// Registering a sequence's blocks one at a time with the carried chain key caches the
// same prefix as registering them all at once: a lookup finds the whole run, and a
// sequence that diverges in the last block finds all but it.
TEST(PrefixCache, IncrementalInsertWithChainKeyEqualsOneInsert) {
    KvCache kv(1, 1, 32, GgmlType::F16, 8);
    PrefixCache pc(kv);
    const std::vector<int32_t> a = iota_tokens(64);
    ASSERT_TRUE(kv.reserve(0, 64));
    uint64_t chain = 0;
    EXPECT_TRUE(pc.lookup(a, 4, &chain).empty());
    EXPECT_EQ(chain, PrefixCache::kRootKey);
    for (int32_t b = 0; b < 4; ++b) {
        pc.insert(a, kv.table(0), b, b + 1, &chain);
        EXPECT_NE(chain, 0u);
    }
    EXPECT_EQ(pc.size(), 4);
    const std::vector<int32_t> table0 = kv.table(0);
    uint64_t found = 0;
    EXPECT_EQ(pc.lookup(a, 4, &found), table0);
    EXPECT_EQ(found, chain);  // the key carried along is the lookup's last key
    std::vector<int32_t> b = a;
    b[60] = 7;
    EXPECT_EQ(pc.lookup(b, 4).size(), 3u);
    // A wrong carried key would cache blocks under the wrong parent: lookups would miss them.
    PrefixCache other(kv);
    uint64_t fresh = 0;  // unknown: hashed from block 0
    other.insert(a, table0, 2, 4, &fresh);
    EXPECT_EQ(fresh, chain);
}

TEST(PrefixCache, EvictsOnlyUnusedBlocksLeastRecentlyUsedLeavesFirst) {
    KvCache kv(1, 1, 32, GgmlType::F16, 8);
    PrefixCache pc(kv);
    const std::vector<int32_t> a = iota_tokens(32), b = iota_tokens(32, 100);
    ASSERT_TRUE(kv.reserve(0, 32));
    ASSERT_TRUE(kv.reserve(1, 32));
    pc.insert(a, kv.table(0), 0, 2);
    pc.insert(b, kv.table(1), 0, 2);
    const std::vector<int32_t> ta = kv.table(0), tb = kv.table(1);
    kv.release(0);  // a's blocks: cache only; b's still in use by seq 1
    EXPECT_EQ(pc.evictable(), 2);
    pc.lookup(b, 2);
    EXPECT_EQ(pc.evict(1), 1);
    EXPECT_EQ(kv.refs(ta[0]), 1) << "the parent stays while its child is cached";
    EXPECT_EQ(pc.lookup(a, 2).size(), 1u);
    EXPECT_EQ(pc.evict(5), 1);  // b's blocks are in use: not evictable
    EXPECT_EQ(pc.size(), 2);
    EXPECT_EQ(kv.used_blocks(), 2);
    kv.release(1);
    EXPECT_EQ(pc.evict(5), 2);
    EXPECT_EQ(kv.used_blocks(), 0);
    (void)tb;
}

// ---- The scheduler

struct Outcome {
    std::vector<int32_t> tokens;
    std::string text;
    SeqResult result;
    bool done = false;
};

SamplingParams greedy_params() {
    SamplingParams s;
    s.temperature = 0.0f;
    s.repeat_penalty = 1.0f;
    s.top_k = 0;
    s.top_p = 1.0f;
    return s;
}

SeqRequest greedy_request(const std::vector<int32_t>& prompt, int32_t n, Outcome& out,
                          std::shared_ptr<std::atomic<bool>> cancel = nullptr) {
    SeqRequest r;
    r.prompt = prompt;
    r.n_predict = n;
    r.sampling = greedy_params();
    r.cancel = std::move(cancel);
    r.on_token = [&out](int32_t id, std::string text, const SampleResult*) {
        if (id >= 0) out.tokens.push_back(id);
        out.text += text;
    };
    r.on_done = [&out](const SeqResult& res) {
        out.result = res;
        out.done = true;
    };
    return r;
}

void run_to_end(Scheduler& s) {
    for (int i = 0; i < 100000 && s.step(); ++i) {
    }
}

// Eight prompts of different lengths; several share a 40-token beginning.
std::vector<std::vector<int32_t>> eight_prompts(int32_t n_vocab) {
    std::vector<std::vector<int32_t>> out;
    std::vector<int32_t> common;
    for (int32_t i = 0; i < 40; ++i) common.push_back(1 + (i * 37) % (n_vocab - 1));
    const int32_t lens[8] = {3, 17, 45, 60, 9, 33, 52, 41};
    for (int k = 0; k < 8; ++k) {
        std::vector<int32_t> p;
        if (k >= 2 && k % 2 == 0) p = common;  // prompts 2, 4, 6 start alike
        for (int32_t i = static_cast<int32_t>(p.size()); i < lens[k]; ++i) p.push_back(1 + (i * 13 + k * 101) % (n_vocab - 1));
        out.push_back(p);
    }
    return out;
}

ContextParams engine_params(int32_t n_ctx, int32_t n_seq, int32_t kv_blocks = 0) {
    ContextParams p;
    p.n_ctx = n_ctx;
    p.n_seq = n_seq;
    p.n_threads = 2;
    p.n_kv_blocks = kv_blocks;
    return p;
}

// The reference: each prompt alone in a fresh engine (one sequence, no prefix cache).
std::vector<std::vector<int32_t>> solo_outputs(const Model& m, const std::vector<std::vector<int32_t>>& prompts, int32_t n_ctx,
                                               int32_t n) {
    Context ctx(m, engine_params(n_ctx, 1));
    std::vector<std::vector<int32_t>> out;
    for (const auto& p : prompts) {
        Scheduler sched(ctx, SchedulerParams{1, 0, false});
        Outcome o;
        sched.submit(greedy_request(p, n, o));
        run_to_end(sched);
        EXPECT_TRUE(o.done);
        out.push_back(o.tokens);
    }
    return out;
}

class BatchedEqualsSolo : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchedEqualsSolo, GreedyOutputsMatchTheSingleSequenceLoop) {
    auto model = Model::load(shared_path(GetParam()));
    const auto prompts = eight_prompts(model->hparams().n_vocab);
    const int32_t n_ctx = 128, n_gen = 40;
    const auto want = solo_outputs(*model, prompts, n_ctx, n_gen);
    {
        // The single-sequence loop of `hearth generate` agrees wherever it takes the same
        // matmul paths (prompts of 16+ tokens go through the batched path in both).
        Context one(*model, engine_params(n_ctx, 1));
        GenerateOptions o;
        o.n_predict = n_gen;
        o.sampling = greedy_params();
        for (size_t k = 0; k < prompts.size(); ++k) {
            if (prompts[k].size() >= 16) {
                EXPECT_EQ(generate(one, prompts[k], o).tokens, want[k]) << "prompt " << k;
            }
        }
    }

    // Alone in the engine, one after another (the prefix cache warms up on the way).
    Context ctx(*model, engine_params(n_ctx, 8));
    SchedulerParams sp;
    sp.max_running = 8;
    sp.step_tokens = 24;  // small: prompts are prefilled in chunks beside the decodes
    {
        Scheduler sched(ctx, sp);
        for (size_t k = 0; k < prompts.size(); ++k) {
            Outcome o;
            sched.submit(greedy_request(prompts[k], n_gen, o));
            run_to_end(sched);
            ASSERT_TRUE(o.done);
            EXPECT_EQ(o.tokens, want[k]) << "prompt " << k << " alone";
            EXPECT_EQ(o.result.generated, want[k]);
        }
    }
    // All eight together, in one batch, from a cold cache.
    Scheduler sched(ctx, sp);
    std::vector<Outcome> outs(prompts.size());
    for (size_t k = 0; k < prompts.size(); ++k) sched.submit(greedy_request(prompts[k], n_gen, outs[k]));
    EXPECT_EQ(sched.gauges().waiting, 8);
    sched.step();
    EXPECT_EQ(sched.gauges().running, 8);
    run_to_end(sched);
    for (size_t k = 0; k < prompts.size(); ++k) {
        ASSERT_TRUE(outs[k].done);
        EXPECT_EQ(outs[k].tokens, want[k]) << "prompt " << k << " batched";
        EXPECT_NE(outs[k].result.reason, "error") << outs[k].result.error;
        EXPECT_EQ(outs[k].result.n_prompt, static_cast<int32_t>(prompts[k].size()));
    }
    EXPECT_EQ(sched.preemptions(), 0);
    EXPECT_EQ(sched.gauges().running, 0);
    EXPECT_EQ(ctx.kv().used_blocks(), sched.gauges().kv_cached) << "only the prefix cache holds blocks";
}

// stories260K and synthetic llama / qwen2 (QKV bias) / gemma2 (sliding window, soft-capping)
// models with several KV heads; MoE (qwen3moe), latent attention with routed + shared experts
// (deepseek2) and gpt-oss (sinks, biased MXFP4 experts): a token's experts run over whatever
// tokens the batch routed to them, and its result does not change.
INSTANTIATE_TEST_SUITE_P(Models, BatchedEqualsSolo,
                         ::testing::Values("models/stories260K.gguf", "models/synthetic/llama-q8_0.gguf",
                                           "models/synthetic/qwen2-q4_0.gguf", "models/synthetic/gemma2-f32.gguf",
                                           "models/synthetic/qwen3moe-q4_k_m.gguf", "models/synthetic/deepseek2-q4_0.gguf",
                                           "models/synthetic/gpt-oss-mxfp4.gguf"));

TEST(Scheduler, SecondRequestReusesTheCachedPrefix) {
    auto model = Model::load(shared_path("models/stories260K.gguf"));
    Context ctx(*model, engine_params(256, 2));
    Scheduler sched(ctx, SchedulerParams{2, 0, true});
    const std::vector<int32_t> prompt = iota_tokens(70, 5);
    Outcome first, second;
    sched.submit(greedy_request(prompt, 20, first));
    run_to_end(sched);
    EXPECT_EQ(first.result.n_cached, 0);
    EXPECT_GT(sched.gauges().kv_cached, 0);
    sched.submit(greedy_request(prompt, 20, second));
    run_to_end(sched);
    EXPECT_EQ(second.result.n_cached, 64) << "4 whole blocks; the 70th token is computed for logits";
    EXPECT_EQ(second.tokens, first.tokens);
    EXPECT_EQ(second.text, first.text);
    // A prompt that is exactly the first one's prompt + output reuses those blocks too.
    std::vector<int32_t> longer = prompt;
    longer.insert(longer.end(), first.tokens.begin(), first.tokens.end());
    Outcome third;
    sched.submit(greedy_request(longer, 4, third));
    run_to_end(sched);
    EXPECT_EQ(third.result.n_cached, (static_cast<int32_t>(longer.size()) - 1) / 16 * 16);
}

TEST(Scheduler, CancellingFreesTheBlocksAtTheNextStep) {
    auto model = Model::load(shared_path("models/stories260K.gguf"));
    Context ctx(*model, engine_params(256, 2));
    SchedulerParams sp;
    sp.max_running = 2;
    sp.prefix_cache = false;  // every block in use belongs to a sequence
    Scheduler sched(ctx, sp);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    Outcome a, b;
    sched.submit(greedy_request(iota_tokens(40, 3), 200, a, cancel));
    sched.submit(greedy_request(iota_tokens(10, 9), 200, b));
    for (int i = 0; i < 5; ++i) sched.step();
    EXPECT_EQ(ctx.kv().used_blocks(), ctx.kv().capacity(0) / 16 + ctx.kv().capacity(1) / 16);
    const int32_t b_blocks = static_cast<int32_t>(ctx.kv().table(1).size());
    cancel->store(true);
    sched.step();
    ASSERT_TRUE(a.done);
    EXPECT_EQ(a.result.reason, "cancelled");
    EXPECT_FALSE(b.done);
    EXPECT_EQ(ctx.kv().used_blocks(), static_cast<int32_t>(ctx.kv().table(1).size()));
    EXPECT_LE(ctx.kv().used_blocks(), b_blocks + 1);
    EXPECT_EQ(sched.gauges().running, 1);
}

TEST(Scheduler, ExhaustedPoolMakesRequestsWaitOrBePreemptedNeverFail) {
    auto model = Model::load(shared_path("models/stories260K.gguf"));
    const int32_t n_ctx = 96, n_gen = 70;  // each sequence grows to 5-6 blocks
    std::vector<std::vector<int32_t>> prompts = {iota_tokens(20, 2), iota_tokens(9, 50), iota_tokens(25, 90), iota_tokens(14, 7)};
    const auto want = solo_outputs(*model, prompts, n_ctx, n_gen);
    Context ctx(*model, engine_params(n_ctx, 4, 8));  // 8 blocks: room for one and a bit
    SchedulerParams sp;
    sp.max_running = 4;
    Scheduler sched(ctx, sp);
    std::vector<Outcome> outs(prompts.size());
    int preempted = 0;
    for (size_t k = 0; k < prompts.size(); ++k) {
        SeqRequest r = greedy_request(prompts[k], n_gen, outs[k]);
        r.on_preempt = [&preempted] { ++preempted; };
        sched.submit(std::move(r));
    }
    int64_t max_running = 0;
    for (int i = 0; i < 100000 && sched.step(); ++i) {
        max_running = std::max(max_running, sched.gauges().running);
        ASSERT_LE(ctx.kv().used_blocks(), 8);
    }
    for (size_t k = 0; k < prompts.size(); ++k) {
        ASSERT_TRUE(outs[k].done) << k;
        EXPECT_NE(outs[k].result.reason, "error") << outs[k].result.error;
        EXPECT_EQ(outs[k].tokens, want[k]) << "prompt " << k;
    }
    EXPECT_GT(max_running, 1) << "requests did share the pool";
    EXPECT_GT(sched.preemptions(), 0);
    EXPECT_EQ(preempted, sched.preemptions());
}

TEST(Scheduler, RejectsWhatCanNeverFit) {
    auto model = Model::load(shared_path("models/stories260K.gguf"));
    Context ctx(*model, engine_params(32, 1));
    Scheduler sched(ctx, SchedulerParams{1, 0, true});
    Outcome o;
    EXPECT_THROW(sched.submit(greedy_request(iota_tokens(33), 4, o)), std::invalid_argument);
    EXPECT_THROW(sched.submit(greedy_request({}, 4, o)), std::invalid_argument);
    EXPECT_THROW(sched.submit(greedy_request({1, 100000}, 4, o)), std::invalid_argument);
    EXPECT_FALSE(sched.has_work());
    // A prompt filling the context gets exactly one token, then "length".
    sched.submit(greedy_request(iota_tokens(32), 10, o));
    run_to_end(sched);
    EXPECT_EQ(o.tokens.size(), 1u);
    EXPECT_EQ(o.result.reason, "length");
    // A pool smaller than one context is refused up front.
    Context small(*model, engine_params(64, 1, 3));
    EXPECT_THROW(Scheduler(small, SchedulerParams{1, 0, true}), std::invalid_argument);
}

}  // namespace

// ---- Over HTTP

namespace server {
namespace {

class ServingEngine : public ::testing::Test {
protected:
    void TearDown() override { loop_.stop(); }
    void start(const std::function<void(ServerConfig&)>& tweak = {}) {
        ServerConfig cfg = test::LoopbackServer::test_config();
        cfg.manager.n_threads = 2;
        if (tweak) tweak(cfg);
        loop_.start(cfg, directory_resolver(loop_.models_dir()));
    }
    json generate(const std::string& prompt, int n, int num_ctx = 0) {
        json body = {{"model", "stories"}, {"prompt", prompt}, {"raw", true}, {"stream", false},
                     {"options", {{"temperature", 0}, {"num_predict", n}, {"repeat_penalty", 1}}}};
        if (num_ctx > 0) body["options"]["num_ctx"] = num_ctx;
        auto r = loop_.client().Post("/api/generate", body.dump(), "application/json");
        if (!r) return json{{"error", "no reply"}};
        json j = json::parse(r->body);
        j["status"] = r->status;
        return j;
    }
    // The value of a gauge of model "stories" in the metrics exposition (-1: absent).
    double gauge(const std::string& name) {
        const std::string text = loop_.server().models().metrics().render();
        const std::regex re(name + "\\{model=\"stories\"\\} ([0-9.e+-]+)");
        std::smatch m;
        return std::regex_search(text, m, re) ? std::stod(m[1]) : -1;
    }
    // The gauges are set after each scheduler step, just after the last request's answer.
    void wait_until_idle() {
        for (int i = 0; i < 500 && gauge("hearth_requests_running") != 0; ++i) std::this_thread::sleep_for(10ms);
        ASSERT_EQ(gauge("hearth_requests_running"), 0);
    }
    std::vector<json> concurrently(const std::vector<std::string>& prompts, int n, int num_ctx = 0) {
        std::vector<json> out(prompts.size());
        std::vector<std::thread> ts;
        for (size_t i = 0; i < prompts.size(); ++i) ts.emplace_back([&, i] { out[i] = generate(prompts[i], n, num_ctx); });
        for (auto& t : ts) t.join();
        return out;
    }

    test::LoopbackServer loop_{{{"stories.gguf", "models/stories260K.gguf"}}};
};

std::vector<std::string> http_prompts() {
    const std::string common = "Once upon a time, there was a little girl named Lily who loved to play outside";
    return {"Once", common + " in the park.", "The dog ran", common + " with her ball.", "Tom and Sue went to the sea",
            "A big red", common, "One day, a bird"};
}

TEST_F(ServingEngine, EightConcurrentGreedyRequestsAnswerAsTheyDoAlone) {
    start([](ServerConfig& c) { c.manager.num_parallel = 8; });
    const auto prompts = http_prompts();
    std::vector<std::string> solo;
    for (const auto& p : prompts) {
        const json j = generate(p, 24);
        ASSERT_EQ(j["status"], 200) << j.dump();
        solo.push_back(j["response"]);
    }
    const auto batched = concurrently(prompts, 24);
    for (size_t i = 0; i < prompts.size(); ++i) {
        ASSERT_EQ(batched[i]["status"], 200) << batched[i].dump();
        EXPECT_EQ(batched[i]["response"], solo[i]) << prompts[i];
        // Every prompt ran before: its whole blocks came from the prefix cache.
        const int n_prompt = batched[i]["prompt_eval_count"];
        EXPECT_EQ(batched[i]["prompt_cache_hit_tokens"].get<int>(), (n_prompt - 1) / 16 * 16) << prompts[i];
    }
    wait_until_idle();
    EXPECT_EQ(gauge("hearth_kv_blocks_used"), gauge("hearth_kv_blocks_cached"));
    const json ps = json::parse(loop_.client().Get("/api/ps")->body)["models"];
    ASSERT_EQ(ps.size(), 1u);
    const int n_ctx = ps[0]["context_length"];
    EXPECT_EQ(gauge("hearth_kv_blocks_total"), 8 * ((n_ctx + 15) / 16)) << "num_parallel full contexts";
}

TEST_F(ServingEngine, TinyKvPoolStillAnswersEveryRequestCorrectly) {
    start([](ServerConfig& c) {
        c.manager.num_parallel = 4;
        c.manager.kv_blocks = 9;  // num_ctx 128 = 8 blocks per sequence: one at a time, and a bit
    });
    const std::vector<std::string> prompts = {"Once upon a time", "The cat sat", "Lily had a red ball and", "Tom was sad"};
    std::vector<std::string> solo;
    for (const auto& p : prompts) solo.push_back(generate(p, 80, 128)["response"]);
    const auto batched = concurrently(prompts, 80, 128);
    for (size_t i = 0; i < prompts.size(); ++i) {
        ASSERT_EQ(batched[i]["status"], 200) << batched[i].dump();
        EXPECT_EQ(batched[i]["response"], solo[i]) << prompts[i];
    }
    EXPECT_EQ(gauge("hearth_kv_blocks_total"), 9);
}

TEST_F(ServingEngine, DisconnectFreesTheSequencesBlocks) {
    start([](ServerConfig& c) {
        c.manager.debug_token_delay = 20ms;
        c.manager.num_parallel = 2;
    });
    json body = {{"model", "stories"}, {"prompt", "Once upon a time, there was a big dog"}, {"raw", true},
                 {"options", {{"temperature", 0}, {"num_predict", 2000}}}};
    http::Client c = loop_.client();
    int lines = 0;
    double used_while_running = 0;
    const http::Receiver receiver = [&](const char* data, size_t n) {
        for (size_t i = 0; i < n; ++i) lines += data[i] == '\n';
        if (lines >= 40) used_while_running = gauge("hearth_kv_blocks_used") - gauge("hearth_kv_blocks_cached");
        return lines < 40;  // hang up mid-generation
    };
    c.Post("/api/generate", http::Headers{}, body.dump(), "application/json", receiver);
    EXPECT_GE(used_while_running, 1);
    for (int i = 0; i < 500 && loop_.server().models().stats().cancelled == 0; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(loop_.server().models().stats().cancelled, 1u);
    wait_until_idle();
    EXPECT_EQ(gauge("hearth_kv_blocks_used"), gauge("hearth_kv_blocks_cached")) << "no sequence holds blocks";
}

}  // namespace
}  // namespace server
}  // namespace hearth
