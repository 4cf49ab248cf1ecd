// The read side of the OCI distribution protocol over the store (see registry_routes.h).
#include "server/registry_routes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/server.h"
#include "store/store.h"

namespace hearth::server {

namespace {

namespace fs = std::filesystem;
using store::Digest;
using store::ModelName;

constexpr const char* kApiVersionHeader = "Docker-Distribution-API-Version";

void registry_error(http::Response& res, int status, const char* code, const std::string& message) {
    nlohmann::json body = {{"errors", nlohmann::json::array({{{"code", code}, {"message", message}}})}};
    res.status = status;
    res.set_header(kApiVersionHeader, "registry/2.0");
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json; charset=utf-8");
}

struct Repo {
    std::string ns, model;
};

// "name" or "namespace/name", each part valid as in a model name.
std::optional<Repo> parse_repo(const std::string& path) {
    Repo r;
    const size_t slash = path.find('/');
    if (slash == std::string::npos) {
        r.ns = std::string(store::kDefaultNamespace);
        r.model = path;
    } else {
        r.ns = path.substr(0, slash);
        r.model = path.substr(slash + 1);
        if (r.model.find('/') != std::string::npos) return std::nullopt;
    }
    try {
        ModelName::from_parts(std::string(store::kDefaultHost), r.ns, r.model, std::string(store::kDefaultTag));
    } catch (const store::StoreError&) {
        return std::nullopt;
    }
    return r;
}

// The hosts to look a repository up under: the default host, then the store's others.
std::vector<std::string> hosts_of(const store::Store& s) {
    std::vector<std::string> hosts{std::string(store::kDefaultHost)}, others;
    std::error_code ec;
    for (fs::directory_iterator it(s.manifests_dir(), ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code tec;
        if (!it->is_directory(tec)) continue;
        const std::string h = it->path().filename().string();
        if (store::iequals(h, store::kDefaultHost)) continue;
        if (ModelName::try_parse(h + "/library/x:latest")) others.push_back(h);
    }
    std::sort(others.begin(), others.end());
    hosts.insert(hosts.end(), others.begin(), others.end());
    return hosts;
}

// The stored manifest bytes for a tag or a digest of this repository.
std::optional<std::string> find_manifest(const store::Store& s, const Repo& repo, const std::string& reference) {
    const auto digest = Digest::try_parse(reference);
    for (const std::string& host : hosts_of(s)) {
        if (!digest) {
            const ModelName n = ModelName::from_parts(host, repo.ns, repo.model, reference);
            if (s.has_model(n)) return s.read_manifest_bytes(n);
            continue;
        }
        // By digest: a tag of this repository whose bytes hash to it.
        const ModelName any = s.resolve(ModelName::from_parts(host, repo.ns, repo.model, std::string(store::kDefaultTag)));
        const fs::path dir = s.manifest_path(any).parent_path();
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string tag = it->path().filename().string();
            auto n = ModelName::try_parse(host + "/" + repo.ns + "/" + repo.model + ":" + tag);
            if (!n || !s.has_model(*n)) continue;
            std::string bytes = s.read_manifest_bytes(*n);
            if (Digest::of(bytes) == *digest) return bytes;
        }
    }
    return std::nullopt;
}

struct ByteRange {
    uint64_t first = 0, length = 0;
};
enum class RangeKind { None, Satisfiable, Unsatisfiable };

// A single "bytes=a-b", "bytes=a-" or "bytes=-n" range. Anything else (several ranges,
// another unit, bad syntax) is ignored, as RFC 9110 allows: the whole blob is sent.
RangeKind parse_range(const std::string& h, uint64_t size, ByteRange& out) {
    if (h.rfind("bytes=", 0) != 0) return RangeKind::None;
    const std::string spec = h.substr(6);
    if (spec.find(',') != std::string::npos) return RangeKind::None;
    const size_t dash = spec.find('-');
    if (dash == std::string::npos) return RangeKind::None;
    auto num = [](const std::string& s) -> std::optional<uint64_t> {
        if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        return std::stoull(s);
    };
    const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
    if (a.empty()) {  // suffix: the last n bytes
        auto n = num(b);
        if (!n) return RangeKind::None;
        if (*n == 0 || size == 0) return RangeKind::Unsatisfiable;
        out.length = std::min(*n, size);
        out.first = size - out.length;
        return RangeKind::Satisfiable;
    }
    auto first = num(a);
    if (!first) return RangeKind::None;
    std::optional<uint64_t> last;
    if (!b.empty()) {
        last = num(b);
        if (!last || *last < *first) return RangeKind::None;
    }
    if (*first >= size) return RangeKind::Unsatisfiable;
    const uint64_t end = last ? std::min(*last + 1, size) : size;
    out.first = *first;
    out.length = end - *first;
    return RangeKind::Satisfiable;
}

struct OpenFile {
    int fd = -1;
    explicit OpenFile(int f) : fd(f) {}
    ~OpenFile() {
        if (fd >= 0) ::close(fd);
    }
};

void serve_manifest(ApiEnv& env, const http::Request& req, http::Response& res) {
    if (!env.store) return registry_error(res, 500, "UNKNOWN", "no model store configured");
    const auto repo = parse_repo(req.matches[1].str());
    if (!repo) return registry_error(res, 400, "NAME_INVALID", "invalid repository name");
    const std::string reference = req.matches[2].str();
    const bool by_digest = reference.rfind("sha256:", 0) == 0;
    if (by_digest ? !Digest::valid(reference)
                  : !ModelName::try_parse(repo->ns + "/" + repo->model + ":" + reference))
        return registry_error(res, 400, by_digest ? "DIGEST_INVALID" : "TAG_INVALID", "invalid manifest reference");
    const auto bytes = find_manifest(*env.store, *repo, reference);
    if (!bytes) return registry_error(res, 404, "MANIFEST_UNKNOWN", "manifest unknown");
    std::string type(store::media_type::kManifest);
    try {
        type = store::Manifest::parse(*bytes).media_type;
    } catch (const store::StoreError&) {
    }
    if (std::any_of(type.begin(), type.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        type = std::string(store::media_type::kManifest);
    res.status = 200;
    res.set_header(kApiVersionHeader, "registry/2.0");
    res.set_header("Docker-Content-Digest", Digest::of(*bytes).str());
    res.set_content(*bytes, type.c_str());
}

void serve_blob(ApiEnv& env, const http::Request& req, http::Response& res) {
    if (!env.store) return registry_error(res, 500, "UNKNOWN", "no model store configured");
    if (!parse_repo(req.matches[1].str())) return registry_error(res, 400, "NAME_INVALID", "invalid repository name");
    const auto digest = Digest::try_parse(req.matches[2].str());
    if (!digest) return registry_error(res, 400, "DIGEST_INVALID", "invalid digest");
    const std::string path = env.store->blob_path(*digest).string();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return registry_error(res, 404, "BLOB_UNKNOWN", "blob unknown to registry");
    auto file = std::make_unique<OpenFile>(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return registry_error(res, 404, "BLOB_UNKNOWN", "blob unknown to registry");
    const uint64_t size = static_cast<uint64_t>(st.st_size);

    res.set_header(kApiVersionHeader, "registry/2.0");
    res.set_header("Docker-Content-Digest", digest->str());
    res.set_header("Accept-Ranges", "bytes");
    ByteRange range{0, size};
    switch (parse_range(req.get_header_value("Range"), size, range)) {
    case RangeKind::Unsatisfiable:
        res.set_header("Content-Range", "bytes */" + std::to_string(size));
        return registry_error(res, 416, "RANGE_NOT_SATISFIABLE",
                              "range not satisfiable: the blob has " + std::to_string(size) + " bytes");
    case RangeKind::Satisfiable:
        res.status = 206;
        res.set_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                            std::to_string(range.first + range.length - 1) + "/" + std::to_string(size));
        break;
    case RangeKind::None:
        res.status = 200;
        range = ByteRange{0, size};
        break;
    }
    if (range.length == 0) {
        res.set_content("", "application/octet-stream");
        return;
    }
    // Streamed from the open file (it stays valid even if the blob is removed meanwhile), on
    // this handler thread, never more than a few MiB ahead of the client.
    std::shared_ptr<http::Stream> out = res.defer();
    http::Response head;
    head.status = res.status;
    head.set_header("Content-Type", "application/octet-stream");
    out->begin(std::move(head), range.length);
    if (req.method == "HEAD") {  // the headers only
        out->end();
        return;
    }
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(range.length, 1u << 20)));
    for (uint64_t done = 0; done < range.length;) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), range.length - done));
        ssize_t n;
        do {
            n = ::pread(file->fd, buf.data(), want, static_cast<off_t>(range.first + done));
        } while (n < 0 && errno == EINTR);
        if (n <= 0) break;  // the file shrank or failed: the reply ends short (the connection closes)
        if (!out->write(std::string(buf.data(), static_cast<size_t>(n)))) break;
        done += static_cast<uint64_t>(n);
        if (done < range.length && !out->wait_below(4u << 20)) break;
    }
    out->end();
}

}  // namespace

void register_registry_routes(http::Server& http, ApiEnv& env) {
    auto api_version = [](const http::Request&, http::Response& res) {
        res.set_header(kApiVersionHeader, "registry/2.0");
        res.set_content("{}", "application/json; charset=utf-8");
    };
    http.Get("/v2/", api_version);
    http.Get("/v2", api_version);
    http.Get(R"(/v2/(.+)/manifests/([^/]+))",
             [&env](const http::Request& req, http::Response& res) { serve_manifest(env, req, res); });
    http.Get(R"(/v2/(.+)/blobs/([^/]+))",
             [&env](const http::Request& req, http::Response& res) { serve_blob(env, req, res); });
    http.Get(R"(/v2/.*)", [](const http::Request&, http::Response& res) {
        registry_error(res, 404, "NAME_UNKNOWN", "no such registry endpoint");
    });
    auto read_only = [](const http::Request&, http::Response& res) {
        registry_error(res, 405, "UNSUPPORTED", "this registry is read-only");
    };
    http.Post(R"(/v2/.*)", read_only);
    http.Put(R"(/v2/.*)", read_only);
    http.Patch(R"(/v2/.*)", read_only);
    http.Delete(R"(/v2/.*)", read_only);
}

}  // namespace hearth::server
