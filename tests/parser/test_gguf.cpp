// GGUF reader on the shared files, Value, GgufError and the File API.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "support/gguf_craft.h"
#include "support/paths.h"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::gguf;

namespace {

std::vector<fs::path> shared_ggufs() {
    std::vector<fs::path> out;
    const fs::path root = HEARTH_SHARED_DIR;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return out;
    for (const auto& e : fs::recursive_directory_iterator(root, ec))
        if (e.is_regular_file() && e.path().extension() == ".gguf") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

bool is_vocab_file(const fs::path& p) { return p.parent_path().filename() == "vocab"; }

void check_sane(const File& f) {
    EXPECT_TRUE(f.version() == 2 || f.version() == 3);
    EXPECT_TRUE(std::has_single_bit(f.alignment()));
    EXPECT_LE(f.data_offset(), f.file_size());
    if (!f.tensors().empty()) {
        EXPECT_EQ(f.data_offset() % f.alignment(), 0u);
    }
    for (const TensorInfo& t : f.tensors()) {
        SCOPED_TRACE(t.name);
        ASSERT_NE(type_traits(t.type), nullptr);
        ASSERT_GE(t.dims.size(), 1u);
        ASSERT_LE(t.dims.size(), 4u);
        EXPECT_EQ(t.nbytes, row_size(t.type, t.dims[0]) * static_cast<size_t>(t.n_rows()));
        EXPECT_EQ(t.offset % f.alignment(), 0u);
        EXPECT_EQ(t.data, f.bytes() + f.data_offset() + t.offset);
        EXPECT_LE(t.data + t.nbytes, f.bytes() + f.file_size());
        EXPECT_EQ(f.tensor(t.name), &t);
    }
}

}  // namespace

// ---- (a) every shared .gguf file

TEST(GgufShared, OpensEveryFile) {
    const auto files = shared_ggufs();
    if (files.empty()) GTEST_SKIP() << "no .gguf files under " << HEARTH_SHARED_DIR;
    size_t vocab_files = 0;
    for (const fs::path& p : files) {
        SCOPED_TRACE(p.string());
        File f = File::open(p.string());
        EXPECT_EQ(f.path(), p.string());
        EXPECT_EQ(f.file_size(), fs::file_size(p));
        check_sane(f);
        EXPECT_FALSE(f.architecture().empty());
        const Array* tokens = f.get_array("tokenizer.ggml.tokens");
        ASSERT_NE(tokens, nullptr);
        EXPECT_EQ(tokens->elem_type, ValueType::STRING);
        EXPECT_GT(tokens->items.size(), 0u);
        for (const auto& [key, v] : f.metadata()) (void)v.to_string();
        if (is_vocab_file(p)) {
            ++vocab_files;
            EXPECT_TRUE(f.tensors().empty());
        } else {
            EXPECT_FALSE(f.tensors().empty());
            EXPECT_NE(f.tensor("token_embd.weight"), nullptr);
        }
    }
    EXPECT_GE(vocab_files, 1u);
}

TEST(GgufShared, Stories260K) {
    const fs::path p = fs::path(HEARTH_SHARED_DIR) / "models" / "stories260K.gguf";
    if (!fs::exists(p)) GTEST_SKIP() << p;
    File f = File::open(p.string());
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.architecture(), "llama");
    EXPECT_EQ(f.get_u32("llama.block_count"), 5u);
    EXPECT_EQ(f.get_u64("llama.context_length"), 512u);
    EXPECT_EQ(f.get_u32("llama.embedding_length"), 64u);
    EXPECT_EQ(f.get_string("general.name"), "llama");
    EXPECT_EQ(f.get_u32("tokenizer.ggml.seperator_token_id"), 4294967295u);
    EXPECT_EQ(f.get_u32("tokenizer.ggml.bos_token_id"), 1u);
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_FALSE(f.get_u32("llama.rope.freq_base").has_value());

