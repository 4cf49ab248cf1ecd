// Sampler: logit bias -> penalties -> top-k -> typical -> top-p -> min-p -> temperature ->
// seeded draw (or greedy argmax), plus log-probabilities over the full vocabulary.
//
// Reproducibility: the random numbers come from splitmix64 with a 53-bit integer -> double
// conversion, and every sort or selection uses a total order (logit descending, then id
// ascending), so the candidate list that the draw walks is in the same order whatever the
// standard library's sorting algorithms do. The one remaining platform dependence is the
// last bit of expf/logf in the C library.
#include "sampling/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>

namespace hearth {

namespace {

using Cand = std::pair<float, int32_t>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr uint64_t kRandomSeed = 0xFFFFFFFFFFFFFFFFull;

// "a comes before b": higher logit first, ties broken by lower id. A strict total order on
// candidates (no NaN ever enters the candidate list).
bool before(const Cand& a, const Cand& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Maximum of n floats ignoring NaN (-inf when there is none). Eight independent lanes so
// the loop is not one long dependency chain.
float max_of(const float* x, int32_t n) {
    float lane[8];
    for (float& v : lane) v = kNegInf;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    }
    float m = kNegInf;
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    for (float v : lane) m = v > m ? v : m;
    return m;
}

float max_logit(const std::vector<Cand>& c, bool sorted) {
    if (sorted) return c.front().first;
    float m = kNegInf;
    for (const Cand& x : c) m = std::max(m, x.first);
    return m;
}

// Keeps the smallest set of candidates that come first in the strict total order `ahead`
// and whose weight reaches target_fraction of the total, without sorting all of them.
// Candidates are bucketed by key(c), a distance >= 0 that never decreases along `ahead`
// (1024 buckets over [0, 32), the last one also taking everything further); bucket weights
// locate the bucket where the running weight crosses the target, only that bucket is sorted
// to find the last kept candidate, and the list is filtered in place, keeping its order.
template <class Key, class Ahead, class Weight>
void keep_mass_prefix(std::vector<Cand>& cand, std::vector<Cand>& scratch, double target_fraction, Key key,
                      Ahead ahead, Weight weight) {
    constexpr int kBuckets = 1024;
    constexpr double kScale = kBuckets / 32.0;
    const auto bucket = [&key](const Cand& c) {
        const double d = key(c) * kScale;
        return d < static_cast<double>(kBuckets) ? static_cast<size_t>(d) : size_t{kBuckets - 1};
    };
    std::array<double, kBuckets> mass{};
    double sum = 0.0;
    for (const Cand& c : cand) {
        const double w = weight(c);
        sum += w;
        mass[bucket(c)] += w;
    }
    const double target = target_fraction * sum;
    size_t b = 0;
    double below = 0.0;  // weight of the buckets before b
    for (; b < kBuckets; ++b) {
        if (below + mass[b] >= target) break;
        below += mass[b];
    }
    if (b == kBuckets) return;  // rounding kept the target out of reach: keep everything

    scratch.clear();
    for (const Cand& c : cand) {
        if (bucket(c) == b) scratch.push_back(c);
    }
    std::sort(scratch.begin(), scratch.end(), ahead);
    Cand last = scratch.back();
    double cum = below;
    for (const Cand& c : scratch) {
        cum += weight(c);
        if (cum >= target) {
            last = c;
            break;
        }
    }
    cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const Cand& c) { return ahead(last, c); }), cand.end());
}

}  // namespace

