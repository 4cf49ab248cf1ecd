// `hearth run MODEL [PROMPT...]`: one answer to a prompt (/api/generate, streamed), or the
// interactive session (repl.cpp) without one. The model is pulled first when the daemon
// does not know it; a daemon is started in the background when none answers.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/daemon_common.h"
#include "cli/display.h"
#include "server/config.h"

namespace hearth::cli {

using json = nlohmann::json;

namespace {

struct RunArgs {
    std::string model;
    std::vector<std::string> prompt;
    bool verbose = false;
    std::string format;
    std::string keep_alive;
    bool no_word_wrap = false;
    bool insecure = false;
    bool interactive = false;
    std::string think;  // "--think[=VALUE]": "" when absent
    bool hide_thinking = false;
};

// The request's `think` from --think (null: the model's default, which thinks when its
// template can; so --hidethinking alone works with any model).
json think_of(const RunArgs& a) {
    if (a.think.empty()) return json();
    return *parse_think_value(a.think);
}

// Streams one generation to stdout; with `verbose` the timing block goes to stderr.
void one_shot(DaemonClient& client, const RunArgs& a, const std::string& model, const std::string& prompt, bool wrap) {
    json req = {{"model", model}, {"prompt", prompt}, {"stream", true}};
    if (!a.format.empty()) req["format"] = a.format;
    if (!a.keep_alive.empty()) req["keep_alive"] = a.keep_alive;
    if (json think = think_of(a); !think.is_null()) req["think"] = think;
    WordWrapper out(stdout, wrap ? terminal_width(stdout) - 5 : 0);
    ThinkingPrinter thinking(stdout, a.hide_thinking);
    json final_obj;
    bool wrote = false, ends_with_newline = false;
    client.stream("/api/generate", req, [&](const json& obj) {
        if (obj.contains("thinking") && obj["thinking"].is_string()) thinking.thinking(obj["thinking"].get<std::string>());
        if (obj.contains("response") && obj["response"].is_string()) {
            const std::string text = obj["response"].get<std::string>();
            if (!text.empty()) {
                thinking.before_answer();
                out.write(text);
                wrote = true;
                ends_with_newline = text.back() == '\n';
            }
        }
        if (obj.value("done", false)) final_obj = obj;
        return true;
    });
    thinking.before_answer();  // a reply that was all thinking
    out.flush();
    if (wrote && !ends_with_newline) std::fputc('\n', stdout);
    std::fflush(stdout);
    if (a.verbose && final_obj.is_object()) {
        std::fputc('\n', stderr);
        print_timings(stderr, final_obj);
    }
}

void run(const RunArgs& a) {
    if (!a.format.empty() && a.format != "json") throw ClientError(0, "invalid format: must be json");
    if (!a.think.empty() && !parse_think_value(a.think))
        throw ClientError(0, "invalid --think \"" + a.think + "\" (use true, false, high, medium or low)");
    if (!a.keep_alive.empty() && !server::parse_duration(a.keep_alive))
        throw ClientError(0, "invalid --keepalive \"" + a.keep_alive + "\" (use e.g. 5m, 1h, 30s, 0 or -1)");
    DaemonClient client;
    client.ensure_daemon();
    const std::string model = model_arg(a.model);

    // Like Ollama: ask about the model first, pull it when the daemon does not have it.
    try {
        client.post("/api/show", json{{"model", model}});
    } catch (const ClientError& e) {
        if (e.status() != 404 || model.front() == '/') throw;  // a path is never pulled
        pull_model(client, model, a.insecure);
        client.post("/api/show", json{{"model", model}});
    }

    const bool stdin_tty = isatty(STDIN_FILENO) == 1;
    const bool wrap = !a.no_word_wrap && is_tty(stdout);
    if (a.prompt.empty() && (stdin_tty || a.interactive)) {
        ReplOptions o;
        o.model = model;
        o.verbose = a.verbose;
        if (!a.format.empty()) o.format = a.format;
        if (!a.keep_alive.empty()) o.keep_alive = a.keep_alive;
        o.word_wrap = wrap;
        o.insecure = a.insecure;
        o.think = think_of(a);
        o.hide_thinking = a.hide_thinking;
        run_repl(client, std::move(o));
        return;
    }
    // Piped input is the start of the prompt, the arguments follow (Ollama's order).
    std::vector<std::string> parts;
    if (!stdin_tty) {
        std::string piped(std::istreambuf_iterator<char>(std::cin), {});
        if (!piped.empty()) parts.push_back(std::move(piped));
    }
    parts.insert(parts.end(), a.prompt.begin(), a.prompt.end());
    std::string prompt;
    for (size_t i = 0; i < parts.size(); ++i) prompt += (i ? " " : "") + parts[i];
    one_shot(client, a, model, prompt, wrap && stdin_tty);
}

}  // namespace

void add_run_command(CLI::App& app) {
    auto a = std::make_shared<RunArgs>();
    CLI::App* cmd = app.add_subcommand("run", "Run a model: answer a prompt, or chat interactively without one");
    cmd->add_option("model", a->model, "Model name (pulled when missing) or path to a .gguf file")->required();
    cmd->add_option("prompt", a->prompt, "Prompt (words are joined with spaces); piped input is put before it");
    cmd->add_flag("--verbose", a->verbose, "Print timings (durations, token counts, tokens/s) after each answer");
    cmd->add_option("--format", a->format, "Response format: json");
    cmd->add_option("--keepalive", a->keep_alive, "How long the model stays loaded after the request (e.g. 5m, 1h, -1: forever)");
    cmd->add_flag("--nowordwrap", a->no_word_wrap, "Do not wrap words to the terminal width");
    cmd->add_flag("--insecure", a->insecure, "Allow a plain-HTTP registry when the model has to be pulled");
    cmd->add_flag("--think{true}", a->think,
                  "Let a thinking model think (--think=false: don't; --think=high|medium|low); its thinking is shown first");
    cmd->add_flag("--hidethinking", a->hide_thinking, "Think (when the model can) but print only the answer");
    cmd->add_flag("-i,--interactive", a->interactive,
                  "Chat even when stdin is not a terminal, reading one message per line (default: piped input is one prompt)");
    cmd->footer(
        "In the chat: \"\"\" starts and ends a multi-line message; /set parameter NAME VALUE, /set system TEXT,\n"
        "/set think|nothink, /set verbose|quiet, /show info|license|modelfile|parameters|system|template, /load MODEL, /clear,\n"
        "/bye (or Ctrl-D), /? for help.");
    cmd->callback([a] { run_client_command([&] { run(*a); }); });
}

}  // namespace hearth::cli
