// The split of layers between stages, the stage messages and loops (pipeline_stage.h).
#include "cluster/pipeline_stage.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "gguf/gguf.h"
#include "model/model.h"

namespace hearth::pipeline {

namespace {

size_t pad4(size_t n) { return (n + 3) / 4 * 4; }

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// HEARTH_PIPELINE_STATS=1: each rank writes where its time went when the group ends.
bool stats_wanted() {
    const char* v = std::getenv("HEARTH_PIPELINE_STATS");
    return v && *v && std::strcmp(v, "0") != 0;
}

// The layer index of a "blk.N.*" tensor name, or -1.
int32_t layer_of(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    int32_t l = 0;
    size_t i = 4;
    if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) l = l * 10 + (name[i] - '0');
    return i < name.size() && name[i] == '.' ? l : -1;
}

}  // namespace

namespace {

// Bytes of each stage's weights, as the stage's Model counts them (stage_tensor_bytes).
std::vector<double> stage_bytes(const gguf::File& f, const std::vector<StageRange>& ranges) {
    std::vector<double> out;
    for (const StageRange& r : ranges) out.push_back(static_cast<double>(stage_tensor_bytes(f, r.begin, r.end, ranges.back().end)));
    return out;
}

std::string gb(double bytes) {
    char buf[32];
    if (bytes >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
    else std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
    return buf;
}

// Throws when a stage's weights exceed its rank's memory budget.
void check_fit(const gguf::File& f, const std::vector<StageRange>& ranges, const std::vector<uint64_t>& budgets) {
    const std::vector<double> bytes = stage_bytes(f, ranges);
    std::string over;
    for (size_t k = 0; k < ranges.size(); ++k)
        if (bytes[k] > static_cast<double>(budgets[k]))
            over += (over.empty() ? "" : "; ") + std::string("stage ") + std::to_string(k) + " (layers " +
                    std::to_string(ranges[k].begin) + "-" + std::to_string(ranges[k].end) + ") needs " + gb(bytes[k]) +
                    ", its rank has " + gb(static_cast<double>(budgets[k]));
    if (!over.empty())
        throw std::invalid_argument("the model does not fit the ranks' memory (HEARTH_MAX_MEMORY, else 80% of RAM): " + over +
                                    "; add ranks or memory");
}

}  // namespace

std::vector<StageRange> split_layers(const gguf::File& f, int32_t n_layer, int n_stages, const std::string& spec,
                                     const std::vector<uint64_t>& budgets) {
    if (!budgets.empty() && static_cast<int>(budgets.size()) != n_stages)
        throw std::invalid_argument("split_layers: " + std::to_string(budgets.size()) + " budgets for " + std::to_string(n_stages) + " stages");
    if (n_stages < 1) throw std::invalid_argument("a pipeline needs at least one stage");
    if (n_stages > n_layer)
        throw std::invalid_argument("the model has " + std::to_string(n_layer) + " layers: it cannot be split into " +
                                    std::to_string(n_stages) + " stages");
    std::vector<StageRange> out;
    if (spec != "auto" && !spec.empty()) {
        std::vector<int32_t> counts;
        size_t i = 0;
        while (i <= spec.size()) {
            const size_t j = std::min(spec.find(',', i), spec.size());
            const std::string part = spec.substr(i, j - i);
            if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 6)
                throw std::invalid_argument("--split: '" + spec + "' is not 'auto' or layer counts like 11,11");
            counts.push_back(std::stoi(part));
            i = j + 1;
        }
        if (static_cast<int>(counts.size()) != n_stages)
            throw std::invalid_argument("--split: " + std::to_string(counts.size()) + " counts for " + std::to_string(n_stages) + " stages");
        int32_t at = 0;
        for (int32_t c : counts) {
            if (c <= 0) throw std::invalid_argument("--split: every stage needs at least one layer");
            out.push_back({at, at + c});
            at += c;
        }
        if (at != n_layer)
            throw std::invalid_argument("--split: the counts add up to " + std::to_string(at) + ", the model has " +
                                        std::to_string(n_layer) + " layers");
        if (!budgets.empty()) check_fit(f, out, budgets);
        return out;
    }
    // By weight bytes: cost[l] = layer l's tensors; the output matrix (or the tied embedding)
    // is streamed by the last stage every token, so it counts after the last layer.
    std::vector<double> cost(static_cast<size_t>(n_layer), 0.0);
    double head = 0;
    const gguf::TensorInfo* output = nullptr;
    for (const auto& t : f.tensors()) {
        const int32_t l = layer_of(t.name);
        if (l >= 0 && l < n_layer) cost[static_cast<size_t>(l)] += static_cast<double>(t.nbytes);
        if (t.name == "output.weight") output = &t;
    }
    if (!output) output = f.tensor("token_embd.weight");
    if (output) head = static_cast<double>(output->nbytes);
    double total = head;
    for (double c : cost) total += c;
    // Boundary k ends where the prefix sum comes closest to the first k stages' share of the
    // total (k/n, or their part of the ranks' memory budgets), leaving every later stage at
    // least one layer. The first stage's token embedding is not counted: rank 0 reads only
    // the rows of the tokens it embeds.
    double budget_sum = 0;
    for (uint64_t b : budgets) budget_sum += static_cast<double>(b);
    int32_t begin = 0;
    double prefix = 0, budget_prefix = 0;
    for (int k = 1; k < n_stages; ++k) {
        double target = total * k / n_stages;
        if (budget_sum > 0) {
            budget_prefix += static_cast<double>(budgets[static_cast<size_t>(k - 1)]);
            target = total * budget_prefix / budget_sum;
        }
        int32_t end = begin + 1;
        double at = prefix + cost[static_cast<size_t>(begin)];
        const int32_t max_end = n_layer - (n_stages - k);
        while (end < max_end && std::fabs(at + cost[static_cast<size_t>(end)] - target) < std::fabs(at - target)) {
            at += cost[static_cast<size_t>(end)];
            ++end;
        }
        out.push_back({begin, end});
        begin = end;
        prefix = at;
    }
    out.push_back({begin, n_layer});
    if (!budgets.empty()) check_fit(f, out, budgets);
    return out;
}

