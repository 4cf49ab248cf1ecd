// Blobs: verified, atomic, resumable writes; import; size / verify.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <vector>

#include "store/fs_util.h"
#include "store/store.h"

namespace hearth::store {

namespace fs = std::filesystem;
using detail::Fd;

namespace {

constexpr size_t kChunk = 1u << 20;

// The store's own check: a Digest is a plain struct, so validate before building a path.
const Digest& checked(const Digest& d) {
    if (!Digest::try_parse("sha256:" + d.hex))
        throw StoreError(StoreErrorKind::InvalidDigest, "invalid digest \"sha256:" + d.hex.substr(0, 80) +
                                                            "\": expected sha256:<64 lowercase hex digits>");
    return d;
}

// Beside a resumable `sha256-<hex>-partial` while write_at() has put bytes past its complete
// prefix: `sha256-<hex>-partial.prefix`, the prefix's length in decimal. A resume after a crash
// cuts the partial file there (the bytes after it are not known to be contiguous).
fs::path prefix_marker(const fs::path& partial) { return partial.string() + ".prefix"; }

// Writes the marker: O_TRUNC then one small write, so a torn or empty file only ever reads as a
// shorter number or as nothing (0), both safe.
void write_prefix_marker(const fs::path& partial, uint64_t n) {
    const fs::path marker = prefix_marker(partial);
    int raw = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (raw < 0) detail::throw_errno("cannot create", marker, errno);
    Fd fd(raw);
    const std::string text = std::to_string(n);
    detail::write_all(fd.get(), text.data(), text.size(), 0, marker);
    detail::fsync_fd(fd.get(), marker);
}

// The complete prefix a marker records; 0 when it cannot be read.
uint64_t read_prefix_marker(const fs::path& marker) {
    std::string text;
    try {
        text = detail::read_file(marker, 64);
    } catch (const StoreError&) {
        return 0;
    }
    if (text.empty() || text.size() > 19) return 0;
    uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return 0;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

// Hashes a whole file through fd (from offset 0); returns the byte count.
uint64_t hash_fd(int fd, Sha256& h, const fs::path& p) {
    std::vector<char> buf(kChunk);
    uint64_t off = 0;
    while (true) {
        size_t n = detail::pread_some(fd, buf.data(), buf.size(), off, p);
        if (n == 0) return off;
        h.update(buf.data(), n);
        off += n;
    }
}

}  // namespace

// ---- BlobWriter

struct BlobWriter::Impl {
    Digest digest;
    fs::path blobs_dir;
    fs::path final_path;
    fs::path temp_path;  // empty when the blob was already present
    std::optional<uint64_t> expected_size;
    bool resumable = false;
    bool present = false;
    bool done = false;    // committed or aborted
    bool failed = false;  // a write failed: only abort remains
    Fd fd;
    Sha256 hash;
    uint64_t offset = 0;
    // write_at() put bytes past offset() and complete_prefix() has not cut them off yet: the
    // prefix marker exists (see prefix_marker). Set under parts_mu.
    std::atomic<bool> scattered{false};
    std::mutex parts_mu;

    void remove_marker() {
        if (scattered.exchange(false)) ::unlink(prefix_marker(temp_path).c_str());
    }

    void remove_temp() {
        // Unlink while still holding the descriptor: a resumable file's lock must not be
        // released while the file is still at its path.
        if (!temp_path.empty() && fd) {
            remove_marker();
            ::unlink(temp_path.c_str());
        }
        fd.reset();
    }

