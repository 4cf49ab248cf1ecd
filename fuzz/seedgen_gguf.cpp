// Writes the GGUF fuzz seed corpus: every crafted case (valid and malformed) plus a few
// writer-made files. Usage: seedgen_gguf OUTDIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gguf/gguf.h"
#include "support/gguf_craft.h"

namespace fs = std::filesystem;
using namespace hearth;
using namespace hearth::gguf;

namespace {

constexpr size_t kMaxSeed = 65536;  // matches the fuzzer's -max_len

bool save(const fs::path& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
    if (bytes.size() > kMaxSeed) return false;
    std::ofstream out(dir / (name + ".gguf"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
    return true;
}

std::vector<uint8_t> pattern(size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 29 + 3);
    return v;
}

// Every metadata type, nested arrays and one tensor of each known type.
std::vector<uint8_t> writer_everything() {
    Writer w;
    w.set("general.architecture", Value::string("llama"));
    w.set("a.u8", Value::u8(1));
    w.set("a.i8", Value::i8(-1));
    w.set("a.u16", Value::u16(2));
    w.set("a.i16", Value::i16(-2));
    w.set("a.u32", Value::u32(3));
    w.set("a.i32", Value::i32(-3));
    w.set("a.u64", Value::u64(4));
    w.set("a.i64", Value::i64(-4));
    w.set("a.f32", Value::f32(0.5f));
    w.set("a.f64", Value::f64(0.25));
    w.set("a.bool", Value::boolean(true));
    w.set("a.str", Value::string("text"));
    w.set("a.strs", Value::string_array({"a", "bc", ""}));
    w.set("a.f32s", Value::f32_array({1.0f, 2.0f}));
    w.set("a.i32s", Value::i32_array({1, -1}));
    w.set("a.nested", Value::array(ValueType::ARRAY, {Value::i32_array({1}), Value::string_array({"x"})}));
    std::vector<std::vector<uint8_t>> keep;
    for (uint32_t id = 0; id < 64; ++id) {
        const TypeTraits* tr = type_traits(id);
        if (!tr) continue;
        keep.push_back(pattern(tr->type_size));
        w.add_tensor(std::string("t.") + tr->name, tr->type, {tr->block_size}, keep.back().data());
    }
    return w.to_bytes();
}

std::vector<uint8_t> writer_vocab_only() {
    Writer w;
    w.set("general.architecture", Value::string("gpt2"));
    w.set("tokenizer.ggml.model", Value::string("gpt2"));
    std::vector<std::string> tokens;
    for (int i = 0; i < 200; ++i) tokens.push_back("tok" + std::to_string(i));
    w.set("tokenizer.ggml.tokens", Value::string_array(tokens));
    w.set("tokenizer.ggml.merges", Value::string_array({"t o", "to k"}));
    w.set_alignment(64);
    return w.to_bytes();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    try {
        const fs::path dir = argv[1];
        fs::create_directories(dir);
        size_t n = 0;
        for (const craft::Case& c : craft::cases()) n += save(dir, c.name, c.bytes);
        n += save(dir, "writer-everything", writer_everything());
        n += save(dir, "writer-vocab-only", writer_vocab_only());
        std::printf("wrote %zu seeds to %s\n", n, dir.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "seedgen_gguf: %s\n", e.what());
        return 1;
    }
    return 0;
}