std::string counts_of(const std::vector<StageRange>& ranges) {
    std::string s;
    for (const StageRange& r : ranges) s += (s.empty() ? "" : ",") + std::to_string(r.end - r.begin);
    return s;
}

int32_t layer_count(const gguf::File& f) {
    const std::string arch = f.architecture();
    const auto n_layer = f.get_u64(arch + ".block_count");
    if (!n_layer || *n_layer == 0 || *n_layer > 100000) throw std::invalid_argument(f.path() + ": no " + arch + ".block_count");
    return static_cast<int32_t>(*n_layer);
}

std::vector<StageRange> split_layers(const std::string& path, int n_stages, const std::string& spec) {
    const gguf::File f = gguf::File::open(path);
    return split_layers(f, layer_count(f), n_stages, spec);
}

std::string describe(const std::vector<StageRange>& ranges) {
    std::string s;
    for (const StageRange& r : ranges) s += (s.empty() ? "" : " | ") + std::to_string(r.begin) + "-" + std::to_string(r.end);
    return s;
}

Member join(Comm& comm, const std::string& path, const std::string& split) {
    Member m;
    m.comm = &comm;
    m.ranges = split_layers(path, m.comm->size(), split);
    const StageRange& r = m.ranges[static_cast<size_t>(m.comm->rank())];
    m.model = Model::load(path, LoadOptions{r.begin, r.end});
    return m;
}

ContextParams later_stage_params(ContextParams p) {
    p.n_kv_blocks = 0;
    return p;
}

CommDownstream::CommDownstream(Comm& comm, const Model& model, int timeout_ms)
    : comm_(comm), n_embd_(model.hparams().n_embd), n_vocab_(model.hparams().n_vocab), timeout_ms_(timeout_ms) {}

namespace {

// Packs tokens [begin, end) of `batch` and their hidden states into a Batch message.
void pack_batch(std::vector<uint8_t>& msg, const Batch& batch, size_t begin, size_t end, const float* hidden, int32_t n_embd,
                MatmulScratch::Path path) {
    const size_t n = end - begin;
    Header h{static_cast<uint32_t>(Kind::Batch), static_cast<uint32_t>(n), 0, static_cast<uint32_t>(n_embd),
             static_cast<uint32_t>(path)};
    for (size_t i = begin; i < end; ++i) h.n_out += batch.logits[i] ? 1 : 0;
    const size_t ints = 3 * n * sizeof(int32_t), flags = pad4(n), floats = n * static_cast<size_t>(n_embd) * sizeof(float);
    msg.resize(sizeof(Header) + ints + flags + floats);
    uint8_t* p = msg.data();
    std::memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (const std::vector<int32_t>* v : {&batch.token, &batch.pos, &batch.seq}) {
        std::memcpy(p, v->data() + begin, n * sizeof(int32_t));
        p += n * sizeof(int32_t);
    }
    std::memset(p, 0, flags);
    std::memcpy(p, batch.logits.data() + begin, n);
    p += flags;
    std::memcpy(p, hidden, floats);
}

}  // namespace

Header read_header(const std::vector<uint8_t>& msg) {
    if (msg.size() < sizeof(Header)) throw std::runtime_error("pipeline: a message of " + std::to_string(msg.size()) + " bytes");
    Header h;
    std::memcpy(&h, msg.data(), sizeof h);
    return h;
}

void CommDownstream::submit(const Batch& batch, size_t begin, size_t end, const float* hidden, int32_t n_out,
                            MatmulScratch::Path path) {
    if (finished_) throw std::logic_error("pipeline: the stages were already told to quit");
    (void)n_out;
    pack_batch(msg_, batch, begin, end, hidden, n_embd_, path);
    comm_.send(1, msg_.data(), msg_.size());
}

