// Builds GGUF byte buffers field by field, valid or deliberately malformed, and records
// where each field landed so tests can check the byte offsets that errors report. Used by
// the parser tests and by the fuzz seed generator. Independent of gguf::Writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace hearth::gguf::craft {

// A little-endian byte builder.
class Bytes {
public:
    Bytes& u8(uint8_t v) { return put(v); }
    Bytes& i8(int8_t v) { return put(v); }
    Bytes& u16(uint16_t v) { return put(v); }
    Bytes& i16(int16_t v) { return put(v); }
    Bytes& u32(uint32_t v) { return put(v); }
    Bytes& i32(int32_t v) { return put(v); }
    Bytes& u64(uint64_t v) { return put(v); }
    Bytes& i64(int64_t v) { return put(v); }
    Bytes& f32(float v) { return put(v); }
    Bytes& f64(double v) { return put(v); }
    Bytes& str(std::string_view s);  // u64 length + bytes
    Bytes& raw(std::string_view s);
    Bytes& raw(const std::vector<uint8_t>& b);
    Bytes& zeros(size_t n);
    size_t size() const { return b_.size(); }
    const std::vector<uint8_t>& vec() const { return b_; }
    std::vector<uint8_t> take() { return std::move(b_); }

private:
    template <class T>
    Bytes& put(T v);
    std::vector<uint8_t> b_;
};

// Overwrite a little-endian field in place.
void patch_u32(std::vector<uint8_t>& bytes, size_t at, uint32_t v);
void patch_u64(std::vector<uint8_t>& bytes, size_t at, uint64_t v);

// One metadata entry as raw bytes, so types and payloads can be wrong on purpose.
struct RawKV {
    std::string key;
    uint32_t type = 0;           // value type id, possibly unknown
    std::vector<uint8_t> value;  // the encoded value
};
RawKV kv(std::string key, const Value& v);  // a well-formed entry for `v`
RawKV kv_raw(std::string key, uint32_t type, std::vector<uint8_t> value);
std::vector<uint8_t> encode(const Value& v);  // a value's payload, without its type id

struct RawTensor {
    std::string name;
    std::vector<int64_t> dims;
    uint32_t type = 0;               // ggml type id, possibly unknown
    std::optional<uint64_t> offset;  // default: after the previous tensor, aligned
    std::optional<uint32_t> n_dims;  // default: dims.size()
};

struct Spec {
    uint32_t magic = kMagic;
    uint32_t version = 3;
    std::optional<uint64_t> tensor_count;  // default: tensors.size()
    std::optional<uint64_t> kv_count;      // default: kvs.size()
    std::vector<RawKV> kvs;
    std::vector<RawTensor> tensors;
    size_t alignment = kDefaultAlignment;  // places the data (add general.alignment yourself)
    bool pad_after_infos = true;           // zero padding up to the data section
    std::optional<size_t> data_size;       // default: to the end of the last tensor
};

// Where each field of a built file starts.
struct KvAt {
    size_t key = 0, type = 0, value = 0;
};
struct TensorAt {
    size_t name = 0, n_dims = 0, dims = 0, type = 0, offset = 0;
    uint64_t data_offset = 0;  // relative to the data section
    size_t nbytes = 0;         // 0 when the type or dims are invalid
};
struct Crafted {
    std::vector<uint8_t> bytes;
    std::vector<KvAt> kv;
    std::vector<TensorAt> tensor;
    size_t infos_end = 0;  // first byte after the tensor infos
    size_t data = 0;       // start of the data section
};
Crafted build(const Spec& spec);

// Byte j of tensor i's data in a built file.
uint8_t data_byte(size_t tensor, size_t j);
// Bytes of a tensor, or 0 for an unknown type or invalid dims.
size_t tensor_nbytes(uint32_t type, const std::vector<int64_t>& dims);

// A small valid file: metadata of many types (nested arrays included) and three tensors
// (F32, Q8_0, F16). The last tensor ends exactly at the end of the file, so every proper
// prefix of the file is invalid.
Spec small_spec();
std::vector<uint8_t> small_file();

// A crafted file and the outcome the reader must produce.
struct Case {
    std::string name;
    std::vector<uint8_t> bytes;
    bool valid = false;
    ErrorKind kind = ErrorKind::Io;  // when !valid
    std::string subject;
    uint64_t offset = 0;
};
// One malformed file per validation rule, plus valid edge cases.
std::vector<Case> cases();

}  // namespace hearth::gguf::craft
