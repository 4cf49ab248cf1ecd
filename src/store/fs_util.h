// Internal to store/: POSIX file helpers (errno-checked, EINTR-safe) and the state a Store
// shares between its copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include "store/store.h"

namespace hearth::store::detail {

namespace fs = std::filesystem;

// Throws StoreError(Io): "<what> <path>: <strerror(err)>".
[[noreturn]] void throw_errno(const std::string& what, const fs::path& path, int err);

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset();

private:
    int fd_ = -1;
};

Fd open_read(const fs::path& p);  // throws StoreError(NotFound) when missing, Io otherwise
void write_all(int fd, const void* data, size_t n, uint64_t offset, const fs::path& p);
size_t pread_some(int fd, void* buf, size_t n, uint64_t offset, const fs::path& p);  // 0 at end
void fsync_fd(int fd, const fs::path& p);
void fsync_dir(const fs::path& dir);  // best effort
void ensure_dir(const fs::path& dir);
std::string random_suffix();  // 16 hex digits
// Renames without replacing an existing target. True when renamed; false when the target
// already existed (the source is left in place).
bool rename_noreplace(const fs::path& from, const fs::path& to);
// Reads a whole (small) file; NotFound when it does not exist.
std::string read_file(const fs::path& p, size_t max_bytes);
// Writes a file atomically: `dir/.<name>.tmp-<random>`, fsync, rename over `path`, fsync dir.
void write_file_atomic(const fs::path& path, std::string_view bytes);

}  // namespace hearth::store::detail

namespace hearth::store {

// What copies of a Store share: the in-process lock around manifest changes and garbage
// collection, and the pinned digests garbage collection must keep.
struct Store::Shared {
    std::mutex mu;
    std::multiset<std::string> pins;  // digest hex
};

struct Store::Pin::State {
    std::shared_ptr<Store::Shared> shared;
    std::string hex;
    ~State();
};

}  // namespace hearth::store
