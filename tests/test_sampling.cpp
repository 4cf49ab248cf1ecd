#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sampling/sampler.h"

namespace hearth {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Every stage off, temperature 1, fixed seed: a plain draw from softmax(logits).
SamplingParams plain(uint64_t seed = 1234) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.repeat_last_n = 64;
    p.seed = seed;
    return p;
}

std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(p > 0 ? static_cast<float>(std::log(p)) : -kInf);
    return l;
}

// Draws n tokens from a fresh copy of `logits` each time; returns the per-token counts.
std::vector<int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<int> counts(logits.size(), 0);
    std::vector<float> work;
    for (int i = 0; i < n; ++i) {
        work = logits;
        const int32_t id = s.sample(work.data(), static_cast<int32_t>(work.size())).id;
        EXPECT_GE(id, 0);
        EXPECT_LT(id, static_cast<int32_t>(logits.size()));
        ++counts[static_cast<size_t>(id)];
    }
    return counts;
}

std::set<int32_t> support(const std::vector<int>& counts) {
    std::set<int32_t> s;
    for (size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] > 0) s.insert(static_cast<int32_t>(i));
    }
    return s;
}

std::vector<int32_t> draws(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<int32_t> out;
    std::vector<float> work;
    for (int i = 0; i < n; ++i) {
        work = logits;
        out.push_back(s.sample(work.data(), static_cast<int32_t>(work.size())).id);
    }
    return out;
}

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 10.0f) {
    std::mt19937 g(seed);  // mt19937's output sequence is fixed by the standard
    std::vector<float> l(n);
    for (float& x : l) x = static_cast<float>(g() % 100000u) / 100000.0f * scale;
    return l;
}

// ---- validation

TEST(SamplingParams, DefaultsAreValid) {
    EXPECT_EQ(SamplingParams{}.validate(), "");
    SamplingParams p;
    p.temperature = 0.0f;
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.typical_p = 1.0f;
    p.repeat_last_n = -1;
    p.n_probs = 20;
    p.presence_penalty = -2.0f;
    p.logit_bias[5] = -kInf;
    p.logit_bias[7] = 3.5f;
    EXPECT_EQ(p.validate(), "");
}

TEST(SamplingParams, RejectsBadValues) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    struct Case {
        const char* field;
        void (*set)(SamplingParams&, float);
        std::vector<float> bad;
    };
    const std::vector<Case> cases = {
        {"temperature", [](SamplingParams& p, float v) { p.temperature = v; }, {nan, kInf, -kInf, -0.1f}},
        {"top_p", [](SamplingParams& p, float v) { p.top_p = v; }, {nan, kInf, 0.0f, -0.5f, 1.01f}},
        {"min_p", [](SamplingParams& p, float v) { p.min_p = v; }, {nan, kInf, -0.01f, 1.5f}},
        {"typical_p", [](SamplingParams& p, float v) { p.typical_p = v; }, {nan, kInf, 0.0f, 2.0f}},
        {"repeat_penalty", [](SamplingParams& p, float v) { p.repeat_penalty = v; }, {nan, kInf, 0.0f, -1.0f}},
        {"presence_penalty", [](SamplingParams& p, float v) { p.presence_penalty = v; }, {nan, kInf, -kInf}},
        {"frequency_penalty", [](SamplingParams& p, float v) { p.frequency_penalty = v; }, {nan, kInf, -kInf}},
        {"logit_bias", [](SamplingParams& p, float v) { p.logit_bias[3] = v; }, {nan, kInf}},
    };
    for (const Case& c : cases) {
        for (float v : c.bad) {
            SamplingParams p;
            c.set(p, v);
            const std::string err = p.validate();
            EXPECT_NE(err.find(c.field), std::string::npos) << c.field << " = " << v << " gave '" << err << "'";
        }
    }
    SamplingParams p;
    p.repeat_last_n = -2;
    EXPECT_NE(p.validate().find("repeat_last_n"), std::string::npos);
    p = {};
    p.n_probs = -1;
    EXPECT_NE(p.validate().find("n_probs"), std::string::npos);
    p.n_probs = 21;
    EXPECT_NE(p.validate().find("n_probs"), std::string::npos);
    p = {};
    p.logit_bias[-4] = 1.0f;
    EXPECT_NE(p.validate().find("logit_bias"), std::string::npos);
}

