// Routing policies and the prefix index.
#include "cluster/router_policy.h"

#include <algorithm>
#include <functional>

namespace hearth::cluster {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

}  // namespace

std::vector<uint64_t> prefix_chain(std::string_view text, size_t window) {
    std::vector<uint64_t> out;
    if (window == 0) return out;
    out.reserve(text.size() / window);
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (size_t at = 0; at + window <= text.size(); at += window) {
        h = mix(h ^ std::hash<std::string_view>{}(text.substr(at, window)));
        out.push_back(h);
    }
    return out;
}

uint64_t PrefixIndex::key(const std::string& model, uint64_t h) const { return mix(h ^ std::hash<std::string>{}(model)); }

uint32_t PrefixIndex::intern(const std::string& worker) {
    auto [it, fresh] = ids_.try_emplace(worker, uint32_t(names_.size()));
    if (fresh) names_.push_back(worker);
    return it->second;
}

std::map<std::string, size_t> PrefixIndex::match(const std::string& model, const std::vector<uint64_t>& chain) {
    std::map<std::string, size_t> out;
    const auto now = Clock::now();
    std::lock_guard lk(mu_);
    std::unordered_map<uint32_t, size_t> depth;  // workers still matching, and how far
    std::unordered_map<uint32_t, size_t> ended;  // the deepest whole earlier text per worker
    for (size_t i = 0; i < chain.size(); ++i) {
        auto it = entries_.find(key(model, chain[i]));
        if (it == entries_.end()) break;
        bool any = false;
        for (Seen& s : it->second) {
            if (now - s.used > ttl_) continue;
            auto d = depth.find(s.worker);
            if (i == 0 ? d == depth.end() : (d != depth.end() && d->second == i)) {
                depth[s.worker] = i + 1;
                if (s.end) ended[s.worker] = i + 1;
                any = true;
            }
        }
        if (!any) break;
    }
    for (const auto& [w, d] : ended) out[names_[w]] = d;
    return out;
}

void PrefixIndex::insert(const std::string& model, const std::vector<uint64_t>& chain, const std::string& worker) {
    if (chain.empty()) return;
    const auto now = Clock::now();
    std::lock_guard lk(mu_);
    const uint32_t w = intern(worker);
    for (size_t i = 0; i < chain.size(); ++i) {
        auto& seen = entries_[key(model, chain[i])];
        auto it = std::find_if(seen.begin(), seen.end(), [&](const Seen& s) { return s.worker == w; });
        if (it == seen.end()) it = seen.insert(seen.end(), Seen{w, now});
        it->used = now;
        if (i + 1 == chain.size()) it->end = true;
    }
    if (entries_.size() > max_entries_) evict_locked(now);
}

// Drops expired sightings, then (still over the cap) the older half by last use.
void PrefixIndex::evict_locked(Clock::time_point now) {
    std::vector<Clock::time_point> times;
    times.reserve(entries_.size());
    for (auto it = entries_.begin(); it != entries_.end();) {
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(), [&](const Seen& s) { return now - s.used > ttl_; }), v.end());
        if (v.empty()) {
            it = entries_.erase(it);
            continue;
        }
        Clock::time_point newest = v[0].used;
        for (const Seen& s : v) newest = std::max(newest, s.used);
        times.push_back(newest);
        ++it;
    }
    if (entries_.size() <= max_entries_ * 3 / 4) return;
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    const Clock::time_point cut = times[times.size() / 2];
    for (auto it = entries_.begin(); it != entries_.end();) {
        bool recent = false;
        for (const Seen& s : it->second) recent |= s.used > cut;
        it = recent ? std::next(it) : entries_.erase(it);
    }
}

void PrefixIndex::forget(const std::string& worker) {
    std::lock_guard lk(mu_);
    auto id = ids_.find(worker);
    if (id == ids_.end()) return;
    for (auto it = entries_.begin(); it != entries_.end();) {
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(), [&](const Seen& s) { return s.worker == id->second; }), v.end());
        it = v.empty() ? entries_.erase(it) : std::next(it);
    }
}

size_t PrefixIndex::size() const {
    std::lock_guard lk(mu_);
    return entries_.size();
}

