#include "model/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <thread>

#include "tensor/quants.h"
#include "tensor/repack.h"

namespace hearth {

const std::map<std::string, ArchLoader>& architectures() {
    static const std::map<std::string, ArchLoader> archs = {
        {"llama", load_llama},       {"qwen2", load_qwen2},           {"qwen3", load_qwen3},
        {"gemma2", load_gemma2},     {"phi3", load_phi3},             {"bert", load_bert},
        {"nomic-bert", load_nomic_bert}, {"gemma3", load_gemma3},     {"qwen3moe", load_qwen3moe},
        {"gpt-oss", load_gpt_oss},   {"deepseek2", load_deepseek2},   {"olmo2", load_olmo2},
        {"starcoder2", load_starcoder2}, {"granite", load_granite},
    };
    return archs;
}

std::string supported_architectures() {
    std::string s;
    for (const auto& [name, _] : architectures()) s += (s.empty() ? "" : ", ") + name;
    return s;
}

std::unique_ptr<Model> Model::load(const std::string& path, LoadOptions opts) {
    std::unique_ptr<Model> m(new Model(gguf::File::open(path)));
    const std::string arch = m->file_.architecture();
    if (arch.empty()) throw std::runtime_error(path + ": missing general.architecture");
    const auto it = architectures().find(arch);
    if (it == architectures().end())
        throw std::runtime_error("unsupported architecture '" + arch + "' (supported: " + supported_architectures() + ")");
    m->tok_ = Tokenizer::from_gguf(m->file_);
    it->second(*m);
    if (!m->encoder_ && m->hp_.head_dim_v != m->hp_.head_dim && !(m->w_.layers.size() && m->w_.layers[0].mla.present()))
        throw std::runtime_error("model metadata: key_length and value_length must be equal for '" + arch + "'");
    const int32_t n_layer = m->hp_.n_layer;
    m->layer_begin_ = opts.layer_begin;
    m->layer_end_ = opts.layer_end < 0 ? n_layer : opts.layer_end;
    if (m->layer_begin_ < 0 || m->layer_begin_ >= m->layer_end_ || m->layer_end_ > n_layer)
        throw std::runtime_error("layer range [" + std::to_string(m->layer_begin_) + ", " + std::to_string(m->layer_end_) +
                                 ") does not fit the model's " + std::to_string(n_layer) + " layers");
    if (!m->whole()) {
        if (m->encoder_) throw std::runtime_error("an embedding model cannot be split into pipeline stages");
        // Only this stage's layers stay bound, so pack_weights copies only those.
        for (int32_t l = 0; l < n_layer; ++l)
            if (l < m->layer_begin_ || l >= m->layer_end_) m->w_.layers[static_cast<size_t>(l)] = LayerWeights{};
        if (m->layer_end_ < n_layer) m->w_.output = MatrixView{};
    }
    m->pack_weights();
    if (!m->encoder_) {
        // Decoder models used for embeddings (e.g. Qwen3-Embedding) name their pooling; the
        // rest pool the last token, as Ollama and llama.cpp's server do for causal models.
        const uint64_t pooling = m->file_.get_u64(arch + ".pooling_type").value_or(3);
        if (pooling > 3) throw std::runtime_error(arch + ".pooling_type " + std::to_string(pooling) + " is not supported");
        m->pooling_ = pooling == 0 ? Pooling::Last : static_cast<Pooling>(pooling);
    }
    if (m->hp_.n_vocab == 0) m->hp_.n_vocab = static_cast<int32_t>(m->w_.tok_embd.rows);
    if (m->w_.tok_embd.rows != m->hp_.n_vocab || (!m->encoder_ && m->layer_end_ == n_layer && m->w_.output.rows != m->hp_.n_vocab))
        throw std::runtime_error("token_embd/output rows do not match the vocabulary size " + std::to_string(m->hp_.n_vocab));
    if (m->tok_->n_vocab() > m->hp_.n_vocab)
        throw std::runtime_error("the tokenizer has more tokens than the model's embedding rows");
    return m;
}

void PackedUnmap::operator()(uint8_t* p) const {
    if (p) ::munmap(p, size);
}

namespace {

// HEARTH_REPACK=0 keeps every matrix where the file mapping has it.
bool weight_copy_enabled() {
    static const bool on = [] {
        const char* env = std::getenv("HEARTH_REPACK");
        return !(env && std::strcmp(env, "0") == 0);
    }();
    return on;
}

}  // namespace

void Model::pack_weights() {
    // Matrices packed into the interleaved layout, and (from a file) the other matrices,
    // copied as stored: both then live in anonymous memory backed by huge pages, so streaming
    // the weights every token costs few TLB misses (4 KiB page-cache pages cost ~25% of F16
    // decode and prefill speed on this design's reference machine).
    struct Target {
        MatrixView* view;
        bool pack;
    };
    std::vector<Target> targets;
    const bool from_file = !file_.path().empty();
    auto want = [&](MatrixView& v) {
        if (repack_wanted(v)) targets.push_back({&v, true});
        else if (v.data && from_file && weight_copy_enabled()) targets.push_back({&v, false});
    };
    for (LayerWeights& L : w_.layers) {
        for (MatrixView* v : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.w_gate, &L.w_up, &L.w_down, &L.w_gate_up,
                              &L.moe.shared_gate, &L.moe.shared_up, &L.moe.shared_down, &L.mla.wq_a, &L.mla.wq_b,
                              &L.mla.wq, &L.mla.wkv_a})
            want(*v);
        // Each expert's gate and up back to back (fused below), then the down matrices.
        for (size_t e = 0; e < L.moe.gate.size(); ++e) {
            want(L.moe.gate[e]);
            want(L.moe.up[e]);
        }
        for (MatrixView& v : L.moe.down) want(v);
    }
    // A tied output matrix is also the embedding table, read by rows: it stays as stored.
    if (w_.output.data != w_.tok_embd.data) want(w_.output);
    if (targets.empty()) return;
    auto bytes_of = [](const Target& t) {
        return t.pack ? hearth::packed_bytes(*t.view) : static_cast<size_t>(t.view->rows) * t.view->row_bytes;
    };
    size_t total = 0;
    std::vector<size_t> offsets;
    for (const Target& t : targets) {
        offsets.push_back(total);
        total += (bytes_of(t) + 63) / 64 * 64;
    }
    void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return;  // not fatal: matmul reads the rows as stored
    ::madvise(mem, total, MADV_HUGEPAGE);  // fewer page faults while packing, fewer TLB misses after
    packed_ = std::unique_ptr<uint8_t, PackedUnmap>(static_cast<uint8_t*>(mem), PackedUnmap{total});
    packed_size_ = total;