std::string SamplingParams::validate() const {
    // Written as !(in range) so that NaN fails every check.
    if (!(std::isfinite(temperature) && temperature >= 0.0f)) return "temperature must be a finite number >= 0";
    if (!(top_p > 0.0f && top_p <= 1.0f)) return "top_p must be in (0, 1]";
    if (!(min_p >= 0.0f && min_p <= 1.0f)) return "min_p must be in [0, 1]";
    if (!(typical_p > 0.0f && typical_p <= 1.0f)) return "typical_p must be in (0, 1]";
    if (!(std::isfinite(repeat_penalty) && repeat_penalty > 0.0f)) return "repeat_penalty must be a finite number > 0";
    if (!std::isfinite(presence_penalty)) return "presence_penalty must be a finite number";
    if (!std::isfinite(frequency_penalty)) return "frequency_penalty must be a finite number";
    if (repeat_last_n < -1) return "repeat_last_n must be >= -1";
    if (n_probs < 0 || n_probs > 20) return "n_probs must be in [0, 20]";
    for (const auto& [id, bias] : logit_bias) {
        if (id < 0) return "logit_bias token id " + std::to_string(id) + " must be >= 0";
        if (!(std::isfinite(bias) || bias == kNegInf))
            return "logit_bias for token " + std::to_string(id) + " must be a finite number or -inf";
    }
    return {};
}

Sampler::Sampler(SamplingParams p) : p_(std::move(p)) {
    if (p_.seed == kRandomSeed) {
        std::random_device rd;
        const uint64_t hi = rd();
        const uint64_t lo = rd();
        seed_ = (hi << 32) ^ lo;
    } else {
        seed_ = p_.seed;
    }
    rng_state_ = seed_;
}

// splitmix64 (Steele, Lea, Flood 2014): one 64-bit add and two multiply-xorshift rounds.
uint64_t Sampler::next_random() {
    uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void Sampler::reset() {
    history_.clear();
    rng_state_ = seed_;
}

bool Sampler::penalties_on() const {
    return p_.repeat_last_n != 0 &&
           (p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f);
}

void Sampler::accept(int32_t id) {
    if (!penalties_on()) return;
    history_.push_back(id);
    if (p_.repeat_last_n > 0) {
        while (history_.size() > static_cast<size_t>(p_.repeat_last_n)) history_.pop_front();
    }
}

void Sampler::apply_penalties(float* logits, int32_t n_vocab) {
    if (history_.empty()) return;
    // counts_ is all zeros between calls: count the window, then apply each distinct token
    // once and zero its count again.
    if (counts_.size() < static_cast<size_t>(n_vocab)) counts_.assign(static_cast<size_t>(n_vocab), 0);
    for (int32_t t : history_) {
        if (t >= 0 && t < n_vocab) ++counts_[static_cast<size_t>(t)];
    }
    for (int32_t t : history_) {
        if (t < 0 || t >= n_vocab) continue;
        const int32_t count = counts_[static_cast<size_t>(t)];
        if (count == 0) continue;  // already applied
        counts_[static_cast<size_t>(t)] = 0;
        float& l = logits[t];
        if (l <= 0.0f) {
            l *= p_.repeat_penalty;
        } else {
            l /= p_.repeat_penalty;
        }
        l -= static_cast<float>(count) * p_.frequency_penalty + p_.presence_penalty;
    }
}

void Sampler::collect(const float* logits, int32_t n_vocab) {
    cand_.clear();
    sorted_ = false;
    const int32_t k = p_.top_k;
    constexpr int32_t kHeapMaxK = 1024;
    if (k > 0 && k <= kHeapMaxK && k < n_vocab) {
        // Streaming top-k: a heap (ordered by `before`) whose front is the worst kept
        // candidate. Once it is full, most logits lose one comparison with a cached threshold.
        if (cand_.capacity() < static_cast<size_t>(k)) cand_.reserve(static_cast<size_t>(k));
        int32_t i = 0;
        for (; i < n_vocab && cand_.size() < static_cast<size_t>(k); ++i) {
            if (logits[i] > kNegInf) cand_.emplace_back(logits[i], i);  // skips -inf and NaN
        }
        std::make_heap(cand_.begin(), cand_.end(), before);
        float threshold = cand_.empty() ? kNegInf : cand_.front().first;
        for (; i < n_vocab; ++i) {
            const float l = logits[i];
            if (!(l > threshold)) continue;  // a later id with an equal logit never wins
            std::pop_heap(cand_.begin(), cand_.end(), before);
            cand_.back() = Cand{l, i};
            std::push_heap(cand_.begin(), cand_.end(), before);
            threshold = cand_.front().first;
        }
        std::sort_heap(cand_.begin(), cand_.end(), before);
        sorted_ = true;
        return;
    }
    if (cand_.capacity() < static_cast<size_t>(n_vocab)) cand_.reserve(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) {
        if (logits[i] > kNegInf) cand_.emplace_back(logits[i], i);
    }
    if (k > 0 && static_cast<size_t>(k) < cand_.size()) {
        // Large k: find the k-th best, then keep the candidates up to it in id order (a
        // linear filter instead of sorting k elements).
        std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end(), before);
        const Cand kth = cand_[static_cast<size_t>(k - 1)];
        cand_.clear();
        for (int32_t i = 0; i < n_vocab; ++i) {
            const Cand c{logits[i], i};
            if (c.first > kNegInf && !before(kth, c)) cand_.push_back(c);
        }
    }
    // In id order: not sorted by logit, but an order that depends on the data alone.
}

