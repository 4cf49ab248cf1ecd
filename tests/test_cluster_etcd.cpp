// The etcd client (cluster/etcd.h) against a real etcd started here on loopback ports (skipped
// when /usr/bin/etcd is absent: scripts/install-deps.sh installs Debian's etcd-server), the
// registrar (a record on a lease: appears, follows the state, disappears on stop, comes back
// after its lease was lost or etcd was replaced), `hearth serve --cluster` with SIGTERM
// draining and POST /api/drain, and the in-flight count a drain waits for.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/etcd.h"
#include "cluster/node.h"
#include "cluster/registrar.h"
#include "http/client.h"
#include "server/resolver.h"
#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth::cluster {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using test::TempDir;

constexpr const char* kEtcd = "/usr/bin/etcd";

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(s);
        return 0;
    }
    ::close(s);
    return ntohs(a.sin_port);
}

// Polls `pred` every 20 ms until it holds or `limit` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

// One etcd member on two free loopback ports; start() again after stop() reuses the ports
// (a fresh data dir unless `keep_data`).
class EtcdProcess {
public:
    EtcdProcess() : client_port_(free_port()), peer_port_(free_port()) {
        while (peer_port_ == client_port_) peer_port_ = free_port();
    }
    ~EtcdProcess() { stop(); }

    bool start(bool keep_data = false) {
        if (!keep_data) ++generation_;
        const std::string data = dir_.file("data" + std::to_string(generation_));
        const std::string client = url();
        const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
        const std::string log = dir_.file("etcd.log");
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            const std::string cluster = "default=" + peer;
            ::execl(kEtcd, kEtcd, "--name", "default", "--data-dir", data.c_str(), "--listen-client-urls", client.c_str(),
                    "--advertise-client-urls", client.c_str(), "--listen-peer-urls", peer.c_str(),
                    "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster", cluster.c_str(), "--log-level", "error",
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 500; ++i) {
            http::Client c(url());
            c.set_connection_timeout(500ms);
            c.set_read_timeout(1000ms);
            if (auto r = c.Get("/health"); r && r->status == 200 && r->body.find("true") != std::string::npos) return true;
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
    void stop(int sig = SIGTERM) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        for (int i = 0; i < 250; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
    std::string log() const { return slurp(dir_.file("etcd.log")); }

private:
    TempDir dir_;
    int client_port_, peer_port_;
    int generation_ = 0;
    pid_t pid_ = -1;
};

// A test with its own etcd.
class EtcdFixture : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access(kEtcd, X_OK) != 0) GTEST_SKIP() << "etcd is missing: run scripts/install-deps.sh (Debian package etcd-server)";
        ASSERT_TRUE(etcd_.start()) << etcd_.log();
    }
    EtcdProcess etcd_;
};

// ---- Without etcd

TEST(EtcdUnits, Base64RoundTripsEveryLength) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("/a/x"), "L2EveA==");
    std::string all;
    for (int i = 0; i < 256; ++i) all += char(i);
    for (size_t n = 0; n <= all.size(); n += 37) EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
    EXPECT_EQ(base64_decode("Zg"), "f");  // padding is optional
    EXPECT_FALSE(base64_decode("Z").has_value());
    EXPECT_FALSE(base64_decode("Zm9v!").has_value());
}

TEST(EtcdUnits, EndpointListsAreParsed) {
    EXPECT_EQ(parse_etcd_endpoints("etcd://h1:2379,h2:2380"), (std::vector<std::string>{"http://h1:2379", "http://h2:2380"}));
    EXPECT_EQ(parse_etcd_endpoints("http://10.0.0.1:1, 10.0.0.2"), (std::vector<std::string>{"http://10.0.0.1:1", "http://10.0.0.2:2379"}));
    EXPECT_EQ(parse_etcd_endpoints("etcd://[::1]:2379"), (std::vector<std::string>{"http://[::1]:2379"}));
    EXPECT_THROW(parse_etcd_endpoints(""), std::invalid_argument);
    EXPECT_THROW(parse_etcd_endpoints("etcd://,"), std::invalid_argument);
    EXPECT_THROW(parse_etcd_endpoints("https://h:1"), std::invalid_argument);
    EXPECT_THROW(parse_etcd_endpoints("h:99999"), std::invalid_argument);
    EXPECT_THROW(parse_etcd_endpoints("h:1/path"), std::invalid_argument);
    EXPECT_THROW(parse_etcd_endpoints(":2379"), std::invalid_argument);
}

