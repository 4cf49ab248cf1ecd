// A small etcd v3 client over etcd's JSON gateway (HTTP/1.1 + JSON, base64 keys and values,
// int64s as strings), on http::Client: leases, put/get/delete, a prefix range and a prefix
// watch. No gRPC client library is needed; etcd 3.4 (Debian's etcd-server) serves the
// gateway on its client port at /v3/... Several endpoints are tried in turn: the one that
// answered last is tried first.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::cluster {

// Every endpoint failed (transport error or 5xx), or etcd refused the call.
struct EtcdError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// A watch asked for a revision etcd has compacted away: range again, then watch from there.
struct EtcdCompacted : EtcdError {
    int64_t compact_revision = 0;
    EtcdCompacted(const std::string& what, int64_t rev) : EtcdError(what), compact_revision(rev) {}
};

// "etcd://h1:2379,h2:2379", "http://h:p,http://h2:p" or "h:p" -> {"http://h1:2379", ...}.
// Throws std::invalid_argument on an empty list or a malformed entry.
std::vector<std::string> parse_etcd_endpoints(std::string_view spec);

struct KeyValue {
    std::string key, value;
    int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

struct WatchEvent {
    enum class Type { Put, Delete } type = Type::Put;
    KeyValue kv;  // for Delete: key and mod_revision only
};

// Cancels a watch in flight from another thread.
class WatchCancel {
public:
    void cancel();
    bool cancelled() const { return cancelled_.load(); }

private:
    friend class Etcd;
    std::atomic<bool> cancelled_{false};
    std::mutex mu_;
    std::function<void()> stop_;  // stops the HTTP call of the watch in flight
};

class Etcd {
public:
    // `timeout`: connect and per-call read timeout for unary calls (the watch has none).
    explicit Etcd(std::vector<std::string> endpoints, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

    // Leases.
    int64_t grant(int64_t ttl_seconds);            // the new lease's id
    int64_t keep_alive(int64_t lease);             // the TTL left (seconds); <= 0: the lease is gone
    void revoke(int64_t lease);                    // gone already is not an error

    // Keys. Each returns the store's revision after the call.
    int64_t put(const std::string& key, const std::string& value, int64_t lease = 0);
    int64_t del(const std::string& key);
    std::optional<KeyValue> get(const std::string& key);
    struct Range {
        std::vector<KeyValue> kvs;
        int64_t revision = 0;  // the store's revision the read saw: watch from revision + 1
    };
    Range get_prefix(const std::string& prefix);

    // Watches the keys under `prefix` from `start_revision` (0: from now). Blocks, calling
    // `on_events` with each batch of events and the revision they bring the view to; returns
    // normally once `cancel` was cancelled; throws EtcdError when the stream breaks (etcd
    // gone, a response that is not a watch response) and EtcdCompacted when start_revision
    // was compacted. `on_created` (optional) runs once etcd confirmed the watch.
    void watch_prefix(const std::string& prefix, int64_t start_revision,
                      const std::function<void(const std::vector<WatchEvent>&, int64_t revision)>& on_events,
                      WatchCancel& cancel, const std::function<void()>& on_created = {});

    const std::vector<std::string>& endpoints() const { return endpoints_; }
    // The endpoint that answered last ("" before any call succeeded).
    std::string current_endpoint() const;

private:
    // POSTs `body` to `path` on each endpoint in turn (the last good one first); the parsed
    // JSON reply. Throws EtcdError naming every endpoint's failure.
    std::string call(const std::string& path, const std::string& body);
    // The same, returning any reply that is not a 5xx (status and body) instead of throwing.
    struct Reply {
        int status = 0;
        std::string body;
    };
    Reply request(const std::string& path, const std::string& body);
    size_t first_endpoint() const;  // the index to try first
    void mark_good(size_t idx);     // the endpoint at idx answered

    std::vector<std::string> endpoints_;
    std::chrono::milliseconds timeout_;
    mutable std::mutex mu_;
    size_t current_ = 0;
    bool ever_ok_ = false;
};

// Base64 (standard alphabet, padded) as the gateway's bytes fields use it.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace hearth::cluster
