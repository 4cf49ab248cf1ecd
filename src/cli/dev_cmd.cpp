// `hearth dev ...`: developer tools (synthetic models, GGUF inspection).
#include <cstdio>
#include <unistd.h>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "model/synthetic.h"

namespace hearth::cli {

namespace {

void add_make_model(CLI::App& dev) {
    auto o = std::make_shared<MakeModelOptions>();
    auto threads = std::make_shared<int>(0);
    std::string presets;
    for (const auto& p : model_presets()) presets += (presets.empty() ? "" : ", ") + p.name;
    CLI::App* cmd = dev.add_subcommand("make-model", "Write a GGUF with random weights in a real model's shape");
    cmd->add_option("output", o->output, "Output GGUF file")->required();
    cmd->add_option("--preset", o->preset, "Shape: " + presets)->capture_default_str();
    cmd->add_option("--arch", o->arch, "Architecture override: " + synthetic_architectures());
    cmd->add_option("--layers", o->layers, "Layer count override (e.g. a few layers of a big shape)");
    cmd->add_option("--type", o->type, "Weight type (f32, f16, bf16, q8_0, q4_0, q4_K_M, ...)")->capture_default_str();
    cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
    cmd->add_option("--vocab", o->vocab, "GGUF whose tokenizer metadata to copy")->check(CLI::ExistingFile);
    cmd->add_option("-t,--threads", *threads, "Threads (default: physical cores)");
    cmd->callback([o, threads] {
        o->threads = resolve_threads(*threads);
        if (isatty(STDERR_FILENO)) o->progress = [](size_t i, size_t n, const std::string& name) {
            std::fprintf(stderr, "\r[%4zu/%4zu] %-40s", i + 1, n, name.c_str());
            std::fflush(stderr);
        };
        const uint64_t bytes = make_synthetic_model(*o);
        if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
        std::printf("wrote %s (%.2f MB)\n", o->output.c_str(), double(bytes) / 1e6);
    });
}

void add_gguf_dump(CLI::App& dev) {
    auto path = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    CLI::App* cmd = dev.add_subcommand("gguf", "Print a GGUF file's metadata and tensor table");
    cmd->add_option("file", *path, "GGUF file")->required();
    cmd->add_flag("--all", *all, "Print every array item and every tensor");
    cmd->callback([path, all] {
        const gguf::File f = gguf::File::open(*path);
        std::printf("GGUF v%u, %zu bytes, alignment %zu, data at %zu\n", f.version(), f.file_size(), f.alignment(),
                    f.data_offset());
        std::printf("metadata (%zu):\n", f.metadata().size());
        for (const auto& [k, v] : f.metadata())
            std::printf("  %-45s %-8s %s\n", k.c_str(), gguf::value_type_name(v.type()),
                        v.to_string(*all ? SIZE_MAX : 8).c_str());
        std::printf("tensors (%zu):\n", f.tensors().size());
        size_t shown = 0;
        for (const auto& t : f.tensors()) {
            if (!*all && shown++ == 24) {
                std::printf("  ... (%zu more; --all shows them)\n", f.tensors().size() - 24);
                break;
            }
            std::string dims;
            for (int64_t d : t.dims) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
            std::printf("  %-40s %-6s %-22s %12zu bytes @ %llu\n", t.name.c_str(), type_name(t.type), dims.c_str(),
                        t.nbytes, static_cast<unsigned long long>(t.offset));
        }
    });
}

}  // namespace

void add_dev_commands(CLI::App& app) {
    CLI::App* dev = app.add_subcommand("dev", "Developer tools");
    dev->require_subcommand(1);
    add_make_model(*dev);
    add_gguf_dump(*dev);
    add_logits_command(*dev);
    add_embed_command(*dev);
    add_template_command(*dev);
    add_comm_bench_command(*dev);
}

}  // namespace hearth::cli