TEST(EtcdUnits, EveryEndpointDownIsAnEtcdError) {
    Etcd etcd({"http://127.0.0.1:" + std::to_string(free_port()), "http://127.0.0.1:" + std::to_string(free_port())}, 500ms);
    EXPECT_THROW(etcd.put("/k", "v"), EtcdError);
    WatchCancel cancel;
    EXPECT_THROW(etcd.watch_prefix("/k", 0, [](const std::vector<WatchEvent>&, int64_t) {}, cancel), EtcdError);
    EXPECT_EQ(etcd.current_endpoint(), "");
}

TEST(RegistrarUnits, UrlsAndIds) {
    EXPECT_EQ(listener_url("127.0.0.1", 8080), "http://127.0.0.1:8080");
    EXPECT_EQ(listener_url("::1", 8080), "http://[::1]:8080");
    EXPECT_EQ(listener_url("0.0.0.0", 1), "http://" + local_hostname() + ":1");
    EXPECT_EQ(default_node_id(11434), local_hostname() + "-11434");
    const std::string t = rfc3339_now();
    EXPECT_EQ(t.size(), 20u);
    EXPECT_EQ(t.back(), 'Z');
}

// ---- Against etcd

TEST_F(EtcdFixture, PutGetRangeDelete) {
    Etcd etcd({etcd_.url()});
    const int64_t r1 = etcd.put("/t/a", "one");
    const int64_t r2 = etcd.put("/t/b", std::string("bin\0ary\xff", 8));
    etcd.put("/u/c", "elsewhere");
    EXPECT_GT(r2, r1);
    auto a = etcd.get("/t/a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->value, "one");
    EXPECT_EQ(a->mod_revision, r1);
    EXPECT_EQ(a->version, 1);
    EXPECT_EQ(etcd.get("/t/b")->value, std::string("bin\0ary\xff", 8));
    EXPECT_FALSE(etcd.get("/t/none"));
    const Etcd::Range range = etcd.get_prefix("/t/");
    ASSERT_EQ(range.kvs.size(), 2u);
    EXPECT_EQ(range.kvs[0].key, "/t/a");
    EXPECT_EQ(range.kvs[1].key, "/t/b");
    EXPECT_GE(range.revision, r2 + 1);
    etcd.put("/t/a", "two");
    EXPECT_EQ(etcd.get("/t/a")->version, 2);
    const int64_t rd = etcd.del("/t/a");
    EXPECT_GT(rd, r2);
    EXPECT_FALSE(etcd.get("/t/a"));
    EXPECT_EQ(etcd.get_prefix("/t/").kvs.size(), 1u);
    EXPECT_EQ(etcd.current_endpoint(), etcd_.url());
}

TEST_F(EtcdFixture, LeasesKeepKeysAliveAndExpire) {
    Etcd etcd({etcd_.url()});
    const int64_t kept = etcd.grant(2);
    const int64_t left = etcd.grant(2);
    EXPECT_NE(kept, left);
    etcd.put("/l/kept", "x", kept);
    etcd.put("/l/left", "y", left);
    EXPECT_EQ(etcd.get("/l/kept")->lease, kept);
    // Keep one alive past its TTL; the other expires, and its key with it.
    const auto start = std::chrono::steady_clock::now();
    bool left_gone = false;
    while (std::chrono::steady_clock::now() - start < 6s && !left_gone) {
        EXPECT_GT(etcd.keep_alive(kept), 0);
        left_gone = !etcd.get("/l/left");
        std::this_thread::sleep_for(300ms);
    }
    EXPECT_TRUE(left_gone) << "the lease without keep-alive did not expire";
    EXPECT_GE(std::chrono::steady_clock::now() - start, 1500ms);
    EXPECT_TRUE(etcd.get("/l/kept"));
    EXPECT_LE(etcd.keep_alive(left), 0);  // gone
    // Revoking deletes the key at once; revoking again is no error.
    etcd.revoke(kept);
    EXPECT_FALSE(etcd.get("/l/kept"));
    EXPECT_NO_THROW(etcd.revoke(kept));
    EXPECT_LE(etcd.keep_alive(kept), 0);
    EXPECT_THROW(etcd.put("/l/x", "z", kept), EtcdError);  // "requested lease not found"
}

TEST_F(EtcdFixture, WatchSeesPutsAndDeletesAndStopsOnCancel) {
    Etcd etcd({etcd_.url()});
    etcd.put("/w/before", "old");
    const int64_t from = etcd.get_prefix("/w/").revision + 1;
    std::mutex mu;
    std::vector<WatchEvent> seen;
    int64_t last_rev = 0;
    WatchCancel cancel;
    std::atomic<bool> created{false}, returned{false};
    std::string error;
    std::thread t([&] {
        try {
            etcd.watch_prefix(
                "/w/", from,
                [&](const std::vector<WatchEvent>& evs, int64_t rev) {
                    std::lock_guard<std::mutex> lk(mu);
                    seen.insert(seen.end(), evs.begin(), evs.end());
                    last_rev = rev;
                },
                cancel, [&] { created = true; });
        } catch (const std::exception& e) {
            error = e.what();
        }
        returned = true;
    });
    ASSERT_TRUE(eventually([&] { return created.load(); }, 5s));
    const int64_t rp = etcd.put("/w/a", "1");
    etcd.put("/elsewhere", "ignored");
    const int64_t rd = etcd.del("/w/before");
    ASSERT_TRUE(eventually(
        [&] {
            std::lock_guard<std::mutex> lk(mu);
            return seen.size() >= 2;
        },
        5s));
    {
        std::lock_guard<std::mutex> lk(mu);
        ASSERT_EQ(seen.size(), 2u);
        EXPECT_EQ(seen[0].type, WatchEvent::Type::Put);
        EXPECT_EQ(seen[0].kv.key, "/w/a");
        EXPECT_EQ(seen[0].kv.value, "1");
        EXPECT_EQ(seen[0].kv.mod_revision, rp);
        EXPECT_EQ(seen[1].type, WatchEvent::Type::Delete);
        EXPECT_EQ(seen[1].kv.key, "/w/before");
        EXPECT_EQ(last_rev, rd);
    }
    const auto t0 = std::chrono::steady_clock::now();
    cancel.cancel();
    ASSERT_TRUE(eventually([&] { return returned.load(); }, 3s));
    t.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_EQ(error, "");  // a cancel returns normally
    // A cancel before the watch starts: it returns at once.
    WatchCancel early;
    early.cancel();
    EXPECT_NO_THROW(etcd.watch_prefix("/w/", 0, [](const std::vector<WatchEvent>&, int64_t) {}, early));
}

TEST_F(EtcdFixture, WatchFromACompactedRevisionThrowsEtcdCompacted) {
    Etcd etcd({etcd_.url()});
    for (int i = 0; i < 5; ++i) etcd.put("/c/k", std::to_string(i));
    const int64_t rev = etcd.get_prefix("/c/").revision;
    http::Client c(etcd_.url());
    auto r = c.Post("/v3/kv/compaction", json{{"revision", std::to_string(rev)}}.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    WatchCancel cancel;
    try {
        etcd.watch_prefix("/c/", 2, [](const std::vector<WatchEvent>&, int64_t) {}, cancel);
        FAIL() << "no EtcdCompacted";
    } catch (const EtcdCompacted& e) {
        EXPECT_EQ(e.compact_revision, rev);
    }
}

TEST_F(EtcdFixture, ADeadEndpointFirstFailsOverToTheLiveOne) {
    const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
    Etcd etcd({dead, etcd_.url()}, 1000ms);
    etcd.put("/f/k", "v");
    EXPECT_EQ(etcd.current_endpoint(), etcd_.url());
    EXPECT_EQ(etcd.get("/f/k")->value, "v");
    // The live one is tried first from now on; a watch goes there too.
    WatchCancel cancel;
    std::atomic<bool> got{false};
    std::thread t([&] {
        try {
            etcd.watch_prefix("/f/", 0, [&](const std::vector<WatchEvent>&, int64_t) { got = true; }, cancel);
        } catch (const std::exception&) {
        }
    });
    std::this_thread::sleep_for(200ms);
    etcd.put("/f/k", "w");
    EXPECT_TRUE(eventually([&] { return got.load(); }, 5s));
    cancel.cancel();
    t.join();
    // The live one dies: calls fail with the failures of both named.
    etcd_.stop();
    try {
        etcd.put("/f/k", "x");
        FAIL() << "no EtcdError";
    } catch (const EtcdError& e) {
        EXPECT_NE(std::string(e.what()).find(dead), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(etcd_.url()), std::string::npos) << e.what();
    }
}

// ---- The registrar

struct FakeNode {
    std::mutex mu;
    NodeRecord rec;
    NodeRecord get() {
        std::lock_guard<std::mutex> lk(mu);
        return rec;
    }
    template <class Fn>
    void change(Fn fn) {
        std::lock_guard<std::mutex> lk(mu);
        fn(rec);
    }
};

class RegistrarFixture : public EtcdFixture {
protected:
    std::unique_ptr<Registrar> make(int64_t ttl = 5) {
        node_.rec.url = "http://127.0.0.1:1234";
        node_.rec.version = "9.9.9";
        node_.rec.models = {"a:latest", "b:latest"};
        node_.rec.parallel = 4;
        node_.rec.started_at = rfc3339_now();
        RegistrarOptions o;
        o.endpoints = {"http://127.0.0.1:" + std::to_string(free_port()), etcd_.url()};  // a dead one first
        o.cluster = "test";
        o.node_id = "n1";
        o.ttl_seconds = ttl;
        o.keepalive_interval = std::chrono::milliseconds(ttl * 300);
        o.etcd_timeout = 500ms;
        o.log = false;
        return std::make_unique<Registrar>(o, [this] { return node_.get(); });
    }
    std::optional<NodeRecord> read() {
        Etcd etcd({etcd_.url()});
        try {
            if (auto kv = etcd.get(node_key("test", "n1"))) return NodeRecord::from_json(kv->value);
        } catch (const EtcdError&) {
        }
        return std::nullopt;
    }
    FakeNode node_;
};

TEST_F(RegistrarFixture, RecordAppearsFollowsChangesAndGoesOnStop) {
    auto reg = make();
    reg->start();
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 3s));
    NodeRecord r = *read();
    EXPECT_EQ(r.id, "n1");
    EXPECT_EQ(r.url, "http://127.0.0.1:1234");
    EXPECT_EQ(r.state, "ready");
    EXPECT_EQ(r.models, (std::vector<std::string>{"a:latest", "b:latest"}));
    EXPECT_EQ(r.parallel, 4);
    EXPECT_TRUE(reg->registered());
    Etcd etcd({etcd_.url()});
    EXPECT_EQ(etcd.get(node_key("test", "n1"))->lease, reg->lease());

    node_.change([](NodeRecord& n) { n.models_loaded = {"a:latest"}; });
    EXPECT_TRUE(eventually([&] { return read() && read()->models_loaded == std::vector<std::string>{"a:latest"}; }, 2s));
    const auto t0 = std::chrono::steady_clock::now();
    node_.change([](NodeRecord& n) { n.state = "draining"; });
    reg->poke();
    EXPECT_TRUE(eventually([&] { return read() && read()->state == "draining"; }, 2s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);  // poke writes at once

    reg->stop();
    EXPECT_FALSE(read().has_value()) << "the record outlived stop()";
    EXPECT_FALSE(reg->registered());
}

TEST_F(RegistrarFixture, AliveBeyondTheTtlAndBackAfterTheLeaseIsLost) {
    auto reg = make(2);
    reg->start();
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 3s));
    std::this_thread::sleep_for(3s);  // longer than the TTL: kept alive
    ASSERT_TRUE(read().has_value());
    // The lease disappears behind its back (as when etcd lost it): a new one, the record again.
    const int64_t old = reg->lease();
    Etcd({etcd_.url()}).revoke(old);
    EXPECT_FALSE(read().has_value());
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 4s));
    EXPECT_NE(reg->lease(), old);
    reg->stop();
    EXPECT_FALSE(read().has_value());
}

