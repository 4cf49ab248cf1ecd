// Model names, digests and SHA-256.
#include "store/name.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace hearth::store {

// ---- Sha256

struct Sha256::Ctx {
    EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    ctx_->md = EVP_MD_CTX_new();
    if (!ctx_->md) throw std::bad_alloc();
    reset();
}

Sha256::~Sha256() {
    if (ctx_ && ctx_->md) EVP_MD_CTX_free(ctx_->md);
}

Sha256::Sha256(Sha256&&) noexcept = default;

Sha256& Sha256::operator=(Sha256&& o) noexcept {
    if (this != &o) {
        if (ctx_ && ctx_->md) EVP_MD_CTX_free(ctx_->md);
        ctx_ = std::move(o.ctx_);
    }
    return *this;
}

void Sha256::reset() {
    if (EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256: EVP_DigestInit_ex failed");
}

void Sha256::update(const void* data, size_t n) {
    if (n == 0) return;
    if (EVP_DigestUpdate(ctx_->md, data, n) != 1) throw std::runtime_error("SHA-256: EVP_DigestUpdate failed");
}

std::string Sha256::hex_final() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_->md, out, &len) != 1 || len != 32)
        throw std::runtime_error("SHA-256: EVP_DigestFinal_ex failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex(64, '0');
    for (unsigned i = 0; i < 32; ++i) {
        hex[2 * i] = kHex[out[i] >> 4];
        hex[2 * i + 1] = kHex[out[i] & 15];
    }
    reset();
    return hex;
}

// ---- Digest

namespace {

bool is_lower_hex64(std::string_view s) {
    if (s.size() != 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The input quoted for an error message, control bytes escaped, long inputs cut.
std::string quote_input(std::string_view s) {
    std::string out = "\"";
    size_t n = std::min<size_t>(s.size(), 200);
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > n) out += "...";
    out += '"';
    return out;
}

}  // namespace

std::optional<Digest> Digest::try_parse(std::string_view s) {
    constexpr std::string_view prefix = "sha256:";
    if (s.size() != prefix.size() + 64 || s.substr(0, prefix.size()) != prefix) return std::nullopt;
    std::string_view hex = s.substr(prefix.size());
    if (!is_lower_hex64(hex)) return std::nullopt;
    return Digest{std::string(hex)};
}

Digest Digest::parse(std::string_view s) {
    if (auto d = try_parse(s)) return *d;
    throw StoreError(StoreErrorKind::InvalidDigest,
                     "invalid digest " + quote_input(s) + ": expected sha256:<64 lowercase hex digits>");
}

std::optional<Digest> Digest::from_blob_name(std::string_view name) {
    constexpr std::string_view prefix = "sha256-";
    if (name.size() != prefix.size() + 64 || name.substr(0, prefix.size()) != prefix) return std::nullopt;
    std::string_view hex = name.substr(prefix.size());
    if (!is_lower_hex64(hex)) return std::nullopt;
    return Digest{std::string(hex)};
}

Digest Digest::of(std::string_view bytes) {
    Sha256 h;
    h.update(bytes);
    return Digest{h.hex_final()};
}

// ---- ModelName

namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

enum class Part { Host, Namespace, Model, Tag };

const char* part_label(Part p) {
    switch (p) {
        case Part::Host: return "host";
        case Part::Namespace: return "namespace";
        case Part::Model: return "name";
        case Part::Tag: return "tag";
    }
    return "part";
}

// Empty string when `s` is a valid part of kind `p`, else what is wrong with it.
std::string check_part(Part p, std::string_view s) {
    const std::string label = part_label(p);
    if (s.empty()) return "empty " + label;
    if (s.find("..") != std::string_view::npos) return label + " " + quote_input(s) + " must not contain \"..\"";

    std::string_view body = s;
    if (p == Part::Host) {
        // An optional :port, digits only, 1..65535.
        if (size_t colon = s.find(':'); colon != std::string_view::npos) {
            std::string_view port = s.substr(colon + 1);
            body = s.substr(0, colon);
            unsigned value = 0;
            auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
            if (port.empty() || port.size() > 5 || ec != std::errc() || ptr != port.data() + port.size() ||
                !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) || value == 0 ||
                value > 65535)
                return "host " + quote_input(s) + " has an invalid port (expected host:1..65535)";
            if (body.empty()) return "empty host";
        }
        if (s.size() > kMaxHostLength) return "host is longer than " + std::to_string(kMaxHostLength) + " bytes";
    } else if (p == Part::Tag) {
        if (s.size() > kMaxTagLength) return "tag is longer than " + std::to_string(kMaxTagLength) + " bytes";
    } else if (s.size() > kMaxNameLength) {
        return label + " is longer than " + std::to_string(kMaxNameLength) + " bytes";
    }

