// The MPI Comm: point-to-point messages on MPI_COMM_WORLD (one tag), sized by MPI_Probe's
// count, so a message is always received whole. Sends are nonblocking (MPI_Isend of a copy
// the Comm keeps until it is delivered): with micro-batches in flight rank 0 sends a large
// batch to rank 1 while the last rank sends it logits, and two blocking sends of messages
// past the eager limit would wait for each other forever. A receive polls MPI_Iprobe (which also drives
// OpenMPI's progress engine): it spins for a short while, then sleeps in short steps, so a
// stage waiting for the previous one leaves the CPU to the others (ranks may share cores)
// and a timeout can be kept. Built only with HEARTH_MPI; otherwise make_mpi_comm throws.
#include "cluster/pipeline_comm.h"

#include <atomic>
#include <chrono>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#if HEARTH_MPI
#include <mpi.h>
#endif

namespace hearth::pipeline {

#if HEARTH_MPI

namespace {

constexpr int kTag = 15;

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw CommError(std::string(what) + ": " + std::string(msg, static_cast<size_t>(len)));
}

class MpiComm final : public Comm {
public:
    MpiComm() {
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited) {
            // Stage messages (hidden states: up to n_batch x n_embd floats; logits rows) go
            // eagerly in one piece: past OpenMPI's 64 KiB TCP eager limit a message waits for
            // a rendezvous handshake that a sleeping sender answers late (~4 ms per token for
            // TinyLlama's 128 KB of logits). mpirun --mca settings still win.
            ::setenv("OMPI_MCA_btl_tcp_eager_limit", "8388608", 0);
            ::setenv("OMPI_MCA_btl_tcp_rndv_eager_limit", "8388608", 0);
            ::setenv("OMPI_MCA_btl_tcp_max_send_size", "8388608", 0);
            int provided = 0;
            check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
            owns_ = true;
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
    }
    ~MpiComm() override {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized) return;
        for (Pending& p : pending_) MPI_Wait(&p.req, MPI_STATUS_IGNORE);
        pending_.clear();
        if (owns_) MPI_Finalize();
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }

    void send(int to, const void* data, size_t bytes) override {
        check_interrupted();
        if (bytes > static_cast<size_t>(INT_MAX)) throw CommError("a pipeline message of " + std::to_string(bytes) + " bytes is too large");
        reap();
        const auto* p = static_cast<const uint8_t*>(data);
        pending_.push_back(Pending{std::vector<uint8_t>(p, p + bytes), MPI_REQUEST_NULL});
        Pending& q = pending_.back();
        check(MPI_Isend(q.buf.data(), static_cast<int>(bytes), MPI_BYTE, to, kTag, MPI_COMM_WORLD, &q.req), "MPI_Isend");
    }