TEST_F(RegistrarFixture, ComesBackWhenEtcdReturnsAfterTheLeaseExpired) {
    auto reg = make(2);
    reg->start();
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 3s));
    etcd_.stop(SIGKILL);
    std::this_thread::sleep_for(3s);  // past the TTL
    EXPECT_FALSE(reg->registered());
    ASSERT_TRUE(etcd_.start());  // a new etcd (empty data) on the same ports
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 5s)) << "the record did not come back";
    EXPECT_TRUE(eventually([&] { return reg->registered(); }, 2s));
    EXPECT_EQ(read()->state, "ready");
    reg->stop();
    EXPECT_FALSE(read().has_value());
}

// ---- The daemon: `hearth serve --cluster`, drain, and the in-flight count

pid_t spawn_hearth(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const std::string& err_file) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        for (const char* v : {"HEARTH_API_KEY", "HEARTH_API_KEYS", "HEARTH_CLUSTER", "HEARTH_NODE_ID", "HEARTH_ADVERTISE"}) ::unsetenv(v);
        for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(err, 2);
        std::vector<std::string> copy = args;
        std::string bin = HEARTH_BINARY;
        std::vector<char*> argv{bin.data()};
        for (std::string& a : copy) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(bin.c_str(), argv.data());
        ::_exit(127);
    }
    return pid;
}