    const char first = body[0];
    const bool first_ok = is_alnum(first) || (first == '_' && (p == Part::Host || p == Part::Tag));
    if (!first_ok) {
        std::string allowed = (p == Part::Host || p == Part::Tag) ? "a letter, digit or '_'" : "a letter or digit";
        return label + " " + quote_input(s) + " must start with " + allowed;
    }
    for (char c : body) {
        if (is_alnum(c) || c == '_' || c == '.' || c == '-') continue;
        std::string shown = (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? quote_input(std::string_view(&c, 1))
                                                                               : "'" + std::string(1, c) + "'";
        return label + " " + quote_input(s) + " contains the invalid character " + shown;
    }
    return {};
}

[[noreturn]] void fail(std::string_view input, const std::string& why) {
    throw StoreError(StoreErrorKind::InvalidName, "invalid model name " + quote_input(input) + ": " + why);
}

std::string parse_into(std::string_view input, ModelName& out) {
    std::string_view s = input;
    if (s.empty()) return "empty model name";
    if (s.size() > kMaxModelNameLength)
        return "longer than " + std::to_string(kMaxModelNameLength) + " bytes";
    // Characters that can never appear get a specific message first.
    for (char c : s) {
        if (c == '\0') return "contains a NUL byte";
        if (c == '\\') return "contains a backslash";
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ') return "contains whitespace or a control character";
    }
    if (s.starts_with("https://")) s.remove_prefix(8);
    else if (s.starts_with("http://")) s.remove_prefix(7);
    if (s.empty()) return "empty model name";
    if (s.front() == '/') return "must not be an absolute path";
    if (s.find('@') != std::string_view::npos) return "digest references (name@sha256:...) are not supported here";

    // The tag is after the last ':' when that ':' comes after the last '/' (a host's port
    // is followed by '/', so it is never mistaken for a tag).
    std::string_view tag;
    bool has_tag = false;
    size_t colon = s.rfind(':');
    size_t slash = s.rfind('/');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
        tag = s.substr(colon + 1);
        s = s.substr(0, colon);
        has_tag = true;
        if (tag.empty()) return "empty tag after ':'";
    }

    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true) {
        size_t next = s.find('/', start);
        parts.push_back(s.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start));
        if (next == std::string_view::npos) break;
        start = next + 1;
    }
    for (std::string_view part : parts) {
        if (part.empty()) return "empty path component (\"//\" or a trailing '/')";
        if (part == "..") return "path components must not be \"..\"";
        if (part == ".") return "path components must not be \".\"";
    }
    if (parts.size() > 3) return "too many '/'-separated parts (expected [host/][namespace/]name[:tag])";

    ModelName n;
    n.model = std::string(parts.back());
    if (parts.size() >= 2) n.ns = std::string(parts[parts.size() - 2]);
    if (parts.size() == 3) n.host = std::string(parts[0]);
    if (has_tag) n.tag = std::string(tag);

    if (std::string why = check_part(Part::Host, n.host); !why.empty()) return why;
    if (std::string why = check_part(Part::Namespace, n.ns); !why.empty()) return why;
    if (std::string why = check_part(Part::Model, n.model); !why.empty()) return why;
    if (std::string why = check_part(Part::Tag, n.tag); !why.empty()) return why;
    out = std::move(n);
    return {};
}

std::string validate_parts(const ModelName& n) {
    const std::pair<Part, const std::string*> parts[] = {
        {Part::Host, &n.host}, {Part::Namespace, &n.ns}, {Part::Model, &n.model}, {Part::Tag, &n.tag}};
    for (const auto& [kind, value] : parts) {
        for (char c : *value) {
            if (c == '\0') return std::string(part_label(kind)) + " contains a NUL byte";
            if (c == '/' || c == '\\') return std::string(part_label(kind)) + " contains a path separator";
        }
        if (std::string why = check_part(kind, *value); !why.empty()) return why;
    }
    return {};
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::optional<ModelName> ModelName::try_parse(std::string_view s, std::string* error) {
    ModelName n;
    std::string why = parse_into(s, n);
    if (why.empty()) return n;
    if (error) *error = "invalid model name " + quote_input(s) + ": " + why;
    return std::nullopt;
}

ModelName ModelName::parse(std::string_view s) {
    ModelName n;
    if (std::string why = parse_into(s, n); !why.empty()) fail(s, why);
    return n;
}

ModelName ModelName::from_parts(std::string host, std::string ns, std::string model, std::string tag) {
    ModelName n;
    n.host = std::move(host);
    n.ns = std::move(ns);
    n.model = std::move(model);
    n.tag = std::move(tag);
    n.validate();
    return n;
}

void ModelName::validate() const {
    if (std::string why = validate_parts(*this); !why.empty())
        throw StoreError(StoreErrorKind::InvalidName, "invalid model name " + quote_input(full()) + ": " + why);
}

bool ModelName::is_valid() const { return validate_parts(*this).empty(); }

std::string ModelName::full() const { return host + "/" + ns + "/" + model + ":" + tag; }

std::string ModelName::display() const {
    if (!iequals(host, kDefaultHost)) return full();
    if (!iequals(ns, kDefaultNamespace)) return ns + "/" + model + ":" + tag;
    return model + ":" + tag;
}

std::filesystem::path ModelName::manifest_relpath() const {
    validate();
    return std::filesystem::path(host) / ns / model / tag;
}

bool ModelName::equal_fold(const ModelName& o) const {
    return iequals(host, o.host) && iequals(ns, o.ns) && iequals(model, o.model) && iequals(tag, o.tag);
}

std::string ModelName::fold_key() const {
    std::string k = full();
    for (char& c : k) c = lower(c);
    return k;
}

}  // namespace hearth::store
