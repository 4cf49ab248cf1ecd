// How the router picks a worker. cache_aware (the default): among the workers that can serve
// the model, go to the least loaded one when the load is out of balance (the busiest and the
// idlest differ by more than an absolute and a relative gap: SGLang's two-mode rule); else to
// the worker holding the conversation this request continues — the longest text routed
// before that is a prefix of this one, found in an approximate per-model index of hash-chained
// fixed-size windows — when it covers at least the threshold share of the text and that
// worker's slots are not full while another's are; else to the least loaded (ties in turn).
// A prefix shared by different conversations (a common system prompt) does not pull new
// conversations to one worker. round_robin and least_load ignore prefixes. A session
// (X-Hearth-Session or OpenAI's `user`) sticks to its worker while that worker can take it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/router.h"
#include "cluster/router_workers.h"

namespace hearth::cluster {

// Hashes of the text's full windows, each chained to the one before: equal chains up to i
// mean equal texts up to (i + 1) * window bytes.
std::vector<uint64_t> prefix_chain(std::string_view text, size_t window);

class PrefixIndex {
public:
    using Clock = std::chrono::steady_clock;
    PrefixIndex(size_t max_entries, std::chrono::seconds ttl) : max_entries_(max_entries), ttl_(ttl) {}
    // For each worker, the length (in windows) of the longest text routed to it before that
    // is a prefix of `chain`: the conversation this request continues (only workers with > 0).
    // A prefix shared with other texts but not a whole earlier text (a common system prompt)
    // does not count: it says nothing about where the conversation lives.
    std::map<std::string, size_t> match(const std::string& model, const std::vector<uint64_t>& chain);
    void insert(const std::string& model, const std::vector<uint64_t>& chain, const std::string& worker);
    void forget(const std::string& worker);
    size_t size() const;

private:
    struct Seen {
        uint32_t worker;
        Clock::time_point used;
        bool end = false;  // the last full window of a text routed to this worker
    };
    uint64_t key(const std::string& model, uint64_t h) const;
    uint32_t intern(const std::string& worker);  // mu_ held
    void evict_locked(Clock::time_point now);

    size_t max_entries_;
    std::chrono::seconds ttl_;
    mutable std::mutex mu_;
    std::unordered_map<uint64_t, std::vector<Seen>> entries_;
    std::vector<std::string> names_;
    std::unordered_map<std::string, uint32_t> ids_;
};

// What a request brings to the choice.
struct RouteInput {
    std::string model_key;             // model_key(name); empty when the body names none
    std::string text;                  // the prompt text in order (chat: every message)
    std::string session;               // affinity key, or empty
};

struct Choice {
    std::shared_ptr<Worker> worker;    // null: no worker can take it
    const char* reason = "";           // prefix, balance, least_load, round_robin, session, only
    double matched = 0;                // the prefix share matched (cache_aware)
};

class Balancer {
public:
    explicit Balancer(const RouterOptions& opts) : opts_(opts), index_(opts.prefix_entries, opts.prefix_ttl) {}
    // Picks among `workers` minus `exclude` (ids already tried), taking the worker's slot
    // (a half-open breaker's one trial). `chain` is prefix_chain(in.text) (computed once).
    Choice choose(const RouteInput& in, const std::vector<uint64_t>& chain, const std::vector<std::shared_ptr<Worker>>& workers,
                  const std::vector<std::string>& exclude);
    // The request went to `worker`: its text is now (likely) in that worker's cache.
    void routed(const RouteInput& in, const std::vector<uint64_t>& chain, const std::string& worker);
    void forget(const std::string& worker) { index_.forget(worker); }
    size_t index_size() const { return index_.size(); }

private:
    std::shared_ptr<Worker> least_loaded(const std::vector<std::shared_ptr<Worker>>& c, const std::string& model);

    const RouterOptions& opts_;
    PrefixIndex index_;
    std::atomic<uint64_t> rr_{0};   // round_robin's turn (first attempts only)
    std::atomic<uint64_t> tie_{0};  // least-load ties, retries
    std::mutex session_mu_;
    std::unordered_map<std::string, std::string> sessions_;  // session -> worker id
    std::list<std::string> session_order_;                   // oldest first (bounded)
};

}  // namespace hearth::cluster