// ---- greedy and seeding

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
    SamplingParams p;  // defaults otherwise: top-k, top-p, penalties are all bypassed/neutral here
    p.temperature = 0.0f;
    Sampler s(p);
    std::vector<float> l = {0.5f, 3.0f, -1.0f, 2.9f};
    EXPECT_EQ(s.sample(l.data(), 4).id, 1);
    l = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
    EXPECT_EQ(s.sample(l.data(), 5).id, 1);
    l = {-5.0f, -5.0f};
    EXPECT_EQ(s.sample(l.data(), 2).id, 0);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    l = {nan, -1.0f, nan};
    EXPECT_EQ(s.sample(l.data(), 3).id, 1);

    const std::vector<float> big = random_logits(151936, 7);
    const auto expected = std::max_element(big.begin(), big.end()) - big.begin();
    l = big;
    EXPECT_EQ(s.sample(l.data(), static_cast<int32_t>(l.size())).id, expected);
}

TEST(Sampler, FixedSeedIsReproducibleAndSeedsDiffer) {
    const std::vector<float> l = random_logits(1000, 3, 4.0f);
    SamplingParams p = plain(42);
    p.top_k = 100;
    p.top_p = 0.95f;
    Sampler a(p), b(p);
    const auto da = draws(a, l, 200);
    EXPECT_EQ(da, draws(b, l, 200));
    EXPECT_EQ(a.seed(), 42u);

    Sampler c(plain(43));
    Sampler d(plain(42));
    EXPECT_NE(draws(c, l, 200), draws(d, l, 200));
}

TEST(Sampler, ResetRestartsTheSequence) {
    const std::vector<float> l = random_logits(500, 11, 3.0f);
    Sampler s(plain(99));
    const auto first = draws(s, l, 50);
    s.reset();
    EXPECT_EQ(draws(s, l, 50), first);
}

TEST(Sampler, DefaultSeedIsRandom) {
    Sampler a{SamplingParams{}}, b{SamplingParams{}};
    EXPECT_NE(a.seed(), b.seed());  // 64 random bits each: equal with probability 2^-64
    // The drawn seed reproduces the sequence when passed back in.
    SamplingParams p = plain();
    p.seed = SamplingParams{}.seed;
    Sampler r(p);
    Sampler again(plain(r.seed()));
    const std::vector<float> l = random_logits(300, 5, 3.0f);
    EXPECT_EQ(draws(r, l, 30), draws(again, l, 30));
}

// The draw is splitmix64 -> 53-bit double u in [0,1) -> the first candidate (in id order
// when nothing sorts them) whose cumulative weight exceeds u * total. Over 1000 equal
// logits that is floor(u * 1000). Values computed independently from the splitmix64
// reference (first output for seed 0 is 0xe220a8397b1dcdaf).
TEST(Sampler, KnownAnswerDraws) {
    const std::vector<float> uniform(1000, 0.25f);
    struct Known {
        uint64_t seed;
        std::vector<int32_t> ids;
    };
    const std::vector<Known> known = {
        {0, {883, 431, 26, 970, 106, 327, 173, 771}},
        {42, {741, 159, 278, 344, 38, 868, 218, 800}},
        {0x123456789ABCDEFull, {83, 833, 185, 636, 4, 80, 722, 535}},
    };
    for (const Known& k : known) {
        Sampler s(plain(k.seed));
        EXPECT_EQ(draws(s, uniform, 8), k.ids) << "seed " << k.seed;
    }
    // A non-uniform, fully chained case pinned from this implementation.
    SamplingParams p = plain(2024);
    p.top_k = 40;
    p.top_p = 0.9f;
    p.min_p = 0.05f;
    p.temperature = 0.8f;
    Sampler s(p);
    const std::vector<float> l = random_logits(32000, 17, 8.0f);
    EXPECT_EQ(draws(s, l, 8), (std::vector<int32_t>{10544, 4711, 31387, 20844, 13489, 23663, 20844, 177}));
}

// ---- truncation stages

TEST(Sampler, TopKOneEqualsGreedy) {
    SamplingParams p = plain(5);
    p.top_k = 1;
    p.temperature = 1.5f;
    Sampler s(p);
    SamplingParams g = plain();
    g.temperature = 0.0f;
    Sampler greedy(g);
    for (uint32_t t = 0; t < 50; ++t) {
        std::vector<float> l = random_logits(5000, 100 + t, 2.0f);
        if (t % 5 == 0) l[t] = l[t + 1] = 50.0f;  // a tie for the maximum
        std::vector<float> l2 = l;
        EXPECT_EQ(s.sample(l.data(), 5000).id, greedy.sample(l2.data(), 5000).id);
    }
}

