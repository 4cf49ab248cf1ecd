// Paths the tests use: the shared test data beside the repository, and temp files.
#pragma once

#include <filesystem>
#include <string>
#include <unistd.h>

namespace hearth::test {

inline std::string shared_path(const std::string& rel) { return std::string(HEARTH_SHARED_DIR) + "/" + rel; }

// A fresh directory under the system temp dir, removed when the object goes away.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace hearth::test
