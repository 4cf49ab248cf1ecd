#include "model/quantize.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "gguf/gguf.h"
#include "tensor/threadpool.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

using T = GgmlType;

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// llama.cpp's heuristic for which layers get more bits in the _M mixes: the first and last
// eighth of the layers and every third layer in between.
bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

bool is(const QuantMix& m, const char* name) { return std::strcmp(m.name, name) == 0; }

// Substitute for a tensor whose rows are not a multiple of the chosen type's block size.
T fallback_type(T t, int64_t row) {
    switch (t) {
        case T::Q2_K:
        case T::Q3_K: t = T::Q4_0; break;  // llama.cpp uses IQ4_NL here, which Hearth does not implement
        case T::Q4_K: t = T::Q5_0; break;
        case T::Q5_K: t = T::Q5_1; break;
        case T::Q6_K: t = T::Q8_0; break;
        default: break;
    }
    if (row % traits(t).block_size != 0) t = T::F16;
    return t;
}

}  // namespace

const std::vector<QuantMix>& quant_mixes() {
    static const std::vector<QuantMix> mixes = {
        {"f32", 0, T::F32},      {"f16", 1, T::F16},      {"bf16", 32, T::BF16},   {"q4_0", 2, T::Q4_0},
        {"q4_1", 3, T::Q4_1},    {"q5_0", 8, T::Q5_0},    {"q5_1", 9, T::Q5_1},    {"q8_0", 7, T::Q8_0},
        {"q2_K", 10, T::Q2_K},   {"q3_K_S", 11, T::Q3_K}, {"q3_K_M", 12, T::Q3_K}, {"q3_K_L", 13, T::Q3_K},
        {"q4_K_S", 14, T::Q4_K}, {"q4_K_M", 15, T::Q4_K}, {"q5_K_S", 16, T::Q5_K}, {"q5_K_M", 17, T::Q5_K},
        {"q6_K", 18, T::Q6_K},   {"mxfp4_moe", 38, T::MXFP4},
    };
    return mixes;
}

std::optional<QuantMix> find_quant_mix(std::string_view name) {
    auto lower = [](std::string_view s) {
        std::string r(s);
        for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return r;
    };
    const std::string want = lower(name);
    for (const auto& m : quant_mixes())
        if (lower(m.name) == want) return m;
    // Aliases llama.cpp users type: q4_k = q4_K_M, q5_k = q5_K_M, q3_k = q3_K_M.
    if (want == "q3_k") return find_quant_mix("q3_K_M");
    if (want == "q4_k") return find_quant_mix("q4_K_M");
    if (want == "q5_k") return find_quant_mix("q5_K_M");
    return std::nullopt;
}

bool should_quantize(const TensorDesc& t) {
    const std::string_view n = t.name;
    if (!ends_with(n, "weight")) return false;
    int n_dims = 0;
    for (size_t i = 0; i < t.dims.size(); ++i)
        if (t.dims[i] > 1) n_dims = static_cast<int>(i) + 1;
    if (n_dims < 2) return false;
    if (contains(n, "_norm.weight")) return false;
    if (contains(n, "ffn_gate_inp.weight")) return false;  // MoE router
    if (n == "position_embd.weight" || n == "token_types.weight") return false;
    if (contains(n, "ssm_conv1d.weight")) return false;
    return t.type == T::F32 || t.type == T::F16 || t.type == T::BF16 || traits(t.type).quantized;
}