TEST(Sampler, TopKKeepsTheKBest) {
    SamplingParams p = plain(8);
    p.top_k = 3;
    Sampler s(p);
    const std::vector<float> l = logits_of({0.05, 0.3, 0.02, 0.25, 0.2, 0.18});
    EXPECT_EQ(support(histogram(s, l, 5000)), (std::set<int32_t>{1, 3, 4}));
}

TEST(Sampler, TopPKeepsTheNucleus) {
    const std::vector<float> l = logits_of({0.07, 0.25, 0.5, 0.03, 0.15});
    SamplingParams p = plain(9);
    p.top_p = 0.8f;  // 0.5, 0.75, 0.90 -> three tokens
    Sampler s(p);
    auto h = histogram(s, l, 30000);
    EXPECT_EQ(support(h), (std::set<int32_t>{1, 2, 4}));
    EXPECT_NEAR(h[2] / 30000.0, 0.5 / 0.9, 0.015);
    EXPECT_NEAR(h[1] / 30000.0, 0.25 / 0.9, 0.015);

    p.top_p = 0.7f;  // 0.5, 0.75 -> two tokens
    Sampler s2(p);
    h = histogram(s2, l, 30000);
    EXPECT_EQ(support(h), (std::set<int32_t>{1, 2}));
    EXPECT_NEAR(h[2] / 30000.0, 2.0 / 3.0, 0.015);

    p.top_p = 0.3f;  // the top token alone already reaches it
    Sampler s3(p);
    EXPECT_EQ(support(histogram(s3, l, 2000)), (std::set<int32_t>{2}));
}

// Without top-k, top-p does not sort the whole candidate list (it buckets by logit and sorts
// only the boundary bucket). Its kept set must be exactly the sorted-order nucleus.
TEST(Sampler, TopPWithoutTopKKeepsTheExactNucleus) {
    for (uint32_t seed : {1u, 2u, 3u}) {
        std::vector<float> l = random_logits(151936, seed, 12.0f);
        l[12345] = -kInf;
        // Reference: a full sort, then the same float weights summed in order.
        std::vector<int32_t> order;
        for (int32_t i = 0; i < static_cast<int32_t>(l.size()); ++i) {
            if (l[static_cast<size_t>(i)] > -kInf) order.push_back(i);
        }
        std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            return l[a] > l[b] || (l[a] == l[b] && a < b);
        });
        const float m = l[static_cast<size_t>(order[0])];
        double z = 0;
        for (int32_t id : order) z += std::exp(l[static_cast<size_t>(id)] - m);
        double cum = 0;
        size_t keep = 0;
        while (cum < 0.9f * z) cum += std::exp(l[static_cast<size_t>(order[keep++])] - m);
        ASSERT_GT(keep, 5000u);
        std::vector<int32_t> expect(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep));
        std::sort(expect.begin(), expect.end());

        SamplingParams p = plain(seed);
        p.top_p = 0.9f;
        Sampler s(p);
        std::vector<float> work = l;
        EXPECT_EQ(s.candidates(work.data(), static_cast<int32_t>(work.size())), expect);
        // Large top-k (filtered in id order, not sorted) followed by top-p: the same set.
        p.top_k = static_cast<int32_t>(order.size());
        Sampler big_k(p);
        work = l;
        EXPECT_EQ(big_k.candidates(work.data(), static_cast<int32_t>(work.size())), expect);
        // Draws stay inside it.
        const std::set<int32_t> allowed(expect.begin(), expect.end());
        for (int32_t id : draws(s, l, 50)) EXPECT_TRUE(allowed.count(id)) << id;
    }
}

