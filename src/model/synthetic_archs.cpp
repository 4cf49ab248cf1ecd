// Per-architecture layouts for `hearth dev make-model`: the metadata keys and tensors each
// architecture's GGUF has (names, shapes, order as llama.cpp's convert_hf_to_gguf.py writes
// them), so the files load in Hearth and in llama.cpp alike.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "model/synthetic_plan.h"

namespace hearth::synth {
namespace {

using gguf::Value;

std::vector<float> llama3_rope_factors(const Shape& p) {
    // Llama 3.x frequency scaling: factor 32, low 1, high 4, original context 8192.
    const double factor = 32.0, low = 1.0, high = 4.0, orig = 8192.0;
    std::vector<float> f(static_cast<size_t>(p.head_dim / 2));
    for (int64_t i = 0; i < p.head_dim / 2; ++i) {
        const double freq = 1.0 / std::pow(p.rope_theta, 2.0 * double(i) / double(p.head_dim));
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

// Collects one architecture's keys and tensors.
struct Builder {
    Shape& s;
    gguf::Writer& w;
    std::vector<PlannedTensor>& plan;
    const std::string a = s.arch + ".";

    void u32(const std::string& key, int64_t v) { w.set(a + key, Value::u32(static_cast<uint32_t>(v))); }
    void f32(const std::string& key, double v) { w.set(a + key, Value::f32(static_cast<float>(v))); }
    void t(const std::string& name, std::vector<int64_t> dims, Init init = Init::Normal) {
        plan.push_back({name, std::move(dims), init, {}});
    }
    void norm(const std::string& name, int64_t n, bool bias = false) {
        t(name + ".weight", {n}, Init::Ones);
        if (bias) t(name + ".bias", {n});
    }
    int64_t q_dim() const { return s.n_head * s.head_dim; }
    int64_t kv_dim() const { return s.n_head_kv * s.head_dim; }

    // The keys every decoder has; `rms` selects the norm epsilon key.
    void common_keys(bool rms = true) {
        u32("context_length", s.n_ctx);
        u32("embedding_length", s.n_embd);
        u32("block_count", s.n_layer);
        u32("feed_forward_length", s.n_ff);
        u32("attention.head_count", s.n_head);
        u32("attention.head_count_kv", s.n_head_kv);
        f32("rope.freq_base", s.rope_theta);
        f32(rms ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon", s.norm_eps);
        u32("vocab_size", s.n_vocab);
        if (s.head_dim != s.n_embd / s.n_head) {
            u32("attention.key_length", s.head_dim);
            u32("attention.value_length", s.head_dim);
        }
    }
    void moe_keys(bool expert_ff_key = true) {
        if (s.n_expert == 0) {
            s.n_expert = 4;
            s.n_expert_used = 2;
        }
        if (s.n_ff_exp == 0) s.n_ff_exp = s.n_ff;
        u32("expert_count", s.n_expert);
        u32("expert_used_count", s.n_expert_used);
        if (expert_ff_key) u32("expert_feed_forward_length", s.n_ff_exp);
    }
    void attention(const std::string& b, bool bias) {
        t(b + "attn_q.weight", {s.n_embd, q_dim()});
        t(b + "attn_k.weight", {s.n_embd, kv_dim()});
        t(b + "attn_v.weight", {s.n_embd, kv_dim()});
        if (bias) {
            t(b + "attn_q.bias", {q_dim()});
            t(b + "attn_k.bias", {kv_dim()});
            t(b + "attn_v.bias", {kv_dim()});
        }
        t(b + "attn_output.weight", {q_dim(), s.n_embd});
    }
    void dense_ffn(const std::string& b, int64_t ff) {
        t(b + "ffn_gate.weight", {s.n_embd, ff});
        t(b + "ffn_up.weight", {s.n_embd, ff});
        t(b + "ffn_down.weight", {ff, s.n_embd});
    }
    void experts(const std::string& b, bool bias) {
        t(b + "ffn_gate_inp.weight", {s.n_embd, s.n_expert});
        if (bias) t(b + "ffn_gate_inp.bias", {s.n_expert});
        t(b + "ffn_gate_exps.weight", {s.n_embd, s.n_ff_exp, s.n_expert});
        if (bias) t(b + "ffn_gate_exps.bias", {s.n_ff_exp, s.n_expert});
        t(b + "ffn_down_exps.weight", {s.n_ff_exp, s.n_embd, s.n_expert});
        if (bias) t(b + "ffn_down_exps.bias", {s.n_embd, s.n_expert});
        t(b + "ffn_up_exps.weight", {s.n_embd, s.n_ff_exp, s.n_expert});
        if (bias) t(b + "ffn_up_exps.bias", {s.n_ff_exp, s.n_expert});
    }
    void output(bool norm_bias = false) {
        norm("output_norm", s.n_embd, norm_bias);
        if (!s.tied_output) t("output.weight", {s.n_embd, s.n_vocab});
    }
};

// llama / qwen2 / qwen3 / granite / mixtral / qwen3moe: the llama block with optional
// biases, Q/K norms and experts.
void plan_llama_family(Builder& B, bool qk_norm, bool moe) {
    Shape& s = B.s;
    B.common_keys();
    if (moe) B.moe_keys(s.arch != "llama");
    if (s.arch == "llama" || s.arch == "granite") B.u32("rope.dimension_count", s.head_dim);
    if (s.arch == "granite") {
        B.f32("attention.scale", 1.0 / std::sqrt(static_cast<double>(s.head_dim)));
        B.f32("embedding_scale", 12.0);
        B.f32("residual_scale", 0.22);
        B.f32("logit_scale", 8.0);
    }
    if (qk_norm) {
        B.u32("attention.key_length", s.head_dim);
        B.u32("attention.value_length", s.head_dim);
    }
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    if (s.llama3_rope) B.plan.push_back({"rope_freqs.weight", {s.head_dim / 2}, Init::Values, llama3_rope_factors(s)});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.norm(b + "attn_norm", s.n_embd);
        B.attention(b, s.qkv_bias);
        if (qk_norm) {
            B.norm(b + "attn_q_norm", s.head_dim);
            B.norm(b + "attn_k_norm", s.head_dim);
        }
        B.norm(b + "ffn_norm", s.n_embd);
        if (moe) B.experts(b, false);
        else B.dense_ffn(b, s.n_ff);
    }
    B.output();
}

void plan_gemma(Builder& B, bool gemma3) {
    Shape& s = B.s;
    s.tied_output = true;
    B.common_keys();
    B.u32("attention.key_length", s.head_dim);
    B.u32("attention.value_length", s.head_dim);
    B.u32("attention.sliding_window", std::min<int64_t>(s.n_ctx, gemma3 ? 512 : 4096));
    if (!gemma3) {
        B.f32("attn_logit_softcapping", 50.0);
        B.f32("final_logit_softcapping", 30.0);
    }
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.norm(b + "attn_norm", s.n_embd);
        B.attention(b, false);
        if (gemma3) {
            B.norm(b + "attn_q_norm", s.head_dim);
            B.norm(b + "attn_k_norm", s.head_dim);
        }
        B.norm(b + "post_attention_norm", s.n_embd);
        B.norm(b + "ffn_norm", s.n_embd);
        B.dense_ffn(b, s.n_ff);
        B.norm(b + "post_ffw_norm", s.n_embd);
    }
    B.output();
}

void plan_phi3(Builder& B) {
    Shape& s = B.s;
    B.common_keys();
    B.u32("rope.dimension_count", s.head_dim);
    B.u32("rope.scaling.original_context_length", s.n_ctx);
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.norm(b + "attn_norm", s.n_embd);
        B.t(b + "attn_qkv.weight", {s.n_embd, B.q_dim() + 2 * B.kv_dim()});
        B.t(b + "attn_output.weight", {B.q_dim(), s.n_embd});
        B.norm(b + "ffn_norm", s.n_embd);
        B.t(b + "ffn_up.weight", {s.n_embd, 2 * s.n_ff});
        B.t(b + "ffn_down.weight", {s.n_ff, s.n_embd});
    }
    B.output();
}

void plan_olmo2(Builder& B) {
    Shape& s = B.s;
    B.common_keys();
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.attention(b, false);
        B.norm(b + "attn_q_norm", B.q_dim());
        B.norm(b + "attn_k_norm", B.kv_dim());
        B.norm(b + "post_attention_norm", s.n_embd);
        B.dense_ffn(b, s.n_ff);
        B.norm(b + "post_ffw_norm", s.n_embd);
    }
    B.output();
}

void plan_starcoder2(Builder& B) {
    Shape& s = B.s;
    s.tied_output = true;
    B.common_keys(/*rms=*/false);
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.norm(b + "attn_norm", s.n_embd, true);
        B.attention(b, true);
        B.t(b + "attn_output.bias", {s.n_embd});
        B.norm(b + "ffn_norm", s.n_embd, true);
        B.t(b + "ffn_up.weight", {s.n_embd, s.n_ff});
        B.t(b + "ffn_up.bias", {s.n_ff});
        B.t(b + "ffn_down.weight", {s.n_ff, s.n_embd});
        B.t(b + "ffn_down.bias", {s.n_embd});
    }
    B.output(/*norm_bias=*/true);
}

