// The store: root resolution, manifests, list / copy / remove, pruning.
#include "store/store.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <vector>

#include "store/fs_util.h"

namespace hearth::store {

namespace fs = std::filesystem;
using detail::Fd;

fs::path default_models_root() {
    if (const char* env = std::getenv("HEARTH_MODELS"); env && *env) return fs::path(env);
    std::string home;
    if (const char* h = std::getenv("HOME"); h && *h) {
        home = h;
    } else {
        struct passwd pw, *result = nullptr;
        std::vector<char> buf(16384);
        if (::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result && result->pw_dir)
            home = result->pw_dir;
    }
    if (home.empty()) throw StoreError(StoreErrorKind::Io, "cannot find the home directory: set HEARTH_MODELS or HOME");
    return fs::path(home) / ".hearth" / "models";
}

Reader fd_reader(int fd) {
    return [fd](char* buf, size_t cap) -> size_t {
        while (true) {
            ssize_t n = ::read(fd, buf, cap);
            if (n >= 0) return static_cast<size_t>(n);
            if (errno != EINTR) detail::throw_errno("cannot read", "fd " + std::to_string(fd), errno);
        }
    };
}

Reader string_reader(std::string_view bytes) {
    auto pos = std::make_shared<size_t>(0);
    return [bytes, pos](char* buf, size_t cap) -> size_t {
        size_t n = std::min(cap, bytes.size() - *pos);
        std::copy_n(bytes.data() + *pos, n, buf);
        *pos += n;
        return n;
    };
}

Store::Store(fs::path root) : root_(std::move(root)), shared_(std::make_shared<Shared>()) {}

Store Store::open_default() { return Store(default_models_root()); }

namespace {

struct ManifestEntry {
    ModelName name;
    fs::path path;
};

std::vector<fs::path> subdirs(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

bool is_temp_name(const std::string& name) { return !name.empty() && name[0] == '.'; }

// Every file at manifests/<host>/<namespace>/<name>/<tag> whose four parts form a valid
// name (temp files and anything else are skipped).
std::vector<ManifestEntry> walk_manifests(const fs::path& manifests) {
    std::vector<ManifestEntry> out;
    for (const fs::path& host : subdirs(manifests))
        for (const fs::path& ns : subdirs(host))
            for (const fs::path& model : subdirs(ns)) {
                std::error_code ec;
                std::vector<fs::path> tags;
                for (fs::directory_iterator it(model, ec), end; !ec && it != end; it.increment(ec))
                    if (it->is_regular_file(ec)) tags.push_back(it->path());
                std::sort(tags.begin(), tags.end());
                for (const fs::path& tag : tags) {
                    if (is_temp_name(tag.filename().string())) continue;
                    ModelName n;
                    n.host = host.filename().string();
                    n.ns = ns.filename().string();
                    n.model = model.filename().string();
                    n.tag = tag.filename().string();
                    if (n.is_valid()) out.push_back({std::move(n), tag});
                }
            }
    return out;
}

// The name of the entry of `dir` equal to `part` ignoring case (exact match first), if any.
std::optional<std::string> find_fold(const fs::path& dir, const std::string& part, bool want_dir) {
    std::error_code ec;
    auto kind_ok = [&](const fs::path& p) { return want_dir ? fs::is_directory(p, ec) : fs::is_regular_file(p, ec); };
    if (kind_ok(dir / part)) return part;
    std::vector<std::string> matches;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (iequals(name, part) && kind_ok(it->path())) matches.push_back(std::move(name));
    }
    if (matches.empty()) return std::nullopt;
    std::sort(matches.begin(), matches.end());
    return matches.front();
}

void remove_empty_parents(fs::path dir, const fs::path& stop) {
    while (dir != stop && dir.string().size() > stop.string().size()) {
        if (::rmdir(dir.c_str()) != 0) return;  // not empty (or gone): stop
        dir = dir.parent_path();
    }
}

// Removes stale manifest temp files (`.<tag>.tmp-<random>` left by a crash) and empty
// directories below `dir` (not `dir` itself); true when `dir` ended empty.
bool clean_manifest_tree(const fs::path& dir, const std::function<bool(const fs::path&)>& stale_temp,
                         PruneReport& report) {
    std::error_code ec;
    bool empty = true;
    std::vector<fs::path> children;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) children.push_back(it->path());
    if (ec) return false;
    for (const fs::path& c : children) {
        const auto st = fs::symlink_status(c, ec);
        if (fs::is_directory(st)) {
            if (clean_manifest_tree(c, stale_temp, report) && ::rmdir(c.c_str()) == 0) continue;
        } else if (fs::is_regular_file(st) && c.filename().string().starts_with(".") &&
                   c.filename().string().find(".tmp-") != std::string::npos && stale_temp(c)) {
            if (::unlink(c.c_str()) == 0) {
                report.removed_manifest_temps.push_back(c.string());
                continue;
            }
        }
        empty = false;
    }
    return empty;
}

std::string not_found(const ModelName& n) { return "model \"" + n.display() + "\" not found"; }

}  // namespace