void CommDownstream::collect(float* logits, int32_t n_out) {
    const int last = comm_.size() - 1;
    const auto t0 = Clock::now();
    const bool got = comm_.recv(last, reply_, timeout_ms_);
    wait_s_ += since(t0);
    ++collected_;
    if (!got) {
        if (on_timeout_) on_timeout_();
        throw CommError("pipeline: stage " + std::to_string(last) + " did not answer within " + std::to_string(timeout_ms_) + " ms");
    }
    const Header h = read_header(reply_);
    const size_t floats = static_cast<size_t>(n_out) * static_cast<size_t>(n_vocab_);
    if (h.kind != static_cast<uint32_t>(Kind::Logits) || h.n_out != static_cast<uint32_t>(n_out) ||
        reply_.size() != sizeof(Header) + floats * sizeof(float))
        throw std::runtime_error("pipeline: the last stage answered with an unexpected message");
    std::memcpy(logits, reply_.data() + sizeof(Header), floats * sizeof(float));
}

void CommDownstream::finish() {
    if (finished_ || comm_.size() < 2) return;
    finished_ = true;
    if (stats_wanted())
        std::fprintf(stderr, "pipeline stats: rank 0 waited %.1f ms for %lld answers (%.3f ms each)\n", wait_s_ * 1e3,
                     static_cast<long long>(collected_), collected_ ? wait_s_ * 1e3 / static_cast<double>(collected_) : 0.0);
    const Header h{static_cast<uint32_t>(Kind::Quit), 0, 0, 0, 0};
    comm_.send(1, &h, sizeof h);
}

void stage_batch(Context& ctx, Comm& comm, std::vector<uint8_t>& msg, std::vector<uint8_t>& out, Batch& batch) {
    const int rank = comm.rank();
    const bool last = rank == comm.size() - 1;
    const int32_t n_embd = ctx.model().hparams().n_embd;
    const Header h = read_header(msg);
    const size_t n = h.n, floats = n * static_cast<size_t>(n_embd);
    if (h.kind != static_cast<uint32_t>(Kind::Batch) || h.n_embd != static_cast<uint32_t>(n_embd) || n == 0 || h.path > 2 ||
        msg.size() != sizeof(Header) + 3 * n * sizeof(int32_t) + pad4(n) + floats * sizeof(float))
        throw std::runtime_error("pipeline: stage " + std::to_string(rank) + " got a malformed message");
    const uint8_t* p = msg.data() + sizeof(Header);
    batch.clear();
    for (std::vector<int32_t>* v : {&batch.token, &batch.pos, &batch.seq}) {
        v->resize(n);
        std::memcpy(v->data(), p, n * sizeof(int32_t));
        p += n * sizeof(int32_t);
    }
    batch.logits.assign(p, p + n);
    p += pad4(n);
    // The same matmul path as rank 0's scheduler pinned for these tokens (prompt: GEMM,
    // generated: dot), so the numbers do not depend on the batch here either.
    auto& path = ctx.scratch().mm.path;
    path = static_cast<MatmulScratch::Path>(h.path);
    const std::vector<float>* res = nullptr;
    try {
        res = &ctx.decode_stage(batch, reinterpret_cast<const float*>(p));
    } catch (...) {
        path = MatmulScratch::Path::BySize;
        throw;
    }
    path = MatmulScratch::Path::BySize;
    const std::vector<float>& result = *res;
    if (last) {
        const Header r{static_cast<uint32_t>(Kind::Logits), 0, h.n_out, 0, 0};
        out.resize(sizeof r + result.size() * sizeof(float));
        std::memcpy(out.data(), &r, sizeof r);
        std::memcpy(out.data() + sizeof r, result.data(), result.size() * sizeof(float));
        comm.send(0, out.data(), out.size());
    } else {
        // The header and batch arrays stay; the hidden states are replaced in place.
        std::memcpy(msg.data() + (p - msg.data()), result.data(), floats * sizeof(float));
        comm.send(rank + 1, msg.data(), msg.size());
    }
}

void run_stage(Context& ctx, Comm& comm) {
    const int rank = comm.rank();
    const bool last = rank == comm.size() - 1;
    std::vector<uint8_t> msg, out;
    Batch batch;
    double wait_s = 0, busy_s = 0;
    int64_t n = 0;
    try {
        for (;;) {
            auto t0 = Clock::now();
            comm.recv(rank - 1, msg);
            wait_s += since(t0);
            if (read_header(msg).kind == static_cast<uint32_t>(Kind::Quit)) {
                if (!last) comm.send(rank + 1, msg.data(), msg.size());
                if (stats_wanted())
                    std::fprintf(stderr, "pipeline stats: rank %d ran %lld batches: %.1f ms computing (%.3f ms each), %.1f ms waiting\n",
                                 rank, static_cast<long long>(n), busy_s * 1e3, n ? busy_s * 1e3 / static_cast<double>(n) : 0.0,
                                 wait_s * 1e3);
                return;
            }
            t0 = Clock::now();
            stage_batch(ctx, comm, msg, out, batch);
            busy_s += since(t0);
            ++n;
        }
    } catch (const CommError&) {
        throw;  // the group is already gone
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth: pipeline stage %d: %s\n", rank, e.what());
        comm.abort(2);
        throw;
    }
}

}  // namespace hearth::pipeline
