// `hearth router` in process, in front of real in-process daemons on loopback (static worker
// list; the etcd membership is tested by tests/test_cluster_etcd.cpp and the cluster script):
// forwarding with identical bytes, the union routes, retries before the first byte (a dead
// worker, a worker that never answers), the inter-token watchdog, prefix affinity.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/router.h"
#include "cluster/router_policy.h"
#include "http/client.h"
#include "server/resolver.h"
#include "support/loopback_server.h"

namespace hearth {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A TCP listener that accepts and never answers: a wedged worker.
class SilentListener {
public:
    SilentListener() {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        listen(fd_, 64);
        socklen_t len = sizeof a;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    ~SilentListener() { close(fd_); }
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

class Worker {
public:
    explicit Worker(std::chrono::milliseconds token_delay = 0ms) {
        auto cfg = test::LoopbackServer::test_config();
        cfg.manager.debug_token_delay = token_delay;
        loop_.start(cfg, server::directory_resolver(loop_.models_dir()));
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(loop_.port()); }
    std::string id() const { return "127.0.0.1:" + std::to_string(loop_.port()); }
    int port() const { return loop_.port(); }
    void stop() { loop_.stop(); }

private:
    test::LoopbackServer loop_{{{"stories.gguf", "models/stories260K.gguf"}}};
};

class RouterTest : public ::testing::Test {
protected:
    void TearDown() override {
        if (router_) {
            router_->stop();
            thread_.join();
        }
    }

    void start(const std::vector<std::string>& urls, const std::function<void(cluster::RouterOptions&)>& tweak = {}) {
        cluster::RouterOptions o;
        o.http = test::LoopbackServer::test_config();
        o.static_workers = urls;
        o.probe_interval = 200ms;
        o.load_interval = 100ms;
        if (tweak) tweak(o);
        router_ = std::make_unique<cluster::Router>(o);
        port_ = router_->bind();
        thread_ = std::thread([this] { router_->listen(); });
        // The static workers' model lists arrive with their first poll.
        for (int i = 0; i < 100; ++i) {
            auto r = client().Get("/api/tags");
            if (r && r->status == 200 && json::parse(r->body)["models"].size() > 0) break;
            std::this_thread::sleep_for(50ms);
        }
    }

    http::Client client() const {
        http::Client c("127.0.0.1", port_);
        c.set_read_timeout(30, 0);
        return c;
    }
    http::Result post(const std::string& path, const json& body, const http::Headers& h = {}) {
        return client().Post(path, h, body.dump(), "application/json");
    }
    std::string metrics() {
        auto r = client().Get("/metrics");
        return r ? r->body : "";
    }

    std::unique_ptr<cluster::Router> router_;
    std::thread thread_;
    int port_ = 0;
};

const json kGenerate = {{"model", "stories"}, {"prompt", "Once upon a time"}, {"stream", false},
                        {"options", {{"temperature", 0}, {"num_predict", 12}}}};

TEST_F(RouterTest, ForwardsWithTheWorkersBytesAndNamesTheNode) {
    Worker w1, w2;
    start({w1.url(), w2.url()});
    http::Client direct("127.0.0.1", w1.port());
    auto want = direct.Post("/api/generate", kGenerate.dump(), "application/json");
    ASSERT_TRUE(want);
    const std::string want_text = json::parse(want->body)["response"];
    std::set<std::string> nodes;
    for (int i = 0; i < 4; ++i) {
        auto r = post("/api/generate", kGenerate);
        ASSERT_TRUE(r) << r.error_message();
        ASSERT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(json::parse(r->body)["response"], want_text);
        nodes.insert(r->get_header_value("X-Hearth-Node"));
    }
    for (const auto& n : nodes) EXPECT_TRUE(n == w1.id() || n == w2.id()) << n;

    // Streamed: NDJSON lines relayed as the worker wrote them, ending with done.
    json body = kGenerate;
    body["stream"] = true;
    auto s = post("/api/generate", body);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->status, 200);
    EXPECT_EQ(s->get_header_value("Content-Type"), "application/x-ndjson");
    std::string text;
    std::istringstream lines(s->body);
    json last;
    for (std::string line; std::getline(lines, line);) {
        last = json::parse(line);
        text += last.value("response", "");
    }
    EXPECT_TRUE(last["done"].get<bool>());
    EXPECT_EQ(text, want_text);

    // OpenAI streaming through the router.
    auto o = post("/v1/chat/completions", {{"model", "stories"}, {"stream", true}, {"max_tokens", 5},
                                           {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
    ASSERT_TRUE(o);
    EXPECT_EQ(o->status, 200);
    EXPECT_NE(o->body.find("data: [DONE]"), std::string::npos);

    // Errors come from the worker in the API's own shape.
    auto e = post("/v1/chat/completions", {{"model", "ghost"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 404);
    EXPECT_TRUE(json::parse(e->body)["error"].is_object()) << e->body;
}

TEST_F(RouterTest, UnionRoutesAndVersion) {
    Worker w1, w2;
    start({w1.url(), w2.url()});
    auto tags = client().Get("/api/tags");
    ASSERT_TRUE(tags);
    const json t = json::parse(tags->body);
    ASSERT_EQ(t["models"].size(), 1u) << tags->body;  // the same model on both: listed once
    EXPECT_EQ(t["models"][0]["name"], "stories:latest");
    auto models = client().Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(json::parse(models->body)["object"], "list");
    auto v = client().Get("/api/version");
    ASSERT_TRUE(v);
    EXPECT_TRUE(json::parse(v->body)["version"].is_string());
    auto pull = post("/api/pull", {{"model", "x"}});
    ASSERT_TRUE(pull);
    EXPECT_EQ(pull->status, 501);
}

TEST_F(RouterTest, RetriesADeadWorkerBeforeTheFirstByte) {
    Worker gone, w;
    start({gone.url(), w.url()}, [](cluster::RouterOptions& o) {
        o.policy = cluster::Policy::RoundRobin;
        o.probe_interval = 60s;  // after the first probes none takes the dead one out: the retries must
        o.load_interval = 60s;
        o.breaker_failures = 100;
    });
    std::this_thread::sleep_for(300ms);  // the first probes and load polls are done
    gone.stop();                         // connections to it are now refused
    for (int i = 0; i < 6; ++i) {
        auto r = post("/api/generate", kGenerate);
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(r->get_header_value("X-Hearth-Node"), w.id());
    }
    // Every attempt on the dead worker failed and was retried on the live one.
    const std::string m = metrics();
    const auto value = [&](const std::string& series) {
        const size_t at = m.find("\n" + series + " ");
        return at == std::string::npos ? -1.0 : std::stod(m.substr(at + series.size() + 2));
    };
    const double errors = value("hearth_router_errors_total{worker=\"" + gone.id() + "\"}");
    EXPECT_GE(errors, 3) << m;
    EXPECT_EQ(value("hearth_router_retries_total{worker=\"" + w.id() + "\"}"), errors) << m;
    EXPECT_EQ(value("hearth_router_failed_total"), 0) << m;
}

TEST_F(RouterTest, AWorkerThatNeverAnswersLosesTheRequestToAnother) {
    SilentListener wedged;
    Worker w;
    start({"http://127.0.0.1:" + std::to_string(wedged.port()), w.url()}, [](cluster::RouterOptions& o) {
        o.policy = cluster::Policy::RoundRobin;
        o.first_byte_timeout = 700ms;
    });
    json body = kGenerate;
    body["stream"] = true;
    for (int i = 0; i < 4; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = post("/api/generate", body);
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(r->get_header_value("X-Hearth-Node"), w.id());
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    }
}

TEST_F(RouterTest, AStalledStreamEndsWithAnErrorEvent) {
    Worker slow(3000ms);  // three seconds between engine steps
    start({slow.url()}, [](cluster::RouterOptions& o) { o.inter_token_timeout = 800ms; });
    json body = kGenerate;
    body["stream"] = true;
    auto r = post("/api/generate", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    std::istringstream lines(r->body);
    json last;
    for (std::string line; std::getline(lines, line);) last = json::parse(line);
    ASSERT_TRUE(last.contains("error")) << r->body;
    EXPECT_NE(last["error"].get<std::string>().find("stopped sending"), std::string::npos);
    EXPECT_NE(metrics().find("hearth_router_stream_errors_total 1"), std::string::npos);

    // OpenAI's stream gets an SSE error and [DONE].
    auto o = post("/v1/chat/completions", {{"model", "stories"}, {"stream", true}, {"max_tokens", 20},
                                           {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
    ASSERT_TRUE(o);
    // The stall took the worker out: either the error event, or (no worker left) a 503.
    if (o->status == 200) EXPECT_NE(o->body.find("\"error\""), std::string::npos) << o->body;
    else EXPECT_EQ(o->status, 503) << o->body;
}

TEST_F(RouterTest, ChatTurnsStayWithTheWorkerThatHasTheirPrefix) {
    Worker w1, w2, w3;
    start({w1.url(), w2.url(), w3.url()});
    std::map<int, std::set<std::string>> nodes_by_chat;
    std::map<int, json> chats;
    for (int turn = 0; turn < 3; ++turn)
        for (int c = 0; c < 6; ++c) {
            json& msgs = chats[c];
            if (msgs.is_null()) msgs = json::array({{{"role", "system"}, {"content", "You tell short stories to children."}}});
            msgs.push_back({{"role", "user"},
                            {"content", "Chat " + std::to_string(c) + " turn " + std::to_string(turn) +
                                            ": tell me about a cat who likes the rain, a dog who does not, and the"
                                            " old tree in the garden where they both sleep when the evening comes."}});
            auto r = post("/api/chat", {{"model", "stories"}, {"stream", false}, {"messages", msgs},
                                        {"options", {{"temperature", 0}, {"num_predict", 8}}}});
            ASSERT_TRUE(r);
            ASSERT_EQ(r->status, 200) << r->body;
            msgs.push_back(json::parse(r->body)["message"]);
            nodes_by_chat[c].insert(r->get_header_value("X-Hearth-Node"));
        }
    std::set<std::string> first_nodes;
    for (const auto& [c, nodes] : nodes_by_chat) {
        EXPECT_EQ(nodes.size(), 1u) << "chat " << c << " moved between workers";
        first_nodes.insert(*nodes.begin());
    }
    EXPECT_EQ(first_nodes.size(), 3u) << "new chats should spread over the idle workers";
    EXPECT_NE(metrics().find("hearth_router_decisions_total{reason=\"prefix\"} 12"), std::string::npos) << metrics();
}

// A pipeline group's record names its stage count; a plain daemon's leaves it out.
TEST(NodeRecordJson, PipelineStagesRoundTrip) {
    cluster::NodeRecord r;
    r.id = "n1";
    r.url = "http://10.0.0.1:11434";
    EXPECT_EQ(r.to_json().find("pipeline_stages"), std::string::npos);
    r.pipeline_stages = 3;
    const auto back = cluster::NodeRecord::from_json(r.to_json());
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->pipeline_stages, 3);
    EXPECT_EQ(*back, r);
}

TEST(RouterPrefix, MatchesTheLongestEarlierTextThisOneContinues) {
    cluster::PrefixIndex idx(1000, std::chrono::seconds(60));
    const std::string turn1(320, 'a');
    const auto c1 = cluster::prefix_chain(turn1, 64);
    ASSERT_EQ(c1.size(), 5u);
    idx.insert("m", c1, "w1");
    // The next turn of that conversation: w1 holds its first 5 windows.
    const std::string turn2 = turn1 + std::string(300, 'b');
    const auto c2 = cluster::prefix_chain(turn2, 64);
    auto m = idx.match("m", c2);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m["w1"], 5u);
    EXPECT_TRUE(idx.match("other-model", c2).empty());
    // Another conversation sharing only part of turn1 (a common system prompt): no match.
    EXPECT_TRUE(idx.match("m", cluster::prefix_chain(turn1.substr(0, 192) + std::string(300, 'c'), 64)).empty());
    // w2 served turn2: it holds the longer text, w1 the shorter one.
    idx.insert("m", c2, "w2");
    m = idx.match("m", cluster::prefix_chain(turn2 + std::string(200, 'd'), 64));
    EXPECT_EQ(m["w1"], 5u);
    EXPECT_EQ(m["w2"], c2.size());
    idx.forget("w1");
    m = idx.match("m", c2);
    EXPECT_EQ(m.count("w1"), 0u);
    EXPECT_EQ(m["w2"], c2.size());
    // The cap holds: old windows go first.
    cluster::PrefixIndex small(64, std::chrono::seconds(60));
    for (int i = 0; i < 50; ++i)
        small.insert("m", cluster::prefix_chain(std::string(64 * 4, char('A' + i % 50)) + std::to_string(i), 64), "w");
    EXPECT_LE(small.size(), 64u);
}

}  // namespace
}  // namespace hearth