// The least loaded; ties go round the candidates in turn, whether they have the model loaded
// or only in their store, so a worker that just joined gets its share of new conversations
// at once (it loads the model for the first).
std::shared_ptr<Worker> Balancer::least_loaded(const std::vector<std::shared_ptr<Worker>>& c, const std::string&) {
    if (c.empty()) return nullptr;
    const auto cost = [&](const Worker& w) { return w.load(); };
    double best = cost(*c[0]);
    for (const auto& w : c) best = std::min(best, cost(*w));
    std::vector<std::shared_ptr<Worker>> ties;
    for (const auto& w : c)
        if (cost(*w) <= best) ties.push_back(w);
    return ties[tie_++ % ties.size()];
}

Choice Balancer::choose(const RouteInput& in, const std::vector<uint64_t>& chain, const std::vector<std::shared_ptr<Worker>>& workers,
                        const std::vector<std::string>& exclude) {
    std::vector<std::shared_ptr<Worker>> healthy, serving;
    for (const auto& w : workers) {
        if (std::find(exclude.begin(), exclude.end(), w->id()) != exclude.end() || !w->healthy()) continue;
        healthy.push_back(w);
        if (!in.model_key.empty() && w->serves(in.model_key)) serving.push_back(w);
    }
    // No worker lists the model: any healthy one answers (a 404 in the API's own shape, or
    // the model when the lists were stale).
    const bool known = !serving.empty();
    std::vector<std::shared_ptr<Worker>>& cand = known ? serving : healthy;
    for (int attempt = 0; attempt < 4 && !cand.empty(); ++attempt) {
        Choice c;
        if (!in.session.empty()) {
            std::lock_guard lk(session_mu_);
            if (auto it = sessions_.find(in.session); it != sessions_.end())
                for (const auto& w : cand)
                    if (w->id() == it->second) c = {w, "session"};
        }
        if (!c.worker) switch (opts_.policy) {
            case Policy::RoundRobin:
                c = {exclude.empty() ? cand[rr_++ % cand.size()] : least_loaded(cand, in.model_key), "round_robin"};
                break;
            case Policy::LeastLoad: c = {least_loaded(cand, in.model_key), "least_load"}; break;
            case Policy::CacheAware: {
                double lo = cand[0]->load(), hi = lo;
                for (const auto& w : cand) {
                    lo = std::min(lo, w->load());
                    hi = std::max(hi, w->load());
                }
                if (hi - lo > opts_.balance_abs && hi > opts_.balance_rel * lo) {
                    c = {least_loaded(cand, in.model_key), "balance"};
                    break;
                }
                // The worker holding the longest earlier text this one continues; among equally
                // deep ones the least loaded, in turn.
                const auto seen = index_.match(in.model_key, chain);
                size_t depth = 0;
                for (const auto& w : cand)
                    if (auto it = seen.find(w->id()); it != seen.end()) depth = std::max(depth, it->second);
                std::vector<std::shared_ptr<Worker>> deepest;
                for (const auto& w : cand)
                    if (auto it = seen.find(w->id()); depth > 0 && it != seen.end() && it->second == depth) deepest.push_back(w);
                const double share = chain.empty() ? 0.0 : double(depth) / double(chain.size());
                // A prefix is worth reusing unless its worker's slots are full while another
                // worker has one free: waiting behind a full batch costs more than a prefill.
                std::shared_ptr<Worker> pick = deepest.empty() ? nullptr : least_loaded(deepest, in.model_key);
                if (pick && pick->parallel() > 0 && pick->load() >= pick->parallel() && lo < pick->parallel()) pick = nullptr;
                if (pick && share >= opts_.prefix_threshold) c = {pick, "prefix", share};
                else c = {least_loaded(cand, in.model_key), "least_load", share};
                break;
            }
            }
        if (!known && c.worker) c.reason = "only";
        if (c.worker && c.worker->take_slot()) {
            if (!in.session.empty()) {
                std::lock_guard lk(session_mu_);
                if (sessions_.insert_or_assign(in.session, c.worker->id()).second) {
                    session_order_.push_back(in.session);
                    if (session_order_.size() > 65536) {
                        sessions_.erase(session_order_.front());
                        session_order_.pop_front();
                    }
                }
            }
            return c;
        }
        // Its half-open trial was taken meanwhile: choose again without it.
        cand.erase(std::remove(cand.begin(), cand.end(), c.worker), cand.end());
    }
    return {};
}

void Balancer::routed(const RouteInput& in, const std::vector<uint64_t>& chain, const std::string& worker) {
    if (opts_.policy == Policy::CacheAware) index_.insert(in.model_key, chain, worker);
}

}  // namespace hearth::cluster
