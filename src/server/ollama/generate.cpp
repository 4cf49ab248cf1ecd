// POST /api/generate and POST /api/chat.
#include "http/server.h"
#include "sampling/json_schema.h"
#include "server/http_util.h"
#include "server/ollama/ollama.h"
#include "server/prompt.h"
#include "server/request_parse.h"

namespace hearth::server::ollama {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string dump_line(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n"; }

ojson logprob_entry(const TokenProb& p) {
    auto bytes = [](const std::string& s) {
        ojson b = ojson::array();
        for (unsigned char c : s) b.push_back(int(c));
        return b;
    };
    ojson e;
    e["token"] = p.token;
    e["logprob"] = p.logprob;
    e["bytes"] = bytes(p.token);
    if (!p.top.empty()) {
        ojson top = ojson::array();
        for (const auto& [tok, lp] : p.top) top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", bytes(tok)}});
        e["top_logprobs"] = std::move(top);
    }
    return e;
}

// What a chat message carries besides the text: tool calls and reasoning split off it.
struct Extras {
    std::vector<ToolCall> calls;
    std::string thinking;
    bool empty() const { return calls.empty() && thinking.empty(); }
};

// Shapes events into Ollama's objects for one request.
struct Shaper {
    std::string model;
    bool chat = false;

    ojson base() const {
        ojson j;
        j["model"] = model;
        j["created_at"] = rfc3339(std::chrono::system_clock::now());
        return j;
    }
    void put_text(ojson& j, const std::string& text, const Extras* extras) const {
        if (!chat) {
            j["response"] = text;
            if (extras && !extras->thinking.empty()) j["thinking"] = extras->thinking;
            return;
        }
        ojson m = {{"role", "assistant"}, {"content", text}};
        if (extras && !extras->thinking.empty()) m["thinking"] = extras->thinking;
        if (extras && !extras->calls.empty()) {
            ojson calls = ojson::array();
            for (const ToolCall& c : extras->calls)
                calls.push_back({{"id", c.id}, {"function", {{"name", c.name}, {"arguments", ojson::parse(c.arguments.dump())}}}});
            m["tool_calls"] = std::move(calls);
        }
        j["message"] = std::move(m);
    }
    ojson chunk(const std::string& text, const ojson* logprobs, const Extras* extras = nullptr) const {
        ojson j = base();
        put_text(j, text, extras);
        j["done"] = false;
        if (logprobs) j["logprobs"] = *logprobs;
        return j;
    }
    ojson final(const Event& done, const std::string& text, const ojson* logprobs, const Extras* extras = nullptr) const {
        ojson j = base();
        put_text(j, text, extras);
        j["done"] = true;
        j["done_reason"] = done.done_reason;
        if (done.done_reason == "load" || done.done_reason == "unload") return j;
        if (!chat) j["context"] = done.context;
        j["total_duration"] = done.stats.total.count();
        j["load_duration"] = done.stats.load.count();
        j["prompt_eval_count"] = done.stats.prompt_eval_count;
        j["prompt_cache_hit_tokens"] = done.stats.cached_tokens;  // of prompt_eval_count, reused from the prefix cache
        j["prompt_eval_duration"] = done.stats.prompt_eval.count();
        j["eval_count"] = done.stats.eval_count;
        j["eval_duration"] = done.stats.eval.count();
        if (logprobs && !logprobs->empty()) j["logprobs"] = *logprobs;
        return j;
    }
};

void reject_images(const json& obj) {
    auto it = obj.find("images");
    if (it != obj.end() && !it->is_null() && !(it->is_array() && it->empty()))
        throw ApiError(400, "this model does not support images");
}

// The chat messages, checked: role and content strings, no images.
ojson parse_messages(const json& body) {
    ojson out = ojson::array();
    auto it = body.find("messages");
    if (it == body.end() || it->is_null()) return out;
    if (!it->is_array()) throw ApiError(400, "messages must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
        const json& m = (*it)[i];
        const std::string name = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) throw ApiError(400, name + " must be an object");
        const auto role = get_string(m, "role", name + ".role");
        if (!role || role->empty()) throw ApiError(400, name + ".role is required");
        const auto content = get_string(m, "content", name + ".content");
        reject_images(m);
        ojson msg;
        msg["role"] = *role;
        msg["content"] = content.value_or("");
        for (const char* extra : {"tool_calls", "tool_name", "thinking", "name", "tool_call_id"}) {
            auto f = m.find(extra);
            if (f != m.end() && !f->is_null()) msg[extra] = ojson::parse(f->dump());
        }
        out.push_back(std::move(msg));
    }
    return out;
}

// `think`: true/false, or an effort level ("high", "medium", "low"), which turns it on.
void parse_think(const json& body, PromptSpec& spec) {
    auto it = body.find("think");
    if (it == body.end() || it->is_null()) return;
    if (it->is_boolean()) {
        spec.think = it->get<bool>();
    } else if (it->is_string() && (*it == "high" || *it == "medium" || *it == "low")) {
        spec.think = true;
        spec.think_level = it->get<std::string>();
    } else {
        throw ApiError(400, "think must be true, false, \"high\", \"medium\" or \"low\"");
    }
}

// One NDJSON line (or lines, or "") for an event of a streamed reply.
std::string render_line(const Shaper& shaper, bool want_probs, ToolCallStreamFilter* filter, const Event& e) {
    switch (e.kind) {
    case Event::Kind::Token: {
        std::string text = e.text;
        Extras extras;
        if (filter) {
            text = filter->push(e.text);
            extras.calls = filter->take_tool_calls();
            extras.thinking = filter->take_reasoning();
        }
        if (text.empty() && extras.empty() && !(want_probs && e.prob)) return "";
        ojson lp = ojson::array();
        if (want_probs && e.prob) lp.push_back(logprob_entry(*e.prob));
        return dump_line(shaper.chunk(text, want_probs ? &lp : nullptr, &extras));
    }
    case Event::Kind::Done: {
        std::string lines;
        if (filter) {
            ParsedOutput rest = filter->finish();
            Extras extras{std::move(rest.tool_calls), std::move(rest.reasoning)};
            if (!rest.content.empty() || !extras.empty()) lines = dump_line(shaper.chunk(rest.content, nullptr, &extras));
        }
        return lines + dump_line(shaper.final(e, "", nullptr));
    }
    case Event::Kind::Error: return dump_line(ojson{{"error", e.text}});
    default: return "";
    }
}

void handle(ApiEnv& env, const http::Request& hreq, http::Response& res, bool chat) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Request r;
    r.kind = JobKind::Generate;
    r.model = resolve_model(env.resolver, body);
    Shaper shaper{get_string(body, "model", "model").value_or(r.model.name), chat};
    r.keep_alive = parse_keep_alive(body);
    const bool stream = get_bool(body, "stream", "stream").value_or(true);

