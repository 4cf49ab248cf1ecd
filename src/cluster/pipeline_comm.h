// cluster/pipeline_*: one model split into pipeline stages across processes (issue 15). Each
// rank holds a contiguous range of layers (Model::load with LoadOptions) and the KV cache of
// those layers; rank 0 embeds, runs its layers and hands the hidden states on; the last rank
// runs the output head and sends the logits back to rank 0, which samples.
//
// pipeline_comm.*: Comm, the transport between stages: whole messages of bytes between
// ranks, rank/size, abort. Two implementations: MPI point-to-point on the world communicator
// (pipeline_mpi.cpp, built when CMake finds MPI: HEARTH_MPI), and in-process ranks on
// threads (tests). The stages' protocol (pipeline_stage.*) sees only this interface, so
// another transport can be added without touching it or the model code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth::pipeline {

// A stage that does not answer in time, or a group that was aborted.
struct CommError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Comm {
public:
    virtual ~Comm() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    // Sends one message of `bytes` bytes to rank `to`; returns when `data` may be reused.
    virtual void send(int to, const void* data, size_t bytes) = 0;
    // Receives the next message from rank `from` into `out` (resized to fit). With
    // timeout_ms >= 0, gives up after that long and returns false (the message, if it comes
    // later, stays queued). Throws CommError when the group was aborted.
    virtual bool recv(int from, std::vector<uint8_t>& out, int timeout_ms = -1) = 0;
    // Ends every rank of the group (MPI_Abort; in-process: the group's recv calls throw).
    virtual void abort(int code) = 0;
    // This rank gives up on the group: a recv waiting now, and every later send and recv,
    // throws CommError(why). Any thread may call it (rank 0's signal waiter, when mpirun ends
    // the group because a stage died: the requests in flight then fail at once with `why`).
    virtual void interrupt(const std::string& why) = 0;
};

// n in-process ranks whose messages go through queues (for tests: the same order and
// semantics as MPI's point-to-point messages between two ranks).
std::vector<std::unique_ptr<Comm>> make_local_comms(int n);

// True when this build has the MPI transport (HEARTH_MPI).
bool mpi_built();
// The MPI world communicator; initializes MPI (thread level MULTIPLE, else the highest
// offered) on first use and finalizes it when the Comm is destroyed. Throws std::runtime_error
// when the build has no MPI.
std::unique_ptr<Comm> make_mpi_comm();

}  // namespace hearth::pipeline
