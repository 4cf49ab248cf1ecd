// A model runner: the one thread that owns a loaded Model, its Context (one sequence for
// now) and its parsed chat template, and works through the model's queue of Requests in
// order. The serving engine (continuous batching) will replace loop()/handle(); the queue,
// Request and Event types stay.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/model_manager.h"
#include "server/request.h"
#include "template/template.h"

namespace hearth {
class Model;
class Context;
class ThreadPool;
}  // namespace hearth

namespace hearth::server {

class Runner {
public:
    Runner(ModelManager& mgr, ResolvedModel model, Request first);
    ~Runner();
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    const ResolvedModel& model() const { return model_; }

    // ---- Called with the manager's lock held.
    bool push(Request&& r, size_t max_queue);  // false when the queue is full or stopping
    bool idle();                               // loaded, nothing running or queued
    bool quiescent();                          // nothing running or queued
    void stop();                               // finish: cancel the current job, then unload
    LoadedModel info();
    Clock::time_point last_used();
    void cancel_queued(const std::string& why);  // answers every waiting request with 503
    // Manager-owned reservation bookkeeping (guarded by the manager's lock).
    uint64_t reserved = 0;
    bool counted = false;  // holds one of the max_loaded slots

    bool finished() const { return finished_.load(); }
    void join();

private:
    void loop();
    std::optional<Request> next_job();
    void handle(Request& job);
    bool ensure_loaded(Request& job, Nanos& load_time);
    void ensure_context(const GenerateJob& job);
    void run_generate(Request& job, Nanos load_time);
    void run_embed(Request& job, Nanos load_time);
    void unload();

    ModelManager& mgr_;
    ResolvedModel model_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Request> queue_;
    std::shared_ptr<RequestState> current_;
    bool busy_ = false;
    bool stopping_ = false;
    bool loaded_ = false;
    Clock::time_point expires_at_ = Clock::time_point::max();
    std::chrono::system_clock::time_point expires_wall_;
    bool forever_ = false;
    Clock::time_point last_used_ = Clock::now();
    uint64_t size_ = 0;
    int32_t n_ctx_ = 0;

    // Owned by the runner thread.
    std::unique_ptr<Model> engine_model_;
    std::unique_ptr<Context> ctx_;
    std::unique_ptr<ThreadPool> pool_;  // encoders (no Context)
    Template template_;
    ToolCallFormat tool_format_ = ToolCallFormat::None;
    uint64_t file_size_ = 0;
    int threads_ = 1;

    std::atomic<bool> finished_{false};
    std::thread thread_;
};

}  // namespace hearth::server
