#include "model/hparams.h"

#include <cmath>
#include <stdexcept>

#include "gguf/gguf.h"

namespace hearth {

namespace {

int32_t require_i32(const gguf::File& f, const std::string& key) {
    const auto v = f.get_u64(key);
    if (!v) throw std::runtime_error("model metadata is missing '" + key + "'");
    if (*v == 0 || *v > 0x7fffffffull) throw std::runtime_error("model metadata '" + key + "' is out of range");
    return static_cast<int32_t>(*v);
}

int32_t optional_i32(const gguf::File& f, const std::string& key, int32_t def) {
    const auto v = f.get_u64(key);
    if (!v) return def;
    if (*v > 0x7fffffffull) throw std::runtime_error("model metadata '" + key + "' is out of range");
    return static_cast<int32_t>(*v);
}

}  // namespace

RopeParams HParams::rope_params(bool swa) const {
    RopeParams r;
    r.dims = rope_dims;
    r.freq_base = swa && rope_swa_own ? rope_freq_base_swa : rope_freq_base;
    r.freq_scale = swa && rope_swa_own ? rope_freq_scale_swa : rope_freq_scale;
    r.ext_factor = swa && rope_swa_own ? 0.0f : rope_ext_factor;
    r.attn_factor = rope_attn_factor;
    r.n_ctx_orig = rope_n_ctx_orig > 0 ? rope_n_ctx_orig : n_ctx_train;
    return r;
}

HParams read_decoder_hparams(const gguf::File& f, const std::string& arch, bool need_ff) {
    HParams hp;
    hp.arch = arch;
    const std::string p = arch + ".";
    hp.n_embd = require_i32(f, p + "embedding_length");
    hp.n_layer = require_i32(f, p + "block_count");
    hp.n_ff = need_ff ? require_i32(f, p + "feed_forward_length") : optional_i32(f, p + "feed_forward_length", 0);
    hp.n_head = require_i32(f, p + "attention.head_count");
    hp.n_head_kv = optional_i32(f, p + "attention.head_count_kv", hp.n_head);
    if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0)
        throw std::runtime_error("model metadata '" + p + "attention.head_count_kv' must divide head_count");
    hp.n_ctx_train = optional_i32(f, p + "context_length", 2048);
    hp.head_dim = optional_i32(f, p + "attention.key_length", hp.n_embd / hp.n_head);
    hp.head_dim_v = optional_i32(f, p + "attention.value_length", hp.head_dim);
    if (hp.head_dim <= 0 || hp.head_dim_v <= 0)
        throw std::runtime_error("model metadata: key_length and value_length must be positive");
    hp.rope_dims = optional_i32(f, p + "rope.dimension_count", hp.head_dim);
    if (hp.rope_dims > hp.head_dim || hp.rope_dims % 2 != 0)
        throw std::runtime_error("model metadata '" + p + "rope.dimension_count' must be even and <= the head size");
    if (auto eps = f.get_f64(p + "attention.layer_norm_rms_epsilon")) hp.norm_eps = static_cast<float>(*eps);
    else if (auto eps2 = f.get_f64(p + "attention.layer_norm_epsilon")) {
        hp.norm_eps = static_cast<float>(*eps2);
        hp.layer_norm = true;
    } else {
        throw std::runtime_error("model metadata is missing '" + p + "attention.layer_norm_rms_epsilon'");
    }
    if (auto base = f.get_f64(p + "rope.freq_base")) hp.rope_freq_base = static_cast<float>(*base);
    if (auto type = f.get_string(p + "rope.scaling.type")) {
        if (*type == "linear") {
            const auto factor = f.get_f64(p + "rope.scaling.factor");
            if (!factor || !(*factor > 0)) throw std::runtime_error("model metadata '" + p + "rope.scaling.factor' is missing or invalid");
            hp.rope_freq_scale = static_cast<float>(1.0 / *factor);
        } else if (*type == "yarn") {
            const auto factor = f.get_f64(p + "rope.scaling.factor");
            if (!factor || !(*factor > 0)) throw std::runtime_error("model metadata '" + p + "rope.scaling.factor' is missing or invalid");
            hp.rope_freq_scale = static_cast<float>(1.0 / *factor);
            hp.rope_ext_factor = 1.0f;
            hp.rope_n_ctx_orig = optional_i32(f, p + "rope.scaling.original_context_length", 0);
        }
        // Any other type (llama3-style scaling is carried by the rope_freqs tensor): none.
    } else if (auto factor = f.get_f64(p + "rope.scale_linear")) {
        if (*factor > 0) hp.rope_freq_scale = static_cast<float>(1.0 / *factor);
    }
    if (auto cap = f.get_f64(p + "attn_logit_softcapping")) hp.attn_softcap = static_cast<float>(*cap);
    if (auto cap = f.get_f64(p + "final_logit_softcapping")) hp.final_softcap = static_cast<float>(*cap);
    hp.sliding_window = optional_i32(f, p + "attention.sliding_window", 0);
    if (auto nv = f.get_u64(p + "vocab_size")) hp.n_vocab = static_cast<int32_t>(*nv);

    hp.n_expert = optional_i32(f, p + "expert_count", 0);
    if (hp.n_expert > 0) {
        hp.n_expert_used = require_i32(f, p + "expert_used_count");
        if (hp.n_expert_used > hp.n_expert)
            throw std::runtime_error("model metadata '" + p + "expert_used_count' is larger than expert_count");
        hp.n_ff_exp = optional_i32(f, p + "expert_feed_forward_length", hp.n_ff);
        if (hp.n_ff_exp <= 0) throw std::runtime_error("model metadata is missing '" + p + "expert_feed_forward_length'");
        hp.n_ff_shexp = hp.n_ff_exp * optional_i32(f, p + "expert_shared_count", 0);
        hp.n_layer_dense_lead = optional_i32(f, p + "leading_dense_block_count", 0);
        if (auto s = f.get_f64(p + "expert_weights_scale")) hp.expert_weights_scale = static_cast<float>(*s);
        if (auto nrm = f.get_bool(p + "expert_weights_norm")) hp.expert_weights_norm = *nrm;
        const int32_t gating = optional_i32(f, p + "expert_gating_func", 1);
        if (gating != 1 && gating != 2)
            throw std::runtime_error("model metadata '" + p + "expert_gating_func' " + std::to_string(gating) + " is not supported");
        hp.expert_gating = static_cast<ExpertGating>(gating);
    }
    return hp;
}

}  // namespace hearth
