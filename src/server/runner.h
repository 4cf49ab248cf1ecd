// A model runner: the one thread that owns a loaded Model, its Context, the serving
// engine's Scheduler over it (continuous batching of up to HEARTH_NUM_PARALLEL sequences,
// shared paged KV blocks, prefix cache) and the parsed chat template. It takes Requests
// from the model's queue in order: generate requests join the running batch while there is
// room (each scheduler step is one forward pass over all of them); embed and load requests
// run between steps; unload and context-size changes wait for the batch to drain.
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
class Scheduler;
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
    void stop();                               // finish: cancel the running jobs, then unload
    LoadedModel info();
    Clock::time_point last_used();
    void cancel_queued(const std::string& why);  // answers every waiting request with 503
    // Answers every request of this runner (queued, being handled, generating) with a 503
    // error at once, from the calling thread, and cancels them: for when the runner thread
    // cannot (a pipeline group ending while its thread waits inside the transport).
    void fail_requests(const std::string& why);
    // Manager-owned reservation bookkeeping (guarded by the manager's lock).
    uint64_t reserved = 0;
    bool counted = false;  // holds one of the max_loaded slots

    bool finished() const { return finished_.load(); }
    void join();

private:
    enum class Action { Job, Step, Exit };
    void loop();
    Action next_action(std::optional<Request>& job);  // mu_ is taken inside
    bool can_take_while_running(const Request& r) const;
    bool needs_new_context(const GenerateJob& job) const;
    bool handle(Request& job);  // true when the request joined the scheduler
    bool ensure_loaded(Request& job, Nanos& load_time);
    void make_context(int32_t n_ctx, const GenerateJob& job);
    void run_generate(Request& job, Nanos load_time);
    void run_embed(Request& job, Nanos load_time);
    void run_step();
    void report_gauges();
    void touch(KeepAlive ka);  // a request ended: restart the keep-alive clock
    void unload();

    ModelManager& mgr_;
    ResolvedModel model_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Request> queue_;
    std::shared_ptr<RequestState> current_;               // the job being handled
    std::vector<std::shared_ptr<RequestState>> live_;     // requests in the scheduler
    bool busy_ = false;                                   // a job is being handled
    bool stopping_ = false;
    bool loaded_ = false;
    Clock::time_point expires_at_ = Clock::time_point::max();
    std::chrono::system_clock::time_point expires_wall_;
    bool forever_ = false;
    Clock::time_point last_used_ = Clock::now();
    uint64_t size_ = 0;
    nlohmann::json details_ = nlohmann::json::object();  // /api/ps details of the loaded model
    int32_t n_ctx_ = 0;

    // Owned by the runner thread.
    std::unique_ptr<Model> engine_model_;
    std::unique_ptr<Context> ctx_;
    std::unique_ptr<Scheduler> sched_;
    std::unique_ptr<ThreadPool> pool_;  // encoders (no Context)
    std::unique_ptr<Context> embed_ctx_;  // decoder models' embeddings (one sequence), made on first use
    Template template_;
    ToolCallFormat tool_format_ = ToolCallFormat::None;
    bool has_template_ = false;  // false: Ollama's `{{ .Prompt }}` default
    bool thinks_ = false;        // the template has a thinking section
    uint64_t file_size_ = 0;
    int threads_ = 1;

    std::atomic<bool> finished_{false};
    std::thread thread_;
};

}  // namespace hearth::server
