// `hearth create NAME [-f Modelfile] [-q TYPE]`: parses the Modelfile here, uploads the local
// files it names (FROM, ADAPTER) as blobs (HEAD /api/blobs/<digest>, POST when missing, the
// file streamed from disk), then asks the daemon to build the model (POST /api/create) and
// prints its streamed statuses, as Ollama's client does.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/daemon_common.h"
#include "cli/display.h"
#include "store/modelfile.h"

namespace hearth::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct CreateArgs {
    std::string name;
    std::string file;
    std::string quantize;
};

std::string sha256_file(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ClientError(0, "cannot open " + path.string() + ": " + std::strerror(errno));
    store::Sha256 h;
    std::vector<char> buf(1 << 20);
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            ::close(fd);
            throw ClientError(0, "reading " + path.string() + ": " + std::strerror(e));
        }
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
    }
    ::close(fd);
    return "sha256:" + h.hex_final();
}

// A FROM / ADAPTER path: `~/` expanded, relative paths taken from the Modelfile's folder.
fs::path local_path(const std::string& value, const fs::path& base_dir) {
    std::string v = value;
    if (v == "~" || v.rfind("~/", 0) == 0) {
        const char* home = std::getenv("HOME");
        if (home) v = std::string(home) + v.substr(1);
    }
    fs::path p(v);
    if (p.is_relative()) p = base_dir / p;
    return p.lexically_normal();
}

// Makes sure the daemon holds the file's bytes; returns the digest.
std::string upload_blob(DaemonClient& client, const fs::path& file, ProgressDisplay& progress) {
    std::error_code ec;
    if (fs::is_directory(file, ec))
        throw ClientError(0, file.string() + " is a directory; hearth creates models from GGUF files (convert safetensors to GGUF first)");
    if (!fs::is_regular_file(file, ec)) throw ClientError(0, "no such file: " + file.string());
    const std::string digest = sha256_file(file);
    const int st = client.head("/api/blobs/" + digest);
    if (st == 200) return digest;
    if (st != 404) throw ClientError(st, "checking blob " + digest + ": the daemon answered with status " + std::to_string(st));
    const std::string label = "copying file " + digest;
    const uint64_t size = fs::file_size(file, ec);
    progress.bar(digest, label, 0, size ? size : 1);
    client.upload_file("/api/blobs/" + digest, file.string(),
                       [&](uint64_t sent, uint64_t total) { progress.bar(digest, label, sent, total ? total : 1); });
    progress.bar(digest, label, size ? size : 1, size ? size : 1);
    return digest;
}

void create(const CreateArgs& a) {
    const fs::path mf_path = a.file.empty() ? fs::path("Modelfile") : fs::path(a.file);
    std::ifstream in(mf_path, std::ios::binary);
    if (!in) {
        if (a.file.empty()) throw ClientError(0, "no Modelfile found in the current folder (give one with -f)");
        throw ClientError(0, "cannot read Modelfile " + mf_path.string() + ": " + std::strerror(errno));
    }
    std::stringstream text;
    text << in.rdbuf();
    store::Modelfile mf;
    try {
        mf = store::Modelfile::parse(text.str());
    } catch (const store::ModelfileError& e) {
        throw ClientError(0, mf_path.string() + ": " + e.what());
    }
    std::error_code ec;
    const fs::path base_dir = fs::absolute(mf_path, ec).parent_path();

    DaemonClient client;
    client.ensure_daemon();
    ProgressDisplay progress(stderr);
    progress.status("gathering model components");

    json req = {{"model", a.name}, {"stream", true}};
    json files = json::object();
    for (size_t i = 0; i < mf.from.size(); ++i) {
        const std::string& from = mf.from[i];
        store::FromKind kind = store::classify_from(from);
        if (kind == store::FromKind::Model && fs::exists(local_path(from, base_dir), ec)) kind = store::FromKind::File;
        switch (kind) {
        case store::FromKind::Model:
            if (i > 0) throw ClientError(0, "FROM " + from + ": only the first FROM may name a model");
            req["from"] = from;
            break;
        case store::FromKind::Blob: {
            const auto d = store::from_blob_digest(from);
            if (!d) throw ClientError(0, "FROM " + from + ": not a valid blob digest");
            files[i == 0 ? "model.gguf" : "file" + std::to_string(i) + ".gguf"] = d->str();
            break;
        }
        case store::FromKind::File: {
            const fs::path p = local_path(from, base_dir);
            files[p.filename().string()] = upload_blob(client, p, progress);
            break;
        }
        }
    }
    if (!files.empty()) req["files"] = files;
    if (!mf.adapters.empty()) {
        json adapters = json::object();
        for (const std::string& ad : mf.adapters) {
            const fs::path p = local_path(ad, base_dir);
            adapters[p.filename().string()] = upload_blob(client, p, progress);
        }
        req["adapters"] = adapters;
    }
    if (mf.template_text) req["template"] = *mf.template_text;
    if (mf.system) req["system"] = *mf.system;
    if (!mf.parameters.empty()) req["parameters"] = json::parse(mf.params_json());
    if (!mf.messages.empty()) req["messages"] = json::parse(mf.messages_json());
    if (mf.licenses.size() == 1) req["license"] = mf.licenses[0];
    if (mf.licenses.size() > 1) req["license"] = mf.licenses;
    if (!a.quantize.empty()) req["quantize"] = a.quantize;

    client.stream("/api/create", req, [&](const json& obj) {
        progress.update(obj);
        return true;
    });
    progress.finish();
}

}  // namespace

void add_create_command(CLI::App& app) {
    auto a = std::make_shared<CreateArgs>();
    CLI::App* cmd = app.add_subcommand("create", "Create a model from a Modelfile");
    cmd->add_option("model", a->name, "Name of the new model, e.g. mymodel or mymodel:tag")->required();
    cmd->add_option("-f,--file", a->file, "The Modelfile (default: ./Modelfile); relative paths in it are from its folder");
    cmd->add_option("-q,--quantize", a->quantize, "Quantize the weights (e.g. q4_K_M, q8_0)");
    cmd->footer(
        "Modelfile instructions: FROM (a model name or a .gguf path), PARAMETER, TEMPLATE (Jinja), SYSTEM,\n"
        "MESSAGE, LICENSE, ADAPTER; values may be \"\"\"quoted\"\"\" over several lines.");
    cmd->callback([a] { run_client_command([&] { create(*a); }); });
}

}  // namespace hearth::cli