// The exit status, or -2 when it was still running after `limit` (then killed).
int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    int st = 0;
    while (std::chrono::steady_clock::now() < end) {
        if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    return -2;
}

class RegistrarDaemon : public EtcdFixture {
protected:
    void SetUp() override {
        EtcdFixture::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ::symlink(test::shared_path("models/stories260K.gguf").c_str(), dir_.file("stories260K.gguf").c_str());
        port_ = free_port();
        pid_ = spawn_hearth({"serve", "--models-dir", dir_.path().string(), "--cluster", "etcd://" + etcd_.url().substr(7),
                             "--cluster-name", "dc", "--node-id", "w1"},
                            {{"HEARTH_HOST", "127.0.0.1:" + std::to_string(port_)}, {"HEARTH_MODELS", dir_.file("store")},
                             {"HEARTH_DEBUG_TOKEN_DELAY", "20"}},  // ms per step, where the daemon knows it: streams last
                            dir_.file("serve.err"));
    }
    void TearDown() override {
        if (pid_ > 0) wait_exit(pid_, 0ms);
    }
    std::optional<NodeRecord> read() {
        try {
            if (auto kv = Etcd({etcd_.url()}).get(node_key("dc", "w1"))) return NodeRecord::from_json(kv->value);
        } catch (const EtcdError&) {
        }
        return std::nullopt;
    }
    std::string err() const { return slurp(dir_.file("serve.err")); }
    TempDir dir_;
    int port_ = 0;
    pid_t pid_ = -1;
};

