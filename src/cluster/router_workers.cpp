// Workers: records, health (probe + breaker), load polling, and the set of them.
#include "cluster/router_workers.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

#include "http/client.h"

namespace hearth::cluster {

namespace {

std::atomic<int> g_live_probers{0};

http::Headers worker_headers(const RouterOptions& opts) {
    http::Headers h;
    if (!opts.worker_key.empty()) h.emplace("Authorization", "Bearer " + opts.worker_key);
    return h;
}

// Sums the samples of `name` (every label set) in a Prometheus text exposition.
double sum_series(const std::string& text, std::string_view name) {
    double total = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
        const char next = line.size() > name.size() ? line[name.size()] : '\0';
        if (next != '{' && next != ' ') continue;
        const size_t sp = line.rfind(' ');
        if (sp == std::string::npos) continue;
        total += std::strtod(line.c_str() + sp + 1, nullptr);
    }
    return total;
}

}  // namespace

const char* to_string(Breaker b) {
    switch (b) {
    case Breaker::Closed: return "closed";
    case Breaker::Open: return "open";
    case Breaker::HalfOpen: return "half_open";
    }
    return "?";
}

bool split_url(const std::string& url, std::string& host, int& port) {
    std::string_view s = url;
    if (s.rfind("http://", 0) == 0) s.remove_prefix(7);
    else if (s.find("://") != std::string_view::npos) return false;
    if (size_t slash = s.find('/'); slash != std::string_view::npos) s = s.substr(0, slash);
    if (s.empty()) return false;
    std::string_view h = s, p;
    if (s[0] == '[') {
        const size_t close = s.find(']');
        if (close == std::string_view::npos) return false;
        h = s.substr(1, close - 1);
        if (close + 1 < s.size()) {
            if (s[close + 1] != ':') return false;
            p = s.substr(close + 2);
        }
    } else if (size_t colon = s.rfind(':'); colon != std::string_view::npos) {
        h = s.substr(0, colon);
        p = s.substr(colon + 1);
    }
    int pt = 80;
    if (!p.empty()) {
        pt = 0;
        for (char c : p) {
            if (c < '0' || c > '9' || pt > 65535) return false;
            pt = pt * 10 + (c - '0');
        }
    }
    if (h.empty() || pt <= 0 || pt > 65535) return false;
    host = std::string(h);
    port = pt;
    return true;
}

Worker::Worker(NodeRecord rec, bool from_etcd, std::shared_ptr<const RouterOptions> opts)
    : opts_holder_(std::move(opts)), opts_(*opts_holder_), from_etcd_(from_etcd) {
    id_ = rec.id;
    url_ = rec.url;
    if (!split_url(url_, host_, port_)) throw std::invalid_argument("not an http://host:port URL: " + url_);
    set_record(std::move(rec));
}

void Worker::start() {
    g_live_probers++;
    std::thread([self = shared_from_this()] {
        self->probe_loop();
        g_live_probers--;
    }).detach();
}

void Worker::stop() {
    std::lock_guard lk(stop_mu_);
    stopping_ = true;
    stop_cv_.notify_all();
}