    // Work items of 64 row groups (packed) or ~4 MiB of rows (copied), shared by a few threads.
    struct Item {
        size_t target;
        int64_t r0, r1;  // rows
    };
    std::vector<Item> items;
    for (size_t i = 0; i < targets.size(); ++i) {
        const MatrixView& v = *targets[i].view;
        const int64_t step = targets[i].pack ? 64 * kPackRows
                                             : std::max<int64_t>(1, static_cast<int64_t>((4u << 20) / std::max<size_t>(1, v.row_bytes)));
        for (int64_t r = 0; r < v.rows; r += step) items.push_back({i, r, std::min(v.rows, r + step)});
    }
    // The stored rows are read with pread() rather than through the mapping: pages faulted in
    // through the mapping would stay resident beside the copy (the weights twice), and
    // dropping them again (madvise) costs more than the copy. A model without a file (tests)
    // reads its mapping.
    const int fd = from_file ? ::open(file_.path().c_str(), O_RDONLY | O_CLOEXEC) : -1;
    // Reads rows [r0, r1) of v into dst; false if the file could not be read.
    auto read_rows = [&](const MatrixView& v, int64_t r0, int64_t r1, uint8_t* dst) {
        if (fd < 0) return false;
        const size_t len = static_cast<size_t>(r1 - r0) * v.row_bytes;
        const off_t off = static_cast<off_t>(v.row(r0) - file_.bytes());
        size_t got = 0;
        while (got < len) {
            const ssize_t r = ::pread(fd, dst + got, len - got, off + static_cast<off_t>(got));
            if (r <= 0) break;
            got += static_cast<size_t>(r);
        }
        return got == len;
    };
    std::atomic<size_t> next{0};
    auto work = [&] {
        std::vector<uint8_t> buf;
        for (size_t k; (k = next.fetch_add(1)) < items.size();) {
            const Item& it = items[k];
            const MatrixView& v = *targets[it.target].view;
            uint8_t* base = packed_.get() + offsets[it.target];
            if (!targets[it.target].pack) {
                uint8_t* dst = base + static_cast<size_t>(it.r0) * v.row_bytes;
                if (!read_rows(v, it.r0, it.r1, dst))
                    std::memcpy(dst, v.row(it.r0), static_cast<size_t>(it.r1 - it.r0) * v.row_bytes);
                continue;
            }
            const uint8_t* src = v.row(it.r0);
            buf.resize(static_cast<size_t>(it.r1 - it.r0) * v.row_bytes);
            if (read_rows(v, it.r0, it.r1, buf.data())) src = buf.data();
            repack_groups(v, src, base, it.r0 / kPackRows, it.r1 / kPackRows);
        }
    };
    const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    std::vector<std::thread> threads;
    for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work);
    work();
    for (std::thread& t : threads) t.join();
    if (fd >= 0) ::close(fd);

    for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i].pack) targets[i].view->packed = packed_.get() + offsets[i];
        else targets[i].view->data = packed_.get() + offsets[i];
    }
    // Matrices that multiply the same input and were packed back to back (same type and
    // width) are also one matrix: their row groups are consecutive in the arena.
    // Copied (not packed) matrices likewise when their rows are back to back: one GEMM
    // converts the shared input once instead of once per matrix.
    const uint8_t* arena_begin = packed_.get();
    const uint8_t* arena_end = arena_begin + packed_size_;
    auto fuse = [&](std::initializer_list<const MatrixView*> parts, MatrixView& out) {
        const MatrixView& first = **parts.begin();
        const bool packed = first.packed != nullptr;
        const uint8_t* expect = packed ? first.packed : first.data;
        if (!expect || expect < arena_begin || expect >= arena_end) return;
        int64_t rows = 0;
        for (const MatrixView* v : parts) {
            const uint8_t* at = packed ? v->packed : v->data;
            if (at != expect || (v->packed != nullptr) != packed || v->type != first.type || v->cols != first.cols ||
                v->row_bytes != first.row_bytes)
                return;
            expect = at + (packed ? hearth::packed_bytes(*v) : static_cast<size_t>(v->rows) * v->row_bytes);
            rows += v->rows;
        }
        out = packed ? MatrixView{first.type, rows, first.cols, nullptr, first.row_bytes, first.packed}
                     : MatrixView{first.type, rows, first.cols, first.data, first.row_bytes, nullptr};
    };
    for (LayerWeights& L : w_.layers) {
        fuse({&L.wq, &L.wk, &L.wv}, L.wqkv_packed);
        fuse({&L.w_gate, &L.w_up}, L.w_gate_up_packed);
        L.moe.gate_up_packed.assign(L.moe.gate.size(), MatrixView{});
        for (size_t e = 0; e < L.moe.gate.size(); ++e) fuse({&L.moe.gate[e], &L.moe.up[e]}, L.moe.gate_up_packed[e]);
    }
}