    [[noreturn]] void mismatch(const std::string& why) {
        remove_temp();
        done = true;
        throw StoreError(StoreErrorKind::DigestMismatch, "blob " + digest.str() + ": " + why);
    }
};

BlobWriter::BlobWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
    if (this != &o) {
        if (impl_) {
            try {
                abort();
            } catch (...) {
            }
        }
        impl_ = std::move(o.impl_);
    }
    return *this;
}

BlobWriter::~BlobWriter() {
    if (!impl_) return;
    try {
        abort();
    } catch (...) {
    }
}

const Digest& BlobWriter::digest() const { return impl_->digest; }
bool BlobWriter::already_present() const { return impl_->present; }
uint64_t BlobWriter::offset() const { return impl_->offset; }
const fs::path& BlobWriter::temp_path() const { return impl_->temp_path; }

void BlobWriter::write(const void* data, size_t n) {
    Impl& w = *impl_;
    if (w.done) throw std::logic_error("BlobWriter::write after commit or abort");
    if (w.failed) throw StoreError(StoreErrorKind::Io, "blob " + w.digest.str() + ": an earlier write failed");
    if (w.present || n == 0) return;
    if (w.expected_size && w.offset + n > *w.expected_size)
        w.mismatch("more than the expected " + std::to_string(*w.expected_size) + " bytes");
    try {
        detail::write_all(w.fd.get(), data, n, w.offset, w.temp_path);
    } catch (...) {
        w.failed = true;
        throw;
    }
    w.hash.update(data, n);
    w.offset += n;
}

uint64_t BlobWriter::write_from(const Reader& reader) {
    if (impl_->done) throw std::logic_error("BlobWriter::write_from after commit or abort");
    if (impl_->present) return 0;
    std::vector<char> buf(kChunk);
    uint64_t total = 0;
    while (true) {
        size_t n = reader(buf.data(), buf.size());
        if (n == 0) return total;
        if (n > buf.size()) throw std::logic_error("Reader returned more bytes than asked for");
        write(buf.data(), n);
        total += n;
    }
}

uint64_t BlobWriter::commit() {
    Impl& w = *impl_;
    if (w.done) throw std::logic_error("BlobWriter::commit after commit or abort");
    if (w.present) {
        w.done = true;
        struct stat st;
        if (::stat(w.final_path.c_str(), &st) != 0) detail::throw_errno("cannot stat", w.final_path, errno);
        return static_cast<uint64_t>(st.st_size);
    }
    if (w.failed) {
        w.remove_temp();
        w.done = true;
        throw StoreError(StoreErrorKind::Io, "blob " + w.digest.str() + ": an earlier write failed");
    }
    if (w.expected_size && w.offset != *w.expected_size)
        w.mismatch("got " + std::to_string(w.offset) + " bytes, expected " + std::to_string(*w.expected_size));
    const std::string got = w.hash.hex_final();
    if (got != w.digest.hex) w.mismatch("the bytes hash to sha256:" + got);
    try {
        detail::fsync_fd(w.fd.get(), w.temp_path);
        // A concurrent writer may have finished the same blob: keep theirs, drop ours. The
        // descriptor (and a resumable file's lock) is held until the file has left its path.
        if (!detail::rename_noreplace(w.temp_path, w.final_path)) ::unlink(w.temp_path.c_str());
        w.remove_marker();
        w.fd.reset();
    } catch (...) {
        w.remove_temp();
        w.done = true;
        throw;
    }
    detail::fsync_dir(w.blobs_dir);
    w.done = true;
    return w.offset;
}

void BlobWriter::abort(bool discard_partial) {
    Impl& w = *impl_;
    if (w.done) return;
    w.done = true;
    if (w.present) return;
    if (w.resumable && !discard_partial) {
        // Keep what was written for a later resume; make it durable first.
        if (w.fd) (void)::fsync(w.fd.get());
        w.fd.reset();
        return;
    }
    w.remove_temp();
}

void BlobWriter::write_at(uint64_t off, const void* data, size_t n) {
    Impl& w = *impl_;
    if (w.done) throw std::logic_error("BlobWriter::write_at after commit or abort");
    if (!w.resumable || !w.expected_size) throw std::logic_error("BlobWriter::write_at needs a resumable writer with a size");
    if (w.present || n == 0) return;
    if (off < w.offset || off + n > *w.expected_size)
        throw StoreError(StoreErrorKind::DigestMismatch, "blob " + w.digest.str() + ": bytes " + std::to_string(off) + "+" +
                                                             std::to_string(n) + " lie outside the " +
                                                             std::to_string(*w.expected_size) + "-byte blob");
    if (!w.scattered.load()) {
        // From here the file is no longer a prefix of the blob: should the process die before
        // complete_prefix(), the marker tells the next resume where the prefix ends.
        std::lock_guard lk(w.parts_mu);
        if (!w.scattered.load()) {
            write_prefix_marker(w.temp_path, w.offset);
            w.scattered = true;
        }
    }
    detail::write_all(w.fd.get(), data, n, off, w.temp_path);
}

void BlobWriter::checkpoint(uint64_t n) {
    Impl& w = *impl_;
    if (w.done) throw std::logic_error("BlobWriter::checkpoint after commit or abort");
    if (w.present) return;
    if (n < w.offset || (w.expected_size && n > *w.expected_size))
        throw std::logic_error("BlobWriter::checkpoint outside offset()..size");
    std::lock_guard lk(w.parts_mu);
    if (w.scattered.load()) write_prefix_marker(w.temp_path, n);
}

void BlobWriter::complete_prefix(uint64_t n) {
    Impl& w = *impl_;
    if (w.done) throw std::logic_error("BlobWriter::complete_prefix after commit or abort");
    if (w.present) return;
    if (n < w.offset || (w.expected_size && n > *w.expected_size))
        throw std::logic_error("BlobWriter::complete_prefix outside offset()..size");
    if (::ftruncate(w.fd.get(), static_cast<off_t>(n)) != 0) detail::throw_errno("cannot truncate", w.temp_path, errno);
    std::vector<char> buf(kChunk);
    while (w.offset < n) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - w.offset));
        const size_t got = detail::pread_some(w.fd.get(), buf.data(), want, w.offset, w.temp_path);
        if (got == 0) detail::throw_errno("unexpected end of", w.temp_path, EIO);
        w.hash.update(buf.data(), got);
        w.offset += got;
    }
    // A prefix again: the marker goes (after the cut, so a crash in between keeps it safe).
    std::lock_guard lk(w.parts_mu);
    w.remove_marker();
}