// The sorted path (after a small top-k) and the bucketed path agree: only 1000 tokens are
// finite, so top_k = 1000 hands top-p the same candidates, sorted.
TEST(Sampler, TopPSortedAndBucketedPathsAgree) {
    for (uint32_t seed : {4u, 5u}) {
        std::vector<float> l(151936, -kInf);
        const std::vector<float> vals = random_logits(1000, seed, 9.0f);
        std::mt19937 g(seed);
        for (float v : vals) l[g() % l.size()] = v;
        for (float top_p : {0.3f, 0.8f, 0.95f}) {
            SamplingParams p = plain(seed);
            p.top_p = top_p;
            Sampler bucketed(p);
            p.top_k = 1000;
            Sampler sorted(p);
            std::vector<float> a = l, b = l;
            const auto ca = bucketed.candidates(a.data(), static_cast<int32_t>(a.size()));
            EXPECT_EQ(ca, sorted.candidates(b.data(), static_cast<int32_t>(b.size()))) << top_p;
            EXPECT_GT(ca.size(), 1u);
        }
    }
    // Equal logits: the lower ids fill the nucleus, on both paths.
    const std::vector<float> flat(1000, 0.5f);
    for (int32_t k : {0, 1000}) {
        SamplingParams p = plain();
        p.top_p = 0.5f;
        p.top_k = k;
        Sampler s(p);
        std::vector<float> w = flat;
        const auto c = s.candidates(w.data(), 1000);
        ASSERT_EQ(c.size(), 500u) << k;
        EXPECT_EQ(c.front(), 0);
        EXPECT_EQ(c.back(), 499);
    }
}

// Top-k with a large k keeps exactly the k best (ties: lower ids) whichever path it takes.
TEST(Sampler, TopKExactSetSmallAndLargeK) {
    std::vector<float> l = random_logits(50000, 8, 5.0f);
    for (int i = 0; i < 3000; ++i) l[static_cast<size_t>(i * 7)] = 4.99f;  // plenty of ties
    std::vector<int32_t> order(l.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return l[a] > l[b] || (l[a] == l[b] && a < b);
    });
    for (int32_t k : {1, 40, 1024, 1025, 2500, 49999}) {
        SamplingParams p = plain();
        p.top_k = k;
        Sampler s(p);
        std::vector<float> w = l;
        std::vector<int32_t> expect(order.begin(), order.begin() + k);
        std::sort(expect.begin(), expect.end());
        EXPECT_EQ(s.candidates(w.data(), static_cast<int32_t>(w.size())), expect) << "k = " << k;
    }
}

TEST(Sampler, MinPKeepsTokensAboveTheScaledMax) {
    const std::vector<float> l = logits_of({0.06, 0.4, 0.2, 0.3, 0.04});
    SamplingParams p = plain(10);
    p.min_p = 0.2f;  // threshold 0.08
    Sampler s(p);
    auto h = histogram(s, l, 30000);
    EXPECT_EQ(support(h), (std::set<int32_t>{1, 2, 3}));
    EXPECT_NEAR(h[1] / 30000.0, 0.4 / 0.9, 0.015);

    p.min_p = 0.12f;  // threshold 0.048: 0.06 is in, 0.04 is out
    Sampler s2(p);
    EXPECT_EQ(support(histogram(s2, l, 30000)), (std::set<int32_t>{0, 1, 2, 3}));

    p.min_p = 1.0f;  // only the maximum
    Sampler s3(p);
    EXPECT_EQ(support(histogram(s3, l, 2000)), (std::set<int32_t>{1}));
}

TEST(Sampler, TypicalKeepsTheMostTypicalTokens) {
    // H = 1.505 nats; -log 0.4 = 0.92 (distance 0.59), -log 0.15 = 1.90 (distance 0.39):
    // the four 0.15 tokens are more typical than the most likely one.
    const std::vector<float> l = logits_of({0.15, 0.4, 0.15, 0.15, 0.15});
    SamplingParams p = plain(11);
    p.typical_p = 0.5f;  // 0.15 * 4 = 0.6 >= 0.5 after the fourth
    Sampler s(p);
    auto h = histogram(s, l, 20000);
    EXPECT_EQ(support(h), (std::set<int32_t>{0, 2, 3, 4}));
    for (int32_t id : {0, 2, 3, 4}) EXPECT_NEAR(h[static_cast<size_t>(id)] / 20000.0, 0.25, 0.015);

    // p = 0.6, 0.1 x4: H = 1.23; the 0.6 token is the most typical (distance 0.72 vs 1.08).
    const std::vector<float> l2 = logits_of({0.1, 0.1, 0.6, 0.1, 0.1});
    p.typical_p = 0.55f;
    Sampler s2(p);
    EXPECT_EQ(support(histogram(s2, l2, 3000)), (std::set<int32_t>{2}));
    p.typical_p = 0.65f;  // one of the 0.1 tokens joins: the lowest id among equals
    Sampler s3(p);
    EXPECT_EQ(support(histogram(s3, l2, 5000)), (std::set<int32_t>{0, 2}));
}