    bool recv(int from, std::vector<uint8_t>& out, int timeout_ms) override {
        using clock = std::chrono::steady_clock;
        const auto t0 = clock::now();
        MPI_Status st;
        // A sleeping rank wakes ~0.1-0.2 ms after its message lands (a sleep step, and on a
        // VM an idle vCPU to wake). Stages take about the same time per token, so the wait
        // is predictable: sleep through most of it in one step (the shortest of this
        // source's last waits, less a margin), then poll without sleeping until the message
        // is in or is late, then fall back to the sleeping poll below.
        const Clock::duration expect = predict_ ? history(from).expect() : Clock::duration::zero();
        const Clock::duration nap = expect - std::max<Clock::duration>(std::chrono::microseconds(300), expect / 20);
        bool napped = false;
        for (int polls = 0;; ++polls) {
            int flag = 0;
            check_interrupted();
            check(MPI_Iprobe(from, kTag, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
            if (flag) break;
            reap();
            const auto waited = clock::now() - t0;
            if (timeout_ms >= 0 && waited >= std::chrono::milliseconds(timeout_ms)) return false;
            if (expect > std::chrono::milliseconds(2)) {
                if (!napped) {
                    napped = true;
                    auto d = nap - waited;
                    if (timeout_ms >= 0) d = std::min<Clock::duration>(d, std::chrono::milliseconds(timeout_ms) - waited);
                    if (d > Clock::duration::zero()) std::this_thread::sleep_for(d);
                    continue;
                }
                if (waited < expect + std::chrono::milliseconds(1)) continue;  // due: poll without sleeping
            }
            // Spin ~30 us (a hand-over that is about to come), then sleep in short steps: the
            // ranks may share cores (or SMT siblings) with the stage that is computing, and a
            // spinning rank measurably slows it.
            // Past 2 ms of waiting (the other stage is computing), longer sleeps let this
            // vCPU idle instead of waking every 0.1 ms beside the one that computes.
            if (waited > spin_)
                std::this_thread::sleep_for(waited > std::chrono::milliseconds(2) ? long_sleep_ : std::chrono::microseconds(20));
        }
        if (predict_) history(from).add(clock::now() - t0);
        int count = 0;
        check(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count");
        out.resize(static_cast<size_t>(count));
        check(MPI_Recv(out.data(), count, MPI_BYTE, from, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
        return true;
    }

    void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

    void interrupt(const std::string& why) override {
        {
            std::lock_guard lock(why_mu_);
            why_ = why.empty() ? "the pipeline group is ending" : why;
        }
        interrupted_ = true;
    }

private:
    using Clock = std::chrono::steady_clock;
    // A source's last waits; expect() is their minimum once there are enough of them.
    struct WaitHistory {
        Clock::duration last[4]{};
        int n = 0;
        void add(Clock::duration w) { last[n++ % 4] = w; }
        // Only a steady pattern counts (the last waits within 1.5x of each other, none past
        // 250 ms): a wait that spans an idle spell between requests predicts nothing.
        Clock::duration expect() const {
            if (n < 4) return Clock::duration::zero();
            const auto [lo, hi] = std::minmax_element(std::begin(last), std::end(last));
            if (*hi > std::chrono::milliseconds(250) || *hi * 2 > *lo * 3) return Clock::duration::zero();
            return *lo;
        }
    };
    WaitHistory& history(int from) {
        if (from >= static_cast<int>(waits_.size())) waits_.resize(static_cast<size_t>(from) + 1);
        return waits_[static_cast<size_t>(from)];
    }
    std::vector<WaitHistory> waits_;
    // HEARTH_PIPELINE_PREDICT=0: no expected-wait sleep (only the polling below).
    bool predict_ = [] {
        const char* v = std::getenv("HEARTH_PIPELINE_PREDICT");
        return !(v && std::string(v) == "0");
    }();

    void check_interrupted() {
        if (!interrupted_.load(std::memory_order_acquire)) return;
        std::lock_guard lock(why_mu_);
        throw CommError(why_);
    }

    struct Pending {
        std::vector<uint8_t> buf;
        MPI_Request req;
    };
    // Frees the copies of delivered sends (in order: MPI delivers one pair's messages in order).
    void reap() {
        while (!pending_.empty()) {
            int done = 0;
            check(MPI_Test(&pending_.front().req, &done, MPI_STATUS_IGNORE), "MPI_Test");
            if (!done) break;
            pending_.pop_front();
        }
    }

    int rank_ = 0, size_ = 1;
    bool owns_ = false;
    // HEARTH_PIPELINE_SPIN: microseconds a waiting rank polls before it sleeps (default 30).
    std::chrono::microseconds long_sleep_{[] {
        const char* v = std::getenv("HEARTH_PIPELINE_SLEEP");
        return v && *v ? std::atol(v) : 20L;
    }()};
    std::chrono::microseconds spin_{[] {
        const char* v = std::getenv("HEARTH_PIPELINE_SPIN");
        return v && *v ? std::atol(v) : 30L;
    }()};
    std::list<Pending> pending_;
    std::atomic<bool> interrupted_{false};
    std::mutex why_mu_;
    std::string why_;
};

}  // namespace

bool mpi_built() { return true; }
std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }

#else

bool mpi_built() { return false; }
std::unique_ptr<Comm> make_mpi_comm() {
    throw std::runtime_error("this hearth was built without MPI: install libopenmpi-dev (scripts/install-deps.sh) and rebuild");
}

#endif

}  // namespace hearth::pipeline
