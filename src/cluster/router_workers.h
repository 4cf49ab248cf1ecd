// The router's view of its workers: who they are (from etcd's node records or a static
// list), what they can serve, how loaded they are (the router's in-flight count plus the
// queue each worker reports in /metrics, polled every 250 ms), and whether they are healthy
// (an active probe of /api/version every 2 s and a circuit breaker fed by request outcomes).
// Each worker has a small prober thread; every read here is cheap and thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/node.h"
#include "cluster/router.h"
#include "http/client.h"

namespace hearth::cluster {

enum class Breaker { Closed, Open, HalfOpen };
const char* to_string(Breaker b);

class Worker : public std::enable_shared_from_this<Worker> {
public:
    using Clock = std::chrono::steady_clock;
    // Shares the options: its prober thread may outlive the router by a probe's timeout.
    Worker(NodeRecord rec, bool from_etcd, std::shared_ptr<const RouterOptions> opts);
    // The prober thread (detached; it holds the worker until it ends), and its end. A probe in
    // flight finishes first (at most a probe timeout).
    void start();
    void stop();
    // Waits (bounded) until every prober of the process has ended (shutdown).
    static void join_all(std::chrono::milliseconds limit);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    const std::string& id() const { return id_; }
    const std::string& url() const { return url_; }
    const std::string& host() const { return host_; }
    int port() const { return port_; }
    bool from_etcd() const { return from_etcd_; }

    NodeRecord record() const;
    void set_record(NodeRecord rec);
    bool draining() const;
    int parallel() const;  // sequences it decodes together per model (0: not known)
    bool serves(const std::string& key) const;  // loaded or in its store
    bool loaded(const std::string& key) const;
    // Whole-set view for the union routes and /metrics.
    std::vector<std::string> model_names() const;

    // Eligible for a new request now: not draining, probe up, breaker closed (or half-open
    // with its one trial free, which this call then takes).
    bool take_slot();
    bool healthy() const;  // probe up and breaker not open (no trial taken)

    // Load = the router's requests in flight here + the worker's waiting queue.
    double load() const { return double(inflight.load()) + double(waiting.load()); }

    // Request outcomes (the proxy): feed the breaker.
    void on_success();
    void on_failure();
    // A stream stalled on this worker: out of rotation until a probe answers again.
    void trip();

    Breaker breaker() const;
    bool probe_up() const { return probe_up_.load(); }

    std::atomic<int64_t> inflight{0};
    std::atomic<int64_t> waiting{0}, running{0};  // from the worker's /metrics
    std::atomic<uint64_t> requests{0}, errors{0}, retries{0}, stalls{0};

private:
    void probe_loop();
    http::Client client() const;
    bool probe_version();
    bool poll_metrics();  // false: no answer
    void poll_models();  // static workers: /api/tags and /api/ps
    void probe_result(bool ok);

    std::shared_ptr<const RouterOptions> opts_holder_;
    const RouterOptions& opts_;
    std::string id_, url_, host_;
    int port_ = 0;
    bool from_etcd_;

    mutable std::mutex mu_;
    NodeRecord rec_;
    std::set<std::string> loaded_keys_, model_keys_;
    Breaker breaker_ = Breaker::Closed;
    int failures_ = 0;
    bool trial_taken_ = false;
    Clock::time_point open_until_{};

    std::atomic<bool> probe_up_{true};
    int probe_failures_ = 0;  // prober thread only

    std::mutex stop_mu_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;
};

// The set of workers, replaced and updated by the membership source.
class WorkerSet {
public:
    explicit WorkerSet(std::shared_ptr<const RouterOptions> opts) : opts_(std::move(opts)) {}
    std::vector<std::shared_ptr<Worker>> snapshot() const;
    std::shared_ptr<Worker> find(const std::string& id) const;
    // Adds or updates (a record with a new URL replaces the worker).
    void upsert(const NodeRecord& rec, bool from_etcd);
    void remove(const std::string& id);
    // Keeps exactly these etcd workers (etcd's view after a range read); static ones stay.
    void replace_all(const std::vector<NodeRecord>& recs);
    // The worker's record left etcd (lease expired or revoked). One that fails its probe goes
    // at once; one that still answers (etcd revoking leases as it comes back from a stall)
    // stays until lease_grace has passed without its record returning.
    void record_gone(const std::string& id);
    void sweep();  // removes the workers whose grace ran out
    size_t size() const;

private:
    std::shared_ptr<const RouterOptions> opts_;
    std::map<std::string, std::chrono::steady_clock::time_point> gone_since_;  // mu_
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Worker>> workers_;
};

// "http://host:port[/...]" -> host, port. False when malformed.
bool split_url(const std::string& url, std::string& host, int& port);

}  // namespace hearth::cluster
