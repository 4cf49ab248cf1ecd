// gguf/ owns the GGUF container format: a validating reader over an mmapped file (tensors
// exposed as zero-copy views) and a writer that produces files llama.cpp accepts.
// Everything read from a file is checked before use; failures are GgufError values that
// name the key or tensor and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tensor/types.h"

namespace hearth::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr size_t kDefaultAlignment = 32;
constexpr size_t kMaxTensorNameLength = 63;  // names must be < 64 bytes
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;         // an array nests at most 8 levels deep (BadArray beyond)
constexpr size_t kMaxKeyLength = 65535;   // metadata keys are 1..65535 bytes

enum class ValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

struct Array;

// One metadata value. Integers keep their GGUF type; accessors convert with range checks.
class Value {
public:
    Value() = default;
    static Value u8(uint8_t v) { return Value(ValueType::UINT8, uint64_t(v)); }
    static Value i8(int8_t v) { return Value(ValueType::INT8, int64_t(v)); }
    static Value u16(uint16_t v) { return Value(ValueType::UINT16, uint64_t(v)); }
    static Value i16(int16_t v) { return Value(ValueType::INT16, int64_t(v)); }
    static Value u32(uint32_t v) { return Value(ValueType::UINT32, uint64_t(v)); }
    static Value i32(int32_t v) { return Value(ValueType::INT32, int64_t(v)); }
    static Value u64(uint64_t v) { return Value(ValueType::UINT64, v); }
    static Value i64(int64_t v) { return Value(ValueType::INT64, v); }
    static Value f32(float v) { return Value(ValueType::FLOAT32, double(v)); }
    static Value f64(double v) { return Value(ValueType::FLOAT64, v); }
    static Value boolean(bool v) { return Value(ValueType::BOOL, v); }
    static Value string(std::string v) { return Value(ValueType::STRING, std::move(v)); }
    static Value array(ValueType elem, std::vector<Value> items);  // items must all be of type elem
    // Convenience builders for the common array kinds.
    static Value string_array(const std::vector<std::string>& items);
    static Value f32_array(const std::vector<float>& items);
    static Value i32_array(const std::vector<int32_t>& items);

    ValueType type() const { return type_; }
    bool is_integer() const;
    bool is_float() const { return type_ == ValueType::FLOAT32 || type_ == ValueType::FLOAT64; }

    // Throw std::invalid_argument (naming both types) on a mismatch or out-of-range value.
    uint64_t as_u64() const;  // any integer type >= 0, or bool
    int64_t as_i64() const;   // any integer type within range, or bool
    double as_f64() const;    // any integer or float type
    bool as_bool() const;     // BOOL only
    const std::string& as_string() const;
    const Array& as_array() const;

    std::string to_string(size_t max_items = 8) const;  // human-readable, arrays abbreviated

private:
    using Storage = std::variant<std::monostate, uint64_t, int64_t, double, bool, std::string, std::shared_ptr<const Array>>;
    // Constructs the alternative in place (moving a whole Storage trips GCC 12 -Wmaybe-uninitialized).
    template <class T>
    Value(ValueType t, T&& v) : type_(t), v_(std::forward<T>(v)) {}
    ValueType type_ = ValueType::UINT8;
    Storage v_;
};

struct Array {
    ValueType elem_type = ValueType::UINT8;
    std::vector<Value> items;
};

enum class ErrorKind {
    Io,             // open/stat/mmap failed
    Truncated,      // a read ran past the end of the file
    BadMagic,
    BadVersion,
    BadCount,       // tensor or KV count impossible for the file size
    BadString,      // string length past the end / too long
    BadValueType,   // unknown metadata value type or array element type
    BadArray,       // array length impossible for the file size, nesting too deep
    DuplicateKey,
    BadAlignment,   // general.alignment not a power of two / wrong type
    BadTensorName,  // empty, too long or duplicate
    BadDims,        // n_dims > 4, a dim <= 0, element count overflow, row not a multiple of the block size
    BadTensorType,  // unknown type id
    BadOffset,      // misaligned, past the end, or overlapping another tensor
};
const char* error_kind_name(ErrorKind k);

// What a GgufError's subject names; it picks "key 'x'" or "tensor 'y'" in the message.
enum class SubjectKind { None, Key, Tensor };

