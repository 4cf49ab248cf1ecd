// The interactive session of `hearth run` (Ollama's REPL): messages go to /api/chat with the
// whole conversation, answers stream to stdout. Input is read line by line from stdin, a
// terminal or a pipe (no line editing, so no readline dependency).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/daemon_common.h"
#include "cli/display.h"
#include "store/modelfile.h"

namespace hearth::cli {

using json = nlohmann::json;

namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

// While alive, Ctrl-C stops the answer being streamed instead of ending the program.
class InterruptGuard {
public:
    InterruptGuard() {
        g_interrupted = false;
        struct sigaction sa {};
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_);
    }
    ~InterruptGuard() { sigaction(SIGINT, &old_, nullptr); }

private:
    struct sigaction old_ {};
};

const char* kHelp =
    "Available commands:\n"
    "  /set            Set session variables (/? set for the list)\n"
    "  /show           Show model information (/? show for the list)\n"
    "  /load <model>   Switch to another model (clears the conversation)\n"
    "  /clear          Clear the conversation\n"
    "  /bye            Exit (Ctrl-D too)\n"
    "  /?, /help       Help for a command\n"
    "\n"
    "Use \"\"\" to begin a multi-line message, and \"\"\" again to end it.\n";

const char* kSetHelp =
    "Available commands:\n"
    "  /set parameter <name> <value>   Set a parameter (e.g. temperature 0.2, num_ctx 4096, stop \"<end>\")\n"
    "  /set system <text>              Set the system message (\"\"\" for several lines)\n"
    "  /set format json                Answer in JSON\n"
    "  /set noformat                   Answer in plain text\n"
    "  /set think [high|medium|low]    Let a thinking model think (shown before the answer)\n"
    "  /set nothink                    Turn thinking off\n"
    "  /set wordwrap | nowordwrap      Wrap words to the terminal width, or not\n"
    "  /set verbose | quiet            Print timings after each answer, or not\n";

const char* kShowHelp =
    "Available commands:\n"
    "  /show info         Details of the model\n"
    "  /show license      The model's license\n"
    "  /show modelfile    The model's Modelfile\n"
    "  /show parameters   The parameters in effect\n"
    "  /show system       The system message\n"
    "  /show template     The chat template\n";

