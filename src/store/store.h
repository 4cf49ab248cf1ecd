// store/ owns the on-disk model store and the Modelfile language:
//   name.h       model names (`[host/][namespace/]name[:tag]`), sha256 digests, StoreError
//   manifest.h   Docker v2 manifests and the config blob, in Ollama's JSON shapes
//   store.h      the store: content-addressed blobs (verified, atomic, resumable writes),
//                manifests (atomic), list / copy / remove, pruning of unreferenced blobs
//   modelfile.h  Modelfile parser and renderer (Ollama's grammar)
//   registry_client.h  pull/push over the OCI distribution protocol (libcurl; its own
//                library, hearth_registry, so hearth_store stays free of networking)
// The layout is Ollama's, so Hearth can use an Ollama models directory as is:
//   <root>/blobs/sha256-<64 hex>
//   <root>/manifests/<host>/<namespace>/<name>/<tag>
// Names and digests are validated before any path is built from them; a blob becomes
// visible only after its bytes hashed to the expected digest and were fsynced.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/manifest.h"
#include "store/name.h"

namespace hearth::store {

// `HEARTH_MODELS` when set and non-empty, else `~/.hearth/models` ($HOME, or the passwd
// entry when HOME is unset).
std::filesystem::path default_models_root();

// A byte source: copies up to `cap` bytes into `buf` and returns how many; 0 means the end.
// Errors are thrown (any exception); the write is then abandoned.
using Reader = std::function<size_t(char* buf, size_t cap)>;

// A Reader over a file descriptor / an in-memory string (conveniences for callers and tests).
Reader fd_reader(int fd);
Reader string_reader(std::string_view bytes);  // the bytes must outlive the reader

class Store;

// Writes one blob whose digest is known in advance. Bytes go to a temporary file inside
// blobs/ while SHA-256 is computed; commit() checks the digest (and size when one was
// given), fsyncs and renames the file into place without replacing an existing blob.
// Two kinds:
//  - fresh (Store::begin_blob): `sha256-<hex>-partial-<random>`; removed on any failure or
//    when the writer is destroyed uncommitted;
//  - resumable (Store::resume_blob): `sha256-<hex>-partial`, reopened and re-hashed when it
//    exists so a download continues at offset(); kept (fsynced) when the writer is destroyed
//    uncommitted, removed when the digest or size turns out wrong. An exclusive flock guards
//    it: a second concurrent resumer gets StoreError(Busy).
// When the blob already exists, already_present() is true, nothing is written, write() and
// write_from() do nothing and commit() returns the blob's size.
class BlobWriter {
public:
    BlobWriter(BlobWriter&&) noexcept;
    BlobWriter& operator=(BlobWriter&&) noexcept;
    BlobWriter(const BlobWriter&) = delete;
    BlobWriter& operator=(const BlobWriter&) = delete;
    ~BlobWriter();

    const Digest& digest() const;
    bool already_present() const;
    uint64_t offset() const;  // bytes in the file so far (where a resumed download continues)
    const std::filesystem::path& temp_path() const;  // empty when already_present

    void write(const void* data, size_t n);
    void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
    uint64_t write_from(const Reader& reader);  // until the reader's end; returns bytes written
    // Finishes the blob and returns its size. Throws StoreError(DigestMismatch) when the
    // bytes are wrong (the temporary file is removed, the store is unchanged).
    uint64_t commit();
    // Gives up now: a fresh file is removed; a resumable one is kept for a later resume
    // unless `discard_partial`.
    void abort(bool discard_partial = false);

    // Parts (a big download fetched as several ranges at once; resumable writers with an
    // expected size only). write_at() stores bytes at any offset at or past offset(); it may
    // be called from several threads at once for disjoint ranges, and the hash does not see
    // those bytes yet. complete_prefix(n) then declares [0, n) complete: the file is cut at n
    // (so the partial file always holds a prefix of the blob, which is what a resume
    // expects) and bytes offset()..n are read back into the hash. commit() works as usual;
    // the digest is still checked before the blob becomes visible.
    // Between the first write_at() and complete_prefix() the file is not a prefix: a marker
    // beside it (`sha256-<hex>-partial.prefix`) records the complete prefix's length, and a
    // resume after a crash (SIGKILL, power loss) cuts the file there. checkpoint(n) (any
    // thread) moves that mark forward to n once [0, n) is in the file, so a crash loses less.
    void write_at(uint64_t offset, const void* data, size_t n);
    void checkpoint(uint64_t n);
    void complete_prefix(uint64_t n);

private:
    friend class Store;
    struct Impl;
    explicit BlobWriter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

struct ImportResult {
    Digest digest;
    uint64_t size = 0;
    bool copied = false;  // false when the blob was already in the store
};

// Progress of Store::import_file's copy: the blob's digest, the bytes copied so far and the
// file's size. Called after each chunk written; not called when nothing is copied.
using ImportProgress = std::function<void(const Digest& digest, uint64_t copied, uint64_t total)>;

struct ModelInfo {
    ModelName name;   // as spelled on disk
    Digest digest;    // sha256 of the manifest file's bytes
    uint64_t size = 0;  // layers + config
    std::filesystem::file_time_type modified;  // the manifest file's mtime
    Manifest manifest;  // as parsed by list() (so listing needs no second read)
    std::string id() const { return digest.short_id(); }  // `ollama list` ID column
};

struct PruneOptions {
    bool unreferenced_blobs = true;
    // `sha256-<hex>-partial` (resumable downloads) and their `.prefix` markers older than this
    // are stale.
    std::chrono::seconds partial_max_age = std::chrono::hours(24);
    // `sha256-<hex>-partial-<suffix>` (temporary files of writes) older than this are stale.
    std::chrono::seconds temp_max_age = std::chrono::hours(1);
    // Empty directories under manifests/, and manifest temp files (`.<tag>.tmp-<random>`, left
    // by a crash) older than temp_max_age.
    bool empty_manifest_dirs = true;
};

struct PruneReport {
    bool skipped = false;  // HEARTH_NOPRUNE was set
    std::vector<Digest> removed_blobs;
    std::vector<std::string> removed_partials;  // file names under blobs/
    std::vector<std::string> removed_manifest_temps;  // paths
    uint64_t bytes_freed = 0;
    // Problems that did not stop the prune. An unreadable manifest stops blob removal (its
    // blobs might otherwise be lost) and is reported here.
    std::vector<std::string> errors;
};

class Store {
public:
    // Touches nothing on disk; directories are created when first written.
    explicit Store(std::filesystem::path root);
    // The store at default_models_root().
    static Store open_default();

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path blobs_dir() const { return root_ / "blobs"; }
    std::filesystem::path manifests_dir() const { return root_ / "manifests"; }