TEST_F(RegistrarDaemon, RegistersFollowsLoadedModelsAndDrainsOnSigterm) {
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 10s)) << err();
    NodeRecord r = *read();
    EXPECT_EQ(r.url, "http://127.0.0.1:" + std::to_string(port_));
    EXPECT_EQ(r.state, "ready");
    EXPECT_EQ(r.models, std::vector<std::string>{"stories260K:latest"});  // as /api/tags lists a --models-dir file
    EXPECT_TRUE(r.models_loaded.empty());
    EXPECT_EQ(r.parallel, 4);
    EXPECT_GT(r.free_memory, 0u);
    EXPECT_FALSE(r.started_at.empty());

    http::Client c("127.0.0.1", port_);
    c.set_read_timeout(30s);
    auto g = c.Post("/api/generate",
                    json{{"model", "stories260K"}, {"prompt", "Once"}, {"stream", false}, {"options", {{"num_predict", 4}}}}.dump(),
                    "application/json");
    ASSERT_TRUE(g);
    ASSERT_EQ(g->status, 200) << g->body;
    EXPECT_TRUE(eventually([&] { return read() && read()->models_loaded == std::vector<std::string>{"stories260K:latest"}; }, 3s))
        << (read() ? read()->to_json() : "");
    EXPECT_LT(read()->free_memory, r.free_memory);
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("hearth_node_draining 0"), std::string::npos);
    EXPECT_NE(m->body.find("vllm:num_requests_running{model_name=\"stories260K\"} 0"), std::string::npos) << m->body;

    // A stream in flight while SIGTERM arrives still ends with done.
    std::mutex smu;
    std::string streamed;
    std::thread reader([&] {
        http::Client s("127.0.0.1", port_);
        s.set_read_timeout(30s);
        const http::Receiver rx = [&](const char* d, size_t n) {
            std::lock_guard<std::mutex> lk(smu);
            streamed.append(d, n);
            return true;
        };
        s.Post("/api/generate", {},
               json{{"model", "stories260K"}, {"prompt", "Once upon"}, {"options", {{"num_predict", 60}}}}.dump(),
               "application/json", rx);
    });
    ASSERT_TRUE(eventually(
        [&] {
            std::lock_guard<std::mutex> lk(smu);
            return streamed.find("\"response\"") != std::string::npos;
        },
        5s));
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(pid_, SIGTERM);
    // The record says draining while the stream goes on (when the stream lasts long enough to see it).
    bool saw_draining = false;
    while (!saw_draining && std::chrono::steady_clock::now() - t0 < 2s) {
        const auto rec = read();
        if (!rec) break;
        saw_draining = rec->state == "draining";
    }
    reader.join();
    const auto stream_time = std::chrono::steady_clock::now() - t0;
    EXPECT_NE(streamed.find("\"done\":true"), std::string::npos) << streamed.substr(0, 300);
    if (stream_time > 500ms) {
        EXPECT_TRUE(saw_draining);
    }
    EXPECT_EQ(wait_exit(pid_, 15s), 0) << err();
    pid_ = -1;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    EXPECT_FALSE(read().has_value()) << "the record outlived the daemon";
    EXPECT_NE(err().find("hearth: cluster: registered as /hearth/v1/dc/nodes/w1"), std::string::npos) << err();
    EXPECT_NE(err().find("hearth: draining"), std::string::npos) << err();
}

