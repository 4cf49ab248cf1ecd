// gguf::Writer: round trips through the reader, layout, file output and input validation.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "gguf/gguf.h"
#include "support/gguf_craft.h"
#include "support/paths.h"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::gguf;

namespace {

// Same type and same contents, recursively.
void expect_same(const Value& a, const Value& b, const std::string& where) {
    ASSERT_EQ(a.type(), b.type()) << where;
    switch (a.type()) {
        case ValueType::FLOAT32:
        case ValueType::FLOAT64: {
            const double x = a.as_f64(), y = b.as_f64();
            EXPECT_EQ(std::memcmp(&x, &y, sizeof x), 0) << where;  // bit-exact, NaN included
            break;
        }
        case ValueType::BOOL: EXPECT_EQ(a.as_bool(), b.as_bool()) << where; break;
        case ValueType::STRING: EXPECT_EQ(a.as_string(), b.as_string()) << where; break;
        case ValueType::ARRAY: {
            const Array& x = a.as_array();
            const Array& y = b.as_array();
            ASSERT_EQ(x.elem_type, y.elem_type) << where;
            ASSERT_EQ(x.items.size(), y.items.size()) << where;
            for (size_t i = 0; i < x.items.size(); ++i)
                expect_same(x.items[i], y.items[i], where + "[" + std::to_string(i) + "]");
            break;
        }
        case ValueType::INT8:
        case ValueType::INT16:
        case ValueType::INT32:
        case ValueType::INT64: EXPECT_EQ(a.as_i64(), b.as_i64()) << where; break;
        default: EXPECT_EQ(a.as_u64(), b.as_u64()) << where; break;
    }
}

// An array nested `depth` levels deep around [1, 2, 3].
Value nested(int depth) {
    Value v = Value::array(ValueType::UINT32, {Value::u32(1), Value::u32(2), Value::u32(3)});
    for (int d = 1; d < depth; ++d) v = Value::array(ValueType::ARRAY, {v, v});
    return v;
}

std::vector<std::pair<std::string, Value>> every_value_type() {
    using L = std::numeric_limits<int64_t>;
    const auto arr = [](ValueType t, std::vector<Value> v) { return Value::array(t, std::move(v)); };
    return {
        {"v.u8", Value::u8(255)},
        {"v.i8", Value::i8(-128)},
        {"v.u16", Value::u16(65535)},
        {"v.i16", Value::i16(-32768)},
        {"v.u32", Value::u32(4294967295u)},
        {"v.i32", Value::i32(std::numeric_limits<int32_t>::min())},
        {"v.u64", Value::u64(~uint64_t{0})},
        {"v.i64", Value::i64(L::min())},
        {"v.f32", Value::f32(-1.5e-7f)},
        {"v.f32.inf", Value::f32(std::numeric_limits<float>::infinity())},
        {"v.f32.nan", Value::f32(std::numeric_limits<float>::quiet_NaN())},
        {"v.f64", Value::f64(1e300)},
        {"v.f64.negzero", Value::f64(-0.0)},
        {"v.bool.t", Value::boolean(true)},
        {"v.bool.f", Value::boolean(false)},
        {"v.str.empty", Value::string("")},
        {"v.str.bytes", Value::string(std::string("a\0b \xe2\x96\x81\xc3\xa9\xff", 10))},
        {"v.str.long", Value::string(std::string(100000, 'z'))},
        {"a.u8", arr(ValueType::UINT8, {Value::u8(0), Value::u8(255)})},
        {"a.i8", arr(ValueType::INT8, {Value::i8(-1), Value::i8(127)})},
        {"a.u16", arr(ValueType::UINT16, {Value::u16(1), Value::u16(65535)})},
        {"a.i16", arr(ValueType::INT16, {Value::i16(-32768)})},
        {"a.u32", arr(ValueType::UINT32, {Value::u32(7)})},
        {"a.i32", Value::i32_array({-1, 0, 1})},
        {"a.u64", arr(ValueType::UINT64, {Value::u64(~uint64_t{0}), Value::u64(0)})},
        {"a.i64", arr(ValueType::INT64, {Value::i64(L::max()), Value::i64(L::min())})},
        {"a.f32", Value::f32_array({0.25f, -0.0f, 3e38f})},
        {"a.f64", arr(ValueType::FLOAT64, {Value::f64(2.5)})},
        {"a.bool", arr(ValueType::BOOL, {Value::boolean(true), Value::boolean(false)})},
        {"a.str", Value::string_array({"", "x", std::string(300, 'y')})},
        {"a.empty.u8", arr(ValueType::UINT8, {})},
        {"a.empty.str", arr(ValueType::STRING, {})},
        {"a.empty.arr", arr(ValueType::ARRAY, {})},
        {"a.arr.str", arr(ValueType::ARRAY, {Value::string_array({"a", "b"}), Value::string_array({})})},
        {"a.arr.mixed",
         arr(ValueType::ARRAY, {Value::i32_array({1}), Value::string_array({"s"}), arr(ValueType::BOOL, {})})},
        {"a.nested.8", nested(8)},
    };
}
std::vector<uint8_t> read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
    return v;
}

}  // namespace