    const TensorInfo* emb = f.tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->dims, (std::vector<int64_t>{64, 512}));
    EXPECT_EQ(emb->type, GgmlType::F32);
    EXPECT_EQ(emb->nbytes, 64u * 512u * 4u);
    EXPECT_EQ(emb->n_elements(), 64 * 512);
    EXPECT_EQ(emb->n_rows(), 512);
    EXPECT_EQ(emb->row_bytes(), 256u);
    for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    EXPECT_NE(f.tensor("output.weight"), nullptr);
    EXPECT_EQ(f.tensors().size(), 48u);

    const Array* tokens = f.get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->elem_type, ValueType::STRING);
    ASSERT_EQ(tokens->items.size(), 512u);
    EXPECT_EQ(tokens->items[0].as_string(), "<unk>");
    EXPECT_EQ(tokens->items[1].as_string(), "<s>");
    const Array* scores = f.get_array("tokenizer.ggml.scores");
    ASSERT_NE(scores, nullptr);
    EXPECT_EQ(scores->elem_type, ValueType::FLOAT32);
    EXPECT_EQ(scores->items.size(), 512u);
    EXPECT_EQ(f.find("llama.block_count")->to_string(), "5");
}

TEST(GgufShared, VocabFilesParseQuickly) {
    struct Expect {
        const char* file;
        size_t tokens, merges;
    };
    const Expect expect[] = {{"ggml-vocab-llama-bpe.gguf", 128256, 280147}, {"ggml-vocab-qwen2.gguf", 151936, 0}};
    for (const Expect& e : expect) {
        const fs::path p = fs::path(HEARTH_SHARED_DIR) / "vocab" / e.file;
        if (!fs::exists(p)) GTEST_SKIP() << p;
        const auto t0 = std::chrono::steady_clock::now();
        File f = File::open(p.string());
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::printf("  %s: %zu metadata keys parsed in %.1f ms\n", e.file, f.metadata().size(), ms);
        EXPECT_TRUE(f.tensors().empty());
        EXPECT_EQ(f.data_offset(), f.file_size());
        ASSERT_NE(f.get_array("tokenizer.ggml.tokens"), nullptr);
        EXPECT_EQ(f.get_array("tokenizer.ggml.tokens")->items.size(), e.tokens);
        const Array* merges = f.get_array("tokenizer.ggml.merges");
        ASSERT_NE(merges, nullptr);
        if (e.merges) {
            EXPECT_EQ(merges->items.size(), e.merges);
        }
        EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
    }
}

// ---- File::open

TEST(GgufOpen, MissingFileIsIo) {
    try {
        File::open("/nonexistent/dir/model.gguf");
        FAIL() << "no exception";
    } catch (const GgufError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io);
        EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos) << e.what();
    }
}

TEST(GgufOpen, DirectoryIsIo) {
    const hearth::test::TempDir tmp;
    const fs::path& d = tmp.path();
    try {
        File::open(d.string());
        FAIL() << "no exception";
    } catch (const GgufError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    }
}

TEST(GgufOpen, EmptyFileIsTruncated) {
    const hearth::test::TempDir tmp;
    const fs::path& d = tmp.path();
    const fs::path p = d / "empty.gguf";
    std::ofstream(p).close();
    try {
        File::open(p.string());
        FAIL() << "no exception";
    } catch (const GgufError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Truncated) << e.what();
        EXPECT_EQ(e.offset(), 0u);
    }
}

TEST(GgufOpen, MappedFileAndMoves) {
    const hearth::test::TempDir tmp;
    const fs::path& d = tmp.path();
    const fs::path p = d / "small.gguf";
    const std::vector<uint8_t> bytes = craft::small_file();
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));

    File a = File::open(p.string());
    ASSERT_EQ(a.file_size(), bytes.size());
    EXPECT_EQ(std::memcmp(a.bytes(), bytes.data(), bytes.size()), 0);
    const uint8_t* data = a.tensors()[0].data;
    File b(std::move(a));
    EXPECT_EQ(b.tensors()[0].data, data);
    EXPECT_EQ(b.tensors()[0].data[0], craft::data_byte(0, 0));
    File c = File::from_memory(bytes);
    c = std::move(b);
    EXPECT_EQ(c.tensors()[0].data, data);
    EXPECT_EQ(c.tensors()[2].data[31], craft::data_byte(2, 31));
    EXPECT_EQ(c.path(), p.string());
}

// ---- Reading the crafted small file