GgmlType choose_tensor_type(const QuantMix& mix, const TensorDesc& t, QuantContext& ctx) {
    if (!traits(mix.base).quantized) return mix.base;  // f32/f16/bf16: every weight, no mix rules
    const std::string_view n = t.name;
    const int64_t row = t.dims.empty() ? 0 : t.dims[0];
    T type = mix.base;
    if (mix.base == T::MXFP4) {  // MXFP4_MOE: the experts (3-D tensors) in MXFP4, the rest Q8_0
        const bool experts = t.dims.size() > 2 && t.dims[2] > 1;
        type = experts ? T::MXFP4 : T::Q8_0;
        return row % traits(type).block_size != 0 ? fallback_type(type, row) : type;
    }
    // MoE files: a tensor's layer is its blk.N (llama.cpp: experts need not be in order).
    auto layer_of = [&](int counter) {
        int l = counter;
        if (ctx.n_expert > 1 && std::sscanf(t.name.c_str(), "blk.%d.", &l) != 1) l = counter;
        return l;
    };

    const bool is_output = n == "output.weight" || (!ctx.has_output && n == "token_embd.weight");
    if (is_output) {
        if (ctx.arch == "falcon" || row % traits(type).block_size != 0 || row % QK_K != 0) type = T::Q8_0;
        else if (type != T::Q8_0) type = T::Q6_K;
    } else if (contains(n, "attn_v.weight")) {
        if (is(mix, "q2_K")) type = ctx.n_gqa >= 4 ? T::Q4_K : T::Q3_K;
        else if (is(mix, "q3_K_M")) type = ctx.i_attention_wv < 2 ? T::Q5_K : T::Q4_K;
        else if (is(mix, "q3_K_L")) type = T::Q5_K;
        else if ((is(mix, "q4_K_M") || is(mix, "q5_K_M")) && use_more_bits(ctx.i_attention_wv, ctx.n_attention_wv))
            type = T::Q6_K;
        else if (is(mix, "q4_K_S") && ctx.i_attention_wv < 4) type = T::Q5_K;
        if (ctx.n_expert == 8) type = T::Q8_0;  // llama.cpp: cheap for 8-expert models
        ++ctx.i_attention_wv;
    } else if (contains(n, "attn_k.weight")) {
        if (ctx.n_expert == 8) type = T::Q8_0;
    } else if (contains(n, "ffn_down")) {
        const int i = layer_of(ctx.i_ffn_down), nl = ctx.n_ffn_down;
        const bool falcon = ctx.arch == "falcon";
        if (is(mix, "q2_K")) type = T::Q3_K;
        else if (is(mix, "q3_K_M")) type = i < nl / 16 ? T::Q5_K : (!falcon || use_more_bits(i, nl)) ? T::Q4_K : T::Q3_K;
        else if (is(mix, "q3_K_L")) type = falcon ? T::Q4_K : T::Q5_K;
        else if (is(mix, "q4_K_M")) {
            if (falcon) type = i < nl / 16 ? T::Q6_K : use_more_bits(i, nl) ? T::Q5_K : T::Q4_K;
            else if (use_more_bits(i, nl)) type = T::Q6_K;
        } else if (is(mix, "q5_K_M") && use_more_bits(i, nl)) type = T::Q6_K;
        else if (is(mix, "q4_K_S") && !falcon && i < nl / 8) type = T::Q5_K;
        ++ctx.i_ffn_down;
    } else if (contains(n, "attn_output.weight")) {
        if (ctx.arch != "falcon" && ctx.n_expert == 8) {
            if (is(mix, "q2_K") || is(mix, "q3_K_S") || is(mix, "q3_K_M") || is(mix, "q4_K_S") || is(mix, "q4_K_M")) type = T::Q5_K;
        } else if (ctx.arch != "falcon") {
            if (is(mix, "q2_K")) type = T::Q3_K;
            else if (is(mix, "q3_K_M")) type = T::Q4_K;
            else if (is(mix, "q3_K_L")) type = T::Q5_K;
        } else if (is(mix, "q3_K_L")) {
            type = T::Q4_K;
        }
    } else if (contains(n, "attn_qkv.weight")) {
        if (is(mix, "q3_K_M") || is(mix, "q3_K_L")) type = T::Q4_K;
        else if (is(mix, "q4_K_M")) type = T::Q5_K;
        else if (is(mix, "q5_K_M")) type = T::Q6_K;
    }
    if (row % traits(type).block_size != 0) type = fallback_type(type, row);
    return type;
}