TEST(GgufWriter, RoundTripsEveryValueType) {
    Writer w;
    const auto kvs = every_value_type();
    for (const auto& [k, v] : kvs) w.set(k, v);
    const std::vector<uint8_t> bytes = w.to_bytes();
    File f = File::from_memory(bytes);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.data_offset(), f.file_size());
    EXPECT_EQ(f.data_offset() % 32, 0u);
    ASSERT_EQ(f.metadata().size(), kvs.size());
    for (size_t i = 0; i < kvs.size(); ++i) {
        EXPECT_EQ(f.metadata()[i].first, kvs[i].first);
        expect_same(f.metadata()[i].second, kvs[i].second, kvs[i].first);
    }
    // The writer encodes values exactly as the independent crafting helper does.
    craft::Spec s;
    for (const auto& [k, v] : kvs) s.kvs.push_back(craft::kv(k, v));
    EXPECT_EQ(craft::build(s).bytes, bytes);
}

TEST(GgufWriter, RoundTripsEveryTensorType) {
    Writer w;
    std::vector<std::vector<uint8_t>> data;
    std::vector<const TypeTraits*> types;
    for (uint32_t id = 0; id < 64; ++id) {
        const TypeTraits* tr = type_traits(id);
        if (!tr) continue;
        types.push_back(tr);
        const std::vector<int64_t> dims = {int64_t{tr->block_size} * 3, 2, 1};
        data.push_back(pattern(row_size(tr->type, dims[0]) * 2, static_cast<uint8_t>(id)));
        w.add_tensor(std::string("t.") + tr->name, tr->type, dims, data.back().data());
    }
    ASSERT_GE(types.size(), 30u);
    const auto bytes = w.to_bytes();
    File f = File::from_memory(bytes);
    ASSERT_EQ(f.tensors().size(), types.size());
    for (size_t i = 0; i < types.size(); ++i) {
        const TensorInfo& t = f.tensors()[i];
        SCOPED_TRACE(t.name);
        EXPECT_EQ(t.name, std::string("t.") + types[i]->name);
        EXPECT_EQ(t.type, types[i]->type);
        EXPECT_EQ(t.dims, (std::vector<int64_t>{int64_t{types[i]->block_size} * 3, 2, 1}));
        EXPECT_EQ(t.nbytes, types[i]->type_size * 3 * 2);
        EXPECT_EQ(t.offset % 32, 0u);
        ASSERT_EQ(t.nbytes, data[i].size());
        EXPECT_EQ(std::memcmp(t.data, data[i].data(), t.nbytes), 0);
    }
}