TEST(GgufRead, SmallFileContents) {
    const auto bytes = craft::small_file();
    File f = File::from_memory(bytes);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.metadata().size(), craft::small_spec().kvs.size());
    EXPECT_EQ(f.metadata()[0].first, "general.architecture");
    EXPECT_EQ(f.architecture(), "llama");
    EXPECT_EQ(f.get_i64("test.i8"), -100);
    EXPECT_EQ(f.get_u64("test.u8"), 200u);
    EXPECT_EQ(f.get_u64("test.u64"), uint64_t{1} << 40);
    EXPECT_EQ(f.get_i64("test.i64"), -(int64_t{1} << 40));
    EXPECT_EQ(f.get_f64("test.f64"), 0.1);
    EXPECT_EQ(f.get_f64("llama.rope.freq_base"), 10000.0);
    EXPECT_EQ(f.get_bool("test.bool"), true);
    EXPECT_EQ(f.find("test.nested")->to_string(), "[[1, 2], [3]]");
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.tensors()[1].type, GgmlType::Q8_0);
    EXPECT_EQ(f.tensors()[1].nbytes, 68u);
    EXPECT_EQ(f.tensors()[1].offset, 160u);
    EXPECT_EQ(f.tensors()[1].row_bytes(), 34u);
    EXPECT_EQ(f.tensors()[2].offset, 256u);
    EXPECT_EQ(f.data_offset() + 288, f.file_size());
    for (size_t i = 0; i < 3; ++i)
        for (size_t j = 0; j < f.tensors()[i].nbytes; ++j) ASSERT_EQ(f.tensors()[i].data[j], craft::data_byte(i, j));
    EXPECT_EQ(f.tensor("nope"), nullptr);
}

TEST(GgufRead, HandCountedOffsets) {
    // magic 0, version 4, tensor count 8, kv count 16, first key length 24, its bytes 32.
    craft::Spec s;
    s.kvs = {craft::kv("ab", Value::u32(7)), craft::kv_raw("cd", 99, {})};
    try {
        File::from_memory(craft::build(s).bytes);
        FAIL() << "no exception";
    } catch (const GgufError& e) {
        EXPECT_EQ(e.kind(), ErrorKind::BadValueType);
        EXPECT_EQ(e.subject(), "cd");
        EXPECT_EQ(e.offset(), 24u + 8 + 2 + 4 + 4 + 8 + 2);  // second key's type field: 52
        EXPECT_STREQ(e.what(), "gguf: bad value type: unknown metadata value type 99 (key 'cd', at byte 52)");
    }
}

TEST(GgufRead, TypedGettersWrapMismatches) {
    const auto bytes = craft::small_file();
    File f = File::from_memory(bytes);
    EXPECT_FALSE(f.get_u32("absent").has_value());
    EXPECT_EQ(f.get_array("absent"), nullptr);
    const auto expect_bad = [](const std::function<void()>& fn, const std::string& key) {
        try {
            fn();
            ADD_FAILURE() << "no exception for " << key;
        } catch (const GgufError& e) {
            EXPECT_EQ(e.kind(), ErrorKind::BadValueType);
            EXPECT_EQ(e.subject(), key);
            EXPECT_EQ(e.subject_kind(), SubjectKind::Key);
            EXPECT_EQ(e.offset(), 0u);
            EXPECT_NE(std::string(e.what()).find("(key '" + key + "', at byte 0)"), std::string::npos) << e.what();
        }
    };
    expect_bad([&] { (void)f.get_u32("general.name"); }, "general.name");
    expect_bad([&] { (void)f.get_u32("test.u64"); }, "test.u64");
    expect_bad([&] { (void)f.get_u64("test.i8"); }, "test.i8");
    expect_bad([&] { (void)f.get_bool("test.u8"); }, "test.u8");
    expect_bad([&] { (void)f.get_string("test.u8"); }, "test.u8");
    expect_bad([&] { (void)f.get_array("test.u8"); }, "test.u8");
    expect_bad([&] { (void)f.get_f64("general.name"); }, "general.name");
    EXPECT_EQ(f.get_u32("test.bool"), 1u);
    EXPECT_EQ(f.get_f64("test.i16"), -30000.0);
}

// ---- Value

