#include "model/synthetic.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <stdexcept>

#include "gguf/gguf.h"
#include "model/quantize.h"
#include "runtime/threadpool.h"
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

enum class Init { Normal, Ones, Values };

struct PlannedTensor {
    std::string name;
    std::vector<int64_t> dims;
    Init init;
    std::vector<float> values;  // Init::Values
};

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

std::vector<float> llama3_rope_factors(const ModelPreset& p) {
    // Llama 3.x frequency scaling: factor 32, low 1, high 4, original context 8192.
    const double factor = 32.0, low = 1.0, high = 4.0, orig = 8192.0;
    const int64_t head_dim = p.n_embd / p.n_head;
    std::vector<float> f(static_cast<size_t>(head_dim / 2));
    for (int64_t i = 0; i < head_dim / 2; ++i) {
        const double freq = 1.0 / std::pow(p.rope_theta, 2.0 * double(i) / double(head_dim));
        const double wavelen = 2.0 * std::numbers::pi / freq;
        double scale;
        if (wavelen < orig / high) scale = 1.0;
        else if (wavelen > orig / low) scale = factor;
        else {
            const double smooth = (orig / wavelen - low) / (high - low);
            scale = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        f[static_cast<size_t>(i)] = static_cast<float>(scale);
    }
    return f;
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
    static const std::vector<ModelPreset> presets = {
        {"tiny", "llama", 256, 2, 8, 4, 512, 512, 512, 10000.0, 1e-5f, false, false, false},
        {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0, 1e-5f, false, false, false},
        {"llama-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.0, 1e-5f, true, false, true},
        {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0, 1e-6f, true, true, false},
    };
    return presets;
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
    ModelPreset p = *found;
    if (!opts.arch.empty()) {
        if (opts.arch != "llama" && opts.arch != "qwen2")
            throw std::invalid_argument("make-model supports --arch llama or qwen2, not '" + opts.arch + "'");
        p.arch = opts.arch;
        p.qkv_bias = p.arch == "qwen2";
    }
    const auto mix = find_quant_mix(opts.type);
    if (!mix) throw std::invalid_argument("unknown type '" + opts.type + "'");

    gguf::Writer w;
    const std::string& a = p.arch;
    w.set("general.architecture", gguf::Value::string(a));
    w.set("general.name", gguf::Value::string("hearth-synthetic-" + p.name));
    w.set("general.file_type", gguf::Value::u32(mix->file_type));
    if (traits(mix->base).quantized) w.set("general.quantization_version", gguf::Value::u32(2));

    std::optional<gguf::File> vocab;
    if (!opts.vocab.empty()) {
        vocab.emplace(gguf::File::open(opts.vocab));
        const gguf::Array* toks = vocab->get_array("tokenizer.ggml.tokens");
        if (!toks) throw std::invalid_argument(opts.vocab + " has no tokenizer.ggml.tokens");
        p.n_vocab = static_cast<int64_t>(toks->items.size());
        for (const auto& [key, value] : vocab->metadata())
            if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
    } else {
        synthesize_vocab(w, p.n_vocab);
    }

    const int64_t head_dim = p.n_embd / p.n_head;
    w.set(a + ".vocab_size", gguf::Value::u32(static_cast<uint32_t>(p.n_vocab)));
    w.set(a + ".context_length", gguf::Value::u32(static_cast<uint32_t>(p.n_ctx)));
    w.set(a + ".embedding_length", gguf::Value::u32(static_cast<uint32_t>(p.n_embd)));
    w.set(a + ".block_count", gguf::Value::u32(static_cast<uint32_t>(p.n_layer)));
    w.set(a + ".feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(p.n_ff)));
    w.set(a + ".attention.head_count", gguf::Value::u32(static_cast<uint32_t>(p.n_head)));
    w.set(a + ".attention.head_count_kv", gguf::Value::u32(static_cast<uint32_t>(p.n_head_kv)));
    w.set(a + ".attention.layer_norm_rms_epsilon", gguf::Value::f32(p.norm_eps));
    w.set(a + ".rope.freq_base", gguf::Value::f32(static_cast<float>(p.rope_theta)));
    w.set(a + ".rope.dimension_count", gguf::Value::u32(static_cast<uint32_t>(head_dim)));

    // Tensors in llama.cpp's conversion order.
    std::vector<PlannedTensor> plan;
    const int64_t q_dim = p.n_head * head_dim, kv_dim = p.n_head_kv * head_dim;
    plan.push_back({"token_embd.weight", {p.n_embd, p.n_vocab}, Init::Normal, {}});
    if (p.llama3_rope) plan.push_back({"rope_freqs.weight", {head_dim / 2}, Init::Values, llama3_rope_factors(p)});
    for (int64_t l = 0; l < p.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        plan.push_back({b + "attn_norm.weight", {p.n_embd}, Init::Ones, {}});
        plan.push_back({b + "attn_q.weight", {p.n_embd, q_dim}, Init::Normal, {}});
        plan.push_back({b + "attn_k.weight", {p.n_embd, kv_dim}, Init::Normal, {}});
        plan.push_back({b + "attn_v.weight", {p.n_embd, kv_dim}, Init::Normal, {}});
        if (p.qkv_bias) {
            plan.push_back({b + "attn_q.bias", {q_dim}, Init::Normal, {}});
            plan.push_back({b + "attn_k.bias", {kv_dim}, Init::Normal, {}});
            plan.push_back({b + "attn_v.bias", {kv_dim}, Init::Normal, {}});
        }
        plan.push_back({b + "attn_output.weight", {q_dim, p.n_embd}, Init::Normal, {}});
        plan.push_back({b + "ffn_norm.weight", {p.n_embd}, Init::Ones, {}});
        plan.push_back({b + "ffn_gate.weight", {p.n_embd, p.n_ff}, Init::Normal, {}});
        plan.push_back({b + "ffn_up.weight", {p.n_embd, p.n_ff}, Init::Normal, {}});
        plan.push_back({b + "ffn_down.weight", {p.n_ff, p.n_embd}, Init::Normal, {}});
    }
    plan.push_back({"output_norm.weight", {p.n_embd}, Init::Ones, {}});
    if (!p.tied_output) plan.push_back({"output.weight", {p.n_embd, p.n_vocab}, Init::Normal, {}});

    QuantContext ctx;
    ctx.arch = a;
    ctx.has_output = !p.tied_output;
    ctx.n_gqa = static_cast<int>(p.n_head / p.n_head_kv);
    ctx.n_attention_wv = static_cast<int>(p.n_layer);
    ctx.n_ffn_down = static_cast<int>(p.n_layer);

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
            const int64_t rows = pt.dims.size() > 1 ? pt.dims[1] : 1;
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