    GenerateJob job = default_generate_job();
    apply_options(r.model.options, job, "options.");
    if (auto it = body.find("options"); it != body.end()) apply_options(*it, job, "options.");
    const bool logprobs = get_bool(body, "logprobs", "logprobs").value_or(false);
    const int64_t top = get_int(body, "top_logprobs", "top_logprobs", 0, 20).value_or(0);
    job.options.sampling.logprobs = logprobs || top > 0;
    job.options.sampling.n_probs = static_cast<int32_t>(top);
    if (auto it = body.find("format"); it != body.end() && !it->is_null()) {
        if (!(it->is_object() || (it->is_string() && (*it == "json" || *it == ""))))
            throw ApiError(400, "format must be \"json\" or a JSON schema object");
        job.format = *it;
        try {
            job.grammar = grammar_for_format(*it);
        } catch (const std::exception& e) {  // SchemaError / GrammarError: the schema's fault
            throw ApiError(400, std::string("invalid format: ") + e.what());
        }
    }
    parse_think(body, job.prompt);
    job.prompt.template_override = get_string(body, "template", "template");
    if (job.prompt.template_override && job.prompt.template_override->empty()) job.prompt.template_override.reset();

    bool empty_prompt;
    json tools;  // chat: the offered tools; non-empty turns on tool-call parsing of the output
    if (chat) {
        job.prompt.messages = parse_messages(body);
        if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
            if (!it->is_array()) throw ApiError(400, "tools must be an array");
            job.prompt.tools = ojson::parse(it->dump());
            tools = *it;
        }
        empty_prompt = job.prompt.messages.empty();
        add_model_turns(job.prompt, r.model);
    } else {
        reject_images(body);
        const std::string prompt = get_string(body, "prompt", "prompt").value_or("");
        if (!get_string(body, "suffix", "suffix").value_or("").empty())
            throw ApiError(400, "\"" + shaper.model + "\" does not support insert (suffix)");
        job.prompt.raw = get_bool(body, "raw", "raw").value_or(false);
        if (auto it = body.find("context"); it != body.end() && !it->is_null()) {
            if (!it->is_array()) throw ApiError(400, "context must be an array of token ids");
            for (const auto& id : *it) {
                if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
                    throw ApiError(400, "context must be an array of token ids");
                job.prompt.prefix.push_back(static_cast<int32_t>(id.get<int64_t>()));
            }
        }
        empty_prompt = prompt.empty() && job.prompt.prefix.empty();
        if (job.prompt.raw) {
            job.prompt.text = prompt;
        } else if (!prompt.empty()) {
            const auto system = get_string(body, "system", "system");
            const std::optional<std::string>& sys = system ? system : r.model.system;
            if (sys && !sys->empty()) job.prompt.messages.push_back({{"role", "system"}, {"content", *sys}});
            if (job.prompt.prefix.empty())  // the model's MESSAGE turns, unless continuing a context
                for (const auto& m : r.model.messages) job.prompt.messages.push_back(ojson::parse(m.dump()));
            job.prompt.messages.push_back({{"role", "user"}, {"content", prompt}});
        }
    }
    if (empty_prompt) r.kind = (r.keep_alive && r.keep_alive->count() == 0) ? JobKind::Unload : JobKind::Load;
    r.gen = std::move(job);

    const bool want_probs = r.gen.options.sampling.logprobs;
    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(r));
    reply_from_events(res, st, hreq.path, [=, path = hreq.path](const Event& first) -> EventFn {
        if (first.kind == Event::Kind::Done)  // load / unload: one object either way (keys sorted, as json has them)
            return reply_once([shaper](const Event& e, http::Response& out) {
                send_json(out, json(shaper.final(e, "", nullptr)));
            });
        // Tool calls are split out of the output when the request offers tools, thinking when it is on.
        const bool parse_tools = chat && tools.is_array() && !tools.empty();
        const bool split = parse_tools || first.thinking;
        const ToolCallFormat format = parse_tools ? first.tool_format : ToolCallFormat::None;
        ParseOptions popts;
        popts.reasoning_open = first.reasoning_open;
        if (stream) {
            auto filter = split ? std::make_shared<ToolCallStreamFilter>(format, tools, popts) : nullptr;
            return stream_rendered("application/x-ndjson", [shaper, want_probs, filter](const Event& e) -> std::string {
                return render_line(shaper, want_probs, filter.get(), e);
            });
        }
        // One object at the end: the text gathered, then split as the stream would have been.
        struct Gathered {
            std::string text;
            ojson lp = ojson::array();
        };
        auto g = std::make_shared<Gathered>();
        return [=](const Event& e, http::Stream& s) {
            http::Response out;
            if (e.kind == Event::Kind::Token) {
                g->text += e.text;
                if (e.prob) g->lp.push_back(logprob_entry(*e.prob));
                return true;
            }
            if (e.kind == Event::Kind::Error) {
                send_error(path, out, e.status, e.text);
            } else if (e.kind == Event::Kind::Done) {
                try {
                    std::string text = std::move(g->text);
                    Extras extras;
                    if (split) {
                        ParsedOutput parsed = parse_model_output(format, text, tools, popts);
                        text = std::move(parsed.content);
                        extras = Extras{std::move(parsed.tool_calls), std::move(parsed.reasoning)};
                    }
                    const ojson j = shaper.final(e, text, want_probs ? &g->lp : nullptr, &extras);
                    out.status = 200;
                    out.set_content(j.dump(-1, ' ', false, ojson::error_handler_t::replace), "application/json; charset=utf-8");
                } catch (const std::exception& ex) {  // as the handler's own failures are answered
                    out = http::Response{};
                    send_error(path, out, 500, ex.what());
                }
            } else {
                return true;  // Started, or anything else: nothing to add
            }
            s.send(std::move(out));
            return false;
        };
    });
}

}  // namespace

void add_generate_routes(http::Server& http, ApiEnv& env) {
    http.Post("/api/generate", guarded(env, [](ApiEnv& e, const http::Request& q, http::Response& s) {
                  handle(e, q, s, false);
              }));
    http.Post("/api/chat", guarded(env, [](ApiEnv& e, const http::Request& q, http::Response& s) {
                  handle(e, q, s, true);
              }));
}

}  // namespace hearth::server::ollama