TEST_F(RegistrarDaemon, ApiDrainSaysDrainingThenLeaves) {
    // Generous bounds: etcd's writes (fsync) can take seconds on a loaded machine.
    ASSERT_TRUE(eventually([&] { return read().has_value(); }, 30s)) << err();
    http::Client c("127.0.0.1", port_);
    auto d = c.Post("/api/drain", "{}", "application/json");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->status, 200) << d->body;
    EXPECT_EQ(json::parse(d->body).value("status", ""), "draining");
    EXPECT_EQ(wait_exit(pid_, 30s), 0) << err();
    pid_ = -1;
    EXPECT_FALSE(read().has_value());
}

// In-process: the count a drain waits for, and the route's flag.
TEST(RegistrarDrain, InFlightCountsRequestsUntilTheirReplyIsHandedOver) {
    test::LoopbackServer loop(std::vector<std::pair<std::string, std::string>>{{"stories260K.gguf", "models/stories260K.gguf"}});
    server::ServerConfig cfg = test::LoopbackServer::test_config();
    cfg.manager.debug_token_delay = std::chrono::microseconds(20'000);
    loop.start(cfg, server::directory_resolver(loop.models_dir()));
    server::Server& srv = loop.server();
    EXPECT_EQ(srv.in_flight(), 0u);
    std::atomic<bool> drained{false};
    srv.set_drain_handler([&] { drained = true; });
    std::thread t([&] {
        auto c = loop.client();
        c.Post("/api/generate", json{{"model", "stories260K.gguf"}, {"prompt", "Once"}, {"options", {{"num_predict", 30}}}}.dump(),
               "application/json");
    });
    EXPECT_TRUE(eventually([&] { return srv.in_flight() == 1; }, 5s));
    auto c = loop.client();
    auto d = c.Post("/api/drain", "{}", "application/json");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->status, 200);
    EXPECT_TRUE(drained);
    EXPECT_TRUE(srv.draining());
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("hearth_node_draining 1"), std::string::npos);
    // Still served while draining.
    auto g = c.Post("/api/generate",
                    json{{"model", "stories260K.gguf"}, {"prompt", "Once"}, {"stream", false}, {"options", {{"num_predict", 2}}}}.dump(),
                    "application/json");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, 200);
    t.join();
    EXPECT_TRUE(eventually([&] { return srv.in_flight() == 0; }, 2s));
    EXPECT_FALSE(srv.begin_drain());  // once
}

TEST(RegistrarDrain, TheRouteNeedsTheApiKeyWhenKeysAreSet) {
    test::LoopbackServer loop(std::vector<std::pair<std::string, std::string>>{});
    server::ServerConfig cfg = test::LoopbackServer::test_config();
    cfg.api_keys = {"sesame"};
    loop.start(cfg, server::directory_resolver(loop.models_dir()));
    auto c = loop.client();
    auto denied = c.Post("/api/drain", "{}", "application/json");
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 401);
    EXPECT_FALSE(loop.server().draining());
    auto ok = c.Post("/api/drain", {{"Authorization", "Bearer sesame"}}, "{}", "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    EXPECT_TRUE(loop.server().draining());
}

}  // namespace
}  // namespace hearth::cluster
