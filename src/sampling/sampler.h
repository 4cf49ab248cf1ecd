// sampling/ owns choosing the next token from logits: a chain of logit bias, penalties,
// top-k, top-p, min-p, typical-p and temperature, then a seeded draw or greedy argmax,
// plus log-probabilities and stop-string matching across token boundaries.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

struct SamplingParams {
    float temperature = 0.8f;        // <= 0: greedy
    int32_t top_k = 40;              // <= 0: off
    float top_p = 0.9f;              // >= 1: off
    float min_p = 0.0f;              // <= 0: off
    float typical_p = 1.0f;          // >= 1: off
    float repeat_penalty = 1.1f;     // 1: off
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    int32_t repeat_last_n = 64;      // 0: off, -1: whole context
    uint64_t seed = 0xFFFFFFFFFFFFFFFFull;  // default: random
    std::map<int32_t, float> logit_bias;    // added to the logit; -inf bans the token
    int32_t n_probs = 0;             // top-N log-probabilities to report per step
};

struct TokenLogprob {
    int32_t id;
    float logprob;
};

struct SampleResult {
    int32_t id;
    float logprob;                    // of the chosen token under the full (post-bias, pre-truncation, temp 1) distribution
    std::vector<TokenLogprob> top;    // n_probs most likely, highest first
};

class Sampler {
public:
    explicit Sampler(SamplingParams p);
    // Picks a token from `logits` (n_vocab values; modified in place is allowed).
    SampleResult sample(float* logits, int32_t n_vocab);
    // Records a token that is now part of the context (prompt or generated) for penalties.
    void accept(int32_t id);
    void reset();
    const SamplingParams& params() const { return p_; }

private:
    SamplingParams p_;
    uint64_t rng_state_;
    std::deque<int32_t> history_;
    std::vector<std::pair<float, int32_t>> cand_;  // reused buffer
    uint64_t next_random();
};

// Finds stop strings in streamed text: holds back any suffix that could be the start of a
// stop string, so stop text is never emitted.
class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
    // Adds text; returns what may be emitted now. Sets stopped() when a stop string matched
    // (the returned text ends before it).
    std::string push(const std::string& text);
    std::string flush();  // at the end: the held-back text
    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace hearth
