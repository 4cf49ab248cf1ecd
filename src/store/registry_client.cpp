// Pulling a model from an OCI registry into the store (see registry_client.h): manifest,
// then each missing blob, resumed with Range and, when big, fetched as parallel ranges.
#include "store/registry_client.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <set>
#include <thread>

#include "store/registry_session.h"

namespace hearth::store {

using detail::HttpRequest;
using detail::HttpResponse;
using detail::Reporter;
using detail::Session;
using detail::TransportError;

namespace {

// "bytes <first>-<last>/<total|*>" -> first, last, total (nullopt when "*").
struct ContentRange {
    uint64_t first = 0, last = 0;
    std::optional<uint64_t> total;
};

std::optional<uint64_t> parse_u64(std::string_view s) {
    if (s.empty() || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

std::optional<ContentRange> parse_content_range(std::string_view s) {
    if (s.substr(0, 6) != "bytes ") return std::nullopt;
    s.remove_prefix(6);
    const size_t dash = s.find('-'), slash = s.find('/');
    if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
    auto first = parse_u64(s.substr(0, dash)), last = parse_u64(s.substr(dash + 1, slash - dash - 1));
    if (!first || !last || *last < *first) return std::nullopt;
    ContentRange r{*first, *last, std::nullopt};
    if (s.substr(slash + 1) != "*") {
        r.total = parse_u64(s.substr(slash + 1));
        if (!r.total) return std::nullopt;
    }
    return r;
}

// A 206 must answer exactly the range asked for (from `from`, within a `size`-byte blob).
void check_partial(const HttpResponse& r, const Digest& d, uint64_t from, uint64_t size) {
    const auto cr = parse_content_range(r.header("content-range"));
    if (!cr || cr->first != from || cr->last >= size || (cr->total && *cr->total != size))
        throw RegistryError("blob " + d.str() + ": the registry answered bytes=" + std::to_string(from) +
                            "- with Content-Range \"" + r.header("content-range").substr(0, 100) + "\"");
}

// Blobs of a manifest in Ollama's order (layers, then config), each once.
std::vector<Layer> blobs_of(const Manifest& m) {
    std::vector<Layer> out;
    std::set<std::string> seen;
    for (const Layer& l : m.layers)
        if (seen.insert(l.digest.hex).second) out.push_back(l);
    if (seen.insert(m.config.digest.hex).second) out.push_back(m.config);
    return out;
}

constexpr uint64_t kMaxBlobSize = 1ull << 42;  // 4 TiB: anything larger is a bogus manifest

class Puller {
public:
    Puller(const Store& store, Session& s, Reporter& rep) : store_(store), s_(s), rep_(rep) {}

    // Makes the blob present; returns the bytes downloaded.
    uint64_t fetch(const Layer& l) {
        const Digest& d = l.digest;
        const std::string status = detail::blob_status("pulling", d);
        if (auto have = store_.blob_size(d)) {
            if (*have != l.size)
                throw RegistryError("blob " + d.str() + " has " + std::to_string(*have) + " bytes, the manifest says " +
                                    std::to_string(l.size));
            rep_.blob(status, d, l.size, l.size, true);
            return 0;
        }
        const std::string url = s_.repo_url() + "/blobs/" + d.str();
        const auto& o = s_.opts();
        uint64_t downloaded = 0;
        for (bool resumed_once = false;;) {
            BlobWriter w = store_.resume_blob(d, l.size);
            if (w.already_present()) {
                rep_.blob(status, d, l.size, l.size, true);
                return downloaded;
            }
            const uint64_t start = w.offset();
            rep_.blob(status, d, l.size, start, true);
            try {
                if (l.size - start > o.parallel_threshold && o.max_parts > 1) fetch_parts(w, l, url, status);
                fetch_sequential(w, l, url, status);
                w.commit();
            } catch (const StoreError& e) {
                // Wrong bytes (too many, or not hashing to the digest): the writer dropped them.
                if (e.kind() != StoreErrorKind::DigestMismatch) throw;
                // When a partial file was resumed, its bytes may be what was wrong (a crash or
                // power loss can leave a partial file that is not a prefix of the blob): start
                // over from nothing, once.
                if (start > 0 && !resumed_once) {
                    resumed_once = true;
                    downloaded += l.size - start;
                    continue;
                }
                throw RegistryError(std::string("downloaded ") + e.what());
            }
            rep_.blob(status, d, l.size, l.size, true);
            return downloaded + l.size - start;
        }
    }

private:
    const Store& store_;
    Session& s_;
    Reporter& rep_;

    void fetch_sequential(BlobWriter& w, const Layer& l, const std::string& url, const std::string& status) {
        const Digest& d = l.digest;
        s_.retrying("downloading blob " + d.str(), [&] {
            const uint64_t from = w.offset();
            if (from == l.size) return;
            HttpRequest q;
            q.url = url;
            if (from > 0) q.headers.push_back("Range: bytes=" + std::to_string(from) + "-");
            q.on_start = [&](const HttpResponse& r) {
                if (r.status == 206) {
                    check_partial(r, d, from, l.size);
                } else if (r.status == 200 && from > 0) {
                    // The server ignored the Range: start the partial over.
                    w.abort(true);
                    w = store_.resume_blob(d, l.size);
                } else if (r.status != 200) {
                    throw RegistryError("blob " + d.str() + ": unexpected status " + std::to_string(r.status));
                }
            };
            q.sink = [&](const char* p, size_t n) {
                w.write(p, n);  // more bytes than the manifest's size: DigestMismatch, partial removed
                rep_.blob(status, d, l.size, w.offset());
            };
            const HttpResponse r = s_.send(q);
            if (r.status != 200 && r.status != 206) s_.fail("downloading blob " + d.str(), r);
            if (w.offset() < l.size)
                throw TransportError("blob " + d.str() + " truncated: got " + std::to_string(w.offset()) + " of " +
                                     std::to_string(l.size) + " bytes");
        });
    }

    // Fetches the rest of the blob as parallel ranges. On failure the partial keeps the
    // complete prefix (for a later resume) and the error is thrown; a server that ignores
    // Range leaves the rest to fetch_sequential.
    void fetch_parts(BlobWriter& w, const Layer& l, const std::string& url, const std::string& status) {
        const Digest& d = l.digest;
        const auto& o = s_.opts();
        const uint64_t start = w.offset(), remaining = l.size - start;
        const uint64_t n = std::clamp<uint64_t>(remaining / std::max<uint64_t>(o.min_part_size, 1), 1,
                                                static_cast<uint64_t>(o.max_parts));
        if (n < 2) return;
        struct Part {
            uint64_t begin = 0, end = 0;
            std::atomic<uint64_t> done{0};
            std::exception_ptr error;
            bool no_range = false;
            bool real_error = false;  // not a cancellation caused by another part
        };
        std::vector<std::unique_ptr<Part>> parts;
        const uint64_t len = (remaining + n - 1) / n;
        for (uint64_t b = start; b < l.size; b += len) {
            auto p = std::make_unique<Part>();
            p->begin = b;
            p->end = std::min(b + len, l.size);
            parts.push_back(std::move(p));
        }
        std::atomic<bool> stop{false};
        std::atomic<size_t> finished{0};
        auto stopped = [&stop] { return stop.load(); };
        std::vector<std::thread> threads;
        for (auto& up : parts) {
            Part* p = up.get();
            threads.emplace_back([&, p] {
                try {
                    s_.retrying(
                        "downloading blob " + d.str(),
                        [&] {
                            const uint64_t from = p->begin + p->done;
                            if (from == p->end) return;
                            uint64_t pos = from;
                            HttpRequest q;
                            q.url = url;
                            q.headers.push_back("Range: bytes=" + std::to_string(from) + "-" + std::to_string(p->end - 1));
                            q.cancelled = stopped;
                            q.on_start = [&](const HttpResponse& r) {
                                if (r.status != 206) {
                                    p->no_range = true;
                                    throw RegistryError("the registry ignores Range");
                                }
                                check_partial(r, d, from, l.size);
                            };
                            q.sink = [&](const char* data, size_t k) {
                                if (pos + k > p->end)
                                    throw RegistryError("blob " + d.str() + ": more bytes than the range asked for");
                                w.write_at(pos, data, k);
                                pos += k;
                                p->done += k;
                            };
                            const HttpResponse r = s_.send(q);
                            if (r.status < 200 || r.status >= 300)
                                s_.fail("downloading blob " + d.str(), r);
                            if (pos < p->end)
                                throw TransportError("blob " + d.str() + " part truncated at " + std::to_string(pos));
                        },
                        stopped);
                } catch (const RegistryError& e) {
                    p->error = std::current_exception();
                    p->real_error = !e.cancelled() || s_.cancelled();
                    stop = true;
                } catch (...) {
                    p->error = std::current_exception();
                    p->real_error = true;
                    stop = true;
                }
                ++finished;
            });
        }
        // The complete prefix: parts in order while complete, plus the first incomplete
        // part's bytes.
        auto complete_prefix = [&] {
            uint64_t prefix = start;
            for (auto& p : parts) {
                const uint64_t done = p->done.load();
                prefix += done;
                if (p->begin + done < p->end) break;
            }
            return prefix;
        };
        for (int tick = 1; finished.load() < threads.size(); ++tick) {
            uint64_t done = start;
            for (auto& p : parts) done += p->done;
            rep_.blob(status, d, l.size, done);
            // Twice a second, so that a crash keeps what is already complete.
            if (tick % 10 == 0) {
                try {
                    w.checkpoint(complete_prefix());
                } catch (const StoreError&) {  // only a crash would miss it: carry on
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        for (auto& t : threads) t.join();

        // Keep the complete prefix.
        w.complete_prefix(complete_prefix());
        std::exception_ptr first;
        bool any_error = false, any_no_range = false;
        for (auto& p : parts) {
            if (!p->error) continue;
            any_error = true;
            if (p->no_range) any_no_range = true;
            else if (p->real_error && !first) first = p->error;
        }
        if (s_.cancelled()) throw RegistryError("cancelled", 0, {}, true);
        if (first) std::rethrow_exception(first);
        if (any_error && !any_no_range) throw RegistryError("downloading blob " + d.str() + " failed");
        // All done, or the registry ignores Range: fetch_sequential continues from `prefix`.
    }
};

}  // namespace

RegistryClient::RegistryClient(Store store, RegistryOptions options) : store_(std::move(store)), opts_(std::move(options)) {}

std::string RegistryClient::repository_url(const ModelName& name) const {
    return detail::repository_url(name, opts_.insecure);
}

PullResult RegistryClient::pull(const ModelName& name, const RegistryProgressFn& progress,
                                const std::atomic<bool>* cancel) const {
    name.validate();  // before anything touches the network or the disk
    Session s(name, opts_, cancel);
    Reporter rep(progress);
    rep.status("pulling manifest");

    const std::string url = s.repo_url() + "/manifests/" + name.tag;
    HttpResponse mr;
    s.retrying("pulling manifest", [&] {
        HttpRequest q;
        q.url = url;
        q.headers.push_back("Accept: " + std::string(media_type::kManifest));
        q.max_body = opts_.max_manifest_bytes;
        mr = s.send(q);
        if (mr.status != 200) s.fail("pull model manifest", mr);
    });
    PullResult out;
    try {
        out.manifest = Manifest::parse(mr.body);
    } catch (const StoreError& e) {
        throw RegistryError("invalid manifest from " + url + ": " + e.what());
    }
    out.manifest_digest = Digest::of(mr.body);
    if (const std::string h = mr.header("docker-content-digest"); !h.empty() && h != out.manifest_digest.str())
        throw RegistryError("manifest from " + url + ": the bytes hash to " + out.manifest_digest.str() +
                            ", the registry says " + h.substr(0, 100));
    const std::vector<Layer> blobs = blobs_of(out.manifest);
    for (const Layer& l : blobs)
        if (l.size > kMaxBlobSize)
            throw RegistryError("invalid manifest from " + url + ": blob " + l.digest.str() + " claims " +
                                std::to_string(l.size) + " bytes");

    std::vector<Store::Pin> pins;  // keeps fetched blobs from a concurrent prune until the manifest exists
    Puller puller(store_, s, rep);
    for (const Layer& l : blobs) {
        s.check_cancel();
        pins.push_back(store_.pin(l.digest));
        out.downloaded += puller.fetch(l);
    }
    rep.status("verifying sha256 digest");
    for (const Layer& l : blobs) {
        const auto have = store_.blob_size(l.digest);
        if (!have || *have != l.size) throw RegistryError("blob " + l.digest.str() + " is missing after the download");
    }
    s.check_cancel();
    rep.status("writing manifest");
    store_.write_manifest_bytes(name, mr.body, true);
    rep.status("success");
    return out;
}

}  // namespace hearth::store
