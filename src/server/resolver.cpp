#include "server/resolver.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace hearth::server {

namespace fs = std::filesystem;

std::string strip_latest_tag(const std::string& name) {
    static const std::string kLatest = ":latest";
    if (name.size() > kLatest.size() && name.compare(name.size() - kLatest.size(), kLatest.size(), kLatest) == 0)
        return name.substr(0, name.size() - kLatest.size());
    return name;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_regular(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);  // follows symlinks
}

std::chrono::system_clock::time_point modified_time(const fs::path& p) {
    std::error_code ec;
    const auto t = fs::last_write_time(p, ec);
    if (ec) return {};
    return std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::file_clock::to_sys(t));
}

}  // namespace

ModelResolver directory_resolver(std::string dir) {
    ModelResolver r;
    r.resolve = [dir](const std::string& requested) -> std::optional<ResolvedModel> {
        if (requested.empty()) return std::nullopt;
        if (ends_with(requested, ".gguf") && is_regular(requested)) {
            std::error_code ec;
            const fs::path canon = fs::weakly_canonical(requested, ec);
            ResolvedModel m;
            m.name = requested;
            m.path = ec ? requested : canon.string();
            return m;
        }
        if (dir.empty()) return std::nullopt;
        const std::string name = strip_latest_tag(requested);
        if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos || name.find("..") != std::string::npos ||
            name.front() == '.')
            return std::nullopt;
        for (const fs::path& p : {fs::path(dir) / (name + ".gguf"), fs::path(dir) / name}) {
            if (is_regular(p)) {
                ResolvedModel m;
                m.name = ends_with(name, ".gguf") ? name.substr(0, name.size() - 5) : name;
                m.path = p.string();
                return m;
            }
        }
        return std::nullopt;
    };
    r.list = [dir]() {
        std::vector<ModelEntry> out;
        if (dir.empty()) return out;
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            const fs::path p = it->path();
            if (p.extension() != ".gguf" || !is_regular(p)) continue;
            ModelEntry e;
            e.name = p.stem().string() + ":latest";
            e.path = p.string();
            std::error_code ec2;
            e.size = static_cast<uint64_t>(fs::file_size(p, ec2));
            e.modified = modified_time(p);
            out.push_back(std::move(e));
        }
        std::sort(out.begin(), out.end(), [](const ModelEntry& a, const ModelEntry& b) { return a.name < b.name; });
        return out;
    };
    return r;
}

}  // namespace hearth::server