void plan_gpt_oss(Builder& B) {
    Shape& s = B.s;
    B.common_keys();
    B.moe_keys();
    B.u32("attention.key_length", s.head_dim);
    B.u32("attention.value_length", s.head_dim);
    B.u32("attention.sliding_window", std::min<int64_t>(s.n_ctx, 128));
    B.w.set(B.a + "rope.scaling.type", Value::string("yarn"));
    B.f32("rope.scaling.factor", 32.0);
    B.u32("rope.scaling.original_context_length", 4096);
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.norm(b + "attn_norm", s.n_embd);
        B.attention(b, true);
        B.t(b + "attn_output.bias", {s.n_embd});
        B.t(b + "attn_sinks.weight", {s.n_head});
        B.norm(b + "post_attention_norm", s.n_embd);
        B.experts(b, true);
    }
    B.output();
}

void plan_deepseek2(Builder& B) {
    Shape& s = B.s;
    B.common_keys();
    B.moe_keys();
    const int64_t rope = std::min<int64_t>(64, s.head_dim), nope = s.head_dim, vd = s.head_dim;
    const int64_t q_lora = s.n_embd / 2, kv_lora = s.n_embd / 2;
    B.u32("attention.head_count_kv", 1);
    B.u32("leading_dense_block_count", 1);
    B.u32("attention.q_lora_rank", q_lora);
    B.u32("attention.kv_lora_rank", kv_lora);
    B.u32("attention.key_length", kv_lora + rope);
    B.u32("attention.value_length", kv_lora);
    B.u32("attention.key_length_mla", nope + rope);
    B.u32("attention.value_length_mla", vd);
    B.u32("expert_shared_count", 1);
    B.f32("expert_weights_scale", 1.0);
    B.w.set(B.a + "expert_weights_norm", Value::boolean(false));
    B.u32("expert_gating_func", 1);
    B.u32("rope.dimension_count", rope);
    // DeepSeek-V2's YaRN settings scaled to the shape (llama.cpp requires the multiplier).
    B.w.set(B.a + "rope.scaling.type", Value::string("yarn"));
    B.f32("rope.scaling.factor", 4.0);
    B.u32("rope.scaling.original_context_length", std::max<int64_t>(64, s.n_ctx / 4));
    B.f32("rope.scaling.yarn_log_multiplier", 0.0707);
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        B.norm(b + "attn_norm", s.n_embd);
        B.t(b + "attn_q_a.weight", {s.n_embd, q_lora});
        B.norm(b + "attn_q_a_norm", q_lora);
        B.t(b + "attn_q_b.weight", {q_lora, s.n_head * (nope + rope)});
        B.t(b + "attn_kv_a_mqa.weight", {s.n_embd, kv_lora + rope});
        B.norm(b + "attn_kv_a_norm", kv_lora);
        B.t(b + "attn_k_b.weight", {nope, kv_lora, s.n_head});
        B.t(b + "attn_v_b.weight", {kv_lora, vd, s.n_head});
        B.t(b + "attn_output.weight", {s.n_head * vd, s.n_embd});
        B.norm(b + "ffn_norm", s.n_embd);
        if (l == 0) {
            B.dense_ffn(b, s.n_ff);
            continue;
        }
        B.experts(b, false);
        B.t(b + "ffn_gate_shexp.weight", {s.n_embd, s.n_ff_exp});
        B.t(b + "ffn_up_shexp.weight", {s.n_embd, s.n_ff_exp});
        B.t(b + "ffn_down_shexp.weight", {s.n_ff_exp, s.n_embd});
    }
    B.output();
}

