#include "model/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <stdexcept>

#include "gguf/gguf.h"
#include "model/quantize.h"
#include "model/synthetic_plan.h"
#include "tensor/threadpool.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

// splitmix64: tiny, well-mixed, and identical on every platform, so a seed gives the same
// model everywhere.
struct SplitMix64 {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

uint64_t hash_name(const std::string& s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// Fills `out` with N(0, std²) values (Box-Muller), deterministic for (seed, tensor, row).
void normal_row(uint64_t seed, float stddev, float* out, int64_t n) {
    SplitMix64 rng{seed};
    for (int64_t i = 0; i < n; i += 2) {
        const double u1 = 1.0 - rng.uniform();  // (0, 1]
        const double u2 = rng.uniform();
        const double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
        out[i] = static_cast<float>(r * std::cos(2.0 * std::numbers::pi * u2));
        if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(2.0 * std::numbers::pi * u2));
    }
}

using synth::Init;
using synth::PlannedTensor;

// A byte-fallback SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte tokens,
// then filler pieces, so the model is usable with Hearth's own tokenizer.
void synthesize_vocab(gguf::Writer& w, int64_t n_vocab) {
    if (n_vocab < 259) throw std::invalid_argument("a synthesized vocabulary needs at least 259 tokens");
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    tokens.reserve(static_cast<size_t>(n_vocab));
    auto add = [&](std::string t, float score, int32_t type) {
        tokens.push_back(std::move(t));
        scores.push_back(score);
        types.push_back(type);
    };
    add("<unk>", 0.0f, 2);
    add("<s>", 0.0f, 3);
    add("</s>", 0.0f, 3);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        add(buf, 0.0f, 6);
    }
    static const char* kLetters = "etaoinshrdlucmfwypvbgkjqxz";
    for (int64_t i = static_cast<int64_t>(tokens.size()); i < n_vocab; ++i) {
        // "▁x", "▁xy", ...: distinct pieces built from the index in base 26.
        std::string piece = "\xe2\x96\x81";
        int64_t v = i - 259;
        do {
            piece += kLetters[v % 26];
            v /= 26;
        } while (v > 0);
        add(piece, -static_cast<float>(i), 1);
    }
    w.set("tokenizer.ggml.model", gguf::Value::string("llama"));
    w.set("tokenizer.ggml.pre", gguf::Value::string("default"));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array(tokens));
    w.set("tokenizer.ggml.scores", gguf::Value::f32_array(scores));
    w.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
    w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
    w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
    w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0));
    w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
    w.set("tokenizer.ggml.add_eos_token", gguf::Value::boolean(false));
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
    static const std::vector<ModelPreset> presets = {
        {"tiny", "llama", 256, 2, 8, 4, 512, 512, 512, 10000.0, 1e-5f, false, false, false},
        {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0, 1e-5f, false, false, false},
        {"llama-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.0, 1e-5f, true, false, true},
        {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0, 1e-6f, true, true, false},
        // Qwen3-30B-A3B: 128 experts of width 768, 8 used per token; head dim 128.
        {"qwen3-30b-a3b", "qwen3moe", 2048, 48, 32, 4, 6144, 151936, 40960, 1000000.0, 1e-6f, false, false, false,
         128, 128, 8, 768},
    };
    return presets;
}

std::string synthetic_architectures() {
    std::string s;
    for (const auto& a : synth::architectures()) s += (s.empty() ? "" : ", ") + a;
    return s;
}

const ModelPreset* find_model_preset(const std::string& name) {
    for (const auto& p : model_presets())
        if (p.name == name) return &p;
    return nullptr;
}

