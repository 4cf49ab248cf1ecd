// The daemon's pipeline group (pipeline_group.h): rank 0's control messages and the later
// ranks' loop.
#include "cluster/pipeline_group.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "gguf/gguf.h"
#include "model/model.h"
#include "server/config.h"

namespace hearth::pipeline {

namespace {

constexpr int kLoadTimeoutMs = 10 * 60 * 1000;

std::vector<uint8_t> control_message(Kind kind, const std::string& payload) {
    const Header h{static_cast<uint32_t>(kind), static_cast<uint32_t>(payload.size()), 0, 0, 0};
    std::vector<uint8_t> msg(sizeof h + payload.size());
    std::memcpy(msg.data(), &h, sizeof h);
    std::memcpy(msg.data() + sizeof h, payload.data(), payload.size());
    return msg;
}

std::string payload_of(const std::vector<uint8_t>& msg) {
    const Header h = read_header(msg);
    if (msg.size() != sizeof(Header) + h.n) throw std::runtime_error("pipeline: a malformed control message");
    return std::string(reinterpret_cast<const char*>(msg.data() + sizeof(Header)), h.n);
}

// Configure's payload: the ContextParams fields as int32.
std::string encode_params(const ContextParams& p) {
    const int32_t v[6] = {p.n_ctx, p.n_batch, p.n_threads, static_cast<int32_t>(p.kv_type), p.n_seq, p.n_kv_blocks};
    return std::string(reinterpret_cast<const char*>(v), sizeof v);
}

ContextParams decode_params(const std::string& s) {
    int32_t v[6];
    if (s.size() != sizeof v) throw std::runtime_error("pipeline: a malformed Configure message");
    std::memcpy(v, s.data(), sizeof v);
    ContextParams p;
    p.n_ctx = v[0];
    p.n_batch = v[1];
    p.n_threads = v[2];
    p.kv_type = static_cast<GgmlType>(v[3]);
    p.n_seq = v[4];
    p.n_kv_blocks = v[5];
    return later_stage_params(p);
}

std::string encode_u64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), sizeof v); }

}  // namespace

uint64_t rank_memory_budget() {
    if (const char* v = std::getenv("HEARTH_MAX_MEMORY"); v != nullptr && *v != '\0') {
        const auto b = server::parse_byte_size(v);
        if (!b || *b == 0) throw std::runtime_error(std::string("HEARTH_MAX_MEMORY=") + v + ": expected a size such as 16GiB");
        return *b;
    }
    return server::default_memory_budget();
}

CommGroup::CommGroup(Comm& comm, std::string split, int timeout_ms) : comm_(comm), split_(std::move(split)), timeout_ms_(timeout_ms) {
    budgets_.push_back(rank_memory_budget());
    if (comm_.size() < 2) return;
    // Hello: every later rank appends its memory budget; the last one answers with all of them.
    const std::string all = control(Kind::Hello, encode_u64(budgets_[0]), kLoadTimeoutMs);
    if (all.size() != sizeof(uint64_t) * static_cast<size_t>(comm_.size()))
        throw std::runtime_error("pipeline: a malformed answer to Hello");
    budgets_.resize(static_cast<size_t>(comm_.size()));
    std::memcpy(budgets_.data(), all.data(), all.size());
}

const std::vector<uint64_t>& CommGroup::budgets() const { return budgets_; }

void CommGroup::watchdog_fired(const std::string& what) {
    std::fprintf(stderr, "hearth: pipeline: %s; ending the group in 1 s (MPI_Abort)\n", what.c_str());
    std::fflush(stderr);
    // A second for the runner to fail the requests in flight; then the whole group goes, and a
    // supervisor starts it again (a late answer would leave the stages out of step).
    Comm* c = &comm_;
    std::thread([c] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        c->abort(3);
    }).detach();
}

std::string CommGroup::control(Kind kind, const std::string& payload, int timeout_ms) {
    const std::vector<uint8_t> msg = control_message(kind, payload);
    comm_.send(1, msg.data(), msg.size());
    std::vector<uint8_t> reply;
    const int last = comm_.size() - 1;
    if (!comm_.recv(last, reply, timeout_ms)) {
        const std::string what = "stage " + std::to_string(last) + " did not answer within " + std::to_string(timeout_ms) + " ms";
        watchdog_fired(what);
        throw CommError("pipeline: " + what);
    }
    const Header h = read_header(reply);
    if (h.kind == static_cast<uint32_t>(Kind::Error)) throw std::runtime_error("pipeline: " + payload_of(reply));
    if (h.kind != static_cast<uint32_t>(Kind::Ready)) throw std::runtime_error("pipeline: an unexpected answer to a control message");
    return payload_of(reply);
}

