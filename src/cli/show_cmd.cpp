// `hearth show MODEL`: a model's details from /api/show in Ollama's layout, or one field
// (--license, --modelfile, --parameters, --template, --system).
#include <algorithm>
#include <memory>
#include <sstream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/daemon_common.h"
#include "cli/display.h"

namespace hearth::cli {

using json = nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string number_text(const json& v) {
    if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (d == static_cast<double>(static_cast<long long>(d))) return std::to_string(static_cast<long long>(d));
        std::ostringstream o;
        o << d;
        return o.str();
    }
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

std::string metadata_value(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number()) return number_text(v);
    if (v.is_null()) return "[…]";  // arrays the daemon left out (non-verbose answer)
    if (v.is_array()) {
        std::string out = "[";
        const size_t shown = std::min<size_t>(v.size(), 5);
        for (size_t i = 0; i < shown; ++i) out += (i ? " " : "") + (v[i].is_string() ? v[i].get<std::string>() : v[i].dump());
        if (v.size() > shown) out += " ...+" + std::to_string(v.size() - shown) + " more";
        return out + "]";
    }
    return v.dump();
}

// Non-empty lines of `text`, at most `n` (then "...").
std::vector<std::vector<std::string>> head_rows(const std::string& text, size_t n) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos) continue;
        const auto e = line.find_last_not_of(" \t\r");
        if (rows.size() == n) {
            rows.push_back({"", "..."});
            break;
        }
        rows.push_back({"", line.substr(b, e - b + 1)});
    }
    return rows;
}

void section(std::string& out, const std::string& header, const std::vector<std::vector<std::string>>& rows) {
    out += "  " + header + "\n" + render_table(rows) + "\n";
}

struct ShowArgs {
    std::string model;
    bool license = false, modelfile = false, parameters = false, template_ = false, system = false, verbose = false;
};

void show(const ShowArgs& a) {
    const int fields = a.license + a.modelfile + a.parameters + a.template_ + a.system;
    if (fields > 1)
        throw ClientError(0, "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified");
    DaemonClient client;
    client.ensure_daemon();
    json req = {{"model", model_arg(a.model)}};
    if (a.verbose) req["verbose"] = true;
    const json resp = client.post("/api/show", req);
    auto print_field = [](const std::string& text) {
        std::fputs(text.c_str(), stdout);
        if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
    };
    if (a.license) return print_field(str(resp, "license"));
    if (a.modelfile) return print_field(str(resp, "modelfile"));
    if (a.parameters) return print_field(str(resp, "parameters"));
    if (a.template_) return print_field(str(resp, "template"));
    if (a.system) return print_field(str(resp, "system"));
    std::fputs(render_show_info(resp, a.verbose).c_str(), stdout);
}

}  // namespace

std::string render_show_info(const json& resp, bool verbose) {
    std::string out;
    const json details = resp.contains("details") && resp["details"].is_object() ? resp["details"] : json::object();
    const json info = resp.contains("model_info") && resp["model_info"].is_object() ? resp["model_info"] : json::object();

    std::vector<std::vector<std::string>> model_rows;
    const std::string arch = str(info, "general.architecture");
    if (!arch.empty()) {
        model_rows.push_back({"", "architecture", arch});
        std::string params = str(details, "parameter_size");
        if (params.empty() && info.contains("general.parameter_count")) params = number_text(info["general.parameter_count"]);
        model_rows.push_back({"", "parameters", params});
        for (const auto& [key, label] : {std::pair{".context_length", "context length"}, std::pair{".embedding_length", "embedding length"}})
            if (auto it = info.find(arch + key); it != info.end()) model_rows.push_back({"", label, number_text(*it)});
    } else {
        model_rows.push_back({"", "architecture", str(details, "family")});
        model_rows.push_back({"", "parameters", str(details, "parameter_size")});
    }
    model_rows.push_back({"", "quantization", str(details, "quantization_level")});
    section(out, "Model", model_rows);

    if (resp.contains("capabilities") && resp["capabilities"].is_array() && !resp["capabilities"].empty()) {
        std::vector<std::vector<std::string>> rows;
        for (const json& c : resp["capabilities"])
            if (c.is_string()) rows.push_back({"", c.get<std::string>()});
        section(out, "Capabilities", rows);
    }

    const std::string params = str(resp, "parameters");
    if (!params.empty()) {
        std::vector<std::vector<std::string>> rows;
        std::istringstream in(params);
        std::string line;
        while (std::getline(in, line)) {
            const auto b = line.find_first_not_of(" \t");
            if (b == std::string::npos) continue;
            const auto k_end = line.find_first_of(" \t", b);
            const std::string key = line.substr(b, k_end == std::string::npos ? std::string::npos : k_end - b);
            std::string value;
            if (k_end != std::string::npos) {
                const auto v = line.find_first_not_of(" \t", k_end);
                if (v != std::string::npos) value = line.substr(v);
            }
            rows.push_back({"", key, value});
        }
        section(out, "Parameters", rows);
    }
    if (const std::string system = str(resp, "system"); !system.empty()) section(out, "System", head_rows(system, 2));
    if (const std::string license = str(resp, "license"); !license.empty()) section(out, "License", head_rows(license, 2));

    if (verbose && !info.empty()) {
        std::vector<std::vector<std::string>> rows;
        for (const auto& [k, v] : info.items()) rows.push_back({"", k, metadata_value(v)});
        std::sort(rows.begin(), rows.end());
        section(out, "Metadata", rows);
    }
    return out;
}

void add_show_command(CLI::App& app) {
    auto a = std::make_shared<ShowArgs>();
    CLI::App* cmd = app.add_subcommand("show", "Show a model's details, or one of its fields");
    cmd->add_option("model", a->model, "Model name or .gguf path")->required();
    cmd->add_flag("--license", a->license, "Print the license");
    cmd->add_flag("--modelfile", a->modelfile, "Print the Modelfile");
    cmd->add_flag("--parameters", a->parameters, "Print the default parameters");
    cmd->add_flag("--template", a->template_, "Print the chat template");
    cmd->add_flag("--system", a->system, "Print the system message");
    cmd->add_flag("-v,--verbose", a->verbose, "Also print the model's metadata");
    cmd->callback([a] { run_client_command([&] { show(*a); }); });
}

}  // namespace hearth::cli
