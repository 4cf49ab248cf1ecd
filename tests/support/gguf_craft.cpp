#include "support/gguf_craft.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>

namespace hearth::gguf::craft {

template <class T>
Bytes& Bytes::put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    b_.insert(b_.end(), b, b + sizeof(T));
    return *this;
}

Bytes& Bytes::str(std::string_view s) {
    u64(s.size());
    return raw(s);
}

Bytes& Bytes::raw(std::string_view s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
}

Bytes& Bytes::raw(const std::vector<uint8_t>& b) {
    b_.insert(b_.end(), b.begin(), b.end());
    return *this;
}

Bytes& Bytes::zeros(size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
}

void patch_u32(std::vector<uint8_t>& bytes, size_t at, uint32_t v) { std::memcpy(bytes.data() + at, &v, 4); }
void patch_u64(std::vector<uint8_t>& bytes, size_t at, uint64_t v) { std::memcpy(bytes.data() + at, &v, 8); }

namespace {

void encode_into(Bytes& b, const Value& v) {
    switch (v.type()) {
        case ValueType::UINT8: b.u8(static_cast<uint8_t>(v.as_u64())); break;
        case ValueType::INT8: b.i8(static_cast<int8_t>(v.as_i64())); break;
        case ValueType::UINT16: b.u16(static_cast<uint16_t>(v.as_u64())); break;
        case ValueType::INT16: b.i16(static_cast<int16_t>(v.as_i64())); break;
        case ValueType::UINT32: b.u32(static_cast<uint32_t>(v.as_u64())); break;
        case ValueType::INT32: b.i32(static_cast<int32_t>(v.as_i64())); break;
        case ValueType::UINT64: b.u64(v.as_u64()); break;
        case ValueType::INT64: b.i64(v.as_i64()); break;
        case ValueType::FLOAT32: b.f32(static_cast<float>(v.as_f64())); break;
        case ValueType::FLOAT64: b.f64(v.as_f64()); break;
        case ValueType::BOOL: b.u8(v.as_bool() ? 1 : 0); break;
        case ValueType::STRING: b.str(v.as_string()); break;
        case ValueType::ARRAY:
            b.u32(static_cast<uint32_t>(v.as_array().elem_type)).u64(v.as_array().items.size());
            for (const Value& item : v.as_array().items) encode_into(b, item);
            break;
    }
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

constexpr size_t kMaxCraftedData = size_t{16} << 20;

}  // namespace

std::vector<uint8_t> encode(const Value& v) {
    Bytes b;
    encode_into(b, v);
    return b.take();
}

RawKV kv(std::string key, const Value& v) { return {std::move(key), static_cast<uint32_t>(v.type()), encode(v)}; }

RawKV kv_raw(std::string key, uint32_t type, std::vector<uint8_t> value) {
    return {std::move(key), type, std::move(value)};
}

uint8_t data_byte(size_t tensor, size_t j) { return static_cast<uint8_t>(tensor * 37 + j * 13 + 1); }

size_t tensor_nbytes(uint32_t type, const std::vector<int64_t>& dims) {
    const TypeTraits* tr = type_traits(type);
    if (!tr || dims.empty() || dims.size() > static_cast<size_t>(kMaxDims)) return 0;
    int64_t n = 1;
    for (int64_t d : dims)
        if (d <= 0 || __builtin_mul_overflow(n, d, &n)) return 0;
    if (dims[0] % tr->block_size != 0) return 0;
    uint64_t row = 0, total = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(dims[0] / tr->block_size), uint64_t{tr->type_size}, &row) ||
        __builtin_mul_overflow(row, static_cast<uint64_t>(n / dims[0]), &total))
        return 0;
    return static_cast<size_t>(total);
}