uint64_t make_synthetic_model(const MakeModelOptions& opts) {
    const ModelPreset* found = find_model_preset(opts.preset);
    if (!found) {
        std::string names;
        for (const auto& p : model_presets()) names += (names.empty() ? "" : ", ") + p.name;
        throw std::invalid_argument("unknown preset '" + opts.preset + "' (known: " + names + ")");
    }
    const ModelPreset& p = *found;
    synth::Shape shape{p.arch, p.n_embd, p.n_layer, p.n_head, p.n_head_kv, p.head_dim > 0 ? p.head_dim : p.n_embd / p.n_head,
                       p.n_ff, p.n_vocab, p.n_ctx, p.rope_theta, p.norm_eps, p.tied_output, p.qkv_bias, p.llama3_rope,
                       p.n_expert, p.n_expert_used, p.n_ff_exp};
    if (!opts.arch.empty()) {
        const auto& known = synth::architectures();
        if (std::find(known.begin(), known.end(), opts.arch) == known.end())
            throw std::invalid_argument("make-model does not know the architecture '" + opts.arch + "' (known: " +
                                        synthetic_architectures() + ")");
        if (opts.arch != p.arch) {
            shape.arch = opts.arch;
            shape.qkv_bias = opts.arch == "qwen2";
            shape.llama3_rope = shape.llama3_rope && opts.arch == "llama";
        }
    }
    if (opts.layers < 0) throw std::invalid_argument("--layers must be positive");
    if (opts.layers > 0) shape.n_layer = opts.layers;
    const auto mix = find_quant_mix(opts.type);
    if (!mix) throw std::invalid_argument("unknown type '" + opts.type + "'");

    gguf::Writer w;
    const std::string arch_name = shape.arch == "mixtral" ? "llama" : shape.arch;
    w.set("general.architecture", gguf::Value::string(arch_name));
    w.set("general.name", gguf::Value::string("hearth-synthetic-" + p.name));
    w.set("general.file_type", gguf::Value::u32(mix->file_type));
    if (traits(mix->base).quantized) w.set("general.quantization_version", gguf::Value::u32(2));

    std::optional<gguf::File> vocab;
    if (!opts.vocab.empty()) {
        vocab.emplace(gguf::File::open(opts.vocab));
        const gguf::Array* toks = vocab->get_array("tokenizer.ggml.tokens");
        if (!toks) throw std::invalid_argument(opts.vocab + " has no tokenizer.ggml.tokens");
        shape.n_vocab = static_cast<int64_t>(toks->items.size());
        for (const auto& [key, value] : vocab->metadata())
            if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
    } else {
        synthesize_vocab(w, shape.n_vocab);
    }

    // The architecture's keys and tensors, in llama.cpp's conversion order.
    std::vector<PlannedTensor> plan;
    synth::plan(shape, w, plan);

    QuantContext ctx;
    ctx.arch = shape.arch;
    ctx.has_output = !shape.tied_output;
    ctx.n_gqa = static_cast<int>(shape.n_head / std::max<int64_t>(1, shape.n_head_kv));
    ctx.n_expert = static_cast<int>(shape.n_expert);
    for (const auto& t : plan)
        if (t.name.find("attn_v.weight") != std::string::npos || t.name.find("attn_qkv.weight") != std::string::npos)
            ++ctx.n_attention_wv;
    ctx.n_ffn_down = static_cast<int>(shape.n_layer);

    ThreadPool pool(opts.threads);
    const size_t count = plan.size();
    for (size_t idx = 0; idx < count; ++idx) {
        const PlannedTensor& t = plan[idx];
        TensorDesc desc{t.name, GgmlType::F32, t.dims};
        const GgmlType type = should_quantize(desc) ? choose_tensor_type(*mix, desc, ctx) : GgmlType::F32;
        const uint64_t tseed = opts.seed * 0x9e3779b97f4a7c15ull ^ hash_name(t.name);
        w.add_tensor(t.name, type, t.dims, [&, idx, type, tseed](uint8_t* dst, size_t nbytes) {
            const PlannedTensor& pt = plan[idx];
            if (opts.progress) opts.progress(idx, count, pt.name);
            const int64_t cols = pt.dims[0];
            int64_t rows = 1;
            for (size_t i = 1; i < pt.dims.size(); ++i) rows *= pt.dims[i];
            const size_t row_bytes = nbytes / static_cast<size_t>(rows);
            const auto from_float = type == GgmlType::F32 ? nullptr : kernels(type).from_float;
            std::vector<std::vector<float>> bufs(static_cast<size_t>(pool.size()), std::vector<float>(static_cast<size_t>(cols)));
            pool.parallel_for(rows, 8, [&](int64_t r0, int64_t r1, int ith) {
                float* buf = bufs[static_cast<size_t>(ith)].data();
                for (int64_t r = r0; r < r1; ++r) {
                    if (pt.init == Init::Ones) std::fill(buf, buf + cols, 1.0f);
                    else if (pt.init == Init::Values) std::copy(pt.values.begin(), pt.values.end(), buf);
                    else normal_row(tseed + static_cast<uint64_t>(r) * 0x632be59bd9b4e019ull, 0.02f, buf, cols);
                    uint8_t* out = dst + static_cast<size_t>(r) * row_bytes;
                    if (from_float) from_float(buf, out, cols);
                    else std::memcpy(out, buf, static_cast<size_t>(cols) * sizeof(float));
                }
            });
        });
    }
    w.write(opts.output);
    return std::filesystem::file_size(opts.output);
}

}  // namespace hearth
