// The router: its HTTP server and routes, membership (etcd watch or static list), the union
// routes and /metrics.
#include "cluster/router.h"

#include <cstdio>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/etcd.h"
#include "cluster/router_policy.h"
#include "cluster/router_proxy.h"
#include "cluster/router_workers.h"
#include "http/client.h"
#include "http/server.h"
#include "server/http_util.h"
#include "server/metrics.h"
#include "server/middleware.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif

namespace hearth::cluster {

using nlohmann::json;

Policy parse_policy(const std::string& name) {
    if (name == "cache_aware") return Policy::CacheAware;
    if (name == "round_robin") return Policy::RoundRobin;
    if (name == "least_load") return Policy::LeastLoad;
    throw std::invalid_argument("unknown routing policy \"" + name + "\": use cache_aware, round_robin or least_load");
}

const char* to_string(Policy p) {
    switch (p) {
    case Policy::CacheAware: return "cache_aware";
    case Policy::RoundRobin: return "round_robin";
    case Policy::LeastLoad: return "least_load";
    }
    return "?";
}

namespace {

// The text of a message's `content`: a string, or the text parts of an array.
void append_content(std::string& out, const json& c) {
    if (c.is_string()) out += c.get_ref<const std::string&>();
    else if (c.is_array())
        for (const auto& p : c)
            if (p.is_object())
                if (auto t = p.find("text"); t != p.end() && t->is_string()) out += t->get_ref<const std::string&>();
}

// The request's prompt text in the order the worker renders it: what its prefix cache keys.
std::string route_text(const json& body) {
    std::string out;
    for (const char* k : {"system", "instructions"})
        if (auto it = body.find(k); it != body.end()) {
            append_content(out, *it);
            out += '\n';
        }
    if (auto it = body.find("messages"); it != body.end() && it->is_array())
        for (const auto& m : *it) {
            if (!m.is_object()) continue;
            if (auto r = m.find("role"); r != m.end() && r->is_string()) out += r->get_ref<const std::string&>();
            out += ':';
            if (auto c = m.find("content"); c != m.end()) append_content(out, *c);
            out += '\n';
        }
    for (const char* k : {"prompt", "input"})
        if (auto it = body.find(k); it != body.end()) {
            if (it->is_array()) {
                for (const auto& p : *it) {
                    if (p.is_string()) out += p.get_ref<const std::string&>();
                    else if (p.is_object()) {
                        if (auto c = p.find("content"); c != p.end()) append_content(out, *c);
                    }
                    out += '\n';
                }
            } else {
                append_content(out, *it);
            }
        }
    return out;
}

std::string json_string(const json& body, const char* key) {
    auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

struct Router::Impl {
    std::shared_ptr<const RouterOptions> shared_opts;  // probers hold it too
    const RouterOptions& opts;
    WorkerSet workers{shared_opts};
    Balancer balancer{opts};
    RouterCounters counters;
    std::unique_ptr<Proxy> proxy;
    http::Server http;
    int port = -1;

    // Membership from etcd.
    std::unique_ptr<Etcd> etcd;
    std::atomic<bool> etcd_up{true};  // until the first failure says otherwise (and logs it)
    std::atomic<bool> stopping{false};
    std::mutex watch_mu;
    std::shared_ptr<WatchCancel> watch_cancel;  // the watch in flight (one per watch: a cancel sticks)
    std::thread watcher, etcd_health;
    std::mutex stop_mu;
    std::condition_variable stop_cv;

    static std::shared_ptr<const RouterOptions> finish(RouterOptions o) {
        if (o.version.empty()) o.version = HEARTH_VERSION;
        return std::make_shared<const RouterOptions>(std::move(o));
    }

    explicit Impl(RouterOptions o) : shared_opts(finish(std::move(o))), opts(*shared_opts), http(server::http_options(opts.http)) {
        proxy = std::make_unique<Proxy>(opts, workers, balancer, counters, &http.io_context());
        server::install_middleware(http, opts.http);
        routes();
        for (const std::string& url : opts.static_workers) {
            NodeRecord r;
            std::string host;
            int p = 0;
            if (!split_url(url, host, p)) throw std::invalid_argument("--workers: not an http://host:port URL: " + url);
            r.id = host + ":" + std::to_string(p);
            r.url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(p);
            workers.upsert(r, false);
        }
        if (!opts.etcd_endpoints.empty()) {
            etcd = std::make_unique<Etcd>(opts.etcd_endpoints, std::chrono::milliseconds(1000));
            watcher = std::thread([this] { watch_loop(); });
            etcd_health = std::thread([this] { health_loop(); });
        }
    }

    ~Impl() { stop(); }

    void stop() {
        if (stopping.exchange(true)) return;
        {
            std::lock_guard lk(stop_mu);
            stop_cv.notify_all();
        }
        cancel_watch();
        if (watcher.joinable()) watcher.join();
        if (etcd_health.joinable()) etcd_health.join();
        http.stop();
        proxy->stop();
        for (const auto& w : workers.snapshot()) w->stop();
        Worker::join_all(std::chrono::milliseconds(3000));
    }

    bool sleep_for(std::chrono::milliseconds d) {  // false when stopping
        std::unique_lock lk(stop_mu);
        return !stop_cv.wait_for(lk, d, [&] { return stopping.load(); });
    }

    void cancel_watch() {
        std::lock_guard lk(watch_mu);
        if (watch_cancel) watch_cancel->cancel();
    }

    void set_etcd_up(bool up) {
        if (etcd_up.exchange(up) == up) return;
        if (up) std::fprintf(stderr, "hearth: router: etcd reachable at %s: membership is live\n", etcd->current_endpoint().c_str());
        else
            std::fprintf(stderr, "hearth: router: etcd unreachable: keeping the last membership (%zu worker(s)) and probing them\n",
                         workers.size());
    }

    // A range read of the node records, then a watch from the revision after it; again from
    // a fresh range whenever the watch breaks. While etcd is away, the workers last seen stay.
    void watch_loop() {
        const std::string prefix = nodes_prefix(opts.cluster_name);
        while (!stopping) {
            try {
                const Etcd::Range r = etcd->get_prefix(prefix);
                std::vector<NodeRecord> recs;
                for (const KeyValue& kv : r.kvs)
                    if (auto rec = NodeRecord::from_json(kv.value)) recs.push_back(std::move(*rec));
                workers.replace_all(recs);
                set_etcd_up(true);
                auto cancel = std::make_shared<WatchCancel>();
                {
                    std::lock_guard lk(watch_mu);
                    watch_cancel = cancel;
                }
                if (stopping) return;
                etcd->watch_prefix(
                    prefix, r.revision + 1,
                    [&](const std::vector<WatchEvent>& events, int64_t) {
                        for (const WatchEvent& e : events) {
                            if (e.type == WatchEvent::Type::Delete) workers.record_gone(e.kv.key.substr(prefix.size()));
                            else if (auto rec = NodeRecord::from_json(e.kv.value)) workers.upsert(*rec, true);
                        }
                    },
                    *cancel);
                if (stopping) return;
            } catch (const EtcdCompacted&) {
                continue;  // range again
            } catch (const std::exception& e) {
                if (stopping) return;
                if (etcd_up) std::fprintf(stderr, "hearth: router: etcd: %s\n", e.what());
                set_etcd_up(false);
            }
            // A cancelled watch (the health check found etcd gone) also lands here.
            if (!sleep_for(std::chrono::milliseconds(500))) return;
        }
    }

    // A watch on a stopped (not closed) etcd hangs rather than failing: a cheap read every
    // 2 s says whether etcd answers, and a failed one restarts the watch. Every 500 ms,
    // workers whose record left etcd while they still answered are dropped once their grace
    // ran out.
    void health_loop() {
        const std::string key = nodes_prefix(opts.cluster_name) + ".router-health";
        unsigned ticks = 0;
        while (sleep_for(std::chrono::milliseconds(500))) {
            workers.sweep();
            if (++ticks % 4) continue;  // etcd itself every 2 s
            try {
                etcd->get(key);
            } catch (const std::exception&) {
                set_etcd_up(false);
                cancel_watch();
            }
        }
    }

    void routes();
    void proxy_route(const http::Request& req, http::Response& res);
    void union_route(const http::Request& req, http::Response& res, const char* list_key, const char* name_key);
    std::string metrics() const;
};

void Router::Impl::proxy_route(const http::Request& req, http::Response& res) {
    auto p = std::make_shared<ProxyRequest>();
    p->method = req.method;
    p->target = req.target;
    p->path = req.path;
    p->headers = req.headers;
    p->body = req.body;
    p->remote_addr = req.remote_addr;
    // The body says which model, whether it streams and what text the worker's cache keys on.
    // A body that is not JSON goes to any worker as it is: the worker's 400 is the API's own.
    const json body = json::parse(req.body, nullptr, false);
    const bool v1 = req.path.rfind("/v1/", 0) == 0;
    if (body.is_object()) {
        p->model = json_string(body, "model");
        if (p->model.empty()) p->model = json_string(body, "name");  // /api/show's older field
        if (!p->model.empty()) p->route.model_key = model_key(p->model);
        const auto s = body.find("stream");
        const bool streamed_api = req.path == "/api/generate" || req.path == "/api/chat" || v1;
        p->streaming = streamed_api && (v1 ? (s != body.end() && s->is_boolean() && s->get<bool>())
                                           : !(s != body.end() && s->is_boolean() && !s->get<bool>()));
        if (opts.policy == Policy::CacheAware) {
            p->route.text = route_text(body);
            p->chain = prefix_chain(p->route.text, opts.prefix_window);
        }
        p->route.session = json_string(body, "user");
    }
    if (const std::string s = req.get_header_value(opts.session_header); !s.empty()) p->route.session = s;
    if (p->route.model_key.empty() && req.matches.size() > 1) {  // GET /v1/models/{id}
        p->model = req.matches[1].str();
        p->route.model_key = model_key(p->model);
    }
    p->client = res.defer();
    proxy->forward(std::move(p));
}

// GET /api/tags, /api/ps, /v1/models: each healthy worker's list, merged (first seen wins).
void Router::Impl::union_route(const http::Request& req, http::Response& res, const char* list_key, const char* name_key) {
    std::vector<std::future<std::optional<json>>> parts;
    for (const auto& w : workers.snapshot()) {
        if (!w->probe_up()) continue;
        parts.push_back(std::async(std::launch::async, [this, w, path = req.path]() -> std::optional<json> {
            http::Client c(w->host(), w->port());
            c.set_connection_timeout(opts.connect_timeout);
            c.set_read_timeout(std::chrono::milliseconds(5000));
            http::Headers h;
            if (!opts.worker_key.empty()) h.emplace("Authorization", "Bearer " + opts.worker_key);
            auto r = c.Get(path, h);
            if (!r || r->status != 200) return std::nullopt;
            json j = json::parse(r->body, nullptr, false);
            if (!j.is_object()) return std::nullopt;
            return j;
        }));
    }
    json out = json::object();
    json list = json::array();
    std::set<std::string> seen;
    for (auto& f : parts) {
        std::optional<json> j = f.get();
        if (!j) continue;
        if (out.empty())
            for (auto it = j->begin(); it != j->end(); ++it)
                if (it.key() != list_key) out[it.key()] = it.value();
        auto l = j->find(list_key);
        if (l == j->end() || !l->is_array()) continue;
        for (auto& m : *l) {
            const std::string name = m.is_object() ? json_string(m, name_key) : std::string();
            if (!name.empty() && !seen.insert(model_key(name)).second) continue;
            list.push_back(std::move(m));
        }
    }
    if (req.path == "/v1/models") out["object"] = "list";
    out[list_key] = std::move(list);
    server::send_json(res, out);
    res.replace_header("X-Hearth-Node", "router");
}

std::string Router::Impl::metrics() const {
    server::PromWriter w;
    const auto all = workers.snapshot();
    w.single("hearth_router_workers", "gauge", "Workers known to the router.", double(all.size()));
    const auto each = [&](const char* name, const char* type, const char* help, auto value) {
        w.header(name, type, help);
        for (const auto& x : all) w.sample(name, "worker=\"" + server::metric_label_escape(x->id()) + "\"", double(value(*x)));
    };
    each("hearth_router_worker_up", "gauge", "1 while the worker takes new requests (probe up, breaker not open, not draining).",
         [](const Worker& x) { return x.healthy() ? 1 : 0; });
    each("hearth_router_worker_draining", "gauge", "1 while the worker drains.", [](const Worker& x) { return x.draining() ? 1 : 0; });
    each("hearth_router_requests_total", "counter", "Attempts sent to the worker (retries included).",
         [](const Worker& x) { return x.requests.load(); });
    each("hearth_router_errors_total", "counter", "Failed attempts on the worker (connect, timeout, broken reply).",
         [](const Worker& x) { return x.errors.load(); });
    each("hearth_router_retries_total", "counter", "Attempts that were retries of a request another worker failed.",
         [](const Worker& x) { return x.retries.load(); });
    each("hearth_router_stalls_total", "counter", "Streams ended by the inter-token watchdog on the worker.",
         [](const Worker& x) { return x.stalls.load(); });
    each("hearth_router_inflight", "gauge", "Requests the router has in flight on the worker.",
         [](const Worker& x) { return x.inflight.load(); });
    each("hearth_router_worker_waiting", "gauge", "Requests waiting in the worker's queues (its /metrics).",
         [](const Worker& x) { return x.waiting.load(); });
    each("hearth_router_worker_running", "gauge", "Sequences running on the worker (its /metrics).",
         [](const Worker& x) { return x.running.load(); });
    w.header("hearth_router_breaker_state", "gauge", "The worker's circuit breaker: 1 for its state.");
    for (const auto& x : all)
        for (Breaker b : {Breaker::Closed, Breaker::Open, Breaker::HalfOpen})
            w.sample("hearth_router_breaker_state",
                     "worker=\"" + server::metric_label_escape(x->id()) + "\",state=\"" + to_string(b) + "\"",
                     x->breaker() == b ? 1 : 0);
    {
        std::lock_guard lk(counters.mu);
        w.header("hearth_router_decisions_total", "counter", "Routing decisions by reason (prefix, balance, least_load, round_robin, session, only, retry).");
        for (const auto& [reason, n] : counters.decisions) w.sample("hearth_router_decisions_total", "reason=\"" + reason + "\"", double(n));
    }
    w.single("hearth_router_client_requests_total", "counter", "Requests the router forwarded.", double(counters.requests.load()));
    w.single("hearth_router_no_worker_total", "counter", "Requests answered 503: no worker could take them.",
             double(counters.no_worker.load()));
    w.single("hearth_router_failed_total", "counter", "Requests answered 502: every attempt failed before the first byte.",
             double(counters.failed.load()));
    w.single("hearth_router_stream_errors_total", "counter", "Streams ended with an error event after tokens were relayed.",
             double(counters.stream_errors.load()));
    w.single("hearth_router_prefix_index_entries", "gauge", "Windows in the prefix index.", double(balancer.index_size()));
    w.single("hearth_router_etcd_configured", "gauge", "1 when membership comes from etcd.", etcd ? 1 : 0);
    w.single("hearth_router_etcd_up", "gauge", "1 while etcd answers (0: serving the last known membership).",
             etcd && etcd_up.load() ? 1 : 0);
    const auto& h = http.stats();
    w.single("hearth_http_connections_open", "gauge", "Open client connections.", double(h.connections_open.load()));
    w.single("hearth_http_connections_total", "counter", "Client connections accepted.", double(h.connections_total.load()));
    w.header("hearth_router_info", "gauge", "Always 1; the version and policy are labels.");
    w.sample("hearth_router_info", "version=\"" + server::metric_label_escape(opts.version) + "\",policy=\"" + to_string(opts.policy) + "\"", 1);
    return w.out;
}

void Router::Impl::routes() {
    const auto fwd = [this](const http::Request& req, http::Response& res) { proxy_route(req, res); };
    for (const char* p : {"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show", "/v1/chat/completions",
                          "/v1/completions", "/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses"})
        http.Post(p, fwd);
    http.Get("/v1/models/(.+)", fwd);
    http.Get("/api/tags", [this](const http::Request& req, http::Response& res) { union_route(req, res, "models", "name"); });
    http.Get("/api/ps", [this](const http::Request& req, http::Response& res) { union_route(req, res, "models", "name"); });
    http.Get("/v1/models", [this](const http::Request& req, http::Response& res) { union_route(req, res, "data", "id"); });
    http.Get("/api/version", [this](const http::Request&, http::Response& res) {
        server::send_json(res, {{"version", opts.version}});
        res.replace_header("X-Hearth-Node", "router");
    });
    http.Get("/", [](const http::Request&, http::Response& res) {
        res.set_content("Hearth router is running", "text/plain; charset=utf-8");
        res.replace_header("X-Hearth-Node", "router");
    });
    http.Get("/metrics", [this](const http::Request&, http::Response& res) {
        res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
        res.replace_header("X-Hearth-Node", "router");
    });
    // The store and model-management routes act on one machine: run them against a worker.
    const auto local = [](const http::Request& req, http::Response& res) {
        server::send_error(req, res, 501,
                           req.path + " is not served by the router: run it against a worker (hearth cluster status lists them)");
        res.replace_header("X-Hearth-Node", "router");
    };
    for (const char* p : {"/api/pull", "/api/push", "/api/create", "/api/copy", "/api/drain"}) http.Post(p, local);
    http.Delete("/api/delete", local);
    http.Post("/api/blobs/(.+)", local);
}

Router::Router(RouterOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
Router::~Router() = default;

int Router::bind() {
    const auto& c = impl_->opts.http;
    if (!server::is_loopback_host(c.host) && c.api_keys.empty() && !c.allow_insecure)
        throw std::runtime_error("refusing to listen on " + c.host +
                                 " without an API key: set HEARTH_API_KEYS, or HEARTH_ALLOW_INSECURE=1 to allow it");
    impl_->port = impl_->http.bind(c.host, c.port);
    return impl_->port;
}

bool Router::listen() {
    impl_->http.run();
    return true;
}

void Router::stop() { impl_->stop(); }

int Router::port() const { return impl_->port; }

}  // namespace hearth::cluster