TEST(GgufValue, Accessors) {
    EXPECT_EQ(Value::u8(200).as_i64(), 200);
    EXPECT_EQ(Value::i16(-5).as_i64(), -5);
    EXPECT_THROW((void)Value::i8(-1).as_u64(), std::invalid_argument);
    EXPECT_EQ(Value::i32(5).as_u64(), 5u);
    EXPECT_THROW((void)Value::u64(~uint64_t{0}).as_i64(), std::invalid_argument);
    EXPECT_EQ(Value::u64(~uint64_t{0}).as_u64(), ~uint64_t{0});
    EXPECT_EQ(Value::boolean(true).as_u64(), 1u);
    EXPECT_THROW((void)Value::f32(1.0f).as_u64(), std::invalid_argument);
    EXPECT_THROW((void)Value::string("1").as_i64(), std::invalid_argument);
    EXPECT_EQ(Value::i64(-3).as_f64(), -3.0);
    EXPECT_EQ(Value::f32(0.5f).as_f64(), 0.5);
    EXPECT_THROW((void)Value::boolean(true).as_f64(), std::invalid_argument);
    EXPECT_THROW((void)Value::u8(1).as_bool(), std::invalid_argument);
    EXPECT_THROW((void)Value::u8(1).as_string(), std::invalid_argument);
    EXPECT_THROW((void)Value::string("x").as_array(), std::invalid_argument);
    EXPECT_THROW((void)Value().as_u64(), std::invalid_argument);
    EXPECT_TRUE(Value::i8(1).is_integer());
    EXPECT_FALSE(Value::boolean(true).is_integer());
    EXPECT_TRUE(Value::f64(1).is_float());
    try {
        (void)Value::f32(1.0f).as_string();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("string"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Value::array(ValueType::UINT32, {Value::u32(1), Value::i32(2)}), std::invalid_argument);
    EXPECT_THROW(Value::array(ValueType::UINT32, {Value()}), std::invalid_argument);
    EXPECT_THROW(Value::array(static_cast<ValueType>(13), {}), std::invalid_argument);
}

TEST(GgufValue, ToString) {
    EXPECT_EQ(Value::string("llama").to_string(), "\"llama\"");
    EXPECT_EQ(Value::u32(500000).to_string(), "500000");
    EXPECT_EQ(Value::i32(-7).to_string(), "-7");
    EXPECT_EQ(Value::f32(500000.0f).to_string(), "500000");
    EXPECT_EQ(Value::f32(1e-5f).to_string(), "1e-05");
    EXPECT_EQ(Value::f64(0.1).to_string(), "0.1");
    EXPECT_EQ(Value::f32(1e-4f).to_string(), "0.0001");
    EXPECT_EQ(Value::f64(1e16).to_string(), "1e+16");
    EXPECT_EQ(Value::f64(-2.5e15).to_string(), "-2500000000000000");
    EXPECT_EQ(Value::f32(10000.0f).to_string(), "10000");
    EXPECT_EQ(Value::boolean(false).to_string(), "false");
    EXPECT_EQ(Value::string("a\"b\\\n\x01").to_string(), "\"a\\\"b\\\\\\n\\x01\"");
    std::vector<int32_t> many(32000);
    for (int i = 0; i < 32000; ++i) many[size_t(i)] = i + 1;
    EXPECT_EQ(Value::i32_array(many).to_string(3), "[1, 2, 3, ... (32000 items)]");
    EXPECT_EQ(Value::i32_array({1, 2}).to_string(), "[1, 2]");
    EXPECT_EQ(Value::i32_array({}).to_string(), "[]");
    EXPECT_EQ(Value::i32_array({1, 2}).to_string(0), "[... (2 items)]");
    EXPECT_EQ(Value::string_array({"a", "b"}).to_string(), "[\"a\", \"b\"]");
    EXPECT_EQ(Value::array(ValueType::ARRAY, {Value::i32_array({1}), Value::i32_array({})}).to_string(), "[[1], []]");
    EXPECT_EQ(Value().to_string(), "<empty>");
}

TEST(GgufError, MessageFormat) {
    EXPECT_STREQ(GgufError(ErrorKind::BadDims, "blk.0.x", 12, "oops").what(),
                 "gguf: bad dims: oops (tensor 'blk.0.x', at byte 12)");
    EXPECT_STREQ(GgufError(ErrorKind::DuplicateKey, "a.b", 3, "twice").what(),
                 "gguf: duplicate key: twice (key 'a.b', at byte 3)");
    EXPECT_STREQ(GgufError(ErrorKind::BadMagic, "", 0, "no").what(), "gguf: bad magic: no (at byte 0)");
    EXPECT_STREQ(GgufError(ErrorKind::Truncated, SubjectKind::Tensor, "t", 9, "end").what(),
                 "gguf: truncated: end (tensor 't', at byte 9)");
    for (int k = 0; k <= static_cast<int>(ErrorKind::BadOffset); ++k)
        EXPECT_STRNE(error_kind_name(static_cast<ErrorKind>(k)), "unknown error");
}