// Typical sampling on a large vocabulary (bucketed, not fully sorted) keeps exactly the set a
// full sort by distance from the entropy gives.
TEST(Sampler, TypicalOnALargeVocabularyMatchesAFullSort) {
    for (uint32_t seed : {6u, 7u}) {
        const std::vector<float> l = random_logits(60000, seed, 10.0f);
        for (float typ : {0.2f, 0.9f}) {
            const float m = *std::max_element(l.begin(), l.end());
            double z = 0;
            for (float x : l) z += std::exp(x - m);
            const double log_z = m + std::log(z);
            double h = 0;
            for (float x : l) h -= std::exp(x - log_z) * (x - log_z);
            const double center = log_z - h;
            std::vector<int32_t> order(l.size());
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
                const double da = std::fabs(center - l[a]), db = std::fabs(center - l[b]);
                return da < db || (da == db && (l[a] > l[b] || (l[a] == l[b] && a < b)));
            });
            double cum = 0;
            size_t keep = 0;
            while (cum < typ * z) cum += std::exp(l[static_cast<size_t>(order[keep++])] - m);
            std::vector<int32_t> expect(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep));
            std::sort(expect.begin(), expect.end());
            ASSERT_GT(keep, 100u);

            SamplingParams p = plain(seed);
            p.typical_p = typ;
            Sampler s(p);
            std::vector<float> w = l;
            EXPECT_EQ(s.candidates(w.data(), static_cast<int32_t>(w.size())), expect) << typ;
        }
    }
}

TEST(Sampler, TemperatureScalesProbabilities) {
    const std::vector<float> l = {1.0f, 0.0f};
    const int n = 40000;
    for (float t : {0.5f, 1.0f, 2.0f}) {
        SamplingParams p = plain(12);
        p.temperature = t;
        Sampler s(p);
        const auto h = histogram(s, l, n);
        const double expect = 1.0 / (1.0 + std::exp(-1.0 / t));
        EXPECT_NEAR(h[0] / static_cast<double>(n), expect, 0.01) << "T = " << t;
    }
    SamplingParams p = plain(13);
    p.temperature = 1e-4f;  // effectively greedy
    Sampler s(p);
    EXPECT_EQ(support(histogram(s, logits_of({0.3, 0.31, 0.39}), 2000)), (std::set<int32_t>{2}));
}

TEST(Sampler, ChainOrderTopKBeforeTopP) {
    // top-k 2 first renormalises {0.4, 0.3} to {0.571, 0.429}; top-p 0.5 then keeps only 0.
    // (top-p before top-k would have kept 0 and 1.)
    const std::vector<float> l = logits_of({0.4, 0.3, 0.2, 0.1});
    SamplingParams p = plain(14);
    p.top_k = 2;
    p.top_p = 0.5f;
    Sampler s(p);
    EXPECT_EQ(support(histogram(s, l, 2000)), (std::set<int32_t>{0}));
    // min-p is computed before temperature: a high temperature does not re-admit tokens.
    p = plain(15);
    p.min_p = 0.6f;
    p.temperature = 5.0f;
    Sampler s2(p);
    EXPECT_EQ(support(histogram(s2, l, 3000)), (std::set<int32_t>{0, 1}));
}

// ---- penalties and bias

TEST(Sampler, PenaltiesTouchExactlyTheWindow) {
    SamplingParams p = plain();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    p.presence_penalty = 0.25f;
    p.frequency_penalty = 0.5f;
    p.repeat_last_n = 64;
    Sampler s(p);
    for (int32_t id : {0, 1, 0, 999, -3}) s.accept(id);  // out-of-range ids are ignored
    std::vector<float> l = {2.0f, -2.0f, 1.0f, 3.0f, 0.0f};
    s.sample(l.data(), 5);
    EXPECT_FLOAT_EQ(l[0], 2.0f / 1.5f - 2 * 0.5f - 0.25f);
    EXPECT_FLOAT_EQ(l[1], -2.0f * 1.5f - 0.5f - 0.25f);
    EXPECT_FLOAT_EQ(l[2], 1.0f);
    EXPECT_FLOAT_EQ(l[3], 3.0f);
    EXPECT_FLOAT_EQ(l[4], 0.0f);
    // Penalties do not accumulate across calls (fresh logits, same window).
    l = {2.0f, -2.0f, 1.0f, 3.0f, 0.0f};
    s.sample(l.data(), 5);
    EXPECT_FLOAT_EQ(l[0], 2.0f / 1.5f - 2 * 0.5f - 0.25f);

    // A zero logit counts as non-positive (multiplied: stays 0).
    SamplingParams q = plain();
    q.temperature = 0.0f;
    q.repeat_penalty = 2.0f;
    Sampler z(q);
    z.accept(4);
    l = {2.0f, -2.0f, 1.0f, 3.0f, 0.0f};
    z.sample(l.data(), 5);
    EXPECT_FLOAT_EQ(l[4], 0.0f);
}

