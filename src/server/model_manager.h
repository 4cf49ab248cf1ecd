// The model manager: one Runner (a thread owning the Model and its Context) per loaded
// model, created on a model's first request and retired when its keep-alive runs out or
// when room is needed (least-recently-used idle model first, within HEARTH_MAX_LOADED_MODELS
// and the HEARTH_MAX_MEMORY budget). HTTP threads only submit Requests and read events.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/config.h"
#include "server/metrics.h"
#include "server/request.h"

namespace hearth::server {

class Runner;

struct LoadedModel {
    std::string name;
    std::string path;
    std::string digest;  // store models: the manifest's sha256 (hex); empty for plain .gguf files
    nlohmann::json details = nlohmann::json::object();  // /api/ps `details`, read from the GGUF at load
    uint64_t size = 0;  // estimate: weights file + KV cache
    int32_t context_length = 0;
    bool forever = false;  // keep-alive < 0
    std::chrono::system_clock::time_point expires_at;
    bool busy = false;
};

struct ManagerStats {
    uint64_t loads = 0, unloads = 0, completed = 0, cancelled = 0, rejected = 0;
};

enum class SubmitResult { Queued, QueueFull, ShuttingDown };

class ModelManager {
public:
    explicit ModelManager(ManagerOptions options);
    ~ModelManager();  // cancels queued requests, stops every runner
    ModelManager(const ModelManager&) = delete;
    ModelManager& operator=(const ModelManager&) = delete;

    // Queues the request on its model's runner (starting one when the model is not loaded).
    // An Unload request for a model that is not loaded is answered at once.
    SubmitResult submit(Request req);

    // Refuses new requests, answers queued ones with 503 and cancels running ones.
    void shutdown();
    // Answers every request in flight (queued or running) with a 503 error now, from this
    // thread (Runner::fail_requests), without waiting for the runners.
    void fail_requests(const std::string& why);

    std::vector<LoadedModel> loaded() const;
    // Model requests submitted whose state is still alive (queued, running, or their last
    // events not yet handed to the HTTP reply): a drain waits for 0.
    uint64_t in_flight() const { return uint64_t(std::max<int64_t>(*in_flight_, 0)); }
    ManagerStats stats() const;
    const ManagerOptions& options() const { return opts_; }
    uint64_t memory_budget() const { return budget_; }
    Metrics& metrics() { return metrics_; }

    // ---- For runners (called on runner threads).
    // Makes room for `bytes` more (evicting idle models) and reserves it for `self`. Waits
    // while busy models hold the room; gives up when `cancel` becomes true or on shutdown.
    // Returns "" or the reason it failed.
    std::string reserve(Runner* self, uint64_t bytes, const std::atomic<bool>& cancel);
    void adjust_reservation(Runner* self, uint64_t bytes);
    // Removes an idle runner from the table; false when work arrived meanwhile.
    bool retire(Runner* self);
    void notify_idle();
    void count_done(const std::string& done_reason);
    void count_load() { loads_++; }
    void count_unload() { unloads_++; }

private:
    void reap();                  // joins runners whose thread has ended
    void drop_locked(Runner* r);  // mu_ held: table -> retired list, reservation freed
    bool evict_one_locked(Runner* self);

    ManagerOptions opts_;
    uint64_t budget_;
    Metrics metrics_;
    mutable std::mutex mu_;
    std::condition_variable cv_;  // a runner became idle, or went away
    std::map<std::string, std::shared_ptr<Runner>> runners_;
    std::vector<std::shared_ptr<Runner>> retired_;
    bool shutting_down_ = false;
    std::shared_ptr<std::atomic<int64_t>> in_flight_ = std::make_shared<std::atomic<int64_t>>(0);
    std::atomic<uint64_t> loads_{0}, unloads_{0}, completed_{0}, cancelled_{0}, rejected_{0};
};

}  // namespace hearth::server