void Worker::join_all(std::chrono::milliseconds limit) {
    const auto until = Clock::now() + limit;
    while (g_live_probers.load() > 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

NodeRecord Worker::record() const {
    std::lock_guard lk(mu_);
    return rec_;
}

void Worker::set_record(NodeRecord rec) {
    std::set<std::string> loaded, models;
    for (const auto& m : rec.models_loaded) loaded.insert(model_key(m));
    for (const auto& m : rec.models) models.insert(model_key(m));
    std::lock_guard lk(mu_);
    rec_ = std::move(rec);
    loaded_keys_ = std::move(loaded);
    model_keys_ = std::move(models);
}

bool Worker::draining() const {
    std::lock_guard lk(mu_);
    return rec_.state == "draining";
}

int Worker::parallel() const {
    std::lock_guard lk(mu_);
    return rec_.parallel;
}

bool Worker::serves(const std::string& key) const {
    std::lock_guard lk(mu_);
    return loaded_keys_.count(key) || model_keys_.count(key);
}

bool Worker::loaded(const std::string& key) const {
    std::lock_guard lk(mu_);
    return loaded_keys_.count(key) > 0;
}

std::vector<std::string> Worker::model_names() const {
    std::lock_guard lk(mu_);
    return rec_.models;
}

bool Worker::take_slot() {
    if (!probe_up_.load()) return false;
    std::lock_guard lk(mu_);
    if (rec_.state == "draining") return false;
    switch (breaker_) {
    case Breaker::Closed: return true;
    case Breaker::Open:
        if (Clock::now() < open_until_) return false;
        breaker_ = Breaker::HalfOpen;
        trial_taken_ = false;
        [[fallthrough]];
    case Breaker::HalfOpen:
        if (trial_taken_) return false;
        trial_taken_ = true;
        return true;
    }
    return false;
}

bool Worker::healthy() const {
    if (!probe_up_.load()) return false;
    std::lock_guard lk(mu_);
    if (rec_.state == "draining") return false;
    if (breaker_ == Breaker::Closed) return true;
    if (breaker_ == Breaker::Open) return Clock::now() >= open_until_;
    return !trial_taken_;
}

Breaker Worker::breaker() const {
    std::lock_guard lk(mu_);
    return breaker_;
}

void Worker::on_success() {
    std::lock_guard lk(mu_);
    failures_ = 0;
    breaker_ = Breaker::Closed;
    trial_taken_ = false;
}

void Worker::on_failure() {
    errors++;
    std::lock_guard lk(mu_);
    ++failures_;
    if (breaker_ == Breaker::HalfOpen || failures_ >= opts_.breaker_failures) {
        if (breaker_ != Breaker::Open)
            std::fprintf(stderr, "hearth: router: worker %s out of rotation (%d failure%s in a row)\n", id_.c_str(), failures_,
                         failures_ == 1 ? "" : "s");
        breaker_ = Breaker::Open;
        open_until_ = Clock::now() + opts_.breaker_cooldown;
        trial_taken_ = false;
    }
}

void Worker::trip() {
    stalls++;
    probe_up_ = false;  // back once a probe answers
    std::lock_guard lk(mu_);
    breaker_ = Breaker::Open;
    open_until_ = Clock::now() + opts_.breaker_cooldown;
    trial_taken_ = false;
    std::fprintf(stderr, "hearth: router: worker %s out of rotation (a stream stalled)\n", id_.c_str());
}

void Worker::probe_result(bool ok) {
    if (ok) {
        probe_failures_ = 0;
        if (!probe_up_.exchange(true)) std::fprintf(stderr, "hearth: router: worker %s answers again\n", id_.c_str());
        std::lock_guard lk(mu_);
        // A probe that answers after the cool-down closes an open breaker (the half-open trial).
        if (breaker_ != Breaker::Closed && Clock::now() >= open_until_) {
            breaker_ = Breaker::Closed;
            failures_ = 0;
            trial_taken_ = false;
        }
        return;
    }
    // Two failed probes in a row (the second 500 ms after the first) take it out.
    if (++probe_failures_ >= 2 && probe_up_.exchange(false))
        std::fprintf(stderr, "hearth: router: worker %s does not answer its probe: out of rotation\n", id_.c_str());
}

// A client for one probe or poll: every phase bounded by the connect timeout.
http::Client Worker::client() const {
    http::Client c(host_, port_);
    c.set_connection_timeout(opts_.connect_timeout);
    c.set_read_timeout(opts_.connect_timeout);
    c.set_write_timeout(opts_.connect_timeout);
    return c;
}

bool Worker::probe_version() {
    auto r = client().Get("/api/version", worker_headers(opts_));
    return r && r->status == 200;
}

bool Worker::poll_metrics() {
    auto r = client().Get("/metrics", worker_headers(opts_));
    if (!r) return false;
    if (r->status == 200) {
        waiting = int64_t(sum_series(r->body, "hearth_requests_waiting"));
        running = int64_t(sum_series(r->body, "hearth_requests_running"));
    }
    return true;
}

void Worker::poll_models() {
    http::Client c = client();
    const auto names = [&](const char* path) -> std::optional<std::vector<std::string>> {
        auto r = c.Get(path, worker_headers(opts_));
        if (!r || r->status != 200) return std::nullopt;
        const auto j = nlohmann::json::parse(r->body, nullptr, false);
        if (!j.is_object() || !j.contains("models") || !j["models"].is_array()) return std::nullopt;
        std::vector<std::string> out;
        for (const auto& m : j["models"])
            if (m.is_object() && m.contains("name") && m["name"].is_string()) out.push_back(m["name"].get<std::string>());
        return out;
    };
    auto tags = names("/api/tags");
    auto ps = names("/api/ps");
    if (!tags || !ps) return;
    NodeRecord rec = record();
    rec.models = std::move(*tags);
    rec.models_loaded = std::move(*ps);
    set_record(std::move(rec));
}

void Worker::probe_loop() {
    using namespace std::chrono;
    auto next_probe = Clock::now();
    auto next_models = Clock::now();
    for (;;) {
        {
            std::unique_lock lk(stop_mu_);
            if (stopping_) return;
        }
        const auto now = Clock::now();
        const auto stopped = [&] {
            std::lock_guard lk(stop_mu_);
            return stopping_;
        };
        if (now >= next_probe) {
            const bool ok = probe_version();
            if (stopped()) return;
            probe_result(ok);
            next_probe = Clock::now() + (ok ? opts_.probe_interval : milliseconds(500));
        }
        if (!from_etcd_ && Clock::now() >= next_models && probe_up_.load()) {
            poll_models();
            next_models = Clock::now() + seconds(2);
            if (stopped()) return;
        }
        // The load poll is a probe too: a worker that stops answering it is probed at once.
        if (probe_up_.load() && Clock::now() < next_probe && !poll_metrics()) {
            probe_result(false);
            next_probe = Clock::now();
            continue;
        }
        std::unique_lock lk(stop_mu_);
        stop_cv_.wait_for(lk, opts_.load_interval, [&] { return stopping_; });
    }
}

std::vector<std::shared_ptr<Worker>> WorkerSet::snapshot() const {
    std::lock_guard lk(mu_);
    std::vector<std::shared_ptr<Worker>> out;
    out.reserve(workers_.size());
    for (const auto& [id, w] : workers_) out.push_back(w);
    return out;
}

std::shared_ptr<Worker> WorkerSet::find(const std::string& id) const {
    std::lock_guard lk(mu_);
    auto it = workers_.find(id);
    return it == workers_.end() ? nullptr : it->second;
}

void WorkerSet::upsert(const NodeRecord& rec, bool from_etcd) {
    std::shared_ptr<Worker> old, fresh;
    {
        std::lock_guard lk(mu_);
        gone_since_.erase(rec.id);
        auto it = workers_.find(rec.id);
        if (it != workers_.end() && it->second->url() == rec.url) {
            it->second->set_record(rec);
            return;
        }
        try {
            fresh = std::make_shared<Worker>(rec, from_etcd, opts_);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "hearth: router: ignoring node %s: %s\n", rec.id.c_str(), e.what());
            return;
        }
        if (it != workers_.end()) old = it->second;
        workers_[rec.id] = fresh;
    }
    if (old) old->stop();
    std::fprintf(stderr, "hearth: router: worker %s joined at %s\n", rec.id.c_str(), rec.url.c_str());
    fresh->start();
}

void WorkerSet::remove(const std::string& id) {
    std::shared_ptr<Worker> old;
    {
        std::lock_guard lk(mu_);
        gone_since_.erase(id);
        auto it = workers_.find(id);
        if (it == workers_.end()) return;
        old = it->second;
        workers_.erase(it);
    }
    old->stop();
    std::fprintf(stderr, "hearth: router: worker %s left\n", id.c_str());
}

void WorkerSet::replace_all(const std::vector<NodeRecord>& recs) {
    std::set<std::string> keep;
    for (const auto& r : recs) keep.insert(r.id);
    std::vector<std::string> gone;
    {
        std::lock_guard lk(mu_);
        for (const auto& [id, w] : workers_)
            if (!keep.count(id) && w->from_etcd()) gone.push_back(id);
    }
    for (const auto& id : gone) record_gone(id);
    for (const auto& r : recs) upsert(r, true);
}

void WorkerSet::record_gone(const std::string& id) {
    {
        std::lock_guard lk(mu_);
        auto it = workers_.find(id);
        if (it == workers_.end()) return;
        if (it->second->probe_up() && !it->second->draining()) {
            gone_since_.try_emplace(id, std::chrono::steady_clock::now());
            return;
        }
    }
    remove(id);
}

void WorkerSet::sweep() {
    std::vector<std::string> out;
    {
        std::lock_guard lk(mu_);
        const auto now = std::chrono::steady_clock::now();
        for (const auto& [id, since] : gone_since_) {
            auto it = workers_.find(id);
            if (it == workers_.end() || now - since >= opts_->lease_grace || !it->second->probe_up()) out.push_back(id);
        }
    }
    for (const auto& id : out) remove(id);
}

size_t WorkerSet::size() const {
    std::lock_guard lk(mu_);
    return workers_.size();
}

}  // namespace hearth::cluster