TEST(GgufWriter, MatchesCraftedLayoutByteForByte) {
    // Writing small_spec()'s metadata and tensors gives exactly the crafted bytes.
    const craft::Spec s = craft::small_spec();
    const craft::Crafted c = craft::build(s);
    File ref = File::from_memory(c.bytes);
    Writer w;
    for (const auto& [k, v] : ref.metadata()) w.set(k, v);
    for (const TensorInfo& t : ref.tensors()) w.add_tensor(t.name, t.type, t.dims, t.data);
    EXPECT_EQ(w.to_bytes(), c.bytes);
}

TEST(GgufWriter, AlignmentAndZeroPadding) {
    Writer w;
    w.set("general.architecture", Value::string("test"));
    w.set_alignment(64);
    const auto a = pattern(5 * 4, 1), b = pattern(3 * 2, 2), c = pattern(34, 3);
    w.add_tensor("a", GgmlType::F32, {5}, a.data());
    w.add_tensor("b", GgmlType::F16, {3}, b.data());
    w.add_tensor("c", GgmlType::Q8_0, {32}, c.data());
    const auto bytes = w.to_bytes();
    File f = File::from_memory(bytes);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.get_u32("general.alignment"), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.tensors()[0].offset, 0u);
    EXPECT_EQ(f.tensors()[1].offset, 64u);
    EXPECT_EQ(f.tensors()[2].offset, 128u);
    EXPECT_EQ(bytes.size(), f.data_offset() + 192);  // the last tensor is padded too
    for (size_t i = 20; i < 64; ++i) EXPECT_EQ(f.bytes()[f.data_offset() + i], 0) << i;
    EXPECT_EQ(std::memcmp(f.tensors()[2].data, c.data(), 34), 0);

    // Back to the default: the key goes away.
    w.set_alignment(32);
    File g = File::from_memory(w.to_bytes());
    EXPECT_EQ(g.alignment(), 32u);
    EXPECT_EQ(g.find("general.alignment"), nullptr);
    // Setting the key directly also sets the alignment.
    w.set("general.alignment", Value::u16(128));
    const auto bytes128 = w.to_bytes();
    File h = File::from_memory(bytes128);
    EXPECT_EQ(h.alignment(), 128u);
    EXPECT_EQ(h.tensors()[1].offset, 128u);
}

TEST(GgufWriter, SetReplacesInPlaceAndRemove) {
    Writer w;
    w.set("a", Value::u32(1));
    w.set("b", Value::u32(2));
    w.set("a", Value::string("one"));
    w.set("c", Value::u32(3));
    w.remove("b");
    w.remove("missing");
    File f = File::from_memory(w.to_bytes());
    ASSERT_EQ(f.metadata().size(), 2u);
    EXPECT_EQ(f.metadata()[0].first, "a");
    EXPECT_EQ(f.get_string("a"), "one");
    EXPECT_EQ(f.metadata()[1].first, "c");
}

TEST(GgufWriter, Version2FilesAreReadable) {
    Writer w;
    w.set("general.architecture", Value::string("llama"));
    const auto d = pattern(64, 9);
    w.add_tensor("x", GgmlType::F32, {16}, d.data());
    auto bytes = w.to_bytes();
    craft::patch_u32(bytes, 4, 2);
    File f = File::from_memory(bytes);
    EXPECT_EQ(f.version(), 2u);
    EXPECT_EQ(f.architecture(), "llama");
    EXPECT_EQ(std::memcmp(f.tensor("x")->data, d.data(), 64), 0);
}

