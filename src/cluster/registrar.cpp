// The registrar's thread: grant, write, keep alive, rewrite on change, grant again when the
// lease was lost; revoke on stop.
#include "cluster/registrar.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace hearth::cluster {

Registrar::Registrar(RegistrarOptions opts, std::function<NodeRecord()> snapshot)
    : opts_(std::move(opts)), snapshot_(std::move(snapshot)), etcd_(opts_.endpoints, opts_.etcd_timeout) {
    if (opts_.ttl_seconds < 1) opts_.ttl_seconds = 1;
    if (opts_.node_id.empty() || opts_.node_id.find('/') != std::string::npos)
        throw std::invalid_argument("cluster: the node id '" + opts_.node_id + "' is empty or has a '/'");
    if (opts_.cluster.empty() || opts_.cluster.find('/') != std::string::npos)
        throw std::invalid_argument("cluster: the cluster name '" + opts_.cluster + "' is empty or has a '/'");
    key_ = node_key(opts_.cluster, opts_.node_id);
}

Registrar::~Registrar() { stop(); }

void Registrar::start() {
    std::lock_guard<std::mutex> lk(mu_);
    if (thread_.joinable() || stop_) return;
    thread_ = std::thread([this] { loop(); });
}

void Registrar::poke() {
    std::lock_guard<std::mutex> lk(mu_);
    poked_ = true;
    cv_.notify_all();
}

bool Registrar::registered() const {
    std::lock_guard<std::mutex> lk(mu_);
    return registered_;
}

int64_t Registrar::lease() const {
    std::lock_guard<std::mutex> lk(mu_);
    return lease_;
}

void Registrar::log_line(const std::string& text) const {
    if (opts_.log) std::fprintf(stderr, "hearth: cluster: %s\n", text.c_str());
}

void Registrar::stop() {
    std::lock_guard<std::mutex> once(stop_mu_);
    int64_t lease = 0;
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_ && !thread_.joinable()) return;
        stop_ = true;
        cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    {
        std::lock_guard<std::mutex> lk(mu_);
        lease = lease_;
        lease_ = 0;
        registered_ = false;
    }
    if (lease == 0) return;
    try {
        etcd_.revoke(lease);
        log_line("left the cluster (" + key_ + " removed)");
    } catch (const std::exception& e) {
        log_line(std::string("could not revoke the lease (the record expires with it): ") + e.what());
    }
}

void Registrar::loop() {
    using Clock = std::chrono::steady_clock;
    std::optional<NodeRecord> written;
    int64_t lease = 0;
    Clock::time_point next_keepalive = Clock::now();
    bool reachable = true, ever = false;
    const auto set_state = [&](bool ok) {
        std::lock_guard<std::mutex> lk(mu_);
        lease_ = lease;
        registered_ = ok;
    };
    for (;;) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (stop_) return;
        }
        std::optional<NodeRecord> rec;
        try {
            rec = snapshot_();
            rec->id = opts_.node_id;
        } catch (const std::exception& e) {
            log_line(std::string("cannot build the node record: ") + e.what());
        }
        bool failed = false;
        try {
            if (lease == 0) {
                lease = etcd_.grant(opts_.ttl_seconds);
                written.reset();
                next_keepalive = Clock::now() + opts_.keepalive_interval;
                set_state(false);
            }
            if (rec && (!written || *written != *rec)) {
                etcd_.put(key_, rec->to_json(), lease);
                if (ever && written && written->state != rec->state) log_line("state " + rec->state);
                written = rec;
            }
            if (Clock::now() >= next_keepalive) {
                const int64_t left = etcd_.keep_alive(lease);
                next_keepalive = Clock::now() + opts_.keepalive_interval;
                if (left <= 0) {
                    log_line("the lease expired; registering again");
                    lease = 0;
                    written.reset();
                    set_state(false);
                    continue;
                }
            }
            if (written) {
                set_state(true);
                if (!ever) log_line("registered as " + key_ + " at " + written->url + " (etcd " + etcd_.current_endpoint() + ")");
                else if (!reachable) log_line("etcd reachable again at " + etcd_.current_endpoint() + "; registered as " + key_);
                reachable = true;
                ever = true;
            }
        } catch (const EtcdError& e) {
            const std::string msg = e.what();
            set_state(false);
            if (msg.find("lease not found") != std::string::npos) {
                lease = 0;  // etcd answered: the lease is gone; grant a new one at the next turn
                written.reset();
            } else {
                failed = true;
                if (reachable) log_line(std::string("etcd unreachable, retrying: ") + msg);
                reachable = false;
            }
        }
        std::unique_lock<std::mutex> lk(mu_);
        auto until = Clock::now() + (failed ? std::max(opts_.poll_interval, std::chrono::milliseconds(500)) : opts_.poll_interval);
        if (!failed && lease != 0 && next_keepalive < until) until = next_keepalive;
        cv_.wait_until(lk, until, [&] { return stop_ || poked_; });
        poked_ = false;
    }
}

std::string local_hostname() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

std::string default_node_id(int port) { return local_hostname() + "-" + std::to_string(port); }

std::string listener_url(const std::string& host, int port) {
    std::string h = host;
    if (h.empty() || h == "0.0.0.0" || h == "::" || h == "[::]") h = local_hostname();
    else if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
    return "http://" + h + ":" + std::to_string(port);
}

std::string rfc3339_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace hearth::cluster
