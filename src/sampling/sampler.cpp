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

float max_logit(const std::vector<Cand>& c, bool sorted) {
    if (sorted) return c.front().first;
    float m = kNegInf;
    for (const Cand& x : c) m = std::max(m, x.first);
    return m;
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
    if (k > 0 && k < n_vocab) {
        // Streaming top-k: a heap (ordered by `before`) whose front is the worst kept
        // candidate; most logits lose one comparison against it.
        if (cand_.capacity() < static_cast<size_t>(k)) cand_.reserve(static_cast<size_t>(k));
        for (int32_t i = 0; i < n_vocab; ++i) {
            const float l = logits[i];
            if (!(l > kNegInf)) continue;  // -inf (banned) and NaN
            const Cand c{l, i};
            if (cand_.size() < static_cast<size_t>(k)) {
                cand_.push_back(c);
                std::push_heap(cand_.begin(), cand_.end(), before);
            } else if (before(c, cand_.front())) {
                std::pop_heap(cand_.begin(), cand_.end(), before);
                cand_.back() = c;
                std::push_heap(cand_.begin(), cand_.end(), before);
            }
        }
        std::sort_heap(cand_.begin(), cand_.end(), before);
        sorted_ = true;
    } else {
        if (cand_.capacity() < static_cast<size_t>(n_vocab)) cand_.reserve(static_cast<size_t>(n_vocab));
        for (int32_t i = 0; i < n_vocab; ++i) {
            const float l = logits[i];
            if (l > kNegInf) cand_.emplace_back(l, i);
        }
        // In id order: canonical, but not sorted by logit.
    }
}

// Locally typical sampling (Meister et al. 2022): order candidates by how far their
// information content -log p is from the entropy, keep the closest ones until their mass
// reaches typical_p.
void Sampler::typical() {
    if (!(p_.typical_p < 1.0f) || cand_.size() < 2) return;
    const float m = max_logit(cand_, sorted_);
    double sum = 0.0;
    for (const Cand& c : cand_) sum += std::exp(static_cast<double>(c.first - m));
    const double log_z = static_cast<double>(m) + std::log(sum);
    double entropy = 0.0;
    for (const Cand& c : cand_) {
        const double lp = static_cast<double>(c.first) - log_z;
        entropy -= std::exp(lp) * lp;
    }
    // |-log p - H| = |(log_z - H) - logit|
    const double center = log_z - entropy;
    std::sort(cand_.begin(), cand_.end(), [center](const Cand& a, const Cand& b) {
        const double da = std::fabs(center - static_cast<double>(a.first));
        const double db = std::fabs(center - static_cast<double>(b.first));
        return da < db || (da == db && before(a, b));
    });
    const double target = static_cast<double>(p_.typical_p);
    double cum = 0.0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < cand_.size(); ++i) {
        cum += std::exp(static_cast<double>(cand_[i].first) - log_z);
        if (cum >= target) {
            keep = i + 1;
            break;
        }
    }
    cand_.resize(keep);
    sorted_ = false;  // in typicality order
}

// Nucleus: the smallest logit-ordered prefix whose mass reaches top_p. Unsorted candidates
// are sorted only as far as needed, in growing chunks (nth_element + sort of the chunk).
void Sampler::top_p() {
    if (!(p_.top_p < 1.0f) || cand_.size() < 2) return;
    const size_t n = cand_.size();
    const float m = max_logit(cand_, sorted_);
    double sum = 0.0;
    for (const Cand& c : cand_) sum += static_cast<double>(std::exp(c.first - m));
    const double target = static_cast<double>(p_.top_p) * sum;

    double cum = 0.0;
    size_t keep = n;
    size_t done = 0;
    size_t chunk = 64;
    while (done < n && keep == n) {
        const size_t end = std::min(n, done + chunk);
        if (!sorted_) {
            const auto first = cand_.begin() + static_cast<std::ptrdiff_t>(done);
            const auto last = cand_.begin() + static_cast<std::ptrdiff_t>(end);
            if (end < n) std::nth_element(first, last, cand_.end(), before);
            std::sort(first, last, before);
        }
        for (size_t i = done; i < end; ++i) {
            cum += static_cast<double>(std::exp(cand_[i].first - m));
            if (cum >= target) {
                keep = i + 1;
                break;
            }
        }
        done = end;
        chunk *= 2;
    }
    cand_.resize(keep);
    sorted_ = true;  // the kept prefix (or everything) is now in order
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

SampleResult Sampler::sample(float* logits, int32_t n_vocab) {
    SampleResult res{0, std::numeric_limits<float>::quiet_NaN(), {}};
    if (logits == nullptr || n_vocab <= 0) {
        res.logprob = kNegInf;
        return res;
    }

    for (const auto& [id, bias] : p_.logit_bias) {
        if (id >= 0 && id < n_vocab) logits[id] += bias;
    }
    if (penalties_on()) apply_penalties(logits, n_vocab);

    if (p_.temperature <= 0.0f) {
        // Greedy: the first maximum, so ties go to the lowest id. NaN never compares greater.
        float best = kNegInf;
        int32_t best_id = -1;
        for (int32_t i = 0; i < n_vocab; ++i) {
            if (logits[i] > best) {
                best = logits[i];
                best_id = i;
            }
        }
        if (best_id < 0) {  // everything banned
            res.logprob = kNegInf;
            return res;
        }
        res.id = best_id;
    } else {
        collect(logits, n_vocab);
        if (cand_.empty()) {
            res.logprob = kNegInf;
            return res;
        }
        typical();
        top_p();
        min_p();
        res.id = cand_[draw()].second;
    }

    if (p_.logprobs || p_.n_probs > 0) {
        // log-softmax over the whole vocabulary at temperature 1.
        float m = kNegInf;
        for (int32_t i = 0; i < n_vocab; ++i) m = std::max(m, logits[i]);  // std::max(m, NaN) keeps m
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