const MatrixView* fused_view(const MatrixView& v) {
    if (v.packed) return use_packed(v) ? &v : nullptr;
    return v.data ? &v : nullptr;
}

uint64_t Model::weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : file_.tensors()) n += t.nbytes;
    return n;
}

uint64_t stage_tensor_bytes(const gguf::File& f, int32_t begin, int32_t end, int32_t n_layer) {
    const bool first = begin == 0, last = end == n_layer;
    const bool tied = f.tensor("output.weight") == nullptr;
    uint64_t n = 0;
    for (const auto& t : f.tensors()) {
        if (t.name.rfind("blk.", 0) == 0) {
            const int32_t l = std::atoi(t.name.c_str() + 4);
            if (l >= begin && l < end) n += t.nbytes;
        } else if (t.name.rfind("output", 0) == 0) {
            if (last) n += t.nbytes;
        } else if (first || (last && tied && t.name == "token_embd.weight")) {
            n += t.nbytes;
        }
    }
    return n;
}

MatrixView Model::matrix(const std::string& name, int64_t cols, int64_t rows, bool optional) {
    const gguf::TensorInfo* t = file_.tensor(name);
    if (!t) {
        if (optional) return {};
        throw std::runtime_error("model is missing tensor '" + name + "'");
    }
    if (t->dims.size() > 2 || t->dims[0] != cols || (t->dims.size() == 2 ? t->dims[1] : 1) != rows)
        throw std::runtime_error("tensor '" + name + "' has shape " + std::to_string(t->dims[0]) + " x " +
                                 std::to_string(t->dims.size() > 1 ? t->dims[1] : 1) + ", expected " + std::to_string(cols) +
                                 " x " + std::to_string(rows));
    if (!kernels(t->type).vec_dot)
        throw std::runtime_error(std::string("tensor '") + name + "' has type " + type_name(t->type) + ", which Hearth cannot compute with");
    return MatrixView{t->type, rows, cols, t->data, t->row_bytes()};
}