// bert / nomic-bert encoders (embeddings).
void plan_encoder(Builder& B, bool nomic) {
    Shape& s = B.s;
    s.n_ctx = std::min<int64_t>(s.n_ctx, nomic ? 2048 : 512);
    s.n_head_kv = s.n_head;
    s.head_dim = s.n_embd / s.n_head;
    B.u32("context_length", s.n_ctx);
    B.u32("embedding_length", s.n_embd);
    B.u32("block_count", s.n_layer);
    B.u32("feed_forward_length", s.n_ff);
    B.u32("attention.head_count", s.n_head);
    B.f32("attention.layer_norm_epsilon", 1e-12);
    B.w.set(B.a + "attention.causal", Value::boolean(false));
    B.u32("pooling_type", 1);
    B.w.set("tokenizer.ggml.token_type_count", Value::u32(2));
    if (nomic) B.f32("rope.freq_base", 1000.0);
    B.t("token_embd.weight", {s.n_embd, s.n_vocab});
    if (!nomic) B.t("position_embd.weight", {s.n_embd, s.n_ctx});
    B.t("token_types.weight", {s.n_embd, 2});
    B.norm("token_embd_norm", s.n_embd, true);
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        if (nomic) {
            B.t(b + "attn_qkv.weight", {s.n_embd, 3 * s.n_embd});
            B.t(b + "attn_output.weight", {s.n_embd, s.n_embd});
        } else {
            B.attention(b, true);
            B.t(b + "attn_output.bias", {s.n_embd});
        }
        B.norm(b + "attn_output_norm", s.n_embd, true);
        if (nomic) {
            B.dense_ffn(b, s.n_ff);
        } else {
            B.t(b + "ffn_up.weight", {s.n_embd, s.n_ff});
            B.t(b + "ffn_up.bias", {s.n_ff});
            B.t(b + "ffn_down.weight", {s.n_ff, s.n_embd});
            B.t(b + "ffn_down.bias", {s.n_embd});
        }
        B.norm(b + "layer_output_norm", s.n_embd, true);
    }
}

}  // namespace

