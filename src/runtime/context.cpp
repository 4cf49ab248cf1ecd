#include "runtime/context.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "model/model.h"

namespace hearth {

namespace {

int32_t resolve_ctx(const Model& m, int32_t n_ctx) {
    if (m.is_encoder())
        throw std::invalid_argument("'" + m.hparams().arch + "' is an embedding model: it produces embeddings, not text");
    if (n_ctx < 0) throw std::invalid_argument("num_ctx must be positive");
    if (n_ctx == 0) n_ctx = std::min(m.hparams().n_ctx_train > 0 ? m.hparams().n_ctx_train : 4096, 4096);
    return n_ctx;
}

int32_t blocks_for(int32_t n_ctx, int32_t n_seq, int32_t bs) { return n_seq * ((n_ctx + bs - 1) / bs); }

}  // namespace

Context::Context(const Model& model, ContextParams params)
    : model_(model),
      params_([&] {
          params.n_ctx = resolve_ctx(model, params.n_ctx);
          if (params.n_batch <= 0) throw std::invalid_argument("num_batch must be positive");
          if (params.n_seq <= 0) throw std::invalid_argument("the number of sequences must be positive");
          if (params.n_kv_blocks < 0) throw std::invalid_argument("the number of KV blocks must not be negative");
          return params;
      }()),
      n_vocab_(model.hparams().n_vocab),
      pool_(params_.n_threads > 0 ? params_.n_threads : physical_core_count()),
      kv_(model.layer_end() - model.layer_begin(), model.hparams().n_head_kv, model.hparams().head_dim, params_.kv_type,
          params_.n_kv_blocks > 0 ? params_.n_kv_blocks : blocks_for(params_.n_ctx, params_.n_seq, 16), 16) {
}

int32_t Context::check_and_reserve(const Batch& batch, bool truncate_first) {
    const size_t n = batch.size();
    if (n == 0) throw std::invalid_argument("empty batch");
    if (batch.pos.size() != n || batch.seq.size() != n || batch.logits.size() != n)
        throw std::invalid_argument("batch arrays have different lengths");
    std::vector<int32_t>& max_pos = max_pos_;
    std::vector<int32_t>& min_pos = min_pos_;
    max_pos.assign(static_cast<size_t>(params_.n_seq), -1);
    min_pos.assign(static_cast<size_t>(params_.n_seq), params_.n_ctx);
    int32_t n_out = 0;
    for (size_t i = 0; i < n; ++i) {
        if (batch.token[i] < 0 || batch.token[i] >= n_vocab_)
            throw std::invalid_argument("token id " + std::to_string(batch.token[i]) + " is outside the vocabulary (" +
                                        std::to_string(n_vocab_) + " tokens)");
        if (batch.seq[i] < 0 || batch.seq[i] >= params_.n_seq)
            throw std::invalid_argument("sequence id " + std::to_string(batch.seq[i]) + " out of range");
        if (batch.pos[i] < 0 || batch.pos[i] >= params_.n_ctx)
            throw std::invalid_argument("position " + std::to_string(batch.pos[i]) + " does not fit the context of " +
                                        std::to_string(params_.n_ctx) + " tokens");
        const size_t s = static_cast<size_t>(batch.seq[i]);
        max_pos[s] = std::max(max_pos[s], batch.pos[i]);
        min_pos[s] = std::min(min_pos[s], batch.pos[i]);
        n_out += batch.logits[i] ? 1 : 0;
    }
    for (int32_t s = 0; s < params_.n_seq; ++s) {
        const int32_t hi = max_pos[static_cast<size_t>(s)];
        if (hi < 0) continue;
        if (truncate_first) kv_.truncate(s, min_pos[static_cast<size_t>(s)]);
        if (!kv_.reserve(s, hi + 1)) throw std::runtime_error("the KV cache is full");
        if (kv_.shared(s, min_pos[static_cast<size_t>(s)], hi + 1))
            throw std::logic_error("sequence " + std::to_string(s) + " would write into a shared KV block");
    }
    return n_out;
}

int32_t Context::decode(const Batch& batch) {
    const size_t n = batch.size();
    if (!in_flight_.empty()) throw std::logic_error("decode: micro-batches are in flight (collect them first)");
    const int32_t n_out = check_and_reserve(batch, false);
    const bool split = model_.layer_end() < model_.hparams().n_layer;
    if (model_.layer_begin() > 0) throw std::logic_error("decode: this model is a later pipeline stage (decode_stage)");
    if (split && (!downstream_ || embeddings_mode_))
        throw std::logic_error("decode: a pipeline's first stage needs its later stages (and gives no embeddings)");
    KvView view = kv_.view();
    view.layer0 = model_.layer_begin();
    if (embeddings_mode_) {
        n_embd_ = model_.hparams().n_embd;
        embd_.resize(static_cast<size_t>(n_out) * static_cast<size_t>(n_embd_));
    } else {
        logits_.resize(static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab_));
    }
    scratch_.ensure(model_.hparams(), std::min(n, static_cast<size_t>(params_.n_batch)));
    int32_t out_row = 0;
    for (size_t b = 0; b < n; b += static_cast<size_t>(params_.n_batch)) {
        const size_t e = std::min(n, b + static_cast<size_t>(params_.n_batch));
        float* out = embeddings_mode_ ? embd_.data() + static_cast<size_t>(out_row) * static_cast<size_t>(n_embd_)
                                      : logits_.data() + static_cast<size_t>(out_row) * static_cast<size_t>(n_vocab_);
        int32_t chunk_out = 0;
        for (size_t i = b; i < e; ++i) chunk_out += batch.logits[i] ? 1 : 0;
        if (split) {
            stage_out_.resize((e - b) * static_cast<size_t>(model_.hparams().n_embd));
            forward(model_, batch, b, e, view, pool_, scratch_, nullptr, false, StageIO{nullptr, stage_out_.data()});
            downstream_->run(batch, b, e, stage_out_.data(), out, chunk_out, scratch_.mm.path);
        } else {
            forward(model_, batch, b, e, view, pool_, scratch_, out, embeddings_mode_);
        }
        out_row += chunk_out;
    }
    return n_out;
}