    // ---- Blobs
    std::filesystem::path blob_path(const Digest& d) const;  // <root>/blobs/sha256-<hex>
    bool has_blob(const Digest& d) const;
    std::optional<uint64_t> blob_size(const Digest& d) const;
    // Re-hashes the blob; false when it is missing or its bytes do not match.
    bool verify_blob(const Digest& d) const;

    // `expected_size` (when known) is checked too: more bytes than that fail at once.
    BlobWriter begin_blob(const Digest& expected, std::optional<uint64_t> expected_size = std::nullopt) const;
    BlobWriter resume_blob(const Digest& expected, std::optional<uint64_t> expected_size = std::nullopt) const;
    // Streams a whole blob through a fresh writer; returns its size. Does not read from
    // `reader` when the blob is already present.
    uint64_t write_blob(const Digest& expected, const Reader& reader,
                        std::optional<uint64_t> expected_size = std::nullopt) const;
    // Stores bytes whose digest is computed here (template, params, config blobs...).
    Digest put_blob(std::string_view bytes) const;
    // Copies a local file into the store, hashing it. With `expected` the digest is checked;
    // without it the file is hashed first. No copy when the blob is already present (or the
    // file is the store's own blob file). `progress` (optional) follows the copy.
    ImportResult import_file(const std::filesystem::path& file, std::optional<Digest> expected = std::nullopt,
                             const ImportProgress& progress = {}) const;
    std::string read_blob_text(const Digest& d, size_t max_bytes = 64u << 20) const;  // small blobs

    // Keeps `d` from being removed by remove()/prune() in this process while the pin lives
    // (e.g. between writing a model's blobs and its manifest).
    class Pin {
    public:
        Pin() = default;
        bool active() const { return state_ != nullptr; }
        void release() { state_.reset(); }

    private:
        friend class Store;
        struct State;
        std::shared_ptr<State> state_;
    };
    Pin pin(const Digest& d) const;

    // ---- Manifests (names match case-insensitively; see resolve)
    std::filesystem::path manifest_path(const ModelName& name) const;  // as spelled (validates)
    // The spelling on disk: each part replaced by an existing directory/file name equal to
    // it ignoring case (an exact match wins), as far down as such entries exist.
    ModelName resolve(const ModelName& name) const;
    bool has_model(const ModelName& name) const;
    Manifest read_manifest(const ModelName& name) const;  // NotFound / Corrupt
    std::string read_manifest_bytes(const ModelName& name) const;
    std::optional<Manifest> find_manifest(const ModelName& name) const;
    // Writes atomically (temp file + fsync + rename) and returns the sha256 of the bytes.
    // With check_blobs, every referenced blob must be present with the recorded size.
    Digest write_manifest(const ModelName& name, const Manifest& m, bool check_blobs = true) const;
    // Stores manifest bytes verbatim (after validating them), e.g. as a registry sent them.
    Digest write_manifest_bytes(const ModelName& name, std::string_view bytes, bool check_blobs = true) const;

    // All models, newest first. Entries whose names or manifests do not validate are skipped.
    std::vector<ModelInfo> list() const;
    // `cp`: the destination gets the source's manifest bytes.
    void copy(const ModelName& from, const ModelName& to) const;
    // `rm`: removes the manifest (NotFound if absent), empty parent directories, then the
    // blobs no manifest references any more.
    PruneReport remove(const ModelName& name) const;

    // Removes unreferenced blobs, stale partial files and empty manifest directories.
    PruneReport prune(const PruneOptions& opts = {}) const;
    // prune() unless HEARTH_NOPRUNE is set (non-empty): what the daemon runs at start.
    PruneReport prune_at_start(const PruneOptions& opts = {}) const;

private:
    struct Shared;
    std::filesystem::path root_;
    std::shared_ptr<Shared> shared_;  // pins and the mutation lock, shared by copies

    std::filesystem::path manifest_file(const ModelName& resolved) const;
    Digest write_manifest_locked(const ModelName& name, std::string_view bytes, const Manifest& m,
                                 bool check_blobs) const;
    void collect_garbage(const PruneOptions& opts, PruneReport& report) const;
};

}  // namespace hearth::store
