// The registry client (store/registry_client.h) against registries run in the test on
// loopback: an http::Server speaking the read side of the OCI protocol, with hooks that
// cut downloads, corrupt bytes, demand Bearer tokens and redirect blobs to another origin.
// Proves resumed and parallel downloads, retries, and that every attack leaves the store's
// visible state unchanged. (The docker-registry round trip and the daemon routes are in
// test_registry_daemon.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "http/server.h"
#include "store/registry_client.h"
#include "store/registry_http.h"
#include "support/paths.h"
#include "support/registry_fixture.h"

namespace hearth::store {
namespace {

using test::TempDir;
using test::visible_files;

struct Seen {
    std::string method, path, range, authorization, query;
};

void wait_running(const http::Server& srv) {
    for (int i = 0; i < 5000 && !srv.running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// A decimal number that is the whole of `s`.
std::optional<uint64_t> parse_u64(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// Answers with `bytes`, honouring a single Range ("bytes=A-B", "bytes=A-", "bytes=-N") as a
// registry does: 206 with Content-Range, or 416 when it starts past the end. Another Range
// gets the whole blob (200).
void serve_blob(const http::Request& req, http::Response& res, const std::string& bytes) {
    const std::string range = req.get_header_value("Range");
    const size_t dash = range.find('-');
    if (range.rfind("bytes=", 0) == 0 && dash != std::string::npos && range.find(',') == std::string::npos) {
        const std::string_view first = std::string_view(range).substr(6, dash - 6), last = std::string_view(range).substr(dash + 1);
        const uint64_t size = bytes.size();
        std::optional<uint64_t> from, to;
        if (first.empty()) {  // the last N bytes
            if (const auto n = parse_u64(last); n && *n > 0) {
                from = size - std::min(*n, size);
                to = size - 1;
            }
        } else if ((from = parse_u64(first))) {
            to = last.empty() ? std::optional<uint64_t>(size - 1) : parse_u64(last);
            if (to) to = std::min(*to, size - 1);
        }
        if (from && to) {
            if (*from >= size || *from > *to) {
                res.status = 416;
                res.set_header("Content-Range", "bytes */" + std::to_string(size));
                return;
            }
            res.status = 206;
            res.set_header("Content-Range", "bytes " + std::to_string(*from) + "-" + std::to_string(*to) + "/" + std::to_string(size));
            res.set_content(bytes.substr(*from, *to - *from + 1), "application/octet-stream");
            return;
        }
    }
    res.set_content(bytes, "application/octet-stream");
}

// A loopback registry serving one model, library/stories:latest, from memory.
class FakeRegistry {
public:
    using Hook = std::function<bool(const http::Request&, http::Response&)>;

    FakeRegistry() {
        srv_.Get(R"(/v2/library/stories/manifests/([^/]+))", [this](const http::Request& req, http::Response& res) {
            if (intercept(req, res)) return;
            if (req.matches[1].str() != "latest" || manifest.empty()) {
                res.status = 404;
                res.set_content(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})", "application/json");
                return;
            }
            res.set_content(manifest, media_type::kManifest);
        });
        srv_.Get(R"(/v2/library/stories/blobs/(sha256:[0-9a-f]{64}))", [this](const http::Request& req, http::Response& res) {
            if (intercept(req, res)) return;
            auto it = blobs.find(req.matches[1].str());
            if (it == blobs.end()) {
                res.status = 404;
                res.set_content(R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})", "application/json");
                return;
            }
            serve_blob(req, res, it->second);
        });
        port = srv_.bind("127.0.0.1", 0);
        thread_ = std::thread([this] { srv_.run(); });
        wait_running(srv_);
    }
    ~FakeRegistry() {
        srv_.stop();
        thread_.join();
    }

    // Puts the stories model here (the manifest as `Manifest::to_json`, its blobs).
    Manifest load_stories(const Store& scratch) {
        Manifest m = test::stories_manifest(scratch);
        for (const Digest& d : m.digests()) blobs[d.str()] = test::slurp(scratch.blob_path(d));
        manifest = m.to_json();
        return m;
    }
    std::string name() const { return "127.0.0.1:" + std::to_string(port) + "/library/stories:latest"; }
    std::vector<Seen> seen() {
        std::lock_guard lock(mu_);
        return seen_;
    }
    size_t count(const std::string& path_part) {
        size_t n = 0;
        for (const Seen& s : seen()) n += s.path.find(path_part) != std::string::npos;
        return n;
    }

    std::string manifest;
    std::map<std::string, std::string> blobs;  // "sha256:<hex>" -> bytes
    Hook hook;  // runs first on every request; true = answered
    int port = 0;

private:
    http::Server srv_;
    std::thread thread_;
    std::mutex mu_;
    std::vector<Seen> seen_;

    bool intercept(const http::Request& req, http::Response& res) {
        {
            std::lock_guard lock(mu_);
            std::string q;
            for (const auto& [k, v] : req.params) q += k + "=" + v + "&";
            seen_.push_back({req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization"), q});
        }
        return hook && hook(req, res);
    }
};

RegistryOptions fast_options() {
    RegistryOptions o;
    o.insecure = true;
    o.retry_delay = std::chrono::milliseconds(1);
    o.max_retry_delay = std::chrono::milliseconds(5);
    return o;
}

// Answers `head` (200 unless it says otherwise) with a Content-Length of all of `bytes`, sends
// the first `n` of them and then drops the connection (the body ends short of its length).
void cut_after(http::Response& res, const std::string& bytes, size_t n, http::Response head = {}) {
    auto s = res.defer();
    head.replace_header("Content-Type", "application/octet-stream");
    s->begin(std::move(head), bytes.size());
    s->write(bytes.substr(0, n));
    s->end();  // short of the Content-Length: the server hangs up
}

class RegistryClientTest : public ::testing::Test {
protected:
    TempDir scratch_dir, dir;
    Store scratch{scratch_dir.path()};
    Store store{dir.path()};
    FakeRegistry reg;
    Manifest m = reg.load_stories(scratch);
    const Digest model = m.layers[0].digest;
    const std::string& model_bytes() { return reg.blobs[model.str()]; }
    std::string partial_path() const { return (store.blobs_dir() / (model.blob_name() + "-partial")).string(); }
};

TEST(RegistryUnits, ChallengeUrlsAndCredentials) {
    auto c = detail::parse_auth_challenge(
        R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push")");
    EXPECT_EQ(c.scheme, "bearer");
    EXPECT_EQ(c.param("realm"), "https://auth.example.com/token");
    EXPECT_EQ(c.param("service"), "registry.example.com");
    EXPECT_EQ(c.param("scope"), "repository:a/b:pull,push");
    EXPECT_EQ(detail::url_origin("https://Example.com/v2/x"), "https://example.com:443");
    EXPECT_EQ(detail::url_origin("http://127.0.0.1:5000/v2/"), "http://127.0.0.1:5000");
    EXPECT_EQ(detail::resolve_url("http://h:1/v2/a/b/blobs/uploads/", "/v2/up/1?x=y"), "http://h:1/v2/up/1?x=y");
    EXPECT_EQ(detail::resolve_url("http://h:1/v2/a", "https://cdn.example/o"), "https://cdn.example/o");
    EXPECT_THROW(detail::url_origin("file:///etc/passwd"), std::invalid_argument);

    ::setenv("HEARTH_REGISTRY_AUTH", "other.example=u0:p0, reg.example:5000=alice:s3:cret", 1);
    auto cr = credentials_from_env("REG.example:5000");
    ASSERT_TRUE(cr);
    EXPECT_EQ(cr->user, "alice");
    EXPECT_EQ(cr->password, "s3:cret");
    EXPECT_FALSE(credentials_from_env("reg.example"));  // configured for another port: nothing
    ::unsetenv("HEARTH_REGISTRY_AUTH");
    EXPECT_FALSE(credentials_from_env("other.example"));

    RegistryClient client(Store("/nonexistent"), RegistryOptions{});
    EXPECT_EQ(client.repository_url(ModelName::parse("llama3.2")), "https://registry.ollama.ai/v2/library/llama3.2");
    EXPECT_EQ(client.repository_url(ModelName::parse("hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M")),
              "https://hf.co/v2/bartowski/Llama-3.2-1B-GGUF");
}

TEST(RegistryBlobParts, WriteAtThenCompletePrefixVerifiesLikeAStream) {
    TempDir dir;
    Store s(dir.path());
    std::string bytes(300000, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 251);
    const Digest d = Digest::of(bytes);
    {
        BlobWriter w = s.resume_blob(d, bytes.size());
        w.write(bytes.substr(0, 1000));
        w.write_at(200000, bytes.data() + 200000, 100000);  // a later part first
        w.write_at(1000, bytes.data() + 1000, 50000);
        EXPECT_THROW(w.write_at(500, "x", 1), StoreError);                     // before offset()
        EXPECT_THROW(w.write_at(bytes.size() - 1, "xy", 2), StoreError);      // past the size
        w.complete_prefix(51000);  // [51000, 200000) is missing: the file is cut there
        EXPECT_EQ(w.offset(), 51000u);
    }  // abandoned: the partial keeps the prefix
    const auto partial = s.blobs_dir() / (d.blob_name() + "-partial");
    EXPECT_EQ(test::slurp(partial), bytes.substr(0, 51000));
    BlobWriter w = s.resume_blob(d, bytes.size());
    ASSERT_EQ(w.offset(), 51000u);
    w.write_at(51000, bytes.data() + 51000, bytes.size() - 51000);
    w.complete_prefix(bytes.size());
    EXPECT_EQ(w.commit(), bytes.size());
    EXPECT_TRUE(s.verify_blob(d));

    // Parts that hash wrong are caught at commit, and nothing becomes visible.
    std::string other = bytes;
    other[123] ^= 1;
    const Digest d2 = Digest::of(other);
    BlobWriter w2 = s.resume_blob(d2, other.size());
    w2.write_at(0, bytes.data(), bytes.size());
    w2.complete_prefix(bytes.size());
    EXPECT_THROW(w2.commit(), StoreError);
    EXPECT_FALSE(s.has_blob(d2));
    EXPECT_FALSE(std::filesystem::exists(s.blobs_dir() / (d2.blob_name() + "-partial")));
}

TEST_F(RegistryClientTest, PullReportsOllamaProgressAndStoresManifestBytes) {
    std::vector<RegistryProgress> events;
    RegistryClient client(store, fast_options());
    const PullResult r = client.pull(ModelName::parse(reg.name()), [&](const RegistryProgress& p) { events.push_back(p); });
    EXPECT_EQ(r.manifest_digest, Digest::of(reg.manifest));
    EXPECT_EQ(store.read_manifest_bytes(ModelName::parse(reg.name())), reg.manifest);
    for (const Digest& d : m.digests()) EXPECT_TRUE(store.verify_blob(d)) << d.str();
    ASSERT_GE(events.size(), 6u);
    EXPECT_EQ(events.front().status, "pulling manifest");
    EXPECT_EQ(events[events.size() - 3].status, "verifying sha256 digest");
    EXPECT_EQ(events[events.size() - 2].status, "writing manifest");
    EXPECT_EQ(events.back().status, "success");
    bool model_done = false;
    for (const auto& e : events) {
        if (e.digest.empty()) continue;
        EXPECT_EQ(e.status, "pulling " + e.digest.substr(7, 12));
        EXPECT_LE(e.completed, e.total);
        if (e.digest == model.str() && e.completed == e.total && e.total == model_bytes().size()) model_done = true;
    }
    EXPECT_TRUE(model_done);

    // Pulled again: nothing is downloaded.
    const size_t blob_gets = reg.count("/blobs/");
    EXPECT_EQ(client.pull(ModelName::parse(reg.name())).downloaded, 0u);
    EXPECT_EQ(reg.count("/blobs/"), blob_gets);
}

TEST_F(RegistryClientTest, InterruptedPullResumesWithRange) {
    const size_t half = model_bytes().size() / 2;
    std::atomic<int> model_gets{0};
    reg.hook = [&](const http::Request& req, http::Response& res) {
        if (req.path.find(model.str()) == std::string::npos || model_gets++ > 0) return false;
        cut_after(res, model_bytes(), half);
        return true;
    };
    RegistryOptions once = fast_options();
    once.max_retries = 0;
    EXPECT_THROW(RegistryClient(store, once).pull(ModelName::parse(reg.name())), RegistryError);
    // The partial keeps what arrived; nothing is visible.
    ASSERT_TRUE(std::filesystem::exists(partial_path()));
    EXPECT_EQ(std::filesystem::file_size(partial_path()), half);
    EXPECT_FALSE(store.has_blob(model));
    EXPECT_FALSE(store.has_model(ModelName::parse(reg.name())));

    RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
    std::vector<std::string> ranges;
    for (const Seen& s : reg.seen())
        if (s.path.find(model.str()) != std::string::npos) ranges.push_back(s.range);
    ASSERT_EQ(ranges.size(), 2u);
    EXPECT_EQ(ranges[0], "");
    EXPECT_EQ(ranges[1], "bytes=" + std::to_string(half) + "-");
    EXPECT_TRUE(store.verify_blob(model));
    EXPECT_FALSE(std::filesystem::exists(partial_path()));
    EXPECT_EQ(store.read_manifest_bytes(ModelName::parse(reg.name())), reg.manifest);
}

TEST_F(RegistryClientTest, RetriesWithinOnePullResumeWhereTheCutHappened) {
    const size_t third = model_bytes().size() / 3;
    std::atomic<int> model_gets{0};
    reg.hook = [&](const http::Request& req, http::Response& res) {
        if (req.path.find(model.str()) == std::string::npos) return false;
        const int n = model_gets++;
        if (n == 0) {
            res.status = 503;  // retried
            res.set_content(R"({"errors":[{"code":"UNAVAILABLE","message":"try later"}]})", "application/json");
            return true;
        }
        if (n == 1) {
            cut_after(res, model_bytes(), third);  // a connection reset: retried with Range
            return true;
        }
        return false;
    };
    RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
    EXPECT_TRUE(store.verify_blob(model));
    std::vector<std::string> ranges;
    for (const Seen& s : reg.seen())
        if (s.path.find(model.str()) != std::string::npos) ranges.push_back(s.range);
    ASSERT_EQ(ranges.size(), 3u);
    EXPECT_EQ(ranges[2], "bytes=" + std::to_string(third) + "-");
}

TEST_F(RegistryClientTest, BigBlobsDownloadInParallelParts) {
    RegistryOptions o = fast_options();
    o.parallel_threshold = 64 << 10;
    o.min_part_size = 256 << 10;
    o.max_parts = 4;
    std::atomic<int> failures{0};
    reg.hook = [&](const http::Request& req, http::Response& res) {
        // The first request for the second part fails once (a 502): only that part retries.
        const std::string r = req.get_header_value("Range");
        if (req.path.find(model.str()) != std::string::npos && !r.empty() && r.rfind("bytes=0-", 0) != 0 &&
            failures++ == 0) {
            res.status = 502;
            return true;
        }
        return false;
    };
    RegistryClient(store, o).pull(ModelName::parse(reg.name()));
    EXPECT_TRUE(store.verify_blob(model));
    std::set<std::string> ranges;
    for (const Seen& s : reg.seen())
        if (s.path.find(model.str()) != std::string::npos) ranges.insert(s.range);
    EXPECT_EQ(ranges.size(), 4u);  // four distinct parts (the failed one asked twice)
    EXPECT_EQ(reg.count(model.str()), 5u);
    for (const std::string& r : ranges) EXPECT_EQ(r.rfind("bytes=", 0), 0u) << r;
}

TEST_F(RegistryClientTest, CancelledPartsKeepACompletePrefixForTheResume) {
    RegistryOptions o = fast_options();
    o.parallel_threshold = 64 << 10;
    o.min_part_size = 256 << 10;
    o.max_parts = 4;
    o.max_retries = 0;
    std::atomic<bool> first_served{false};
    reg.hook = [&](const http::Request& req, http::Response& res) {
        // The second part is cut after 1000 bytes, once the first has been served (and had
        // time to arrive), so the first part is complete when the pull fails.
        const std::string r = req.get_header_value("Range");
        const std::string second = "bytes=" + std::to_string((model_bytes().size() + 3) / 4) + "-";
        if (req.path.find(model.str()) == std::string::npos || r.empty()) return false;
        if (r.rfind("bytes=0-", 0) != 0 && r.rfind(second, 0) != 0) return false;
        if (r.rfind("bytes=0-", 0) == 0) {
            const size_t to = std::stoull(r.substr(8));
            const std::string part = model_bytes().substr(0, to + 1);
            auto s = res.defer();
            http::Response head;
            head.status = 206;
            head.set_header("Content-Range", "bytes 0-" + std::to_string(to) + "/" + std::to_string(model_bytes().size()));
            head.set_header("Content-Type", "application/octet-stream");
            s->begin(std::move(head), part.size());
            s->write(part);
            first_served = true;
            s->end();
            return true;
        }
        for (int i = 0; i < 5000 && !first_served; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const size_t dash = r.find('-');
        const size_t from = std::stoull(r.substr(6, dash - 6)), to = std::stoull(r.substr(dash + 1));
        http::Response head;
        head.status = 206;
        head.set_header("Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(to) + "/" +
                                             std::to_string(model_bytes().size()));
        cut_after(res, model_bytes().substr(from, to - from + 1), 1000, std::move(head));
        return true;
    };
    EXPECT_THROW(RegistryClient(store, o).pull(ModelName::parse(reg.name())), RegistryError);
    ASSERT_TRUE(std::filesystem::exists(partial_path()));
    const uint64_t kept = std::filesystem::file_size(partial_path());
    // The first part (a quarter, rounded up) completed, plus 1000 bytes of the second.
    const uint64_t part = (model_bytes().size() + 3) / 4;
    EXPECT_EQ(kept, part + 1000);
    EXPECT_EQ(test::slurp(partial_path()), model_bytes().substr(0, kept));

    reg.hook = nullptr;
    const size_t before = reg.seen().size();
    RegistryClient(store, o).pull(ModelName::parse(reg.name()));
    EXPECT_TRUE(store.verify_blob(model));
    const auto seen = reg.seen();
    size_t model_gets = 0;
    for (size_t i = before; i < seen.size(); ++i) {
        if (seen[i].path.find(model.str()) == std::string::npos) continue;
        ++model_gets;
        ASSERT_EQ(seen[i].range.rfind("bytes=", 0), 0u);
        EXPECT_GE(std::stoull(seen[i].range.substr(6)), kept) << seen[i].range;  // only what was missing
    }
    EXPECT_GE(model_gets, 2u);
}

TEST_F(RegistryClientTest, ARegistryIgnoringRangeRestartsTheBlob) {
    // A partial left by an earlier pull ...
    {
        BlobWriter w = store.resume_blob(model, model_bytes().size());
        w.write(model_bytes().substr(0, 1000));
    }
    // ... and a registry that always answers 200 with the whole blob.
    reg.hook = [&](const http::Request& req, http::Response& res) {
        if (req.path.find(model.str()) == std::string::npos) return false;
        res.status = 200;
        res.set_content(model_bytes(), "application/octet-stream");
        return true;
    };
    RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
    EXPECT_TRUE(store.verify_blob(model));
    EXPECT_EQ(reg.seen()[1].range, "bytes=1000-");
}

TEST_F(RegistryClientTest, CancelStopsThePullAndKeepsThePartial) {
    std::atomic<bool> cancel{false};
    reg.hook = [&](const http::Request& req, http::Response& res) {
        if (req.path.find(model.str()) == std::string::npos) return false;
        // Sends 100 KiB, then stalls until the client goes away.
        auto s = res.defer();
        http::Response head;
        head.set_header("Content-Type", "application/octet-stream");
        s->begin(std::move(head), model_bytes().size());
        s->write(model_bytes().substr(0, 100 << 10));
        while (s->alive()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return true;
    };
    // Cancelled once bytes have reached the partial file (while the registry stalls).
    std::thread canceller([&] {
        std::error_code ec;
        for (int i = 0; i < 10000 && !cancel; ++i) {
            if (std::filesystem::file_size(partial_path(), ec) > 0 && !ec) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        cancel = true;
    });
    try {
        RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()), {}, &cancel);
        ADD_FAILURE() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_TRUE(e.cancelled()) << e.what();
    }
    canceller.join();
    EXPECT_TRUE(std::filesystem::exists(partial_path()));
    EXPECT_GT(std::filesystem::file_size(partial_path()), 0u);
    EXPECT_FALSE(store.has_model(ModelName::parse(reg.name())));
}

// ---- Attacks: the store's visible state does not change.

TEST_F(RegistryClientTest, BlobBytesThatDoNotMatchTheirDigestAreRejected) {
    std::string& bytes = reg.blobs[model.str()];
    bytes[bytes.size() / 2] ^= 0x5a;  // same size, other bytes
    const auto before = visible_files(dir.path(), true);
    try {
        RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
        FAIL() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_NE(std::string(e.what()).find(model.str()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("hash"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(store.has_blob(model));
    EXPECT_FALSE(std::filesystem::exists(partial_path()));  // wrong bytes are not kept for a resume
    EXPECT_FALSE(store.has_model(ModelName::parse(reg.name())));
    for (const auto& f : visible_files(dir.path(), true)) EXPECT_EQ(f.find("manifests/"), std::string::npos) << f;
}

TEST_F(RegistryClientTest, TruncatedAndOversizedBlobsAreRejected) {
    const std::string full = model_bytes();
    RegistryOptions o = fast_options();
    o.max_retries = 0;
    // A registry whose answers end early (cleanly, with a matching Content-Length) ...
    reg.blobs[model.str()] = full.substr(0, full.size() - 10);
    try {
        RegistryClient(store, o).pull(ModelName::parse(reg.name()));
        FAIL() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(visible_files(dir.path()).empty());  // the model layer comes first: nothing else was fetched
    EXPECT_FALSE(store.has_blob(model));
    EXPECT_FALSE(store.has_model(ModelName::parse(reg.name())));
    // What arrived stays as the resumable partial (not visible; pruned when stale).
    EXPECT_EQ(test::slurp(partial_path()), full.substr(0, full.size() - 10));
    std::filesystem::remove(partial_path());
    // ... or go on past the manifest's size: those bytes are not kept.
    reg.blobs[model.str()] = full + "extra";
    EXPECT_THROW(RegistryClient(store, o).pull(ModelName::parse(reg.name())), RegistryError);
    EXPECT_FALSE(store.has_blob(model));
    EXPECT_FALSE(std::filesystem::exists(partial_path()));
    EXPECT_FALSE(store.has_model(ModelName::parse(reg.name())));
}

TEST_F(RegistryClientTest, MalformedManifestsAreRejectedBeforeAnyDownload) {
    const std::string good = reg.manifest;
    const std::string hex = model.hex;
    for (const std::string& evil : {std::string("sha256:../../../../etc/passwd"), "sha256:" + std::string(63, 'a'),
                                    "sha256:" + std::string(64, 'A'), "sha512:" + hex, "sha256:" + hex + "/.."}) {
        std::string bad = good;
        bad.replace(bad.find("sha256:" + hex), 71, evil);
        reg.manifest = bad;
        try {
            RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
            ADD_FAILURE() << "accepted " << evil;
        } catch (const RegistryError& e) {
            EXPECT_NE(std::string(e.what()).find("invalid manifest"), std::string::npos) << e.what();
        }
    }
    for (const std::string& bad : {std::string("not json"), std::string(R"({"schemaVersion":2})"),
                                   std::string(R"({"schemaVersion":2,"config":{"digest":"sha256:)") + hex +
                                       R"(","size":-5},"layers":[]})"}) {
        reg.manifest = bad;
        EXPECT_THROW(RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name())), RegistryError) << bad;
    }
    EXPECT_EQ(reg.count("/blobs/"), 0u);
    EXPECT_TRUE(visible_files(dir.path(), true).empty());
}

TEST_F(RegistryClientTest, AManifestWhoseDigestHeaderDisagreesIsRejected) {
    reg.hook = [&](const http::Request& req, http::Response& res) {
        if (req.path.find("/manifests/") == std::string::npos) return false;
        res.set_header("Docker-Content-Digest", "sha256:" + std::string(64, 'b'));
        res.set_content(reg.manifest, media_type::kManifest);
        return true;
    };
    EXPECT_THROW(RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name())), RegistryError);
    EXPECT_TRUE(visible_files(dir.path(), true).empty());
}

TEST_F(RegistryClientTest, InvalidNamesNeverReachTheNetworkOrTheDisk) {
    for (const char* bad : {"../x", "127.0.0.1:1/../../etc:latest", "a/b/c/d", "x:../../t", "x:", "/x", "a\\b"})
        EXPECT_THROW(ModelName::parse(bad), StoreError) << bad;
    const std::string host = "127.0.0.1:" + std::to_string(reg.port);
    for (auto [ns, model, tag] : {std::tuple{"..", "stories", "latest"}, std::tuple{"library", "..", "latest"},
                                  std::tuple{"library", "stories", "../../x"}, std::tuple{"library", "a/b", "latest"},
                                  std::tuple{"library", "stories", ""}}) {
        ModelName n;
        n.host = host;
        n.ns = ns;
        n.model = model;
        n.tag = tag;
        EXPECT_THROW(RegistryClient(store, fast_options()).pull(n), StoreError);
        EXPECT_THROW(RegistryClient(store, fast_options()).push(n), StoreError);
    }
    EXPECT_TRUE(reg.seen().empty());
    EXPECT_TRUE(visible_files(dir.path(), true).empty());
}

TEST_F(RegistryClientTest, RegistryErrorsCarryStatusCodeAndMessage) {
    reg.manifest.clear();
    try {
        RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
        FAIL() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_EQ(e.status(), 404);
        EXPECT_EQ(e.code(), "MANIFEST_UNKNOWN");
        EXPECT_NE(std::string(e.what()).find("manifest unknown"), std::string::npos) << e.what();
    }
    EXPECT_EQ(reg.count("/manifests/"), 1u);  // a 4xx is not retried

    std::atomic<int> calls{0};
    reg.hook = [&](const http::Request&, http::Response& res) {
        ++calls;
        res.status = 500;
        return true;
    };
    RegistryOptions o = fast_options();
    o.max_retries = 3;
    try {
        RegistryClient(store, o).pull(ModelName::parse(reg.name()));
        FAIL() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_EQ(e.status(), 500);
    }
    EXPECT_EQ(calls.load(), 4);  // one try and three retries
    // Nothing listening: a transport error (retried, then reported).
    ModelName nobody = ModelName::parse("127.0.0.1:1/library/stories");
    o.max_retries = 1;
    try {
        RegistryClient(store, o).pull(nobody);
        FAIL() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_EQ(e.status(), 0);
    }
    EXPECT_TRUE(visible_files(dir.path(), true).empty());
}

// ---- Bearer tokens: fetched from the challenge's realm, sent only to the registry's origin.

class RegistryAuthTest : public RegistryClientTest {
protected:
    http::Server token_srv, cdn_srv;
    std::thread token_thread, cdn_thread;
    int token_port = 0, cdn_port = 0;
    std::mutex mu;
    std::vector<Seen> token_seen, cdn_seen;
    std::string token = "tok-123";

    void SetUp() override {
        token_srv.Get("/token", [this](const http::Request& req, http::Response& res) {
            std::lock_guard lock(mu);
            token_seen.push_back({req.method, req.path, "", req.get_header_value("Authorization"),
                                  req.get_param_value("service") + "|" + req.get_param_value("scope")});
            res.set_content(R"({"token":")" + token + R"(","expires_in":300})", "application/json");
        });
        cdn_srv.Get(R"(/cdn/(sha256:[0-9a-f]{64}))", [this](const http::Request& req, http::Response& res) {
            std::lock_guard lock(mu);
            cdn_seen.push_back({req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization"), ""});
            res.set_content(reg.blobs[req.matches[1].str()], "application/octet-stream");
        });
        token_port = token_srv.bind("127.0.0.1", 0);
        cdn_port = cdn_srv.bind("127.0.0.1", 0);
        token_thread = std::thread([this] { token_srv.run(); });
        cdn_thread = std::thread([this] { cdn_srv.run(); });
        wait_running(token_srv);
        wait_running(cdn_srv);
        reg.hook = [this](const http::Request& req, http::Response& res) {
            if (req.get_header_value("Authorization") != "Bearer tok-123") {
                res.status = 401;
                res.set_header("WWW-Authenticate", "Bearer realm=\"http://127.0.0.1:" + std::to_string(token_port) +
                                                       "/token\",service=\"fake-registry\",scope=\"repository:library/stories:pull\"");
                res.set_content(R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})", "application/json");
                return true;
            }
            if (req.path.find("/blobs/") != std::string::npos) {
                // Blobs live on a CDN: another origin (another port).
                res.status = 307;
                res.set_header("Location", "http://127.0.0.1:" + std::to_string(cdn_port) + "/cdn/" + req.matches[1].str());
                return true;
            }
            return false;
        };
    }
    void TearDown() override {
        token_srv.stop();
        cdn_srv.stop();
        token_thread.join();
        cdn_thread.join();
    }
};

TEST_F(RegistryAuthTest, TokenGoesToTheRegistryOnlyAndCredentialsOnlyToItsRealm) {
    RegistryOptions o = fast_options();
    o.credentials = RegistryCredentials{"alice", "secret"};
    RegistryClient(store, o).pull(ModelName::parse(reg.name()));
    EXPECT_EQ(store.read_manifest_bytes(ModelName::parse(reg.name())), reg.manifest);

    ASSERT_EQ(token_seen.size(), 1u);  // one token for the whole pull
    EXPECT_EQ(token_seen[0].authorization, "Basic " + detail::base64("alice:secret"));
    EXPECT_EQ(token_seen[0].query, "fake-registry|repository:library/stories:pull");
    for (const Seen& s : reg.seen())
        EXPECT_TRUE(s.authorization.empty() || s.authorization == "Bearer tok-123") << s.authorization;
    EXPECT_EQ(reg.seen()[0].authorization, "");  // the first request, before the challenge
    ASSERT_EQ(cdn_seen.size(), m.digests().size());
    for (const Seen& s : cdn_seen) EXPECT_EQ(s.authorization, "") << "Authorization leaked to the CDN: " << s.path;
}

TEST_F(RegistryAuthTest, NoCredentialsUnlessConfiguredForThatHost) {
    ::setenv("HEARTH_REGISTRY_AUTH", "127.0.0.1:1=mallory:nope", 1);  // another registry's
    RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
    ::unsetenv("HEARTH_REGISTRY_AUTH");
    ASSERT_EQ(token_seen.size(), 1u);
    EXPECT_EQ(token_seen[0].authorization, "");
    EXPECT_TRUE(store.has_model(ModelName::parse(reg.name())));
}

TEST_F(RegistryAuthTest, ARefusedTokenIsAn401Error) {
    token = "wrong";
    try {
        RegistryClient(store, fast_options()).pull(ModelName::parse(reg.name()));
        FAIL() << "no error";
    } catch (const RegistryError& e) {
        EXPECT_EQ(e.status(), 401);
        EXPECT_NE(std::string(e.what()).find("authentication required"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(visible_files(dir.path(), true).empty());
}

}  // namespace
}  // namespace hearth::store
