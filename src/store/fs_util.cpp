// POSIX file helpers for the store.
#include "store/fs_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace hearth::store::detail {

void throw_errno(const std::string& what, const fs::path& path, int err) {
    throw StoreError(StoreErrorKind::Io, what + " " + path.string() + ": " + std::strerror(err));
}

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Fd open_read(const fs::path& p) {
    int fd;
    do fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT) throw StoreError(StoreErrorKind::NotFound, "no such file: " + p.string());
        throw_errno("cannot open", p, errno);
    }
    return Fd(fd);
}

void write_all(int fd, const void* data, size_t n, uint64_t offset, const fs::path& p) {
    const char* ptr = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::pwrite(fd, ptr, n, static_cast<off_t>(offset));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw_errno("cannot write", p, errno);
        }
        if (w == 0) throw_errno("cannot write", p, EIO);
        ptr += w;
        n -= static_cast<size_t>(w);
        offset += static_cast<uint64_t>(w);
    }
}

size_t pread_some(int fd, void* buf, size_t n, uint64_t offset, const fs::path& p) {
    while (true) {
        ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(offset));
        if (r >= 0) return static_cast<size_t>(r);
        if (errno != EINTR) throw_errno("cannot read", p, errno);
    }
}

void fsync_fd(int fd, const fs::path& p) {
    while (::fsync(fd) != 0) {
        if (errno == EINTR) continue;
        if (errno == EINVAL || errno == EROFS) return;  // not syncable (special files, ro fs)
        throw_errno("cannot fsync", p, errno);
    }
}

void fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

void ensure_dir(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw StoreError(StoreErrorKind::Io, "cannot create directory " + dir.string() + ": " + ec.message());
    if (!fs::is_directory(dir, ec))
        throw StoreError(StoreErrorKind::Io, "not a directory: " + dir.string());
}

std::string random_suffix() {
    thread_local std::mt19937_64 rng = [] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), static_cast<unsigned>(::getpid())};
        return std::mt19937_64(seq);
    }();
    static constexpr char kHex[] = "0123456789abcdef";
    uint64_t v = rng();
    std::string s(16, '0');
    for (int i = 0; i < 16; ++i) s[static_cast<size_t>(i)] = kHex[(v >> (4 * i)) & 15];
    return s;
}

bool rename_noreplace(const fs::path& from, const fs::path& to) {
#ifdef RENAME_NOREPLACE
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
    if (errno == EEXIST) return false;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) throw_errno("cannot rename into", to, errno);
#endif
    // The filesystem has no RENAME_NOREPLACE: link() never replaces either.
    if (::link(from.c_str(), to.c_str()) == 0) {
        ::unlink(from.c_str());
        return true;
    }
    if (errno == EEXIST) return false;
    // No hard links either (some FUSE / network filesystems): check, then rename.
    struct stat st;
    if (::stat(to.c_str(), &st) == 0) return false;
    if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("cannot rename into", to, errno);
    return true;
}

std::string read_file(const fs::path& p, size_t max_bytes) {
    Fd fd = open_read(p);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", p, errno);
    if (S_ISDIR(st.st_mode)) throw StoreError(StoreErrorKind::NotFound, "is a directory: " + p.string());
    if (static_cast<uint64_t>(st.st_size) > max_bytes)
        throw StoreError(StoreErrorKind::Corrupt, p.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
    std::string out;
    char buf[65536];
    uint64_t off = 0;
    while (true) {
        size_t n = pread_some(fd.get(), buf, sizeof buf, off, p);
        if (n == 0) break;
        out.append(buf, n);
        off += n;
        if (out.size() > max_bytes)
            throw StoreError(StoreErrorKind::Corrupt, p.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    return out;
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
    const fs::path dir = path.parent_path();
    fs::path tmp;
    Fd fd;
    for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
        tmp = dir / ("." + path.filename().string() + ".tmp-" + random_suffix());
        int f = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f >= 0) fd = Fd(f);
        else if (errno != EEXIST) throw_errno("cannot create", tmp, errno);
    }
    if (!fd) throw_errno("cannot create", tmp, EEXIST);
    try {
        write_all(fd.get(), bytes.data(), bytes.size(), 0, tmp);
        fsync_fd(fd.get(), tmp);
        fd.reset();
        if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot rename into", path, errno);
    } catch (...) {
        fd.reset();
        ::unlink(tmp.c_str());
        throw;
    }
    fsync_dir(dir);
}

}  // namespace hearth::store::detail