const std::vector<std::string>& architectures() {
    static const std::vector<std::string> names = {"llama", "qwen2", "qwen3", "gemma2", "gemma3", "phi3",
                                                   "olmo2", "starcoder2", "granite", "mixtral", "qwen3moe",
                                                   "gpt-oss", "deepseek2", "bert", "nomic-bert"};
    return names;
}

void plan(Shape& s, gguf::Writer& w, std::vector<PlannedTensor>& out) {
    if (s.arch == "mixtral") {  // Mixtral is the llama architecture with experts
        s.arch = "llama";
        if (s.n_expert == 0) s.n_expert = 4, s.n_expert_used = 2;
    }
    Builder B{s, w, out};
    const std::string& a = s.arch;
    if (a == "llama") plan_llama_family(B, false, s.n_expert > 0);
    else if (a == "qwen2") plan_llama_family(B, false, false);
    else if (a == "qwen3") plan_llama_family(B, true, false);
    else if (a == "granite") plan_llama_family(B, false, false);
    else if (a == "qwen3moe") plan_llama_family(B, true, true);
    else if (a == "gemma2" || a == "gemma3") plan_gemma(B, a == "gemma3");
    else if (a == "phi3") plan_phi3(B);
    else if (a == "olmo2") plan_olmo2(B);
    else if (a == "starcoder2") plan_starcoder2(B);
    else if (a == "gpt-oss") plan_gpt_oss(B);
    else if (a == "deepseek2") plan_deepseek2(B);
    else if (a == "bert" || a == "nomic-bert") plan_encoder(B, a == "nomic-bert");
    else {
        std::string names;
        for (const auto& n : architectures()) names += (names.empty() ? "" : ", ") + n;
        throw std::invalid_argument("make-model does not know the architecture '" + a + "' (known: " + names + ")");
    }
}

}  // namespace hearth::synth