LoadOptions CommGroup::open_model(const std::string& path) {
    std::lock_guard lock(mu_);
    if (finished_) throw std::runtime_error("pipeline: the group is shutting down");
    std::vector<StageRange> ranges;
    {
        const gguf::File f = gguf::File::open(path);
        // Split by the ranks' memory: the later ranks get the resolved counts, not the spec.
        ranges = split_layers(f, layer_count(f), comm_.size(), split_, budgets_);
        const auto n_embd = f.get_u64(f.architecture() + ".embedding_length");
        const gguf::TensorInfo* emb = f.tensor("token_embd.weight");
        if (!n_embd || !emb || emb->dims.size() != 2) throw std::runtime_error(path + ": no embedding length or token_embd");
        n_embd_ = static_cast<int32_t>(*n_embd);
        n_vocab_ = static_cast<int32_t>(emb->dims[1]);
    }
    down_.reset();
    if (comm_.size() > 1) {
        control(Kind::Open, path + '\0' + counts_of(ranges), kLoadTimeoutMs);
        std::fprintf(stderr, "hearth: pipeline: %s split %s\n", path.c_str(), describe(ranges).c_str());
    }
    return LoadOptions{ranges[0].begin, ranges[0].end};
}

Downstream* CommGroup::open_context(const ContextParams& params) {
    std::lock_guard lock(mu_);
    if (comm_.size() < 2) return nullptr;
    control(Kind::Configure, encode_params(params), kLoadTimeoutMs);
    down_ = std::make_unique<CommDownstream>(comm_, n_embd_, n_vocab_, timeout_ms_);
    down_->on_timeout([this] { watchdog_fired("a stage did not answer a batch within " + std::to_string(timeout_ms_) + " ms"); });
    return down_.get();
}

void CommGroup::finish() {
    std::lock_guard lock(mu_);
    if (finished_ || comm_.size() < 2) return;
    finished_ = true;
    const std::vector<uint8_t> msg = control_message(Kind::Quit, "");
    comm_.send(1, msg.data(), msg.size());
}

void serve_stage(Comm& comm) {
    const int rank = comm.rank(), size = comm.size();
    const bool last = rank == size - 1;
    const int next = last ? 0 : rank + 1;  // where answers and passed-on messages go
    std::string path;
    std::unique_ptr<Model> model;
    std::unique_ptr<Context> ctx;
    std::vector<uint8_t> msg, out;
    Batch batch;
    try {
        for (;;) {
            comm.recv(rank - 1, msg);
            const Header h = read_header(msg);
            const auto kind = static_cast<Kind>(h.kind);
            if (kind == Kind::Quit) {
                if (!last) comm.send(rank + 1, msg.data(), msg.size());
                return;
            }
            if (kind == Kind::Batch) {
                if (!ctx) throw std::runtime_error("a batch before any model was opened");
                stage_batch(*ctx, comm, msg, out, batch);
                continue;
            }
            if (kind == Kind::Error) {  // an earlier stage failed: pass it to rank 0
                comm.send(next, msg.data(), msg.size());
                continue;
            }
            if (kind == Kind::Hello) {  // append this rank's memory budget and pass it on
                std::string err, budgets;
                try {
                    budgets = payload_of(msg) + encode_u64(rank_memory_budget());
                } catch (const std::exception& e) {
                    err = "stage " + std::to_string(rank) + ": " + e.what();
                }
                const std::vector<uint8_t> m = err.empty() ? control_message(last ? Kind::Ready : Kind::Hello, budgets)
                                                           : control_message(Kind::Error, err);
                comm.send(err.empty() && !last ? rank + 1 : next, m.data(), m.size());
                continue;
            }
            if (kind != Kind::Open && kind != Kind::Configure) throw std::runtime_error("an unexpected message");
            std::string err;
            try {
                const std::string payload = payload_of(msg);
                if (kind == Kind::Open) {
                    const size_t zero = payload.find('\0');
                    const std::string want = payload.substr(0, zero), split = zero == std::string::npos ? "auto" : payload.substr(zero + 1);
                    if (want != path || !model) {
                        ctx.reset();
                        model.reset();
                        path.clear();
                        const StageRange r = split_layers(want, size, split)[static_cast<size_t>(rank)];
                        model = Model::load(want, LoadOptions{r.begin, r.end});
                        path = want;
                    }
                } else {
                    if (!model) throw std::runtime_error("Configure before Open");
                    ctx.reset();  // the old KV cache goes first
                    ctx = std::make_unique<Context>(*model, decode_params(payload));
                }
            } catch (const std::exception& e) {
                err = "stage " + std::to_string(rank) + ": " + e.what();
            }
            if (!err.empty()) {
                const std::vector<uint8_t> e = control_message(Kind::Error, err);
                comm.send(next, e.data(), e.size());
            } else if (last) {
                const std::vector<uint8_t> r = control_message(Kind::Ready, "");
                comm.send(0, r.data(), r.size());
            } else {
                comm.send(rank + 1, msg.data(), msg.size());
            }
        }
    } catch (const CommError&) {
        throw;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth: pipeline stage %d: %s\n", rank, e.what());
        comm.abort(2);
        throw;
    }
}

}  // namespace hearth::pipeline
