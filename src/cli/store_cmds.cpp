// `hearth pull`, `push`, `list|ls`, `rm`, `cp`: the model store through the daemon
// (/api/pull, /api/push, /api/tags, /api/delete, /api/copy), printed the way Ollama does.
#include <chrono>
#include <filesystem>
#include <memory>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/daemon_common.h"
#include "cli/display.h"
#include "store/name.h"

namespace hearth::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string model_arg(const std::string& name) {
    std::error_code ec;
    const bool looks_like_path = name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0;
    if (looks_like_path || (name.find('/') != std::string::npos && fs::is_regular_file(name, ec))) {
        const fs::path abs = fs::absolute(name, ec);
        if (!ec) return abs.lexically_normal().string();
    }
    return name;
}

bool same_model(const std::string& typed, const std::string& reported) {
    if (typed == reported) return true;
    const auto a = store::ModelName::try_parse(typed);
    const auto b = store::ModelName::try_parse(reported);
    return a && b && a->equal_fold(*b);
}

namespace {

// Streams a pull or push, feeding the progress display.
void transfer(DaemonClient& client, const std::string& route, const std::string& name, bool insecure) {
    ProgressDisplay progress(stderr);
    client.stream(route, json{{"model", name}, {"insecure", insecure}, {"stream", true}}, [&](const json& obj) {
        progress.update(obj);
        return true;
    });
    progress.finish();
}

std::string short_digest(const json& m) {
    std::string d = m.value("digest", std::string());
    if (d.rfind("sha256:", 0) == 0) d = d.substr(7);
    return d.substr(0, 12);
}

void list_models() {
    DaemonClient client;
    client.ensure_daemon();
    const json tags = client.get("/api/tags");
    std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "MODIFIED"}};
    const auto now = std::chrono::system_clock::now();
    if (tags.is_object() && tags.contains("models") && tags["models"].is_array()) {
        for (const json& m : tags["models"]) {
            if (!m.is_object()) continue;
            std::string name = m.value("name", std::string());
            if (name.empty()) name = m.value("model", std::string());
            const uint64_t size = m.contains("size") && m["size"].is_number() ? m["size"].get<uint64_t>() : 0;
            std::string modified;
            if (auto t = parse_rfc3339(m.value("modified_at", std::string()))) modified = human_time(*t, now);
            rows.push_back({name, short_digest(m), human_bytes(size), modified});
        }
    }
    std::fputs(render_table(rows).c_str(), stdout);
}

// Unloads a model before deleting it, as Ollama does; quietly does nothing when it is not
// running or the daemon cannot tell.
void unload_if_running(DaemonClient& client, const std::string& name) {
    try {
        const json ps = client.get("/api/ps");
        if (!ps.contains("models") || !ps["models"].is_array()) return;
        for (const json& m : ps["models"])
            if (m.is_object() && same_model(name, m.value("name", std::string()))) {
                client.post("/api/generate", json{{"model", m.value("name", std::string())}, {"keep_alive", 0}, {"stream", false}});
                return;
            }
    } catch (const ClientError&) {
    }
}

}  // namespace

void pull_model(DaemonClient& client, const std::string& name, bool insecure) { transfer(client, "/api/pull", name, insecure); }

void add_store_commands(CLI::App& app) {
    {
        struct Args {
            std::string name;
            bool insecure = false;
        };
        auto a = std::make_shared<Args>();
        CLI::App* cmd = app.add_subcommand("pull", "Pull a model from a registry (Ollama's registry by default)");
        cmd->add_option("model", a->name, "Model name: [host/][namespace/]name[:tag], e.g. llama3.2 or hf.co/user/repo:Q4_K_M")
            ->required();
        cmd->add_flag("--insecure", a->insecure, "Use plain HTTP and skip TLS checks (a registry you trust, e.g. on your LAN)");
        cmd->callback([a] {
            run_client_command([&] {
                DaemonClient client;
                client.ensure_daemon();
                pull_model(client, a->name, a->insecure);
            });
        });
    }
    {
        struct Args {
            std::string name;
            bool insecure = false;
        };
        auto a = std::make_shared<Args>();
        CLI::App* cmd = app.add_subcommand("push", "Push a model to a registry");
        cmd->add_option("model", a->name, "Model name including the registry: host/namespace/name[:tag]")->required();
        cmd->add_flag("--insecure", a->insecure, "Use plain HTTP and skip TLS checks (a registry you trust, e.g. on your LAN)");
        cmd->callback([a] {
            run_client_command([&] {
                DaemonClient client;
                client.ensure_daemon();
                transfer(client, "/api/push", a->name, a->insecure);
            });
        });
    }
    {
        CLI::App* cmd = app.add_subcommand("list", "List the models in the store (NAME ID SIZE MODIFIED)");
        cmd->alias("ls");
        cmd->callback([] { run_client_command(list_models); });
    }
    {
        auto names = std::make_shared<std::vector<std::string>>();
        CLI::App* cmd = app.add_subcommand("rm", "Remove models from the store");
        cmd->add_option("model", *names, "Model names")->required();
        cmd->callback([names] {
            run_client_command([&] {
                DaemonClient client;
                for (const std::string& name : *names) {
                    unload_if_running(client, name);
                    client.del("/api/delete", json{{"model", name}});
                    std::printf("deleted '%s'\n", name.c_str());
                    std::fflush(stdout);
                }
            });
        });
    }
    {
        struct Args {
            std::string source, destination;
        };
        auto a = std::make_shared<Args>();
        CLI::App* cmd = app.add_subcommand("cp", "Copy a model under a new name (no bytes are duplicated)");
        cmd->add_option("source", a->source, "Existing model name")->required();
        cmd->add_option("destination", a->destination, "New model name")->required();
        cmd->callback([a] {
            run_client_command([&] {
                DaemonClient client;
                client.post("/api/copy", json{{"source", a->source}, {"destination", a->destination}});
                std::printf("copied '%s' to '%s'\n", a->source.c_str(), a->destination.c_str());
            });
        });
    }
}

}  // namespace hearth::cli
