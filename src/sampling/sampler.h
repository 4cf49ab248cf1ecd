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
    bool logprobs = false;           // compute SampleResult::logprob (implied by n_probs > 0)

    // Empty when the parameters are usable, else a message naming the first bad field
    // (for a 400 reply). NaN and infinities are rejected everywhere except a -inf logit
    // bias; temperature >= 0, top_p and typical_p in (0, 1], min_p in [0, 1],
    // repeat_penalty > 0, repeat_last_n >= -1, n_probs in [0, 20], bias token ids >= 0.
    std::string validate() const;
};

struct TokenLogprob {
    int32_t id;
    float logprob;
};

struct SampleResult {
    int32_t id;
    float logprob;                    // of the chosen token under the full (post-bias, pre-truncation, temp 1) distribution;
                                      // NaN unless params.logprobs or n_probs > 0 (costs a pass of exp over the vocabulary)
    std::vector<TokenLogprob> top;    // n_probs most likely, highest first (ties: lower id first;
                                      // tokens with a -inf logit are never listed)
};

class Sampler {
public:
    // Does not validate `p` (see SamplingParams::validate); a default seed draws one from
    // std::random_device.
    explicit Sampler(SamplingParams p);
    // Picks a token from `logits` (n_vocab values; modified in place: logit bias and
    // penalties are applied to the array). NaN logits count as -inf. If every logit is -inf
    // the result is id 0 with logprob -inf.
    SampleResult sample(float* logits, int32_t n_vocab);
    // Records a token that is now part of the context (prompt or generated) for penalties.
    void accept(int32_t id);
    // The ids (ascending) that a draw at temperature > 0 would choose from after bias,
    // penalties, top-k, typical, top-p and min-p; uses no randomness. For tests and debugging.
    std::vector<int32_t> candidates(float* logits, int32_t n_vocab);
    // Forgets the history and restarts the random sequence from seed().
    void reset();
    const SamplingParams& params() const { return p_; }
    // The seed in use (the drawn one when params().seed was the random default).
    uint64_t seed() const { return seed_; }

private:
    SamplingParams p_;
    uint64_t rng_state_;
    std::deque<int32_t> history_;
    std::vector<std::pair<float, int32_t>> cand_;  // reused buffer
    uint64_t next_random();

    uint64_t seed_;
    std::vector<int32_t> counts_;  // reused: per-token counts over the penalty window
    std::vector<std::pair<float, int32_t>> scratch_;  // reused: top-p's boundary bucket
    bool sorted_ = false;          // cand_ is in (logit desc, id asc) order, else in id order
                                   // or another order fixed by the data alone
    bool penalties_on() const;
    void apply_penalties(float* logits, int32_t n_vocab);
    void prepare(float* logits, int32_t n_vocab);   // logit bias, then penalties
    void truncate(const float* logits, int32_t n_vocab);  // cand_ <- top-k, typical, top-p, min-p
    void collect(const float* logits, int32_t n_vocab);  // fills cand_, applying top-k
    void typical();
    void top_p();
    void min_p();
    size_t draw();  // temperature, softmax and the seeded pick over cand_; returns the index
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
    // Index in the constructor's list of the stop string that matched, or -1.
    int stop_index() const { return stop_index_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
    int stop_index_ = -1;
};

}  // namespace hearth
