// hearth: one binary that is the CLI, the daemon, the model store and the inference engine.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "tensor/cpu.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
    CLI::App app{"Hearth: run large language models on your own machine"};
    app.set_version_flag("--version", HEARTH_VERSION);
    app.require_subcommand(1);
    hearth::cli::add_generate_command(app);
    hearth::cli::add_bench_command(app);
    hearth::cli::add_perplexity_command(app);
    hearth::cli::add_quantize_command(app);
    hearth::cli::add_tokenize_command(app);
    hearth::cli::add_dev_commands(app);
    hearth::cli::add_serve_command(app);
    hearth::cli::add_create_command(app);
    hearth::cli::add_show_command(app);
    hearth::cli::add_run_command(app);
    hearth::cli::add_ps_commands(app);
    hearth::cli::add_store_commands(app);
    hearth::cli::add_cluster_commands(app);
    hearth::cli::add_router_command(app);
    hearth::cli::add_pipeline_supervise_command(app);
    try {
        hearth::isa_family();  // a bad HEARTH_ISA is an error before anything runs
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