QuantizeResult quantize_model(const QuantizeOptions& opts) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(opts.output, ec) && fs::equivalent(opts.input, opts.output, ec))
        throw std::runtime_error("refusing to overwrite the input file " + opts.input);

    gguf::File in = gguf::File::open(opts.input);
    QuantContext ctx;
    ctx.arch = in.architecture();
    ctx.has_output = in.tensor("output.weight") != nullptr;
    const auto heads = in.get_u64(ctx.arch + ".attention.head_count");
    const auto kv_heads = in.get_u64(ctx.arch + ".attention.head_count_kv");
    if (heads && kv_heads && *kv_heads > 0) ctx.n_gqa = static_cast<int>(*heads / *kv_heads);
    ctx.n_expert = static_cast<int>(in.get_u64(ctx.arch + ".expert_count").value_or(0));
    for (const auto& t : in.tensors()) {
        if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") || contains(t.name, "attn_kv_b.weight"))
            ++ctx.n_attention_wv;
        if (contains(t.name, "ffn_down")) ++ctx.n_ffn_down;
    }
    if (const auto layers = in.get_u64(ctx.arch + ".block_count")) ctx.n_ffn_down = static_cast<int>(*layers);

    gguf::Writer out;
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.alignment") continue;  // the writer sets its own
        out.set(key, value);
    }
    out.set("general.file_type", gguf::Value::u32(opts.mix.file_type));
    out.set("general.quantization_version", gguf::Value::u32(2));

    ThreadPool pool(opts.threads);
    QuantizeResult res;
    res.input_bytes = in.file_size();
    const size_t count = in.tensors().size();
    for (size_t idx = 0; idx < count; ++idx) {
        const gguf::TensorInfo& t = in.tensors()[idx];
        TensorDesc desc{t.name, t.type, t.dims};
        GgmlType target = t.type;
        if (should_quantize(desc)) target = choose_tensor_type(opts.mix, desc, ctx);
        if (target != t.type) {
            const auto& src_k = kernels(t.type);
            const auto& dst_k = kernels(target);
            if (!src_k.to_float) throw std::runtime_error("tensor '" + t.name + "' has type " + type_name(t.type) + ", which cannot be converted");
            if (!dst_k.from_float) throw std::runtime_error(std::string("cannot quantize to ") + type_name(target));
            ++res.n_quantized;
        }
        const size_t out_bytes = row_size(target, t.dims[0]) * static_cast<size_t>(t.n_rows());
        res.output_bytes += out_bytes;
        if (target == t.type) {
            out.add_tensor(t.name, t.type, t.dims, t.data);
            continue;
        }
        const std::string name = t.name;
        out.add_tensor(t.name, target, t.dims, [&, idx, target, name](uint8_t* dst, size_t nbytes) {
            const gguf::TensorInfo& src = in.tensors()[idx];
            if (opts.progress) opts.progress(idx, count, name, target);
            const int64_t cols = src.dims[0];
            const int64_t rows = src.n_rows();
            const size_t src_row = src.row_bytes();
            const size_t dst_row = nbytes / static_cast<size_t>(rows);
            const auto to_float = kernels(src.type).to_float;
            const auto from_float = kernels(target).from_float;
            std::vector<std::vector<float>> bufs(static_cast<size_t>(pool.size()), std::vector<float>(static_cast<size_t>(cols)));
            pool.parallel_for(rows, 16, [&](int64_t r0, int64_t r1, int ith) {
                float* buf = bufs[static_cast<size_t>(ith)].data();
                for (int64_t r = r0; r < r1; ++r) {
                    to_float(src.data + static_cast<size_t>(r) * src_row, buf, cols);
                    from_float(buf, dst + static_cast<size_t>(r) * dst_row, cols);
                }
            });
        });
    }
    res.n_tensors = count;
    out.write(opts.output);
    return res;
}

}  // namespace hearth
