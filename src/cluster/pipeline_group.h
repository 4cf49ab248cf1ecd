// pipeline_group.*: `mpirun -np N hearth serve --pipeline`. Rank 0 runs the daemon (HTTP,
// tokenizer, sampling, the scheduler); its runner splits the model it loads through CommGroup
// (the StageGroup of runtime/context.h). Hello, once, collects every rank's memory budget
// (the auto split follows them); Open tells every later rank to load its layers of
// the file, Configure to make its Context like rank 0's; each rank passes the message on
// and the last one answers Ready (or Error, with the failing stage's message) to rank 0.
// Batches then flow as in pipeline_stage.h. The later ranks run serve_stage until Quit.
//
// The watchdog: a stage that does not answer a batch within the timeout fails the step (the
// scheduler ends the requests in flight) and the group is aborted a second later (MPI_Abort),
// for a supervisor to start it again; a stage whose process dies makes mpirun end the group.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/pipeline_comm.h"
#include "cluster/pipeline_stage.h"
#include "runtime/context.h"

namespace hearth::pipeline {

class CommGroup final : public StageGroup {
public:
    // timeout_ms: how long a batch may take through the later stages; loading gets 10 minutes.
    CommGroup(Comm& comm, std::string split, int timeout_ms);
    LoadOptions open_model(const std::string& path) override;
    Downstream* open_context(const ContextParams& params) override;
    // Sends Quit: the later ranks return from serve_stage.
    void finish();
    // Each rank's memory budget (rank_memory_budget() there), asked once when the group forms:
    // `--split auto` gives each stage weight bytes in proportion and refuses a model that
    // does not fit.
    const std::vector<uint64_t>& budgets() const;

private:
    // Sends a control message to rank 1 and waits for the last rank's answer (returns its
    // payload); throws on Error.
    std::string control(Kind kind, const std::string& payload, int timeout_ms);
    void watchdog_fired(const std::string& what);

    Comm& comm_;
    std::string split_;
    int timeout_ms_;
    int32_t n_embd_ = 0, n_vocab_ = 0;
    std::vector<uint64_t> budgets_;
    std::unique_ptr<CommDownstream> down_;
    std::mutex mu_;
    bool finished_ = false;
};

// This rank's memory budget for model weights: HEARTH_MAX_MEMORY, else 80% of its RAM.
uint64_t rank_memory_budget();

// A later rank of `hearth serve --pipeline`: loads and runs its stage as rank 0 asks, until Quit.
void serve_stage(Comm& comm);

}  // namespace hearth::pipeline