TEST(Sampler, RepeatLastNWindow) {
    const std::vector<float> base = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    auto penalised = [&](int32_t last_n, const std::vector<int32_t>& history) {
        SamplingParams p = plain();
        p.temperature = 0.0f;
        p.repeat_penalty = 2.0f;
        p.repeat_last_n = last_n;
        Sampler s(p);
        for (int32_t id : history) s.accept(id);
        std::vector<float> l = base;
        s.sample(l.data(), 5);
        std::set<int32_t> out;
        for (int32_t i = 0; i < 5; ++i) {
            if (l[static_cast<size_t>(i)] != 1.0f) out.insert(i);
        }
        return out;
    };
    EXPECT_EQ(penalised(2, {0, 1, 2, 3}), (std::set<int32_t>{2, 3}));
    EXPECT_EQ(penalised(3, {0, 1, 2, 2}), (std::set<int32_t>{1, 2}));
    EXPECT_EQ(penalised(0, {0, 1, 2, 3}), (std::set<int32_t>{}));
    std::vector<int32_t> longh = {4};
    for (int i = 0; i < 1000; ++i) longh.push_back(i % 2);
    EXPECT_EQ(penalised(-1, longh), (std::set<int32_t>{0, 1, 4}));
    EXPECT_EQ(penalised(64, longh), (std::set<int32_t>{0, 1}));

    // The penalty steers greedy away from a repeated token; reset() forgets the history.
    SamplingParams p = plain();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    Sampler s(p);
    s.accept(0);
    std::vector<float> l = {2.0f, 1.5f};
    EXPECT_EQ(s.sample(l.data(), 2).id, 1);
    s.reset();
    l = {2.0f, 1.5f};
    EXPECT_EQ(s.sample(l.data(), 2).id, 0);
}

TEST(Sampler, LogitBiasAndBans) {
    SamplingParams p = plain();
    p.temperature = 0.0f;
    p.logit_bias[1] = -kInf;
    p.logit_bias[100] = 5.0f;  // out of range: ignored
    Sampler g(p);
    std::vector<float> l = {1.0f, 5.0f, 3.0f};
    EXPECT_EQ(g.sample(l.data(), 3).id, 2);

    p.logit_bias[0] = 10.0f;
    Sampler g2(p);
    l = {1.0f, 5.0f, 3.0f};
    EXPECT_EQ(g2.sample(l.data(), 3).id, 0);

    SamplingParams q = plain(16);
    q.logit_bias[2] = -kInf;
    Sampler s(q);
    const auto h = histogram(s, logits_of({0.2, 0.2, 0.5, 0.1}), 5000);
    EXPECT_EQ(h[2], 0);
    EXPECT_EQ(support(h), (std::set<int32_t>{0, 1, 3}));

    // Everything banned: id 0, logprob -inf, for greedy and sampled alike.
    for (float t : {0.0f, 1.0f}) {
        SamplingParams b = plain();
        b.temperature = t;
        b.logit_bias = {{0, -kInf}, {1, -kInf}};
        Sampler sb(b);
        l = {1.0f, 2.0f};
        const SampleResult r = sb.sample(l.data(), 2);
        EXPECT_EQ(r.id, 0);
        EXPECT_EQ(r.logprob, -kInf);
    }
}

// ---- log-probabilities

