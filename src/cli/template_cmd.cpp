// `hearth dev template TEMPLATE.jinja CASE.json`: renders a chat template with the variables
// of a case file in the format of shared/templates/<NAME>/cases/ (every top-level key is one
// template variable) and writes the text to stdout as is. A template that raises or fails to
// parse throws, so main prints `hearth: error: <message>` and exits with status 1.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "template/template.h"

namespace hearth::cli {

namespace {

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::ostringstream s;
    s << f.rdbuf();
    if (f.bad()) throw std::runtime_error("cannot read " + path);
    return s.str();
}

// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS"; "system" means the current local time.
std::function<std::tm()> parse_now(const std::string& s) {
    if (s == "system") return {};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    char tail = 0;
    const int n = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &tail);
    if (!(n == 3 || n == 6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        throw std::runtime_error("--now: expected YYYY-MM-DD[THH:MM:SS] or 'system', got '" + s + "'");
    return RenderOptions::fixed_time(y, mo, d, h, mi, sec);
}

struct TemplateOptions {
    std::string template_path;
    std::string case_path;
    std::string now = "2026-01-15T00:00:00";
    std::string bos, eos;
    bool has_bos = false, has_eos = false;
    uint64_t max_steps = RenderOptions{}.max_steps;
};

}  // namespace

void add_template_command(CLI::App& dev) {
    auto o = std::make_shared<TemplateOptions>();
    CLI::App* cmd = dev.add_subcommand("template", "Render a chat template with a case file's variables to stdout");
    cmd->add_option("template", o->template_path, "Jinja chat template file")->required()->check(CLI::ExistingFile);
    cmd->add_option("case", o->case_path, "JSON object whose top-level keys are the template variables")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--now", o->now,
                    "strftime_now's clock: YYYY-MM-DD[THH:MM:SS] or 'system' (default: the shared test cases' "
                    "fixed date)")
        ->capture_default_str();
    cmd->add_option("--bos-token", o->bos, "Set bos_token (overrides the case file)");
    cmd->add_option("--eos-token", o->eos, "Set eos_token (overrides the case file)");
    cmd->add_option("--max-steps", o->max_steps, "Render step budget")->capture_default_str();
    cmd->callback([o, cmd] {
        o->has_bos = cmd->count("--bos-token") > 0;
        o->has_eos = cmd->count("--eos-token") > 0;
        RenderOptions opts;
        opts.now = parse_now(o->now);
        opts.max_steps = o->max_steps;
        nlohmann::ordered_json ctx;
        try {
            ctx = nlohmann::ordered_json::parse(read_file(o->case_path));
        } catch (const nlohmann::json::exception& e) {
            throw std::runtime_error(o->case_path + ": " + e.what());
        }
        if (!ctx.is_object()) throw std::runtime_error(o->case_path + ": expected a JSON object of template variables");
        if (o->has_bos) ctx["bos_token"] = o->bos;
        if (o->has_eos) ctx["eos_token"] = o->eos;
        const Template tmpl = Template::parse(read_file(o->template_path));
        const std::string out = tmpl.render(ctx, opts);
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    });
}

}  // namespace hearth::cli