// ---- Manifests

fs::path Store::manifest_path(const ModelName& name) const { return manifests_dir() / name.manifest_relpath(); }

fs::path Store::manifest_file(const ModelName& resolved) const { return manifests_dir() / resolved.manifest_relpath(); }

ModelName Store::resolve(const ModelName& name) const {
    name.validate();
    ModelName out = name;
    std::string* parts[] = {&out.host, &out.ns, &out.model, &out.tag};
    fs::path dir = manifests_dir();
    for (int i = 0; i < 4; ++i) {
        auto found = find_fold(dir, *parts[i], i < 3);
        if (!found) break;
        *parts[i] = *found;
        dir /= *found;
    }
    out.validate();
    return out;
}

bool Store::has_model(const ModelName& name) const {
    std::error_code ec;
    return fs::is_regular_file(manifest_file(resolve(name)), ec);
}

std::string Store::read_manifest_bytes(const ModelName& name) const {
    const ModelName r = resolve(name);
    try {
        return detail::read_file(manifest_file(r), 64u << 20);
    } catch (const StoreError& e) {
        if (e.kind() == StoreErrorKind::NotFound) throw StoreError(StoreErrorKind::NotFound, not_found(name));
        throw;
    }
}

Manifest Store::read_manifest(const ModelName& name) const {
    std::string bytes = read_manifest_bytes(name);
    try {
        return Manifest::parse(bytes);
    } catch (const StoreError& e) {
        throw StoreError(StoreErrorKind::Corrupt, "model \"" + name.display() + "\": " + e.what());
    }
}

std::optional<Manifest> Store::find_manifest(const ModelName& name) const {
    try {
        return read_manifest(name);
    } catch (const StoreError& e) {
        if (e.kind() == StoreErrorKind::NotFound) return std::nullopt;
        throw;
    }
}

Digest Store::write_manifest_locked(const ModelName& name, std::string_view bytes, const Manifest& m,
                                    bool check_blobs) const {
    const ModelName r = resolve(name);
    if (check_blobs) {
        auto check = [&](const Layer& l) {
            auto size = blob_size(l.digest);
            if (!size)
                throw StoreError(StoreErrorKind::NotFound, "manifest for \"" + name.display() + "\" references " +
                                                               l.digest.str() + ", which is not in the store");
            if (*size != l.size)
                throw StoreError(StoreErrorKind::Corrupt, "manifest for \"" + name.display() + "\" gives " +
                                                              l.digest.str() + " the size " + std::to_string(l.size) +
                                                              " but the blob has " + std::to_string(*size) + " bytes");
        };
        check(m.config);
        for (const Layer& l : m.layers) check(l);
    }
    const fs::path path = manifest_file(r);
    detail::ensure_dir(path.parent_path());
    detail::write_file_atomic(path, bytes);
    return Digest::of(bytes);
}

Digest Store::write_manifest(const ModelName& name, const Manifest& m, bool check_blobs) const {
    name.validate();
    const std::string bytes = m.to_json();
    std::lock_guard lock(shared_->mu);
    return write_manifest_locked(name, bytes, m, check_blobs);
}

Digest Store::write_manifest_bytes(const ModelName& name, std::string_view bytes, bool check_blobs) const {
    name.validate();
    const Manifest m = Manifest::parse(bytes);
    std::lock_guard lock(shared_->mu);
    return write_manifest_locked(name, bytes, m, check_blobs);
}

std::vector<ModelInfo> Store::list() const {
    std::vector<ModelInfo> out;
    for (ManifestEntry& e : walk_manifests(manifests_dir())) {
        std::string bytes;
        Manifest m;
        try {
            bytes = detail::read_file(e.path, 64u << 20);
            m = Manifest::parse(bytes);
        } catch (const StoreError&) {
            continue;
        }
        std::error_code ec;
        auto mtime = fs::last_write_time(e.path, ec);
        if (ec) continue;
        const uint64_t size = m.total_size();
        out.push_back(ModelInfo{std::move(e.name), Digest::of(bytes), size, mtime, std::move(m)});
    }
    std::sort(out.begin(), out.end(), [](const ModelInfo& a, const ModelInfo& b) {
        if (a.modified != b.modified) return a.modified > b.modified;
        return a.name.full() < b.name.full();
    });
    return out;
}