TEST(Sampler, LogprobsMatchLogSoftmax) {
    const std::vector<float> raw = random_logits(5000, 21, 6.0f);
    SamplingParams p = plain(17);
    p.temperature = 0.7f;
    p.top_k = 20;
    p.n_probs = 8;
    p.logit_bias[raw.size() - 1] = 100.0f;  // bias is applied before the logprobs
    p.logit_bias[3] = -kInf;
    p.repeat_penalty = 1.3f;
    Sampler s(p);
    s.accept(7);

    std::vector<float> expect = raw;
    expect.back() += 100.0f;
    expect[3] = -kInf;
    expect[7] = expect[7] > 0 ? expect[7] / 1.3f : expect[7] * 1.3f;
    double m = -1e30;
    for (float x : expect) m = std::max(m, static_cast<double>(x));
    double z = 0;
    for (float x : expect) z += std::exp(static_cast<double>(x) - m);
    const double log_z = m + std::log(z);
    std::vector<int32_t> order(expect.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return expect[a] > expect[b] || (expect[a] == expect[b] && a < b);
    });

    for (int step = 0; step < 20; ++step) {
        std::vector<float> l = raw;
        const SampleResult r = s.sample(l.data(), static_cast<int32_t>(l.size()));
        ASSERT_EQ(r.top.size(), 8u);
        double total = 0;
        for (size_t i = 0; i < r.top.size(); ++i) {
            EXPECT_EQ(r.top[i].id, order[i]);
            EXPECT_NEAR(r.top[i].logprob, expect[static_cast<size_t>(order[i])] - log_z, 1e-4);
            if (i > 0) {
                EXPECT_GE(r.top[i - 1].logprob, r.top[i].logprob);
            }
            total += std::exp(static_cast<double>(r.top[i].logprob));
        }
        EXPECT_LE(total, 1.0 + 1e-6);
        EXPECT_NEAR(r.logprob, expect[static_cast<size_t>(r.id)] - log_z, 1e-4);
        EXPECT_LE(r.logprob, 0.0f);
    }
}

TEST(Sampler, LogprobsOnlyWhenAskedAndNeverForBannedTokens) {
    std::vector<float> l = {0.0f, 1.0f, 2.0f};
    SamplingParams p = plain(18);
    Sampler off(p);
    EXPECT_TRUE(std::isnan(off.sample(l.data(), 3).logprob));

    p.logprobs = true;
    Sampler chosen(p);
    l = {0.0f, 1.0f, 2.0f};
    const SampleResult r = chosen.sample(l.data(), 3);
    EXPECT_TRUE(r.top.empty());
    const double z = std::log(1.0 + std::exp(1.0) + std::exp(2.0));
    EXPECT_NEAR(r.logprob, l[static_cast<size_t>(r.id)] - z, 1e-5);

    p.logprobs = false;
    p.n_probs = 5;  // more than there are allowed tokens
    p.logit_bias[1] = -kInf;
    p.temperature = 0.0f;
    Sampler few(p);
    l = {0.0f, 1.0f, 2.0f};
    const SampleResult f = few.sample(l.data(), 3);
    ASSERT_EQ(f.top.size(), 2u);
    EXPECT_EQ(f.top[0].id, 2);
    EXPECT_EQ(f.top[1].id, 0);
    EXPECT_NEAR(std::exp(f.top[0].logprob) + std::exp(f.top[1].logprob), 1.0, 1e-6);
    EXPECT_EQ(f.id, 2);
    EXPECT_FLOAT_EQ(f.logprob, f.top[0].logprob);

    // Ties in the top list: lower id first.
    SamplingParams t = plain(19);
    t.n_probs = 2;
    Sampler ties(t);
    l = {1.0f, 3.0f, 3.0f, 3.0f};
    const SampleResult tr = ties.sample(l.data(), 4);
    ASSERT_EQ(tr.top.size(), 2u);
    EXPECT_EQ(tr.top[0].id, 1);
    EXPECT_EQ(tr.top[1].id, 2);
}

// ---- StopMatcher

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
    std::string out;
    for (const std::string& p : pieces) out += m.push(p);
    return out;
}

TEST(StopMatcher, StopSplitAcrossPushes) {
    StopMatcher m({"</s>"});
    EXPECT_EQ(m.push("Hello <"), "Hello ");
    EXPECT_EQ(m.push("/"), "");
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.push("s> and more"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.stop_index(), 0);
    EXPECT_EQ(m.push("after"), "");
    EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, TextBeforeTheStopInTheSamePushIsReturned) {
    StopMatcher m({"STOP"});
    EXPECT_EQ(m.push("abc"), "abc");
    EXPECT_EQ(m.push("deSTOPfg"), "de");
    EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, PartialPrefixIsReleased) {
    StopMatcher m({"STOP"});
    EXPECT_EQ(m.push("ST"), "");
    EXPECT_EQ(m.push("O"), "");
    EXPECT_EQ(m.push("x"), "STOx");
    EXPECT_EQ(m.push("S"), "");
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.flush(), "S");  // end of generation: held text comes out
    EXPECT_EQ(m.flush(), "");

    // The held part re-anchors: "aaab" against "aab".
    StopMatcher o({"aab"});
    EXPECT_EQ(o.push("aa"), "");
    EXPECT_EQ(o.push("a"), "a");
    EXPECT_EQ(o.push("b"), "");
    EXPECT_TRUE(o.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
    StopMatcher m({"STOP1", "STOP2"});
    EXPECT_EQ(m.push("a STOP2 b STOP1"), "a ");
    EXPECT_EQ(m.stop_index(), 1);

    StopMatcher n({"world", "lo w"});
    EXPECT_EQ(feed(n, {"hel", "lo", " wor", "ld"}), "hel");
    EXPECT_EQ(n.stop_index(), 1);

    // Overlapping stops: the one that completes first ends generation.
    StopMatcher o({"abcd", "bc"});
    EXPECT_EQ(feed(o, {"xa", "b", "c", "d"}), "xa");
    EXPECT_EQ(o.stop_index(), 1);
    StopMatcher q({"abcd", "bc"});
    EXPECT_EQ(q.push("xabcd"), "x");  // both complete in one push: earliest position
    EXPECT_EQ(q.stop_index(), 0);
}