std::vector<MatrixView> Model::matrices(const std::string& name, int64_t cols, int64_t rows, int64_t n, bool optional) {
    const gguf::TensorInfo* t = file_.tensor(name);
    if (!t) {
        if (optional) return {};
        throw std::runtime_error("model is missing tensor '" + name + "'");
    }
    auto dim = [&](size_t i) { return i < t->dims.size() ? t->dims[i] : int64_t{1}; };
    if (t->dims.size() > 3 || dim(0) != cols || dim(1) != rows || dim(2) != n)
        throw std::runtime_error("tensor '" + name + "' has shape " + std::to_string(dim(0)) + " x " + std::to_string(dim(1)) +
                                 " x " + std::to_string(dim(2)) + ", expected " + std::to_string(cols) + " x " +
                                 std::to_string(rows) + " x " + std::to_string(n));
    if (!kernels(t->type).vec_dot)
        throw std::runtime_error(std::string("tensor '") + name + "' has type " + type_name(t->type) + ", which Hearth cannot compute with");
    std::vector<MatrixView> out;
    const size_t rb = t->row_bytes();
    for (int64_t e = 0; e < n; ++e)
        out.push_back(MatrixView{t->type, rows, cols, t->data + static_cast<size_t>(e * rows) * rb, rb});
    return out;
}

const float* Model::vector(const std::string& name, int64_t n, bool optional) {
    const gguf::TensorInfo* t = file_.tensor(name);
    if (!t) {
        if (optional) return nullptr;
        throw std::runtime_error("model is missing tensor '" + name + "'");
    }
    if (t->n_elements() != n)
        throw std::runtime_error("tensor '" + name + "' has " + std::to_string(t->n_elements()) + " elements, expected " + std::to_string(n));
    const auto to_float = kernels(t->type).to_float;
    if (!to_float) throw std::runtime_error(std::string("tensor '") + name + "' has unsupported type " + type_name(t->type));
    owned_.emplace_back(static_cast<size_t>(n));
    to_float(t->data, owned_.back().data(), n);
    return owned_.back().data();
}