// ---- Store: blobs

fs::path Store::blob_path(const Digest& d) const { return blobs_dir() / checked(d).blob_name(); }

bool Store::has_blob(const Digest& d) const {
    struct stat st;
    return ::stat(blob_path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::optional<uint64_t> Store::blob_size(const Digest& d) const {
    struct stat st;
    if (::stat(blob_path(d).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return static_cast<uint64_t>(st.st_size);
}

bool Store::verify_blob(const Digest& d) const {
    const fs::path p = blob_path(d);
    Fd fd;
    try {
        fd = detail::open_read(p);
    } catch (const StoreError& e) {
        if (e.kind() == StoreErrorKind::NotFound) return false;
        throw;
    }
    Sha256 h;
    hash_fd(fd.get(), h, p);
    return h.hex_final() == d.hex;
}

BlobWriter Store::begin_blob(const Digest& expected, std::optional<uint64_t> expected_size) const {
    auto w = std::make_unique<BlobWriter::Impl>();
    w->digest = checked(expected);
    w->blobs_dir = blobs_dir();
    w->final_path = blob_path(expected);
    w->expected_size = expected_size;
    if (has_blob(expected)) {
        w->present = true;
        return BlobWriter(std::move(w));
    }
    detail::ensure_dir(w->blobs_dir);
    for (int attempt = 0; attempt < 16 && !w->fd; ++attempt) {
        w->temp_path = w->blobs_dir / (expected.blob_name() + "-partial-" + detail::random_suffix());
        int fd = ::open(w->temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) w->fd = Fd(fd);
        else if (errno != EEXIST) detail::throw_errno("cannot create", w->temp_path, errno);
    }
    if (!w->fd) detail::throw_errno("cannot create", w->temp_path, EEXIST);
    return BlobWriter(std::move(w));
}

BlobWriter Store::resume_blob(const Digest& expected, std::optional<uint64_t> expected_size) const {
    auto w = std::make_unique<BlobWriter::Impl>();
    w->digest = checked(expected);
    w->blobs_dir = blobs_dir();
    w->final_path = blob_path(expected);
    w->expected_size = expected_size;
    w->resumable = true;
    const fs::path partial = w->blobs_dir / (expected.blob_name() + "-partial");

    for (int attempt = 0;; ++attempt) {
        if (has_blob(expected)) {
            w->present = true;
            return BlobWriter(std::move(w));
        }
        if (attempt >= 16) detail::throw_errno("cannot open", partial, EAGAIN);
        detail::ensure_dir(w->blobs_dir);
        int raw = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (raw < 0) detail::throw_errno("cannot open", partial, errno);
        Fd fd(raw);
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK)
                throw StoreError(StoreErrorKind::Busy, "blob " + expected.str() + " is being written by another writer");
            detail::throw_errno("cannot lock", partial, errno);
        }
        // The file we locked must still be the one at the path: a writer that just finished
        // renamed it into place (then the blob exists now, or a new partial appeared).
        struct stat by_fd, by_path;
        if (::fstat(fd.get(), &by_fd) != 0) detail::throw_errno("cannot stat", partial, errno);
        if (::stat(partial.c_str(), &by_path) != 0 || by_fd.st_ino != by_path.st_ino || by_fd.st_dev != by_path.st_dev)
            continue;
        if (has_blob(expected)) {
            // Finished meanwhile; the partial at the path is ours (locked) and not needed.
            ::unlink(prefix_marker(partial).c_str());
            ::unlink(partial.c_str());
            w->present = true;
            return BlobWriter(std::move(w));
        }
        w->fd = std::move(fd);
        break;
    }
    w->temp_path = partial;
    // Left by a crash while parts were written at several offsets (write_at): only the recorded
    // prefix is known to be contiguous, the rest goes. The cut is made durable before the marker
    // goes, so a second crash cannot bring the other bytes back without it.
    if (const fs::path marker = prefix_marker(partial); ::access(marker.c_str(), F_OK) == 0) {
        const uint64_t keep = read_prefix_marker(marker);
        struct stat st;
        if (::fstat(w->fd.get(), &st) != 0) detail::throw_errno("cannot stat", partial, errno);
        if (keep < static_cast<uint64_t>(st.st_size)) {
            if (::ftruncate(w->fd.get(), static_cast<off_t>(keep)) != 0) detail::throw_errno("cannot truncate", partial, errno);
            detail::fsync_fd(w->fd.get(), partial);
        }
        if (::unlink(marker.c_str()) != 0 && errno != ENOENT) detail::throw_errno("cannot remove", marker, errno);
    }
    w->offset = hash_fd(w->fd.get(), w->hash, partial);
    if (w->expected_size && w->offset > *w->expected_size) {
        // Longer than the blob can be: start over.
        if (::ftruncate(w->fd.get(), 0) != 0) detail::throw_errno("cannot truncate", partial, errno);
        w->hash.reset();
        w->offset = 0;
    }
    return BlobWriter(std::move(w));
}

uint64_t Store::write_blob(const Digest& expected, const Reader& reader, std::optional<uint64_t> expected_size) const {
    BlobWriter w = begin_blob(expected, expected_size);
    w.write_from(reader);
    return w.commit();
}

Digest Store::put_blob(std::string_view bytes) const {
    Digest d = Digest::of(bytes);
    if (has_blob(d)) return d;
    BlobWriter w = begin_blob(d, bytes.size());
    w.write(bytes);
    w.commit();
    return d;
}

ImportResult Store::import_file(const fs::path& file, std::optional<Digest> expected, const ImportProgress& progress) const {
    if (expected) checked(*expected);
    Fd fd = detail::open_read(file);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) detail::throw_errno("cannot stat", file, errno);
    if (!S_ISREG(st.st_mode)) throw StoreError(StoreErrorKind::Io, "not a regular file: " + file.string());
    const uint64_t size = static_cast<uint64_t>(st.st_size);

    // The store's own blob file: nothing to do.
    if (auto named = Digest::from_blob_name(file.filename().string())) {
        struct stat blob;
        if (::stat(blob_path(*named).c_str(), &blob) == 0 && blob.st_ino == st.st_ino && blob.st_dev == st.st_dev) {
            if (expected && *expected != *named)
                throw StoreError(StoreErrorKind::DigestMismatch,
                                 "blob " + expected->str() + ": " + file.string() + " is the blob " + named->str());
            return ImportResult{*named, size, false};
        }
    }
    if (!expected) {
        Sha256 h;
        hash_fd(fd.get(), h, file);
        expected = Digest{h.hex_final()};
    }
    if (auto have = blob_size(*expected)) return ImportResult{*expected, *have, false};

    BlobWriter w = begin_blob(*expected, size);
    uint64_t off = 0;
    std::vector<char> buf(kChunk);
    while (true) {
        size_t n = detail::pread_some(fd.get(), buf.data(), buf.size(), off, file);
        if (n == 0) break;
        w.write(buf.data(), n);
        off += n;
        if (progress) progress(*expected, off, size);
    }
    uint64_t written = w.commit();
    return ImportResult{*expected, written, true};
}

std::string Store::read_blob_text(const Digest& d, size_t max_bytes) const {
    try {
        return detail::read_file(blob_path(d), max_bytes);
    } catch (const StoreError& e) {
        if (e.kind() == StoreErrorKind::NotFound)
            throw StoreError(StoreErrorKind::NotFound, "blob " + d.str() + " not found");
        throw;
    }
}

// ---- Pins

Store::Pin::State::~State() {
    if (hex.empty()) return;  // never registered
    std::lock_guard lock(shared->mu);
    if (auto it = shared->pins.find(hex); it != shared->pins.end()) shared->pins.erase(it);
}

Store::Pin Store::pin(const Digest& d) const {
    checked(d);
    Pin p;
    p.state_ = std::make_shared<Pin::State>();
    p.state_->shared = shared_;
    std::string hex = d.hex;
    std::lock_guard lock(shared_->mu);
    shared_->pins.insert(hex);
    p.state_->hex = std::move(hex);  // registered: the destructor unregisters
    return p;
}

}  // namespace hearth::store