TEST(StopMatcher, StopAtVeryStart) {
    StopMatcher m({"###"});
    EXPECT_EQ(m.push("###rest"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.flush(), "");
    StopMatcher n({"\n\n"});
    EXPECT_EQ(feed(n, {"\n", "\n", "x"}), "");
    EXPECT_TRUE(n.stopped());
}

TEST(StopMatcher, UnicodeStops) {
    const std::string stop = "\xE3\x80\x82";  // U+3002 IDEOGRAPHIC FULL STOP
    StopMatcher m({stop});
    EXPECT_EQ(m.push("\xE4\xBD\xA0\xE5\xA5\xBD\xE3"), "\xE4\xBD\xA0\xE5\xA5\xBD");  // 你好 + a lead byte
    EXPECT_EQ(m.push("\x80"), "");
    EXPECT_EQ(m.push("\x82\xE4\xB8\x96"), "");
    EXPECT_TRUE(m.stopped());

    const std::string wave = "\xF0\x9F\x91\x8B";  // U+1F44B
    StopMatcher w({wave});
    std::string out;
    for (char c : std::string("hi ") + wave + "!") out += w.push(std::string(1, c));
    EXPECT_EQ(out, "hi ");
    EXPECT_TRUE(w.stopped());

    // A shared lead byte that turns out to be another character is released whole.
    StopMatcher e({"\xC3\xA9t\xC3\xA9"});  // "été"
    EXPECT_EQ(e.push("caf\xC3\xA9"), "caf");
    EXPECT_EQ(e.push(" "), "\xC3\xA9 ");
    EXPECT_EQ(e.push("\xC3\xA9t"), "");
    EXPECT_EQ(e.push("\xC3\xA0"), "\xC3\xA9t\xC3\xA0");  // "étà"
    EXPECT_FALSE(e.stopped());
}

TEST(StopMatcher, EmptyStopsAreIgnored) {
    StopMatcher m({"", "x"});
    EXPECT_EQ(m.push("abc"), "abc");
    EXPECT_FALSE(m.stopped());
    StopMatcher none({});
    EXPECT_EQ(none.push("anything"), "anything");
    EXPECT_EQ(none.flush(), "");
    StopMatcher only_empty({""});
    EXPECT_EQ(only_empty.push(""), "");
    EXPECT_EQ(only_empty.push("z"), "z");
}

// Random texts and random split points, with stop strings none of which contains another:
// the emitted text is always the text up to the first occurrence of any stop (or all of it),
// however it was split.
TEST(StopMatcher, SplitIndependentOnRandomTexts) {
    const std::vector<std::string> stops = {"aba", "cc", "bcb"};
    std::mt19937 g(77);
    for (int iter = 0; iter < 3000; ++iter) {
        std::string text;
        const size_t len = g() % 24;
        for (size_t i = 0; i < len; ++i) text += static_cast<char>('a' + g() % 3);
        size_t first = std::string::npos;
        for (const std::string& s : stops) first = std::min(first, text.find(s));

        StopMatcher m(stops);
        std::string out;
        size_t pos = 0;
        while (pos < text.size()) {
            const size_t n = 1 + g() % 4;
            out += m.push(text.substr(pos, n));
            pos += n;
        }
        if (!m.stopped()) out += m.flush();
        EXPECT_EQ(m.stopped(), first != std::string::npos) << text;
        EXPECT_EQ(out, first == std::string::npos ? text : text.substr(0, first)) << text;
    }
}

}  // namespace
}  // namespace hearth
