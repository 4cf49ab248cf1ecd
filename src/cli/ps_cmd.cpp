// `hearth ps` (the loaded models: NAME ID SIZE PROCESSOR CONTEXT UNTIL, from /api/ps) and
// `hearth stop` (unloads a running model: a generate request with keep_alive 0).
#include <chrono>
#include <cmath>
#include <memory>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/daemon_common.h"
#include "cli/display.h"

namespace hearth::cli {

using json = nlohmann::json;

namespace {

uint64_t u64(const json& m, const char* key) {
    auto it = m.find(key);
    return it != m.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

// Ollama's PROCESSOR column: how much of the model sits in CPU memory vs. GPU memory.
std::string processor(uint64_t size, uint64_t vram) {
    if (vram == 0) return "100% CPU";
    if (vram == size) return "100% GPU";
    if (vram > size || size == 0) return "Unknown";
    const int cpu = static_cast<int>(std::lround(double(size - vram) / double(size) * 100));
    return std::to_string(cpu) + "%/" + std::to_string(100 - cpu) + "% CPU/GPU";
}

void list_running(const std::string& filter) {
    DaemonClient client;
    client.ensure_daemon();
    const json ps = client.get("/api/ps");
    std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"}};
    const auto now = std::chrono::system_clock::now();
    if (ps.is_object() && ps.contains("models") && ps["models"].is_array()) {
        for (const json& m : ps["models"]) {
            if (!m.is_object()) continue;
            const std::string name = m.value("name", std::string());
            if (!filter.empty() && name.rfind(filter, 0) != 0 && !same_model(filter, name)) continue;
            std::string id = m.value("digest", std::string());
            if (id.rfind("sha256:", 0) == 0) id = id.substr(7);
            std::string until;
            if (auto t = parse_rfc3339(m.value("expires_at", std::string())))
                until = *t < now ? "Stopping..." : human_time(*t, now);
            rows.push_back({name, id.substr(0, 12), human_bytes(u64(m, "size")), processor(u64(m, "size"), u64(m, "size_vram")),
                            std::to_string(u64(m, "context_length")), until});
        }
    }
    std::fputs(render_table(rows).c_str(), stdout);
}

void stop_model(const std::string& typed) {
    DaemonClient client;
    const std::string name = model_arg(typed);
    const json ps = client.get("/api/ps");
    std::string running;
    if (ps.is_object() && ps.contains("models") && ps["models"].is_array())
        for (const json& m : ps["models"])
            if (m.is_object() && same_model(name, m.value("name", std::string()))) running = m.value("name", std::string());
    if (running.empty()) throw ClientError(404, "couldn't find model \"" + typed + "\" to stop");
    client.post("/api/generate", json{{"model", running}, {"keep_alive", 0}, {"stream", false}});
}

}  // namespace

void add_ps_commands(CLI::App& app) {
    {
        auto filter = std::make_shared<std::string>();
        CLI::App* cmd = app.add_subcommand("ps", "List the models loaded in the daemon (NAME ID SIZE PROCESSOR CONTEXT UNTIL)");
        cmd->add_option("model", *filter, "Show only models whose name starts with this");
        cmd->callback([filter] { run_client_command([&] { list_running(*filter); }); });
    }
    {
        auto name = std::make_shared<std::string>();
        CLI::App* cmd = app.add_subcommand("stop", "Unload a running model from the daemon's memory");
        cmd->add_option("model", *name, "Model name (as `hearth ps` shows it) or .gguf path")->required();
        cmd->callback([name] { run_client_command([&] { stop_model(*name); }); });
    }
}

}  // namespace hearth::cli