void Store::copy(const ModelName& from, const ModelName& to) const {
    from.validate();
    to.validate();
    std::lock_guard lock(shared_->mu);
    const std::string bytes = read_manifest_bytes(from);
    Manifest m;
    try {
        m = Manifest::parse(bytes);
    } catch (const StoreError& e) {
        throw StoreError(StoreErrorKind::Corrupt, "model \"" + from.display() + "\": " + e.what());
    }
    write_manifest_locked(to, bytes, m, /*check_blobs=*/false);
}

PruneReport Store::remove(const ModelName& name) const {
    name.validate();
    std::lock_guard lock(shared_->mu);
    const ModelName r = resolve(name);
    const fs::path path = manifest_file(r);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) throw StoreError(StoreErrorKind::NotFound, not_found(name));
    if (::unlink(path.c_str()) != 0) detail::throw_errno("cannot remove", path, errno);
    detail::fsync_dir(path.parent_path());
    remove_empty_parents(path.parent_path(), manifests_dir());
    PruneReport report;
    PruneOptions opts;
    opts.unreferenced_blobs = true;
    opts.empty_manifest_dirs = false;
    opts.partial_max_age = std::chrono::seconds::max();
    opts.temp_max_age = std::chrono::seconds::max();
    collect_garbage(opts, report);
    return report;
}

// ---- Pruning

void Store::collect_garbage(const PruneOptions& opts, PruneReport& report) const {
    // Everything any manifest references. A manifest that cannot be read makes blob removal
    // unsafe: it is reported and no blob is removed.
    std::set<std::string> referenced;
    bool complete = true;
    for (const ManifestEntry& e : walk_manifests(manifests_dir())) {
        try {
            const Manifest m = Manifest::parse(detail::read_file(e.path, 64u << 20));
            for (const Digest& d : m.digests()) referenced.insert(d.hex);
        } catch (const StoreError& err) {
            complete = false;
            report.errors.push_back(e.path.string() + ": " + err.what() + " (no blobs removed)");
        }
    }

    const auto now = fs::file_time_type::clock::now();
    auto older_than = [&](const fs::path& p, std::chrono::seconds age) {
        if (age == std::chrono::seconds::max()) return false;
        std::error_code ec;
        auto t = fs::last_write_time(p, ec);
        return !ec && now - t > age;
    };

    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(blobs_dir(), ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec)) files.push_back(it->path());
    std::sort(files.begin(), files.end());

    for (const fs::path& p : files) {
        const std::string name = p.filename().string();
        std::error_code size_ec;
        const uint64_t size = fs::file_size(p, size_ec);
        if (auto d = Digest::from_blob_name(name)) {
            if (!opts.unreferenced_blobs || !complete || referenced.count(d->hex) || shared_->pins.count(d->hex)) continue;
            if (::unlink(p.c_str()) == 0) {
                report.removed_blobs.push_back(*d);
                report.bytes_freed += size_ec ? 0 : size;
            } else {
                report.errors.push_back("cannot remove " + p.string() + ": " + std::strerror(errno));
            }
            continue;
        }
        // sha256-<hex>-partial (resumable) and its .prefix marker, or sha256-<hex>-partial-<suffix>
        // (temporary).
        constexpr size_t kBlobNameLen = 7 + 64;
        if (name.size() < kBlobNameLen + 8 || !Digest::from_blob_name(name.substr(0, kBlobNameLen))) continue;
        const std::string rest = name.substr(kBlobNameLen);
        std::chrono::seconds max_age;
        if (rest == "-partial" || rest == "-partial.prefix") max_age = opts.partial_max_age;
        else if (rest.starts_with("-partial-")) max_age = opts.temp_max_age;
        else continue;
        if (!older_than(p, max_age)) continue;
        if (::unlink(p.c_str()) == 0) {
            report.removed_partials.push_back(name);
            report.bytes_freed += size_ec ? 0 : size;
        } else {
            report.errors.push_back("cannot remove " + p.string() + ": " + std::strerror(errno));
        }
    }
    if (!report.removed_blobs.empty() || !report.removed_partials.empty()) detail::fsync_dir(blobs_dir());
    if (opts.empty_manifest_dirs)
        clean_manifest_tree(manifests_dir(), [&](const fs::path& p) { return older_than(p, opts.temp_max_age); }, report);
}

PruneReport Store::prune(const PruneOptions& opts) const {
    std::lock_guard lock(shared_->mu);
    PruneReport report;
    collect_garbage(opts, report);
    return report;
}

PruneReport Store::prune_at_start(const PruneOptions& opts) const {
    if (const char* v = std::getenv("HEARTH_NOPRUNE"); v && *v) {
        PruneReport report;
        report.skipped = true;
        return report;
    }
    return prune(opts);
}

}  // namespace hearth::store