// Locally typical sampling (Meister et al. 2022): order candidates by how far their
// information content -log p is from the entropy, keep the closest ones until their mass
// reaches typical_p.
void Sampler::typical() {
    if (!(p_.typical_p < 1.0f) || cand_.size() < 2) return;
    const float m = max_logit(cand_, sorted_);
    double sum = 0.0;
    for (const Cand& c : cand_) sum += static_cast<double>(std::exp(c.first - m));
    const double log_z = static_cast<double>(m) + std::log(sum);
    double entropy = 0.0;
    for (const Cand& c : cand_) {
        const double lp = static_cast<double>(c.first) - log_z;
        entropy -= std::exp(lp) * lp;
    }
    // |-log p - H| = |(log_z - H) - logit|
    const double center = log_z - entropy;
    const auto key = [center](const Cand& c) { return std::fabs(center - static_cast<double>(c.first)); };
    keep_mass_prefix(
        cand_, scratch_, static_cast<double>(p_.typical_p), key,
        [&key](const Cand& a, const Cand& b) {
            const double ka = key(a), kb = key(b);
            return ka < kb || (ka == kb && before(a, b));
        },
        [m](const Cand& c) { return static_cast<double>(std::exp(c.first - m)); });
}

// Nucleus: the smallest logit-ordered prefix whose mass reaches top_p. On a sorted list that
// is a walk from the front; otherwise keep_mass_prefix avoids sorting everything.
void Sampler::top_p() {
    if (!(p_.top_p < 1.0f) || cand_.size() < 2) return;
    const float m = max_logit(cand_, sorted_);
    const auto weight = [m](const Cand& c) { return static_cast<double>(std::exp(c.first - m)); };

    if (sorted_) {
        double sum = 0.0;
        for (const Cand& c : cand_) sum += weight(c);
        const double target = static_cast<double>(p_.top_p) * sum;
        double cum = 0.0;
        for (size_t i = 0; i < cand_.size(); ++i) {
            cum += weight(cand_[i]);
            if (cum >= target) {
                cand_.resize(i + 1);
                return;
            }
        }
        return;  // rounding kept the target out of reach: keep everything
    }
    keep_mass_prefix(
        cand_, scratch_, static_cast<double>(p_.top_p),
        [m](const Cand& c) { return static_cast<double>(m) - static_cast<double>(c.first); }, before, weight);
}

// Keeps tokens whose probability is at least min_p times the top one's:
// logit - max_logit >= log(min_p).
void Sampler::min_p() {
    if (!(p_.min_p > 0.0f) || cand_.size() < 2) return;
    const float m = max_logit(cand_, sorted_);
    const float log_min_p = std::log(p_.min_p);
    auto drop = [&](const Cand& c) { return !(c.first - m >= log_min_p); };
    // remove_if keeps the survivors in their order, so a sorted list stays sorted.
    cand_.erase(std::remove_if(cand_.begin(), cand_.end(), drop), cand_.end());
}

