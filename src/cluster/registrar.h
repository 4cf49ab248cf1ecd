// A daemon's registration in a cluster (`hearth serve --cluster ...`): its NodeRecord under
// node_key(cluster, id) on an etcd lease (TTL 5 s, kept alive every 1.5 s). A thread polls the
// record the daemon would write now (every 250 ms, cheap: loaded models, listed models,
// state) and rewrites it when it differs from the one last written; a lease found gone (etcd
// was away longer than the TTL) is granted again and the record rewritten. stop() revokes the
// lease, so the record disappears at once. Lines on stderr start with `hearth: cluster:`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd.h"
#include "cluster/node.h"

namespace hearth::cluster {

struct RegistrarOptions {
    std::vector<std::string> endpoints;  // parse_etcd_endpoints() of --cluster
    std::string cluster = "default";
    std::string node_id;                 // required; the record's id is set to it
    int64_t ttl_seconds = 5;
    std::chrono::milliseconds keepalive_interval{1500};
    std::chrono::milliseconds poll_interval{250};
    std::chrono::milliseconds etcd_timeout{1000};  // per call and endpoint
    bool log = true;                               // the `hearth: cluster:` lines on stderr
};

class Registrar {
public:
    // `snapshot` gives the record as it should read now (called on the registrar's thread,
    // every poll interval: keep it cheap); its id is replaced by opts.node_id. Throws
    // std::invalid_argument when the node id is empty or has a '/'.
    Registrar(RegistrarOptions opts, std::function<NodeRecord()> snapshot);
    ~Registrar();  // stop()
    Registrar(const Registrar&) = delete;
    Registrar& operator=(const Registrar&) = delete;

    void start();
    // Compare and write at once instead of at the next poll (e.g. the state became draining).
    void poke();
    // Ends the thread and revokes the lease (the record disappears). Idempotent.
    void stop();

    // True while the last write and keep-alive succeeded on a live lease.
    bool registered() const;
    int64_t lease() const;
    std::string key() const { return key_; }

private:
    void loop();
    void log_line(const std::string& text) const;

    RegistrarOptions opts_;
    std::function<NodeRecord()> snapshot_;
    Etcd etcd_;
    std::string key_;

    std::mutex stop_mu_;  // one stop() at a time
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, poked_ = false, registered_ = false;
    int64_t lease_ = 0;
    std::thread thread_;
};

// The host name of this machine ("localhost" when unknown).
std::string local_hostname();
// The default node id: <hostname>-<port>.
std::string default_node_id(int port);
// The URL peers reach a listener at: http://<host>:<port>, the host name of this machine for a
// wildcard bind (0.0.0.0, ::), IPv6 literals bracketed.
std::string listener_url(const std::string& host, int port);
// Now as RFC 3339 in UTC with seconds ("2025-01-31T12:00:00Z").
std::string rfc3339_now();

}  // namespace hearth::cluster
