// cli/ owns the `hearth` command line: one file per command group, each adding its
// subcommands to the CLI11 app. Commands that need the daemon talk to it over HTTP; the
// engine commands here (quantize, dev tools) run in-process.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

void add_quantize_command(CLI::App& app);
void add_dev_commands(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_create_command(CLI::App& app);  // create (uploads blobs, /api/create)
void add_show_command(CLI::App& app);    // show
void add_run_command(CLI::App& app);     // run (one-shot and the interactive session)
void add_ps_commands(CLI::App& app);     // ps, stop
void add_store_commands(CLI::App& app);  // pull, push, list|ls, rm, cp
void add_cluster_commands(CLI::App& app);  // cluster status, drain
void add_router_command(CLI::App& app);    // router
void add_pipeline_supervise_command(CLI::App& app);  // pipeline-supervise
void add_logits_command(CLI::App& dev);  // under `hearth dev`
void add_embed_command(CLI::App& dev);   // under `hearth dev`
void add_template_command(CLI::App& dev);  // under `hearth dev`
void add_comm_bench_command(CLI::App& dev);  // under `hearth dev` (mpirun -np 2)

// Threads for compute-heavy commands: --threads if given (> 0), else physical cores.
int resolve_threads(int requested);

}  // namespace hearth::cli