TEST(GgufWriter, WriteMatchesToBytesFillAndProgress) {
    const hearth::test::TempDir tmp;
    const fs::path& dir = tmp.path();
    const fs::path path = dir / "out.gguf";
    Writer w;
    w.set("general.architecture", Value::string("llama"));
    std::vector<size_t> fills;
    const auto fill = [&fills](uint8_t* dst, size_t n) {
        fills.push_back(n);
        for (size_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(i * 3 + n);
    };
    w.add_tensor("big", GgmlType::F32, {64, 3}, fill);
    w.add_tensor("small", GgmlType::Q4_0, {32}, fill);
    w.add_tensor("mid", GgmlType::F16, {10, 2}, fill);
    std::vector<std::pair<size_t, size_t>> progress;
    w.on_progress([&](size_t i, size_t n) { progress.emplace_back(i, n); });

    w.write(path.string());
    EXPECT_EQ(fills, (std::vector<size_t>{768, 18, 40}));
    EXPECT_EQ(progress, (std::vector<std::pair<size_t, size_t>>{{0, 3}, {1, 3}, {2, 3}}));
    const auto on_disk = read_file(path);
    EXPECT_EQ(on_disk, w.to_bytes());
    size_t entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
    EXPECT_EQ(entries, 1u);  // no temp file left

    File f = File::open(path.string());
    const TensorInfo* small = f.tensor("small");
    ASSERT_NE(small, nullptr);
    for (size_t i = 0; i < 18; ++i) EXPECT_EQ(small->data[i], static_cast<uint8_t>(i * 3 + 18));
    // Overwrites an existing file.
    w.remove("general.architecture");
    w.write(path.string());
    EXPECT_EQ(read_file(path), w.to_bytes());
}

TEST(GgufWriter, WriteFailuresLeaveNoTempFile) {
    Writer w;
    w.set("k", Value::u8(1));
    try {
        w.write("/nonexistent-hearth-dir/out.gguf");
        FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent-hearth-dir/out.gguf"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos) << e.what();
    }

    const hearth::test::TempDir tmp;
    const fs::path& dir = tmp.path();
    w.add_tensor("t", GgmlType::F32, {4}, [](uint8_t*, size_t) { throw std::logic_error("fill failed"); });
    EXPECT_THROW(w.write((dir / "out.gguf").string()), std::logic_error);
    EXPECT_TRUE(fs::is_empty(dir));
}

TEST(GgufWriter, RejectsInvalidInput) {
    Writer w;
    const float x[64] = {};
    EXPECT_THROW(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}, x), std::invalid_argument);
    EXPECT_NO_THROW(w.add_tensor(std::string(63, 'n'), GgmlType::F32, {1}, x));
    EXPECT_THROW(w.add_tensor(std::string(63, 'n'), GgmlType::F32, {1}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("", GgmlType::F32, {1}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("d0", GgmlType::F32, {}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("d5", GgmlType::F32, {1, 1, 1, 1, 1}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("zero", GgmlType::F32, {4, 0}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("neg", GgmlType::F32, {-4}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("ovf", GgmlType::F32, {int64_t{1} << 40, int64_t{1} << 40}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("bytes", GgmlType::F64, {int64_t{1} << 61, 2}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("block", GgmlType::Q4_K, {128}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("type", static_cast<GgmlType>(4), {32}, x), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("null", GgmlType::F32, {4}, static_cast<const void*>(nullptr)), std::invalid_argument);
    EXPECT_THROW(w.add_tensor("nofill", GgmlType::F32, {4}, Writer::Fill{}), std::invalid_argument);
    EXPECT_THROW(w.set_alignment(0), std::invalid_argument);
    EXPECT_THROW(w.set_alignment(48), std::invalid_argument);
    EXPECT_THROW(w.set("general.alignment", Value::i32(32)), std::invalid_argument);
    EXPECT_THROW(w.set("general.alignment", Value::u32(3)), std::invalid_argument);
    EXPECT_THROW(w.set("", Value::u8(1)), std::invalid_argument);
    EXPECT_THROW(w.set(std::string(kMaxKeyLength + 1, 'k'), Value::u8(1)), std::invalid_argument);
    EXPECT_THROW(w.set("empty", Value()), std::invalid_argument);
    EXPECT_THROW(w.set("deep", nested(9)), std::invalid_argument);
    EXPECT_NO_THROW(w.set("deep", nested(8)));
    // Only the one valid tensor made it in.
    File f = File::from_memory(w.to_bytes());
    EXPECT_EQ(f.tensors().size(), 1u);
    EXPECT_EQ(f.alignment(), 32u);
}
