// Pushing a model from the store to an OCI registry (see registry_client.h): each blob the
// registry lacks goes up as a chunked upload (POST, PATCH with Content-Range, PUT ?digest=),
// then the manifest bytes as stored.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "store/registry_client.h"
#include "store/registry_session.h"

namespace hearth::store {

using detail::HttpRequest;
using detail::HttpResponse;
using detail::Reporter;
using detail::Session;

namespace {

struct FileHandle {
    int fd = -1;
    ~FileHandle() {
        if (fd >= 0) ::close(fd);
    }
};

// The upload URL from a Location header, relative or absolute.
std::string location_of(const Session& s, const HttpResponse& r, const std::string& what) {
    const std::string loc = r.header("location");
    if (loc.empty()) s.fail(what + ": no Location in the answer", r);
    try {
        return detail::resolve_url(r.url, loc);
    } catch (const std::invalid_argument& e) {
        throw RegistryError(what + ": " + e.what());
    }
}

void push_blob(const Store& store, Session& s, Reporter& rep, const Layer& l) {
    const Digest& d = l.digest;
    const std::string status = detail::blob_status("pushing", d);
    const std::string blob_url = s.repo_url() + "/blobs/" + d.str();

    bool exists = false;
    s.retrying("checking blob " + d.str(), [&] {
        HttpRequest q;
        q.method = "HEAD";
        q.url = blob_url;
        const HttpResponse r = s.send(q);
        if (r.status == 200) exists = true;
        else if (r.status != 404) s.fail("checking blob " + d.str(), r);
    });
    if (exists) {
        rep.blob(status, d, l.size, l.size, true);
        return;
    }

    const auto have = store.blob_size(d);
    if (!have) throw StoreError(StoreErrorKind::NotFound, "blob " + d.str() + " not found");
    if (*have != l.size)
        throw StoreError(StoreErrorKind::Corrupt, "blob " + d.str() + " has " + std::to_string(*have) +
                                                      " bytes, the manifest says " + std::to_string(l.size));
    FileHandle f;
    f.fd = ::open(store.blob_path(d).c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) throw StoreError(StoreErrorKind::Io, "cannot open blob " + d.str() + ": " + std::strerror(errno));
    rep.blob(status, d, l.size, 0, true);

    const uint64_t chunk = std::max<uint64_t>(s.opts().upload_chunk, 1);
    s.retrying("uploading blob " + d.str(), [&] {
        // A fresh upload session each try: the registry's state of a failed one is unknown.
        HttpRequest start;
        start.method = "POST";
        start.url = s.repo_url() + "/blobs/uploads/";
        start.follow_redirects = false;
        HttpResponse r = s.send(start);
        if (r.status != 202 && r.status != 201 && r.status != 200) s.fail("starting the upload of " + d.str(), r);
        std::string loc = location_of(s, r, "starting the upload of " + d.str());
        for (uint64_t off = 0; off < l.size;) {
            const uint64_t n = std::min(chunk, l.size - off);
            HttpRequest q;
            q.method = "PATCH";
            q.url = loc;
            q.follow_redirects = false;
            q.headers = {"Content-Type: application/octet-stream",
                         "Content-Range: " + std::to_string(off) + "-" + std::to_string(off + n - 1)};
            q.body_fd = f.fd;
            q.body_offset = off;
            q.body_size = n;
            q.on_upload = [&, off](uint64_t sent) { rep.blob(status, d, l.size, off + sent); };
            r = s.send(q);
            if (r.status < 200 || r.status >= 300) s.fail("uploading blob " + d.str(), r);
            if (!r.header("location").empty()) loc = location_of(s, r, "uploading blob " + d.str());
            off += n;
        }
        HttpRequest fin;
        fin.method = "PUT";
        fin.url = loc + (loc.find('?') == std::string::npos ? "?" : "&") + "digest=" + detail::url_escape(d.str());
        fin.follow_redirects = false;
        fin.headers = {"Content-Type: application/octet-stream"};
        r = s.send(fin);
        if (r.status < 200 || r.status >= 300) s.fail("finishing the upload of " + d.str(), r);
    });
    rep.blob(status, d, l.size, l.size, true);
}

}  // namespace

Digest RegistryClient::push(const ModelName& name, const RegistryProgressFn& progress,
                            const std::atomic<bool>* cancel) const {
    name.validate();
    Reporter rep(progress);
    rep.status("retrieving manifest");
    const std::string bytes = store_.read_manifest_bytes(name);
    const Manifest m = Manifest::parse(bytes);
    Session s(name, opts_, cancel);

    std::set<std::string> seen;
    std::vector<Layer> blobs;
    for (const Layer& l : m.layers)
        if (seen.insert(l.digest.hex).second) blobs.push_back(l);
    if (seen.insert(m.config.digest.hex).second) blobs.push_back(m.config);
    for (const Layer& l : blobs) {
        s.check_cancel();
        push_blob(store_, s, rep, l);
    }

    rep.status("pushing manifest");
    s.retrying("pushing manifest", [&] {
        HttpRequest q;
        q.method = "PUT";
        q.url = s.repo_url() + "/manifests/" + name.tag;
        q.follow_redirects = false;
        std::string type = m.media_type;
        for (char c : type)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) type = std::string(media_type::kManifest);
        q.headers = {"Content-Type: " + type};
        q.body = bytes;
        const HttpResponse r = s.send(q);
        if (r.status < 200 || r.status >= 300) s.fail("pushing manifest", r);
    });
    rep.status("success");
    return Digest::of(bytes);
}

}  // namespace hearth::store