Crafted build(const Spec& spec) {
    Crafted c;
    Bytes b;
    b.u32(spec.magic).u32(spec.version);
    b.u64(spec.tensor_count.value_or(spec.tensors.size()));
    b.u64(spec.kv_count.value_or(spec.kvs.size()));
    for (const RawKV& e : spec.kvs) {
        KvAt at;
        at.key = b.size();
        b.str(e.key);
        at.type = b.size();
        b.u32(e.type);
        at.value = b.size();
        b.raw(e.value);
        c.kv.push_back(at);
    }
    uint64_t next = 0;
    size_t data_end = 0;
    for (const RawTensor& t : spec.tensors) {
        TensorAt at;
        at.nbytes = tensor_nbytes(t.type, t.dims);
        at.data_offset = t.offset.value_or(next);
        if (at.data_offset <= kMaxCraftedData && at.nbytes <= kMaxCraftedData) {
            next = align_up(at.data_offset + at.nbytes, spec.alignment);
            data_end = std::max(data_end, static_cast<size_t>(at.data_offset) + at.nbytes);
        }
        at.name = b.size();
        b.str(t.name);
        at.n_dims = b.size();
        b.u32(t.n_dims.value_or(static_cast<uint32_t>(t.dims.size())));
        at.dims = b.size();
        for (int64_t d : t.dims) b.i64(d);
        at.type = b.size();
        b.u32(t.type);
        at.offset = b.size();
        b.u64(at.data_offset);
        c.tensor.push_back(at);
    }
    c.infos_end = b.size();
    if (spec.pad_after_infos) b.zeros(align_up(b.size(), spec.alignment) - b.size());
    c.data = b.size();

    std::vector<uint8_t> data(spec.data_size.value_or(data_end), 0);
    for (size_t i = 0; i < c.tensor.size(); ++i) {
        const TensorAt& at = c.tensor[i];
        for (size_t j = 0; j < at.nbytes && at.data_offset + j < data.size(); ++j)
            data[static_cast<size_t>(at.data_offset) + j] = data_byte(i, j);
    }
    b.raw(data);
    c.bytes = b.take();
    return c;
}

Spec small_spec() {
    Spec s;
    s.kvs = {
        kv("general.architecture", Value::string("llama")),
        kv("general.name", Value::string("tiny \"crafted\"")),
        kv("llama.block_count", Value::u32(2)),
        kv("llama.rope.freq_base", Value::f32(10000.0f)),
        kv("test.u8", Value::u8(200)),
        kv("test.i8", Value::i8(-100)),
        kv("test.u16", Value::u16(60000)),
        kv("test.i16", Value::i16(-30000)),
        kv("test.i32", Value::i32(-2000000000)),
        kv("test.u64", Value::u64(uint64_t{1} << 40)),
        kv("test.i64", Value::i64(-(int64_t{1} << 40))),
        kv("test.f64", Value::f64(0.1)),
        kv("test.bool", Value::boolean(true)),
        kv("tokenizer.ggml.tokens", Value::string_array({"<unk>", "<s>", "</s>", "a", "b"})),
        kv("tokenizer.ggml.scores", Value::f32_array({0.0f, -1.0f, -2.0f, -3.5f, -4.25f})),
        kv("test.nested", Value::array(ValueType::ARRAY, {Value::i32_array({1, 2}), Value::i32_array({3})})),
    };
    s.tensors = {
        {"token_embd.weight", {8, 5}, static_cast<uint32_t>(GgmlType::F32), {}, {}},
        {"blk.0.attn_q.weight", {32, 2}, static_cast<uint32_t>(GgmlType::Q8_0), {}, {}},
        {"output_norm.weight", {16}, static_cast<uint32_t>(GgmlType::F16), {}, {}},  // 32 bytes: no tail padding
    };
    return s;
}

std::vector<uint8_t> small_file() { return build(small_spec()).bytes; }

namespace {

constexpr uint32_t kU32 = static_cast<uint32_t>(ValueType::UINT32);
constexpr uint32_t kStr = static_cast<uint32_t>(ValueType::STRING);
constexpr uint32_t kArr = static_cast<uint32_t>(ValueType::ARRAY);

// Collects cases; each starts from small_spec() unless it builds its own bytes.
class CaseList {
public:
    std::vector<Case> out;