class GgufError : public std::runtime_error {
public:
    // The subject kind is inferred: None when `subject` is empty, Tensor for the tensor-info
    // kinds (BadTensorName, BadDims, BadTensorType, BadOffset), Key otherwise.
    GgufError(ErrorKind kind, std::string subject, uint64_t offset, const std::string& detail);
    GgufError(ErrorKind kind, SubjectKind subject_kind, std::string subject, uint64_t offset,
              const std::string& detail);
    ErrorKind kind() const { return kind_; }
    const std::string& subject() const { return subject_; }  // key or tensor name ("" when none)
    SubjectKind subject_kind() const { return subject_kind_; }
    uint64_t offset() const { return offset_; }              // byte offset in the file

private:
    ErrorKind kind_;
    SubjectKind subject_kind_;
    std::string subject_;
    uint64_t offset_;
};

struct TensorInfo {
    std::string name;
    std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;        // relative to the start of the data section
    size_t nbytes = 0;
    const uint8_t* data = nullptr;  // zero-copy view into the mapped file

    int64_t n_elements() const;
    int64_t n_rows() const { return dims.empty() ? 0 : n_elements() / dims[0]; }
    size_t row_bytes() const { return dims.empty() ? 0 : nbytes / static_cast<size_t>(n_rows()); }
};

class File {
public:
    // mmap `path` read-only and parse it. Throws GgufError.
    static File open(const std::string& path);
    // Parse a buffer the caller keeps alive for the File's lifetime (tests, fuzzing).
    static File from_memory(std::span<const uint8_t> bytes);

    File(File&&) noexcept;
    File& operator=(File&&) noexcept;
    ~File();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    size_t alignment() const { return alignment_; }
    size_t file_size() const { return size_; }
    size_t data_offset() const { return data_offset_; }
    const uint8_t* bytes() const { return base_; }

    // Metadata in file order.
    const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;
    // Typed getters: nullopt when absent; GgufError(BadValueType) naming the key when the
    // value has an incompatible type or is out of range.
    std::optional<uint64_t> get_u64(std::string_view key) const;
    std::optional<int64_t> get_i64(std::string_view key) const;
    std::optional<uint32_t> get_u32(std::string_view key) const;
    std::optional<double> get_f64(std::string_view key) const;
    std::optional<bool> get_bool(std::string_view key) const;
    std::optional<std::string> get_string(std::string_view key) const;
    const Array* get_array(std::string_view key) const;
    std::string architecture() const;  // general.architecture or ""

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* tensor(std::string_view name) const;

private:
    File() = default;
    void parse();
    std::string path_;
    uint32_t version_ = 0;
    size_t alignment_ = kDefaultAlignment;
    size_t size_ = 0;
    size_t data_offset_ = 0;
    const uint8_t* base_ = nullptr;
    void* map_ = nullptr;  // non-null when we own an mmap
    std::vector<std::pair<std::string, Value>> kv_;
    std::vector<TensorInfo> tensors_;
};

// Writes GGUF v3. Metadata keeps insertion order (set() on an existing key replaces it in
// place). Tensor data is produced tensor by tensor at write time, so a writer never needs
// every tensor in memory at once. The file is written to a temp file beside `path` and
// renamed into place only when complete.
class Writer {
public:
    using Fill = std::function<void(uint8_t* dst, size_t nbytes)>;

    void set(std::string key, Value v);
    void remove(std::string_view key);
    void set_alignment(size_t a);  // also stored as general.alignment when != 32
    // Copies nothing: `data` must stay valid until write() returns.
    void add_tensor(std::string name, GgmlType type, std::vector<int64_t> dims, const void* data);
    // `fill` writes exactly row_size(type, dims[0]) * rows bytes when called.
    void add_tensor(std::string name, GgmlType type, std::vector<int64_t> dims, Fill fill);
    // Called after each tensor's data is written with (index, count).
    void on_progress(std::function<void(size_t, size_t)> cb) { progress_ = std::move(cb); }

    void write(const std::string& path) const;
    std::vector<uint8_t> to_bytes() const;  // whole file in memory (tests)

private:
    struct Pending {
        std::string name;
        GgmlType type;
        std::vector<int64_t> dims;
        size_t nbytes;
        Fill fill;
    };
    template <class Sink> void emit(Sink& sink) const;
    size_t alignment_ = kDefaultAlignment;
    std::vector<std::pair<std::string, Value>> kv_;
    std::vector<Pending> tensors_;
    std::function<void(size_t, size_t)> progress_;
};

}  // namespace hearth::gguf
