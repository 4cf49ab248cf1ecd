// Model names, content digests and the store's error type (see store/store.h for the folder).
//
// A model name is `[host/][namespace/]name[:tag]`, filled with Ollama's defaults
// (`registry.ollama.ai`, `library`, `latest`). Every part is validated before any path is
// built from it, so no name can reach outside the models root.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hearth::store {

enum class StoreErrorKind {
    InvalidName,     // a model name that does not parse or validate
    InvalidDigest,   // a digest that is not `sha256:<64 lowercase hex>`
    NotFound,        // no such model / blob
    DigestMismatch,  // bytes written do not hash to the expected digest (or have the wrong size)
    Corrupt,         // a manifest or config that does not parse
    Busy,            // another writer holds the resumable partial file of this blob
    Io,              // the filesystem failed (message names the path and errno text)
};

class StoreError : public std::runtime_error {
public:
    StoreError(StoreErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    StoreErrorKind kind() const { return kind_; }

private:
    StoreErrorKind kind_;
};

// Streaming SHA-256 (OpenSSL EVP).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    std::string hex_final();  // 64 lowercase hex digits; the hasher is reset afterwards
    void reset();

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
};

// A content digest. Only sha256 is supported (as in Ollama).
struct Digest {
    std::string hex;  // 64 lowercase hex digits

    // `sha256:<64 lowercase hex>` exactly; throws StoreError(InvalidDigest) otherwise.
    static Digest parse(std::string_view s);
    static std::optional<Digest> try_parse(std::string_view s);
    static bool valid(std::string_view s) { return try_parse(s).has_value(); }
    // The blob file name form `sha256-<64 lowercase hex>`, exactly.
    static std::optional<Digest> from_blob_name(std::string_view file_name);
    // The digest of some bytes.
    static Digest of(std::string_view bytes);

    std::string str() const { return "sha256:" + hex; }        // sha256:<hex>
    std::string blob_name() const { return "sha256-" + hex; }  // sha256-<hex>
    std::string short_id() const { return hex.substr(0, 12); } // the ID `ollama list` shows

    auto operator<=>(const Digest&) const = default;
};

inline constexpr std::string_view kDefaultHost = "registry.ollama.ai";
inline constexpr std::string_view kDefaultNamespace = "library";
inline constexpr std::string_view kDefaultTag = "latest";

// Limits on the parts of a name (bytes).
inline constexpr size_t kMaxHostLength = 350;
inline constexpr size_t kMaxNameLength = 160;  // namespace and name
inline constexpr size_t kMaxTagLength = 128;
inline constexpr size_t kMaxModelNameLength = 1024;  // the whole string

// A fully qualified model name. Parts keep the case they were written in; lookups in the
// store are case-insensitive (`equal_fold`), display shows them as given.
struct ModelName {
    std::string host = std::string(kDefaultHost);
    std::string ns = std::string(kDefaultNamespace);  // the namespace (user or organisation)
    std::string model;
    std::string tag = std::string(kDefaultTag);

    // Parses `[scheme://][host/][namespace/]name[:tag]` (scheme `http` or `https`, dropped),
    // filling the defaults. Rules (Ollama's):
    //   host       [A-Za-z0-9_][A-Za-z0-9_.-]* with an optional `:port` (1..65535)
    //   namespace  [A-Za-z0-9][A-Za-z0-9_.-]*        (also name)
    //   tag        [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    // no part may contain `..`. Throws StoreError(InvalidName) naming the problem.
    static ModelName parse(std::string_view s);
    // As parse; on failure returns nullopt and, when error is given, stores the message.
    static std::optional<ModelName> try_parse(std::string_view s, std::string* error = nullptr);
    // Builds a name from its four parts, validated like parse.
    static ModelName from_parts(std::string host, std::string ns, std::string model, std::string tag);

    // Throws StoreError(InvalidName) when a part is invalid (a ModelName can be built field by
    // field; the store validates again before building any path).
    void validate() const;
    bool is_valid() const;

    // The shortest form, as `ollama list` shows it: `name:tag` for the default host and
    // namespace, `namespace/name:tag` for the default host, else `host/namespace/name:tag`.
    std::string display() const;
    std::string full() const;  // host/namespace/name:tag
    // `host/namespace/name/tag`, relative to the manifests directory (validates first).
    std::filesystem::path manifest_relpath() const;

    // Case-insensitive (ASCII) equality: how the store matches names.
    bool equal_fold(const ModelName& o) const;
    std::string fold_key() const;  // lowercased full(): a map key for case-insensitive lookups

    bool operator==(const ModelName&) const = default;  // exact (case-sensitive)
};

// ASCII case-insensitive comparison of two strings.
bool iequals(std::string_view a, std::string_view b);

}  // namespace hearth::store