void Context::submit(const Batch& batch) {
    if (!downstream_) {
        in_flight_.push_back({decode(batch)});
        return;
    }
    if (embeddings_mode_) throw std::logic_error("submit: a pipeline's first stage gives no embeddings");
    const size_t n = batch.size();
    check_and_reserve(batch, false);
    KvView view = kv_.view();
    view.layer0 = model_.layer_begin();
    scratch_.ensure(model_.hparams(), std::min(n, static_cast<size_t>(params_.n_batch)));
    std::vector<int32_t> chunks;
    for (size_t b = 0; b < n; b += static_cast<size_t>(params_.n_batch)) {
        const size_t e = std::min(n, b + static_cast<size_t>(params_.n_batch));
        int32_t chunk_out = 0;
        for (size_t i = b; i < e; ++i) chunk_out += batch.logits[i] ? 1 : 0;
        stage_out_.resize((e - b) * static_cast<size_t>(model_.hparams().n_embd));
        forward(model_, batch, b, e, view, pool_, scratch_, nullptr, false, StageIO{nullptr, stage_out_.data()});
        downstream_->submit(batch, b, e, stage_out_.data(), chunk_out, scratch_.mm.path);
        chunks.push_back(chunk_out);
    }
    in_flight_.push_back(std::move(chunks));
}

int32_t Context::collect() {
    if (in_flight_.empty()) throw std::logic_error("collect: no batch in flight");
    const std::vector<int32_t> chunks = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (!downstream_) return chunks.front();  // submit() decoded it
    int32_t n_out = 0;
    for (int32_t c : chunks) n_out += c;
    logits_.resize(static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab_));
    int32_t row = 0;
    for (int32_t c : chunks) {
        downstream_->collect(logits_.data() + static_cast<size_t>(row) * static_cast<size_t>(n_vocab_), c);
        row += c;
    }
    return n_out;
}

const std::vector<float>& Context::decode_stage(const Batch& batch, const float* in) {
    const size_t n = batch.size();
    if (model_.layer_begin() == 0) throw std::logic_error("decode_stage: this model is a pipeline's first stage (decode)");
    if (n > static_cast<size_t>(params_.n_batch))
        throw std::invalid_argument("a pipeline chunk of " + std::to_string(n) + " tokens is larger than num_batch");
    const int32_t n_out = check_and_reserve(batch, true);
    KvView view = kv_.view();
    view.layer0 = model_.layer_begin();
    scratch_.ensure(model_.hparams(), n);
    const bool last = model_.layer_end() == model_.hparams().n_layer;
    if (last) {
        stage_out_.resize(static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab_));
        forward(model_, batch, 0, n, view, pool_, scratch_, stage_out_.data(), false, StageIO{in, nullptr});
    } else {
        stage_out_.resize(n * static_cast<size_t>(model_.hparams().n_embd));
        forward(model_, batch, 0, n, view, pool_, scratch_, nullptr, false, StageIO{in, stage_out_.data()});
    }
    return stage_out_;
}

void Context::clear(int32_t seq) { kv_.release(seq); }

void Context::clear_all() {
    for (int32_t s = 0; s < params_.n_seq; ++s) kv_.release(s);
}

}  // namespace hearth