size_t Sampler::draw() {
    const float m = max_logit(cand_, sorted_);
    const float t = p_.temperature;
    double sum = 0.0;
    for (Cand& c : cand_) {
        const float w = std::exp((c.first - m) / t);
        c.first = w;  // cand_ now holds unnormalised probabilities
        sum += static_cast<double>(w);
    }
    // 53 random bits -> a double in [0, 1), exactly, on every platform.
    const double u = static_cast<double>(next_random() >> 11) * 0x1.0p-53;
    const double r = u * sum;
    double cum = 0.0;
    for (size_t i = 0; i < cand_.size(); ++i) {
        cum += static_cast<double>(cand_[i].first);
        if (r < cum) return i;
    }
    // Rounding left r at or past the total: the last candidate with any weight.
    for (size_t i = cand_.size(); i-- > 0;) {
        if (cand_[i].first > 0.0f) return i;
    }
    return 0;
}

void Sampler::prepare(float* logits, int32_t n_vocab) {
    for (const auto& [id, bias] : p_.logit_bias) {
        if (id >= 0 && id < n_vocab) logits[id] += bias;
    }
    if (penalties_on()) apply_penalties(logits, n_vocab);
}

void Sampler::truncate(const float* logits, int32_t n_vocab) {
    collect(logits, n_vocab);
    if (cand_.empty()) return;
    typical();
    top_p();
    min_p();
}

std::vector<int32_t> Sampler::candidates(float* logits, int32_t n_vocab) {
    std::vector<int32_t> ids;
    if (logits == nullptr || n_vocab <= 0) return ids;
    prepare(logits, n_vocab);
    truncate(logits, n_vocab);
    for (const Cand& c : cand_) ids.push_back(c.second);
    std::sort(ids.begin(), ids.end());
    return ids;
}

SampleResult Sampler::sample(float* logits, int32_t n_vocab) {
    SampleResult res{0, std::numeric_limits<float>::quiet_NaN(), {}};
    if (logits == nullptr || n_vocab <= 0) {
        res.logprob = kNegInf;
        return res;
    }
    prepare(logits, n_vocab);

    // Needed by greedy and by the log-probabilities.
    float max_l = kNegInf;
    const bool want_logprobs = p_.logprobs || p_.n_probs > 0;
    if (p_.temperature <= 0.0f || want_logprobs) max_l = max_of(logits, n_vocab);

    if (p_.temperature <= 0.0f) {
        // Greedy: the first maximum, so ties go to the lowest id.
        if (!(max_l > kNegInf)) {  // everything banned
            res.logprob = kNegInf;
            return res;
        }
        int32_t i = 0;
        while (!(logits[i] == max_l)) ++i;
        res.id = i;
    } else {
        truncate(logits, n_vocab);
        if (cand_.empty()) {
            res.logprob = kNegInf;
            return res;
        }
        res.id = cand_[draw()].second;
    }

    if (want_logprobs) {
        // log-softmax over the whole vocabulary at temperature 1.
        const float m = max_l;
        double sum = 0.0;
        for (int32_t i = 0; i < n_vocab; ++i) {
            if (logits[i] > kNegInf) sum += static_cast<double>(std::exp(logits[i] - m));
        }
        const double log_z = static_cast<double>(m) + std::log(sum);
        const float chosen = logits[res.id];
        res.logprob = chosen > kNegInf ? static_cast<float>(static_cast<double>(chosen) - log_z) : kNegInf;

        if (p_.n_probs > 0) {
            // Insertion into a short sorted list; logits are stored in .logprob until the end.
            const size_t n = static_cast<size_t>(p_.n_probs);
            res.top.reserve(n);
            for (int32_t i = 0; i < n_vocab; ++i) {
                const float l = logits[i];
                if (!(l > kNegInf)) continue;
                if (res.top.size() == n) {
                    if (!(l > res.top.back().logprob)) continue;  // equal logit: the lower id stays
                    res.top.pop_back();
                }
                auto pos = std::find_if(res.top.begin(), res.top.end(),
                                        [l](const TokenLogprob& t) { return t.logprob < l; });
                res.top.insert(pos, TokenLogprob{i, l});
            }
            for (TokenLogprob& t : res.top) t.logprob = static_cast<float>(static_cast<double>(t.logprob) - log_z);
        }
    }
    return res;
}

}  // namespace hearth
