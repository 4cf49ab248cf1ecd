// The GGUF v3 writer: header, metadata in insertion order, tensor infos with aligned
// offsets, then each tensor's data (zero padded), produced tensor by tensor.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "gguf/gguf.h"

namespace hearth::gguf {

namespace {

constexpr std::string_view kAlignmentKey = "general.alignment";

template <class T>
void put(std::vector<uint8_t>& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

// The value's payload (its type id is written by the caller).
void encode_value(std::vector<uint8_t>& out, const Value& v) {
    switch (v.type()) {
        case ValueType::UINT8: put(out, static_cast<uint8_t>(v.as_u64())); break;
        case ValueType::INT8: put(out, static_cast<int8_t>(v.as_i64())); break;
        case ValueType::UINT16: put(out, static_cast<uint16_t>(v.as_u64())); break;
        case ValueType::INT16: put(out, static_cast<int16_t>(v.as_i64())); break;
        case ValueType::UINT32: put(out, static_cast<uint32_t>(v.as_u64())); break;
        case ValueType::INT32: put(out, static_cast<int32_t>(v.as_i64())); break;
        case ValueType::UINT64: put(out, v.as_u64()); break;
        case ValueType::INT64: put(out, v.as_i64()); break;
        case ValueType::FLOAT32: put(out, static_cast<float>(v.as_f64())); break;
        case ValueType::FLOAT64: put(out, v.as_f64()); break;
        case ValueType::BOOL: put<uint8_t>(out, v.as_bool() ? 1 : 0); break;
        case ValueType::STRING: put_string(out, v.as_string()); break;
        case ValueType::ARRAY: {
            const Array& a = v.as_array();
            put(out, static_cast<uint32_t>(a.elem_type));
            put<uint64_t>(out, a.items.size());
            for (const Value& item : a.items) encode_value(out, item);
            break;
        }
    }
}

// Throws std::invalid_argument for an empty value or arrays nested too deep.
void check_value(const Value& v, int depth) {
    switch (v.type()) {
        case ValueType::STRING: (void)v.as_string(); return;
        case ValueType::BOOL: (void)v.as_bool(); return;
        case ValueType::FLOAT32:
        case ValueType::FLOAT64: (void)v.as_f64(); return;
        case ValueType::ARRAY: break;
        case ValueType::INT8:
        case ValueType::INT16:
        case ValueType::INT32:
        case ValueType::INT64: (void)v.as_i64(); return;
        default: (void)v.as_u64(); return;
    }
    if (depth + 1 > kMaxArrayDepth)
        throw std::invalid_argument("arrays nested more than " + std::to_string(kMaxArrayDepth) + " levels deep");
    const Array& a = v.as_array();
    if (a.elem_type == ValueType::ARRAY)
        for (const Value& item : a.items) check_value(item, depth + 1);
}

// Validates a tensor's name, type and dims; returns its byte size.
size_t checked_nbytes(const std::string& name, GgmlType type, const std::vector<int64_t>& dims) {
    const auto bad = [&](const std::string& why) {
        return std::invalid_argument("gguf writer: tensor '" + name + "': " + why);
    };
    if (name.empty()) throw bad("empty name");
    if (name.size() > kMaxTensorNameLength)
        throw bad("name is " + std::to_string(name.size()) + " bytes (must be under " +
                  std::to_string(kMaxTensorNameLength + 1) + ")");
    const TypeTraits* tr = type_traits(type);
    if (!tr) throw bad("unknown tensor type id " + std::to_string(static_cast<uint32_t>(type)));
    if (dims.empty() || dims.size() > static_cast<size_t>(kMaxDims))
        throw bad(std::to_string(dims.size()) + " dimensions (must be 1 to " + std::to_string(kMaxDims) + ")");
    int64_t n = 1;
    for (int64_t d : dims) {
        if (d <= 0) throw bad("dimension " + std::to_string(d) + " is not > 0");
        if (__builtin_mul_overflow(n, d, &n)) throw bad("element count overflows int64");
    }
    if (dims[0] % tr->block_size != 0)
        throw bad("row of " + std::to_string(dims[0]) + " elements is not a multiple of " + tr->name +
                  "'s block size " + std::to_string(tr->block_size));
    uint64_t row = 0, nbytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(dims[0] / tr->block_size), uint64_t{tr->type_size}, &row) ||
        __builtin_mul_overflow(row, static_cast<uint64_t>(n / dims[0]), &nbytes))
        throw bad("byte size overflows");
    return static_cast<size_t>(nbytes);
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct VectorSink {
    std::vector<uint8_t>& out;
    void write(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        out.insert(out.end(), b, b + n);
    }
};

[[noreturn]] void throw_sys(const std::string& what, const std::string& path, int err) {
    throw std::runtime_error("gguf: " + what + " '" + path + "': " + std::strerror(err));
}

struct FdSink {
    int fd;
    const std::string& path;  // the destination, for messages
    void write(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        while (n > 0) {
            const ssize_t w = ::write(fd, b, std::min<size_t>(n, size_t{1} << 30));
            if (w < 0) {
                if (errno == EINTR) continue;
                throw_sys("cannot write", path, errno);
            }
            b += w;
            n -= static_cast<size_t>(w);
        }
    }
};

template <class Sink>
void write_zeros(Sink& sink, size_t n) {
    static const uint8_t zeros[4096] = {};
    while (n > 0) {
        const size_t k = std::min(n, sizeof zeros);
        sink.write(zeros, k);
        n -= k;
    }
}

}  // namespace

void Writer::set(std::string key, Value v) {
    if (key.empty()) throw std::invalid_argument("gguf writer: empty metadata key");
    if (key.size() > kMaxKeyLength)
        throw std::invalid_argument("gguf writer: metadata key of " + std::to_string(key.size()) +
                                    " bytes is too long");
    try {
        check_value(v, 0);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("gguf writer: key '" + key + "': " + e.what());
    }
    if (key == kAlignmentKey) {
        const ValueType t = v.type();
        const bool is_unsigned = t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 ||
                                 t == ValueType::UINT64;
        if (!is_unsigned || v.as_u64() == 0 || !std::has_single_bit(v.as_u64()))
            throw std::invalid_argument("gguf writer: general.alignment must be a non-zero power of two (" +
                                        v.to_string() + ")");
        alignment_ = static_cast<size_t>(v.as_u64());
    }
    for (auto& kv : kv_) {
        if (kv.first == key) {
            kv.second = std::move(v);
            return;
        }
    }
    kv_.emplace_back(std::move(key), std::move(v));
}

void Writer::remove(std::string_view key) {
    std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
    if (key == kAlignmentKey) alignment_ = kDefaultAlignment;
}

void Writer::set_alignment(size_t a) {
    if (a == 0 || !std::has_single_bit(a) || a > std::numeric_limits<uint32_t>::max())
        throw std::invalid_argument("gguf writer: alignment " + std::to_string(a) +
                                    " is not a power of two that fits in uint32");
    if (a == kDefaultAlignment) {
        remove(kAlignmentKey);
    } else {
        set(std::string(kAlignmentKey), Value::u32(static_cast<uint32_t>(a)));
    }
}

void Writer::add_tensor(std::string name, GgmlType type, std::vector<int64_t> dims, const void* data) {
    if (!data) throw std::invalid_argument("gguf writer: tensor '" + name + "': null data");
    add_tensor(std::move(name), type, std::move(dims),
               [data](uint8_t* dst, size_t nbytes) { std::memcpy(dst, data, nbytes); });
}

void Writer::add_tensor(std::string name, GgmlType type, std::vector<int64_t> dims, Fill fill) {
    const size_t nbytes = checked_nbytes(name, type, dims);
    if (!fill) throw std::invalid_argument("gguf writer: tensor '" + name + "': empty fill function");
    for (const auto& t : tensors_)
        if (t.name == name) throw std::invalid_argument("gguf writer: tensor '" + name + "' added twice");
    tensors_.push_back(Pending{std::move(name), type, std::move(dims), nbytes, std::move(fill)});
}

template <class Sink>
void Writer::emit(Sink& sink) const {
    std::vector<uint8_t> head;
    put<uint32_t>(head, kMagic);
    put<uint32_t>(head, 3);
    put<uint64_t>(head, tensors_.size());
    put<uint64_t>(head, kv_.size());
    for (const auto& [key, v] : kv_) {
        put_string(head, key);
        put(head, static_cast<uint32_t>(v.type()));
        encode_value(head, v);
    }
    size_t offset = 0, largest = 0;
    for (const Pending& t : tensors_) {
        put_string(head, t.name);
        put<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
        for (int64_t d : t.dims) put<int64_t>(head, d);
        put(head, static_cast<uint32_t>(t.type));
        put<uint64_t>(head, offset);
        offset = align_up(offset + t.nbytes, alignment_);
        largest = std::max(largest, t.nbytes);
    }
    head.resize(align_up(head.size(), alignment_), 0);
    sink.write(head.data(), head.size());
    head = {};

    std::vector<uint8_t> buf(largest);
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Pending& t = tensors_[i];
        t.fill(buf.data(), t.nbytes);
        sink.write(buf.data(), t.nbytes);
        write_zeros(sink, align_up(t.nbytes, alignment_) - t.nbytes);
        if (progress_) progress_(i, tensors_.size());
    }
}

std::vector<uint8_t> Writer::to_bytes() const {
    std::vector<uint8_t> out;
    VectorSink sink{out};
    emit(sink);
    return out;
}

void Writer::write(const std::string& path) const {
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_sys("cannot create a temp file for", path, errno);
    try {
        FdSink sink{fd, path};
        emit(sink);
        if (::fsync(fd) != 0) throw_sys("cannot fsync", path, errno);
        const int rc = ::close(fd);
        fd = -1;
        if (rc != 0) throw_sys("cannot close", path, errno);
        if (::rename(tmp.c_str(), path.c_str()) != 0) throw_sys("cannot rename the temp file to", path, errno);
    } catch (...) {
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    // Make the rename durable; failing here loses nothing already written, so it is ignored.
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace hearth::gguf
