// Models moving between stores over the OCI protocol, end to end: push to and pull from
// Debian's docker-registry (the reference registry, started here on loopback), and one
// in-process daemon pulling from another through /api/pull and the /v2 routes, then running
// the pulled model. Also the /v2 routes' answers and /api/pull|push errors.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "server/store_resolver.h"
#include "store/registry_client.h"
#include "support/loopback_server.h"
#include "support/paths.h"
#include "support/registry_fixture.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using store::Digest;
using store::ModelName;
using store::RegistryClient;
using store::RegistryOptions;
using store::RegistryProgress;
using store::Store;
using test::TempDir;

const std::vector<std::pair<std::string, std::string>> kNoModels;

int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(s);
        return 0;
    }
    ::close(s);
    return ntohs(a.sin_port);
}

// /usr/bin/docker-registry on a free loopback port, storing into a temp dir; stopped (and
// reaped) when the object goes away.
class DockerRegistry {
public:
    static constexpr const char* kBinary = "/usr/bin/docker-registry";

    bool start() {
        port_ = free_port();
        const std::string config = dir_.file("config.yml");
        std::ofstream(config) << "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                              << "storage:\n  filesystem:\n    rootdirectory: " << dir_.file("data") << "\n"
                              << "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                              << "http:\n  addr: 127.0.0.1:" << port_ << "\n";
        const std::string log = dir_.file("registry.log");
        pid_ = ::fork();
        if (pid_ == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execl(kBinary, kBinary, "serve", config.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        http::Client c("127.0.0.1", port_);
        for (int i = 0; i < 200; ++i) {
            if (auto r = c.Get("/v2/"); r && r->status == 200) return true;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }
    ~DockerRegistry() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return test::slurp(dir_.file("registry.log")); }

private:
    TempDir dir_;
    pid_t pid_ = -1;
    int port_ = 0;
};

TEST(RegistryDocker, PushThenPullRoundTripsAModel) {
    ASSERT_EQ(::access(DockerRegistry::kBinary, X_OK), 0)
        << "docker-registry is missing: run scripts/install-deps.sh (Debian package docker-registry)";
    DockerRegistry reg;
    ASSERT_TRUE(reg.start()) << reg.log();
    const std::string name = reg.host() + "/library/stories:latest";

    TempDir a_dir, b_dir, c_dir;
    Store a(a_dir.path()), b(b_dir.path()), c(c_dir.path());
    const Digest id = test::add_stories_model(a, name);
    RegistryOptions o;
    o.insecure = true;
    o.upload_chunk = 300 << 10;  // the model layer goes up in four PATCHes

    std::vector<RegistryProgress> events;
    EXPECT_EQ(RegistryClient(a, o).push(ModelName::parse(name), [&](const RegistryProgress& p) { events.push_back(p); }),
              id)
        << reg.log();
    ASSERT_GE(events.size(), 4u);
    EXPECT_EQ(events.front().status, "retrieving manifest");
    EXPECT_EQ(events[events.size() - 2].status, "pushing manifest");
    EXPECT_EQ(events.back().status, "success");
    const store::Manifest m = a.read_manifest(ModelName::parse(name));
    const Digest model = m.layers[0].digest;
    bool pushed_model = false;
    for (const auto& e : events)
        if (e.status == "pushing " + model.short_id() && e.completed == e.total && e.total == m.layers[0].size)
            pushed_model = true;
    EXPECT_TRUE(pushed_model);

    // The registry serves back exactly the manifest bytes we pushed.
    http::Client client("127.0.0.1", std::stoi(reg.host().substr(10)));
    auto r = client.Get("/v2/library/stories/manifests/latest",
                      {{"Accept", std::string(store::media_type::kManifest)}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, a.read_manifest_bytes(ModelName::parse(name)));
    EXPECT_EQ(r->get_header_value("Docker-Content-Digest"), id.str());

    // Pulled into an empty store: the same manifest bytes and blobs.
    const store::PullResult pulled = RegistryClient(b, o).pull(ModelName::parse(name));
    EXPECT_EQ(pulled.manifest_digest, id);
    EXPECT_EQ(b.read_manifest_bytes(ModelName::parse(name)), a.read_manifest_bytes(ModelName::parse(name)));
    for (const Digest& d : m.digests()) {
        EXPECT_TRUE(b.verify_blob(d)) << d.str();
        EXPECT_EQ(b.blob_size(d), a.blob_size(d));
    }
    EXPECT_EQ(test::visible_files(a_dir.path()), test::visible_files(b_dir.path()));

    // In parallel parts (the registry answers ranges) into a third store.
    RegistryOptions parts = o;
    parts.parallel_threshold = 64 << 10;
    parts.min_part_size = 256 << 10;
    EXPECT_EQ(RegistryClient(c, parts).pull(ModelName::parse(name)).manifest_digest, id);
    EXPECT_TRUE(c.verify_blob(model));

    // A second push finds every blob there already: no upload, same manifest.
    events.clear();
    EXPECT_EQ(RegistryClient(b, o).push(ModelName::parse(name), [&](const RegistryProgress& p) { events.push_back(p); }), id);
    for (const auto& e : events) {
        if (!e.digest.empty()) {
            EXPECT_EQ(e.completed, e.total) << e.status;
        }
    }
}

// ---- Two daemons: B pulls from A's /v2 routes.

class RegistryDaemon : public ::testing::Test {
protected:
    TempDir a_root, b_root;
    test::LoopbackServer a{kNoModels}, b{kNoModels};
    std::unique_ptr<Store> b_store = std::make_unique<Store>(b_root.path());
    Digest id;

    void SetUp() override {
        ServerConfig ca = test::LoopbackServer::test_config();
        ca.models_root = a_root.path().string();
        a.start(ca, directory_resolver(""));
        id = test::add_stories_model(*a.server().store(), "stories");
        ServerConfig cb = test::LoopbackServer::test_config();
        cb.models_root = b_root.path().string();
        b.start(cb, store_resolver(*b_store, ""));
    }
    std::string a_name() const { return "127.0.0.1:" + std::to_string(a.port()) + "/library/stories:latest"; }

    // POSTs `body` and returns the NDJSON lines (status in *status).
    std::vector<json> post_lines(test::LoopbackServer& srv, const std::string& path, const json& body, int* status) {
        auto r = srv.client().Post(path, body.dump(), "application/json");
        std::vector<json> out;
        if (!r) {
            *status = -1;
            return out;
        }
        *status = r->status;
        size_t start = 0;
        while (start < r->body.size()) {
            size_t nl = r->body.find('\n', start);
            if (nl == std::string::npos) nl = r->body.size();
            if (nl > start) out.push_back(json::parse(r->body.substr(start, nl - start)));
            start = nl + 1;
        }
        return out;
    }
};

TEST_F(RegistryDaemon, PullsFromAnotherHearthAndRunsTheModel) {
    int status = 0;
    const auto lines = post_lines(b, "/api/pull", {{"model", a_name()}, {"insecure", true}}, &status);
    ASSERT_EQ(status, 200);
    ASSERT_GE(lines.size(), 5u);
    EXPECT_EQ(lines.front(), json({{"status", "pulling manifest"}}));
    EXPECT_EQ(lines[lines.size() - 3], json({{"status", "verifying sha256 digest"}}));
    EXPECT_EQ(lines[lines.size() - 2], json({{"status", "writing manifest"}}));
    EXPECT_EQ(lines.back(), json({{"status", "success"}}));
    const store::Manifest m = a.server().store()->read_manifest(ModelName::parse("stories"));
    std::set<std::string> digests_seen;
    for (const json& l : lines) {
        if (!l.contains("digest")) continue;
        const std::string d = l["digest"];
        EXPECT_EQ(l["status"], "pulling " + d.substr(7, 12));
        EXPECT_LE(l["completed"].get<uint64_t>(), l["total"].get<uint64_t>());
        digests_seen.insert(d);
    }
    EXPECT_EQ(digests_seen.size(), m.digests().size());

    const ModelName pulled = ModelName::parse(a_name());
    EXPECT_EQ(Digest::of(b_store->read_manifest_bytes(pulled)), id);
    for (const Digest& d : m.digests()) EXPECT_TRUE(b_store->verify_blob(d)) << d.str();

    // B runs it.
    auto r = b.client().Post("/api/generate",
                             json({{"model", a_name()},
                                   {"prompt", "Once upon a time"},
                                   {"stream", false},
                                   {"options", {{"num_predict", 8}, {"temperature", 0}}}})
                                 .dump(),
                             "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_FALSE(json::parse(r->body)["response"].get<std::string>().empty());

    // stream:false, pulled again: one object.
    auto again = b.client().Post("/api/pull", json({{"name", a_name()}, {"insecure", true}, {"stream", false}}).dump(),
                                 "application/json");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    EXPECT_EQ(json::parse(again->body), json({{"status", "success"}}));
}

TEST_F(RegistryDaemon, PullAndPushErrors) {
    const auto before = test::visible_files(b_root.path(), true);
    auto post = [&](const json& body, const char* path = "/api/pull") {
        return b.client().Post(path, body.dump(), "application/json");
    };
    for (const char* bad : {"../../etc/passwd", "a/b/c/d", "x:../y", "127.0.0.1:1/../x"}) {
        auto r = post({{"model", bad}, {"insecure", true}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << bad;
        EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("invalid model name"), std::string::npos);
    }
    auto r = post(json::object());
    EXPECT_EQ(r->status, 400);
    r = post({{"model", "x"}, {"stream", "yes"}});
    EXPECT_EQ(r->status, 400);
    // Unknown on the registry: 404 (stream:false), or a final error line when streaming.
    const std::string missing = "127.0.0.1:" + std::to_string(a.port()) + "/library/nothing:latest";
    r = post({{"model", missing}, {"insecure", true}, {"stream", false}});
    EXPECT_EQ(r->status, 404) << r->body;
    EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("manifest unknown"), std::string::npos) << r->body;
    int status = 0;
    auto lines = post_lines(b, "/api/pull", {{"model", missing}, {"insecure", true}}, &status);
    EXPECT_EQ(status, 200);
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(lines.back().contains("error")) << lines.back();
    EXPECT_EQ(test::visible_files(b_root.path(), true), before);

    // Push: a model that is not there is a 404; A's registry is read-only (405 from A).
    r = post({{"model", "127.0.0.1:1/library/none"}}, "/api/push");
    EXPECT_EQ(r->status, 404);
    test::add_stories_model(*a.server().store(), a_name());
    r = a.client().Post("/api/push", json({{"model", a_name()}, {"insecure", true}, {"stream", false}}).dump(),
                        "application/json");
    EXPECT_EQ(r->status, 500);
    EXPECT_NE(r->body.find("read-only"), std::string::npos) << r->body;

    // No store configured: 500.
    test::LoopbackServer none{kNoModels};
    none.start(test::LoopbackServer::test_config(), directory_resolver(""));
    r = none.client().Post("/api/pull", json({{"model", "x"}}).dump(), "application/json");
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(json::parse(r->body)["error"], "no model store configured");
}

TEST_F(RegistryDaemon, AClientThatHangsUpCancelsThePull) {
    // A registry that trickles the model layer (1 KiB per 10 ms: ~12 s for the whole blob)
    // and notes when its client goes away.
    TempDir scratch_dir;
    Store scratch(scratch_dir.path());
    const store::Manifest m = test::stories_manifest(scratch);
    const std::string manifest = m.to_json();
    const Digest model = m.layers[0].digest;
    std::atomic<bool> registry_saw_hangup{false};
    http::Server slow;
    slow.Get(R"(/v2/library/slow/manifests/latest)", [&](const http::Request&, http::Response& res) {
        res.set_content(manifest, store::media_type::kManifest);
    });
    slow.Get(R"(/v2/library/slow/blobs/(sha256:[0-9a-f]{64}))", [&](const http::Request& req, http::Response& res) {
        const std::string bytes = test::slurp(scratch.blob_path(Digest::parse(req.matches[1].str())));
        auto s = res.defer();
        http::Response head;
        head.set_header("Content-Type", "application/octet-stream");
        s->begin(std::move(head), bytes.size());
        for (size_t off = 0; off < bytes.size(); off += 1024) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (!s->write(bytes.substr(off, 1024))) {
                registry_saw_hangup = true;
                return;
            }
        }
        s->end();
    });
    const int port = slow.bind("127.0.0.1", 0);
    std::thread t([&] { slow.run(); });
    const std::string name = "127.0.0.1:" + std::to_string(port) + "/library/slow:latest";

    // Reads progress until the model layer has started, then hangs up.
    http::Client c = b.client();
    std::string buf;
    const http::Receiver receiver = [&](const char* data, size_t n) {
        buf.append(data, n);
        for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) {
            const json line = json::parse(buf.substr(0, nl));
            if (line.value("digest", "") == model.str() && line.value("completed", 0) > 0) return false;
        }
        return true;
    };
    c.Post("/api/pull", http::Headers{}, json({{"model", name}, {"insecure", true}}).dump(), "application/json", receiver);
    for (int i = 0; i < 8000 && !registry_saw_hangup; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(registry_saw_hangup) << "the pull went on after its client left";
    EXPECT_FALSE(b_store->has_model(ModelName::parse(name)));
    EXPECT_FALSE(b_store->has_blob(model));
    EXPECT_TRUE(std::filesystem::exists(b_store->blobs_dir() / (model.blob_name() + "-partial")));  // resumable
    slow.stop();
    t.join();
}

TEST_F(RegistryDaemon, V2RoutesServeTheStoreReadOnly) {
    http::Client c = a.client();
    const Store& s = *a.server().store();
    const ModelName name = ModelName::parse("stories");
    const std::string bytes = s.read_manifest_bytes(name);
    const store::Manifest m = store::Manifest::parse(bytes);
    const Digest model = m.layers[0].digest;
    const std::string model_bytes = test::slurp(s.blob_path(model));

    auto r = c.Get("/v2/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{}");
    for (const char* path : {"/v2/library/stories/manifests/latest", "/v2/stories/manifests/latest",
                             "/v2/library/STORIES/manifests/latest"}) {
        r = c.Get(path);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << path;
        EXPECT_EQ(r->body, bytes);
        EXPECT_EQ(r->get_header_value("Content-Type"), store::media_type::kManifest);
        EXPECT_EQ(r->get_header_value("Docker-Content-Digest"), id.str());
    }
    r = c.Get(("/v2/library/stories/manifests/" + id.str()).c_str());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, bytes);
    r = c.Head("/v2/library/stories/manifests/latest");
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Length"), std::to_string(bytes.size()));

    const std::string blob = "/v2/library/stories/blobs/" + model.str();
    r = c.Get(blob.c_str());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body == model_bytes);
    EXPECT_EQ(r->get_header_value("Docker-Content-Digest"), model.str());
    r = c.Get(blob.c_str(), {{"Range", "bytes=100-199"}});
    EXPECT_EQ(r->status, 206);
    EXPECT_EQ(r->get_header_value("Content-Range"), "bytes 100-199/" + std::to_string(model_bytes.size()));
    EXPECT_EQ(r->body, model_bytes.substr(100, 100));
    r = c.Get(blob.c_str(), {{"Range", "bytes=1000000-"}});
    EXPECT_EQ(r->status, 206);
    EXPECT_TRUE(r->body == model_bytes.substr(1000000));
    r = c.Get(blob.c_str(), {{"Range", "bytes=-10"}});
    EXPECT_EQ(r->body, model_bytes.substr(model_bytes.size() - 10));
    r = c.Get(blob.c_str(), {{"Range", "bytes=99999999-"}});
    EXPECT_EQ(r->status, 416);
    EXPECT_EQ(r->get_header_value("Content-Range"), "bytes */" + std::to_string(model_bytes.size()));
    r = c.Head(blob.c_str());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Length"), std::to_string(model_bytes.size()));

    auto code_of = [&](const std::string& path, int want_status) {
        auto res = c.Get(path.c_str(), {{"Range", "bytes=0-3"}});  // a Range must not cut the error body
        if (!res) return std::string("no answer");
        EXPECT_EQ(res->status, want_status) << path;
        return json::parse(res->body)["errors"][0]["code"].get<std::string>();
    };
    EXPECT_EQ(code_of("/v2/library/nothing/manifests/latest", 404), "MANIFEST_UNKNOWN");
    EXPECT_EQ(code_of("/v2/library/stories/manifests/v9", 404), "MANIFEST_UNKNOWN");
    EXPECT_EQ(code_of("/v2/library/stories/manifests/sha256:" + std::string(64, 'c'), 404), "MANIFEST_UNKNOWN");
    EXPECT_EQ(code_of("/v2/library/stories/blobs/sha256:" + std::string(64, 'c'), 404), "BLOB_UNKNOWN");
    for (const char* bad : {"/v2/..%2F..%2F..%2Fetc/passwd/manifests/latest", "/v2/library/../stories/manifests/latest",
                                   "/v2/a/b/c/manifests/latest", "/v2/library/sto%00ries/manifests/latest",
                                   "/v2/library/stories/blobs/../../blobs/x"})
        EXPECT_EQ(code_of(bad, 400), "NAME_INVALID") << bad;
    EXPECT_EQ(code_of("/v2/library/stories/manifests/a..b", 400), "TAG_INVALID");
    EXPECT_EQ(code_of("/v2/library/stories/manifests/-x", 400), "TAG_INVALID");
    EXPECT_EQ(code_of("/v2/library/stories/manifests/..%2F..%2Fx", 404), "NAME_UNKNOWN");
    EXPECT_EQ(code_of("/v2/library/stories/blobs/sha256:" + std::string(64, 'C'), 400), "DIGEST_INVALID");
    EXPECT_EQ(code_of("/v2/library/stories/blobs/sha256-" + model.hex, 400), "DIGEST_INVALID");
    r = c.Put("/v2/library/stories/manifests/latest", bytes, "application/json");
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(json::parse(r->body)["errors"][0]["code"], "UNSUPPORTED");
    r = c.Delete(blob.c_str());
    EXPECT_EQ(r->status, 405);
    EXPECT_TRUE(s.has_blob(model));
}

}  // namespace
}  // namespace hearth::server