void bind_attention(Model& m, int32_t l, bool biases) {
    const HParams& hp = m.hp_;
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
    L.wq = m.matrix(b + "attn_q.weight", hp.n_embd, hp.q_dim());
    L.wk = m.matrix(b + "attn_k.weight", hp.n_embd, hp.kv_dim());
    L.wv = m.matrix(b + "attn_v.weight", hp.n_embd, hp.v_dim());
    L.wo = m.matrix(b + "attn_output.weight", hp.q_dim(), hp.n_embd);
    if (biases) {
        L.bq = m.vector(b + "attn_q.bias", hp.q_dim());
        L.bk = m.vector(b + "attn_k.bias", hp.kv_dim());
        L.bv = m.vector(b + "attn_v.bias", hp.v_dim());
    }
}

void bind_llama_layers(Model& m, bool biases, bool qk_norm) {
    const HParams& hp = m.hp_;
    m.w_.layers.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t l = 0; l < hp.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        LayerWeights& L = m.w_.layers[static_cast<size_t>(l)];
        L.attn_norm = m.vector(b + "attn_norm.weight", hp.n_embd);
        bind_attention(m, l, biases);
        if (qk_norm) {
            L.q_norm = m.vector(b + "attn_q_norm.weight", hp.head_dim);
            L.k_norm = m.vector(b + "attn_k_norm.weight", hp.head_dim);
        }
        L.ffn_norm = m.vector(b + "ffn_norm.weight", hp.n_embd);
        if (hp.n_expert > 0 && l >= hp.n_layer_dense_lead) {
            bind_moe(m, l, /*biases=*/false);
            continue;
        }
        L.w_gate = m.matrix(b + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        L.w_up = m.matrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.w_down = m.matrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd);
    }
}

void bind_moe(Model& m, int32_t l, bool biases) {
    const HParams& hp = m.hp_;
    const std::string b = "blk." + std::to_string(l) + ".";
    MoeWeights& E = m.w_.layers[static_cast<size_t>(l)].moe;
    const int64_t d = hp.n_embd, ff = hp.n_ff_exp, ne = hp.n_expert;
    E.router = m.matrix(b + "ffn_gate_inp.weight", d, ne);
    E.select_b = m.vector(b + "exp_probs_b.bias", ne, /*optional=*/true);
    E.gate = m.matrices(b + "ffn_gate_exps.weight", d, ff, ne);
    E.up = m.matrices(b + "ffn_up_exps.weight", d, ff, ne);
    E.down = m.matrices(b + "ffn_down_exps.weight", ff, d, ne);
    if (biases) {
        E.router_b = m.vector(b + "ffn_gate_inp.bias", ne);
        E.b_gate = m.vector(b + "ffn_gate_exps.bias", ne * ff);
        E.b_up = m.vector(b + "ffn_up_exps.bias", ne * ff);
        E.b_down = m.vector(b + "ffn_down_exps.bias", ne * d);
    }
    if (hp.n_ff_shexp > 0) {
        E.shared_gate = m.matrix(b + "ffn_gate_shexp.weight", d, hp.n_ff_shexp);
        E.shared_up = m.matrix(b + "ffn_up_shexp.weight", d, hp.n_ff_shexp);
        E.shared_down = m.matrix(b + "ffn_down_shexp.weight", hp.n_ff_shexp, d);
    }
}

void bind_output(Model& m) {
    const HParams& hp = m.hp_;
    const gguf::TensorInfo* emb = m.file().tensor("token_embd.weight");
    if (!emb || emb->dims.size() != 2) throw std::runtime_error("model is missing tensor 'token_embd.weight'");
    m.w_.tok_embd = m.matrix("token_embd.weight", hp.n_embd, emb->dims[1]);
    m.w_.output_norm = m.vector("output_norm.weight", hp.n_embd);
    m.w_.output = m.matrix("output.weight", hp.n_embd, emb->dims[1], /*optional=*/true);
    if (!m.w_.output.data) m.w_.output = m.w_.tok_embd;  // tied
}

}  // namespace hearth