    void bad(std::string name, std::vector<uint8_t> bytes, ErrorKind kind, std::string subject, uint64_t offset) {
        out.push_back({std::move(name), std::move(bytes), false, kind, std::move(subject), offset});
    }
    void good(std::string name, std::vector<uint8_t> bytes) {
        out.push_back({std::move(name), std::move(bytes), true, ErrorKind::Io, "", 0});
    }
    // A malformed variant of small_spec(): `edit` changes the spec, `expect` derives the
    // expected subject and offset from the built layout (and may patch the bytes).
    void bad_spec(std::string name, const std::function<void(Spec&)>& edit, ErrorKind kind,
                  const std::function<std::pair<std::string, uint64_t>(Crafted&)>& expect) {
        Spec s = small_spec();
        edit(s);
        Crafted c = build(s);
        auto [subject, offset] = expect(c);
        bad(std::move(name), std::move(c.bytes), kind, std::move(subject), offset);
    }
    void good_spec(std::string name, const std::function<void(Spec&)>& edit) {
        Spec s = small_spec();
        edit(s);
        good(std::move(name), build(s).bytes);
    }
};

std::vector<uint8_t> nested_arrays(int depth) {
    Bytes b;
    for (int i = 1; i < depth; ++i) b.u32(kArr).u64(1);
    b.u32(kU32).u64(0);
    return b.take();
}

void header_cases(CaseList& L) {
    const std::vector<uint8_t> small = small_file();
    L.bad("empty", {}, ErrorKind::Truncated, "", 0);
    L.bad("three_bytes", {'G', 'G', 'U'}, ErrorKind::Truncated, "", 0);
    L.bad("header_cut_in_tensor_count", std::vector<uint8_t>(small.begin(), small.begin() + 12), ErrorKind::Truncated,
          "", 8);
    L.bad_spec("bad_magic", [](Spec& s) { s.magic = 0x4c4d4747; }, ErrorKind::BadMagic,
               [](Crafted&) { return std::pair<std::string, uint64_t>{"", 0}; });
    for (uint32_t v : {1u, 4u, 0x03000000u}) {
        L.bad_spec("version_" + std::to_string(v), [v](Spec& s) { s.version = v; }, ErrorKind::BadVersion,
                   [](Crafted&) { return std::pair<std::string, uint64_t>{"", 4}; });
    }
    L.bad_spec("tensor_count_huge", [](Spec& s) { s.tensor_count = uint64_t{1} << 40; }, ErrorKind::BadCount,
               [](Crafted&) { return std::pair<std::string, uint64_t>{"", 8}; });
    L.bad_spec("kv_count_huge", [](Spec& s) { s.kv_count = uint64_t{1} << 40; }, ErrorKind::BadCount,
               [](Crafted&) { return std::pair<std::string, uint64_t>{"", 16}; });
    // Plausible against the whole file, impossible for the bytes left after the metadata.
    L.bad_spec("tensor_count_exceeds_rest",
               [](Spec& s) {
                   s.kvs.push_back(kv("test.big", Value::string(std::string(3000, 'x'))));
                   s.tensor_count = 100;
               },
               ErrorKind::BadCount, [](Crafted&) { return std::pair<std::string, uint64_t>{"", 8}; });
}

void metadata_cases(CaseList& L) {
    using P = std::pair<std::string, uint64_t>;
    L.bad_spec("key_length_past_end", [](Spec&) {}, ErrorKind::BadString, [](Crafted& c) {
        patch_u64(c.bytes, c.kv[0].key, uint64_t{1} << 50);
        return P{"", c.kv[0].key};
    });
    L.bad_spec("key_empty", [](Spec& s) { s.kvs.insert(s.kvs.begin() + 1, kv("", Value::u8(1))); },
               ErrorKind::BadString, [](Crafted& c) { return P{"", c.kv[1].key}; });
    const std::string long_key(kMaxKeyLength + 1, 'k');
    L.bad_spec("key_too_long", [&](Spec& s) { s.kvs.push_back(kv(long_key, Value::u8(1))); }, ErrorKind::BadString,
               [&](Crafted& c) { return P{long_key, c.kv.back().key}; });
    L.bad_spec("key_duplicate", [](Spec& s) { s.kvs.push_back(kv("llama.block_count", Value::u32(3))); },
               ErrorKind::DuplicateKey, [](Crafted& c) { return P{"llama.block_count", c.kv.back().key}; });
    L.bad_spec("value_type_unknown", [](Spec& s) { s.kvs.push_back(kv_raw("test.x", 13, {1, 2, 3, 4})); },
               ErrorKind::BadValueType, [](Crafted& c) { return P{"test.x", c.kv.back().type}; });
    L.bad_spec("value_type_huge", [](Spec& s) { s.kvs.push_back(kv_raw("test.x", 0xffffffffu, {})); },
               ErrorKind::BadValueType, [](Crafted& c) { return P{"test.x", c.kv.back().type}; });
    L.bad_spec("string_value_past_end", [](Spec& s) { s.kvs.push_back(kv("test.s", Value::string("hello"))); },
               ErrorKind::BadString, [](Crafted& c) {
                   patch_u64(c.bytes, c.kv.back().value, c.bytes.size());
                   return P{"test.s", c.kv.back().value};
               });
    L.bad_spec("bool_not_0_or_1", [](Spec& s) { s.kvs.push_back(kv_raw("test.b", 7, {2})); },
               ErrorKind::BadValueType, [](Crafted& c) { return P{"test.b", c.kv.back().value}; });
    {
        Bytes b;
        b.u32(kMagic).u32(3).u64(0).u64(1).str("a.b").u32(static_cast<uint32_t>(ValueType::UINT64));
        const size_t at = b.size();
        b.u8(1).u8(2).u8(3);
        L.bad("scalar_value_truncated", b.take(), ErrorKind::Truncated, "a.b", at);
    }
}

void array_cases(CaseList& L) {
    using P = std::pair<std::string, uint64_t>;
    L.bad_spec("array_elem_type_unknown",
               [](Spec& s) { s.kvs.push_back(kv_raw("test.a", kArr, Bytes().u32(13).u64(0).take())); },
               ErrorKind::BadValueType, [](Crafted& c) { return P{"test.a", c.kv.back().value}; });
    L.bad_spec("array_count_huge",
               [](Spec& s) {
                   s.kvs.push_back(kv_raw("test.a", kArr, Bytes().u32(kU32).u64(uint64_t{1} << 62).take()));
               },
               ErrorKind::BadArray, [](Crafted& c) { return P{"test.a", c.kv.back().value + 4}; });
    // Fewer items than bytes left, but more than the bytes allow at 4 (u32) / 8 (string) each.
    struct Over {
        const char* name;
        uint32_t elem;
        size_t size;
    };
    for (const Over o :
         {Over{"array_u32_count_exceeds_bytes", kU32, 4}, Over{"array_string_count_exceeds_bytes", kStr, 8}}) {
        const uint32_t elem = o.elem;
        const size_t size = o.size;
        L.bad_spec(o.name,
                   [elem](Spec& s) { s.kvs.push_back(kv_raw("test.a", kArr, Bytes().u32(elem).u64(0).take())); },
                   ErrorKind::BadArray, [size](Crafted& c) {
                       const size_t count_at = c.kv.back().value + 4;
                       const size_t left = c.bytes.size() - (count_at + 8);
                       patch_u64(c.bytes, count_at, left / size + 1);
                       return P{"test.a", count_at};
                   });
    }
    L.bad_spec("array_string_item_past_end",
               [](Spec& s) {
                   Bytes b;
                   b.u32(kStr).u64(2).str("ab").u64(uint64_t{1} << 33);
                   s.kvs.push_back(kv_raw("test.a", kArr, b.take()));
               },
               ErrorKind::BadString, [](Crafted& c) { return P{"test.a", c.kv.back().value + 12 + 10}; });
    L.bad_spec("array_nested_9_deep", [](Spec& s) { s.kvs.push_back(kv_raw("test.deep", kArr, nested_arrays(9))); },
               ErrorKind::BadArray, [](Crafted& c) { return P{"test.deep", c.kv.back().value + 12 * 8}; });
    L.bad_spec("array_nested_bad_inner_count",
               [](Spec& s) {
                   Bytes b;
                   b.u32(kArr).u64(1).u32(kU32).u64(uint64_t{1} << 61);
                   s.kvs.push_back(kv_raw("test.a", kArr, b.take()));
               },
               ErrorKind::BadArray, [](Crafted& c) { return P{"test.a", c.kv.back().value + 16}; });
}

void alignment_cases(CaseList& L) {
    using P = std::pair<std::string, uint64_t>;
    const std::string key = "general.alignment";
    L.bad_spec("alignment_not_power_of_two", [&](Spec& s) { s.kvs.push_back(kv(key, Value::u32(48))); },
               ErrorKind::BadAlignment, [&](Crafted& c) { return P{key, c.kv.back().value}; });
    L.bad_spec("alignment_zero", [&](Spec& s) { s.kvs.push_back(kv(key, Value::u64(0))); }, ErrorKind::BadAlignment,
               [&](Crafted& c) { return P{key, c.kv.back().value}; });
    L.bad_spec("alignment_signed", [&](Spec& s) { s.kvs.push_back(kv(key, Value::i32(32))); },
               ErrorKind::BadAlignment, [&](Crafted& c) { return P{key, c.kv.back().type}; });
    L.bad_spec("alignment_string", [&](Spec& s) { s.kvs.insert(s.kvs.begin(), kv(key, Value::string("32"))); },
               ErrorKind::BadAlignment, [&](Crafted& c) { return P{key, c.kv.front().type}; });
}

void tensor_cases(CaseList& L) {
    using P = std::pair<std::string, uint64_t>;
    const uint32_t f32 = static_cast<uint32_t>(GgmlType::F32);
    L.bad_spec("tensor_name_empty", [](Spec& s) { s.tensors[1].name = ""; }, ErrorKind::BadTensorName,
               [](Crafted& c) { return P{"", c.tensor[1].name}; });
    const std::string name64(64, 'n');
    L.bad_spec("tensor_name_64_bytes", [&](Spec& s) { s.tensors[0].name = name64; }, ErrorKind::BadTensorName,
               [&](Crafted& c) { return P{name64, c.tensor[0].name}; });
    L.bad_spec("tensor_name_past_end", [](Spec&) {}, ErrorKind::BadString, [](Crafted& c) {
        patch_u64(c.bytes, c.tensor[0].name, uint64_t{1} << 40);
        return P{"", c.tensor[0].name};
    });
    L.bad_spec("tensor_name_duplicate", [](Spec& s) { s.tensors[2].name = s.tensors[0].name; },
               ErrorKind::BadTensorName, [](Crafted& c) { return P{"token_embd.weight", c.tensor[2].name}; });
    L.bad_spec("n_dims_0", [](Spec& s) { s.tensors[0].n_dims = 0; s.tensors[0].dims.clear(); }, ErrorKind::BadDims,
               [](Crafted& c) { return P{"token_embd.weight", c.tensor[0].n_dims}; });
    L.bad_spec("n_dims_5", [](Spec& s) { s.tensors[0].dims = {8, 5, 1, 1, 1}; }, ErrorKind::BadDims,
               [](Crafted& c) { return P{"token_embd.weight", c.tensor[0].n_dims}; });
    L.bad_spec("dim_zero", [](Spec& s) { s.tensors[0].dims = {8, 0}; }, ErrorKind::BadDims,
               [](Crafted& c) { return P{"token_embd.weight", c.tensor[0].dims + 8}; });
    L.bad_spec("dim_negative", [](Spec& s) { s.tensors[2].dims = {-16}; }, ErrorKind::BadDims,
               [](Crafted& c) { return P{"output_norm.weight", c.tensor[2].dims}; });
    L.bad_spec("elements_overflow", [](Spec& s) { s.tensors[0].dims = {int64_t{1} << 32, int64_t{1} << 30, 2}; },
               ErrorKind::BadDims, [](Crafted& c) { return P{"token_embd.weight", c.tensor[0].dims + 16}; });
    L.bad_spec("bytes_overflow",
               [](Spec& s) {
                   s.tensors[0].dims = {int64_t{1} << 61, 2};
                   s.tensors[0].type = static_cast<uint32_t>(GgmlType::F64);
               },
               ErrorKind::BadDims, [](Crafted& c) { return P{"token_embd.weight", c.tensor[0].dims}; });
    L.bad_spec("row_not_multiple_of_block", [](Spec& s) { s.tensors[1].dims = {48, 2}; }, ErrorKind::BadDims,
               [](Crafted& c) { return P{"blk.0.attn_q.weight", c.tensor[1].dims}; });
    for (uint32_t id : {4u, 31u, 99u, 0xffffffffu}) {
        L.bad_spec("tensor_type_" + std::to_string(id), [id](Spec& s) { s.tensors[1].type = id; },
                   ErrorKind::BadTensorType, [](Crafted& c) { return P{"blk.0.attn_q.weight", c.tensor[1].type}; });
    }
    L.bad_spec("offset_misaligned", [](Spec& s) { s.tensors[1].offset = 176; }, ErrorKind::BadOffset,
               [](Crafted& c) { return P{"blk.0.attn_q.weight", c.tensor[1].offset}; });
    L.bad_spec("offset_past_end", [](Spec& s) {
                   s.tensors[1].offset = 1 << 20;
                   s.data_size = 288;
               }, ErrorKind::BadOffset,
               [](Crafted& c) { return P{"blk.0.attn_q.weight", c.tensor[1].offset}; });
    L.bad_spec("offset_plus_size_overflows", [](Spec& s) { s.tensors[1].offset = ~uint64_t{0} - 31; },
               ErrorKind::BadOffset, [](Crafted& c) { return P{"blk.0.attn_q.weight", c.tensor[1].offset}; });
    L.bad_spec("data_one_byte_short", [](Spec& s) { s.data_size = 160 + 96 + 32 - 1; }, ErrorKind::BadOffset,
               [](Crafted& c) { return P{"output_norm.weight", c.tensor[2].offset}; });
    L.bad_spec("tensors_same_offset", [](Spec& s) { s.tensors[2].offset = 0; }, ErrorKind::BadOffset,
               [](Crafted& c) { return P{"output_norm.weight", c.tensor[2].offset}; });
    L.bad_spec("tensors_overlap", [](Spec& s) { s.tensors[1].offset = 128; }, ErrorKind::BadOffset,
               [](Crafted& c) { return P{"blk.0.attn_q.weight", c.tensor[1].offset}; });
    // The first tensor info is cut short.
    {
        Spec s = small_spec();
        s.tensor_count = 1;
        s.tensors = {{"tensor.t", {4}, f32, {}, {}}};
        Crafted c = build(s);
        c.bytes.resize(c.tensor[0].type + 2);
        // 30 bytes remain, enough to pass the tensor count check (24 per info).
        L.bad("tensor_info_truncated", std::move(c.bytes), ErrorKind::Truncated, "tensor.t", c.tensor[0].type);
    }
    // Tensors but no room for the aligned data section.
    {
        Spec s = small_spec();
        s.pad_after_infos = false;
        s.data_size = 0;
        Crafted c = build(s);
        if (c.infos_end % s.alignment != 0)
            L.bad("data_section_missing", std::move(c.bytes), ErrorKind::Truncated, "", c.infos_end);
        else
            L.bad("data_section_missing", std::move(c.bytes), ErrorKind::BadOffset, "token_embd.weight",
                  c.tensor[0].offset);
    }
}

void valid_cases(CaseList& L) {
    L.good("valid_small", small_file());
    L.good_spec("valid_v2", [](Spec& s) { s.version = 2; });
    L.good_spec("valid_no_tensors", [](Spec& s) { s.tensors.clear(); });
    L.good_spec("valid_no_tensors_no_padding", [](Spec& s) {
        s.tensors.clear();
        s.pad_after_infos = false;
        s.kvs.push_back(kv("test.odd", Value::string("x")));  // makes the end unaligned
    });
    L.good_spec("valid_alignment_u8_64", [](Spec& s) {
        s.kvs.push_back(kv("general.alignment", Value::u8(64)));
        s.alignment = 64;
    });
    L.good_spec("valid_alignment_u64_1", [](Spec& s) {
        s.kvs.insert(s.kvs.begin(), kv("general.alignment", Value::u64(1)));
        s.alignment = 1;
    });
    L.good_spec("valid_nested_8_deep", [](Spec& s) { s.kvs.push_back(kv_raw("test.deep", kArr, nested_arrays(8))); });
    L.good_spec("valid_name_63_bytes", [](Spec& s) { s.tensors[0].name = std::string(63, 'n'); });
    L.good_spec("valid_4_dims", [](Spec& s) { s.tensors[0].dims = {2, 2, 5, 2}; });
    L.good_spec("valid_reverse_offsets", [](Spec& s) {
        s.tensors[0].offset = 128 + 32;
        s.tensors[1].offset = 64;
        s.tensors[2].offset = 0;
        s.data_size = 128 + 32 + 160;
    });
    L.good_spec("valid_gaps_and_trailing_bytes", [](Spec& s) {
        s.tensors[1].offset = 1024;
        s.data_size = 4096;
    });
    L.good_spec("valid_every_tensor_type", [](Spec& s) {
        s.tensors.clear();
        for (uint32_t id = 0; id < 64; ++id) {
            const TypeTraits* tr = type_traits(id);
            if (!tr) continue;
            s.tensors.push_back({std::string("t.") + tr->name, {tr->block_size * 2, 3}, id, {}, {}});
        }
    });
    L.good_spec("valid_empty_arrays", [](Spec& s) {
        for (uint32_t t = 0; t <= 12; ++t)
            s.kvs.push_back(kv_raw("test.empty." + std::to_string(t), kArr, Bytes().u32(t).u64(0).take()));
    });
    L.good_spec("valid_every_scalar_array", [](Spec& s) {
        s.kvs.push_back(kv("a.u8", Value::array(ValueType::UINT8, {Value::u8(0), Value::u8(255)})));
        s.kvs.push_back(kv("a.i8", Value::array(ValueType::INT8, {Value::i8(-128), Value::i8(127)})));
        s.kvs.push_back(kv("a.u16", Value::array(ValueType::UINT16, {Value::u16(65535)})));
        s.kvs.push_back(kv("a.i16", Value::array(ValueType::INT16, {Value::i16(-32768)})));
        s.kvs.push_back(kv("a.u32", Value::array(ValueType::UINT32, {Value::u32(4294967295u)})));
        s.kvs.push_back(kv("a.u64", Value::array(ValueType::UINT64, {Value::u64(~uint64_t{0})})));
        s.kvs.push_back(kv("a.i64", Value::array(ValueType::INT64, {Value::i64(std::numeric_limits<int64_t>::min())})));
        s.kvs.push_back(kv("a.f64", Value::array(ValueType::FLOAT64, {Value::f64(-1e300)})));
        s.kvs.push_back(kv("a.bool", Value::array(ValueType::BOOL, {Value::boolean(false), Value::boolean(true)})));
    });
}

}  // namespace

std::vector<Case> cases() {
    CaseList L;
    header_cases(L);
    metadata_cases(L);
    array_cases(L);
    alignment_cases(L);
    tensor_cases(L);
    valid_cases(L);
    return std::move(L.out);
}

}  // namespace hearth::gguf::craft