json to_json(const store::ParamValue& v) {
    return std::visit([](const auto& x) -> json { return json(x); }, v);
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class Repl {
public:
    Repl(DaemonClient& client, ReplOptions opts) : client_(client), o_(std::move(opts)) {
        tty_ = isatty(STDIN_FILENO) == 1;
        wrap_ = o_.word_wrap;
    }

    void run() {
        load_model(o_.model);
        for (;;) {
            std::string line;
            if (!read_line(tty_ ? ">>> " : "", line)) break;
            if (!handle(line)) break;
        }
    }

private:
    bool read_line(const char* prompt, std::string& line) {
        if (*prompt) {
            std::fputs(prompt, stdout);
            std::fflush(stdout);
        }
        if (!std::getline(std::cin, line)) {
            if (tty_) std::fputc('\n', stdout);
            return false;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
    }

    // The text of a `"""` block whose first line (after the opening quotes) is `first`.
    // nullopt when the input ends first.
    std::optional<std::string> read_block(std::string first) {
        if (ends_with(first, "\"\"\"")) return trim(first.substr(0, first.size() - 3));
        std::string text = first;
        for (;;) {
            std::string line;
            if (!read_line(tty_ ? "... " : "", line)) return std::nullopt;
            if (ends_with(line, "\"\"\"")) {
                text += "\n" + line.substr(0, line.size() - 3);
                return trim(text);
            }
            text += "\n" + line;
        }
    }

    void load_model(const std::string& model) {
        json req = {{"model", model}, {"stream", false}};
        if (o_.keep_alive) req["keep_alive"] = *o_.keep_alive;
        client_.post("/api/generate", req);
    }

    // false: leave the session.
    bool handle(const std::string& raw) {
        const std::string line = trim(raw);
        if (line.empty()) return true;
        if (line.rfind("\"\"\"", 0) == 0) {
            auto text = read_block(line.substr(3));
            if (!text) return false;
            if (!text->empty()) chat(*text);
            return true;
        }
        if (line[0] != '/') {
            chat(line);
            return true;
        }
        std::istringstream in(line);
        std::string cmd;
        in >> cmd;
        if (cmd == "/bye" || cmd == "/exit") return false;
        if (cmd == "/?" || cmd == "/help") {
            std::string topic;
            in >> topic;
            std::fputs(topic == "set" ? kSetHelp : topic == "show" ? kShowHelp : kHelp, stdout);
            return true;
        }
        if (cmd == "/clear") {
            messages_ = json::array();
            std::puts("Cleared session context");
            return true;
        }
        if (cmd == "/set") return set(in, line);
        if (cmd == "/show") {
            std::string what;
            in >> what;
            show(what);
            return true;
        }
        if (cmd == "/load") {
            std::string model;
            in >> model;
            if (model.empty()) {
                std::puts("Usage: /load <model>");
                return true;
            }
            std::printf("Loading model '%s'\n", model.c_str());
            std::fflush(stdout);
            try {
                const std::string m = model_arg(model);
                client_.post("/api/show", json{{"model", m}});
                load_model(m);
                o_.model = m;
                messages_ = json::array();
            } catch (const ClientError& e) {
                report(e);
            }
            return true;
        }
        std::printf("Unknown command '%s'. Type /? for help\n", cmd.c_str());
        return true;
    }

    bool set(std::istringstream& in, const std::string& line) {
        std::string what;
        in >> what;
        if (what == "parameter") {
            std::string name;
            in >> name;
            std::vector<std::string> values;
            for (std::string v; in >> v;) values.push_back(v);
            if (name.empty() || values.empty()) {
                std::puts("Usage: /set parameter <name> <value>");
                return true;
            }
            try {
                if (store::find_parameter(name) && store::find_parameter(name)->repeatable) {
                    json list = json::array();
                    for (const std::string& v : values) list.push_back(to_json(store::Parameter::make(name, v).typed));
                    options_[store::Parameter::make(name, values[0]).name] = list;
                } else {
                    std::string value = values[0];
                    for (size_t i = 1; i < values.size(); ++i) value += " " + values[i];
                    const store::Parameter p = store::Parameter::make(name, value);
                    options_[p.name] = to_json(p.typed);
                }
                std::string shown = values[0];
                for (size_t i = 1; i < values.size(); ++i) shown += ", " + values[i];
                std::printf("Set parameter '%s' to '%s'\n", name.c_str(), shown.c_str());
            } catch (const std::exception& e) {
                std::printf("Couldn't set parameter: %s\n", e.what());
            }
            return true;
        }
        if (what == "system") {
            const auto at = line.find("system");
            std::string text = trim(line.substr(at + 6));
            if (text.rfind("\"\"\"", 0) == 0) {
                auto block = read_block(text.substr(3));
                if (!block) return false;
                text = *block;
            } else if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
                text = text.substr(1, text.size() - 2);
            }
            system_ = text;
            std::puts("Set system message.");
            return true;
        }
        if (what == "verbose" || what == "quiet") {
            o_.verbose = what == "verbose";
            std::printf("Set '%s' mode.\n", what.c_str());
            return true;
        }
        if (what == "wordwrap" || what == "nowordwrap") {
            wrap_ = what == "wordwrap";
            std::puts(wrap_ ? "Set 'wordwrap' mode." : "Set 'nowordwrap' mode.");
            return true;
        }
        if (what == "format") {
            std::string f;
            in >> f;
            if (f != "json") {
                std::printf("Invalid or missing format. For 'json' mode use '/set format json'\n");
                return true;
            }
            o_.format = "json";
            std::puts("Set format to 'json' mode.");
            return true;
        }
        if (what == "think" || what == "nothink") {
            std::string level;
            in >> level;
            const auto v = what == "nothink" ? std::optional<json>(false) : parse_think_value(level);
            if (!v) {
                std::puts("Invalid think level: use /set think, /set think high|medium|low, or /set nothink");
                return true;
            }
            o_.think = *v;
            std::puts(*v == false ? "Set 'nothink' mode." : "Set 'think' mode.");
            return true;
        }
        if (what == "noformat") {
            o_.format.reset();
            std::puts("Disabled format.");
            return true;
        }
        std::fputs(kSetHelp, stdout);
        return true;
    }

    void show(const std::string& what) {
        json resp;
        try {
            resp = client_.post("/api/show", json{{"model", o_.model}});
        } catch (const ClientError& e) {
            report(e);
            return;
        }
        auto field = [&](const char* k) { return resp.contains(k) && resp[k].is_string() ? resp[k].get<std::string>() : ""; };
        auto print = [](const std::string& s) { std::printf("%s%s", s.c_str(), !s.empty() && s.back() == '\n' ? "" : "\n"); };
        if (what == "info") {
            std::fputs(render_show_info(resp, false).c_str(), stdout);
        } else if (what == "license") {
            print(field("license").empty() ? "No license was specified for this model." : field("license"));
        } else if (what == "modelfile") {
            print(field("modelfile"));
        } else if (what == "system") {
            const std::string s = system_ ? *system_ : field("system");
            print(s.empty() ? "No system message was specified for this model." : s);
        } else if (what == "template") {
            print(field("template").empty() ? "No prompt template was specified for this model." : field("template"));
        } else if (what == "parameters") {
            if (!options_.empty()) {
                std::puts("User defined parameters:");
                for (const auto& [k, v] : options_.items())
                    std::printf("%-30s %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
                std::puts("");
            }
            if (field("parameters").empty()) {
                std::puts("No parameters were specified for this model.");
            } else {
                if (!options_.empty()) std::puts("Model defined parameters:");
                print(field("parameters"));
            }
        } else {
            std::fputs(kShowHelp, stdout);
        }
        std::fflush(stdout);
    }

    void chat(const std::string& text) {
        messages_.push_back({{"role", "user"}, {"content", text}});
        json msgs = json::array();
        if (system_ && !system_->empty()) msgs.push_back({{"role", "system"}, {"content", *system_}});
        for (const json& m : messages_) msgs.push_back(m);
        json req = {{"model", o_.model}, {"messages", msgs}, {"stream", true}};
        if (!options_.empty()) req["options"] = options_;
        if (o_.format) req["format"] = *o_.format;
        if (o_.keep_alive) req["keep_alive"] = *o_.keep_alive;
        if (!o_.think.is_null()) req["think"] = o_.think;

        WordWrapper out(stdout, wrap_ ? terminal_width(stdout) - 5 : 0);
        ThinkingPrinter thinking(stdout, o_.hide_thinking);
        std::string answer;
        json final_obj;
        bool completed = false;
        try {
            InterruptGuard guard;
            completed = client_.stream("/api/chat", req, [&](const json& obj) {
                if (g_interrupted) return false;
                if (obj.contains("message") && obj["message"].is_object()) {
                    const json& m = obj["message"];
                    if (m.contains("thinking") && m["thinking"].is_string()) thinking.thinking(m["thinking"].get<std::string>());
                    if (m.contains("content") && m["content"].is_string() && !m["content"].get<std::string>().empty()) {
                        thinking.before_answer();
                        const std::string piece = m["content"].get<std::string>();
                        answer += piece;
                        out.write(piece);
                    }
                }
                if (obj.value("done", false)) final_obj = obj;
                return true;
            });
        } catch (const ClientError& e) {
            out.flush();
            if (!answer.empty()) std::fputc('\n', stdout);
            messages_.erase(messages_.end() - 1);
            if (e.status() == 0 && e.what() != std::string("cancelled")) throw;  // the daemon is gone
            report(e);
            return;
        }
        thinking.before_answer();  // a reply that was all thinking
        out.flush();
        if (!completed) {  // Ctrl-C: the answer is dropped, the conversation goes on without it
            std::fputs("\n", stdout);
            messages_.erase(messages_.end() - 1);
            return;
        }
        messages_.push_back({{"role", "assistant"}, {"content", answer}});
        std::fputs(answer.empty() || answer.back() != '\n' ? "\n\n" : "\n", stdout);
        std::fflush(stdout);
        if (o_.verbose && final_obj.is_object()) {
            print_timings(stderr, final_obj);
            std::fputc('\n', stderr);
        }
    }

    void report(const ClientError& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "Error: %s\n", e.what());
    }

    DaemonClient& client_;
    ReplOptions o_;
    bool tty_ = false;
    bool wrap_ = true;
    json messages_ = json::array();
    json options_ = json::object();
    std::optional<std::string> system_;
};

}  // namespace

void ThinkingPrinter::thinking(const std::string& text) {
    if (hide_ || text.empty()) return;
    if (!checked_) tty_ = is_tty(out_), checked_ = true;
    if (!open_) {
        std::fputs(tty_ ? "\033[90mThinking...\n" : "Thinking...\n", out_);
        open_ = true;
    }
    std::fputs(text.c_str(), out_);
    std::fflush(out_);
}

void ThinkingPrinter::before_answer() {
    if (!open_) return;
    std::fputs(tty_ ? "\n...done thinking.\n\n\033[0m" : "\n...done thinking.\n\n", out_);
    open_ = false;
}

std::optional<nlohmann::json> parse_think_value(const std::string& v) {
    if (v.empty() || v == "true") return json(true);
    if (v == "false") return json(false);
    if (v == "high" || v == "medium" || v == "low") return json(v);
    return std::nullopt;
}

void run_repl(DaemonClient& client, ReplOptions opts) {
    Repl repl(client, std::move(opts));
    repl.run();
}

}  // namespace hearth::cli
