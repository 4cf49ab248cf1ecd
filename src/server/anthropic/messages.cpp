// POST /v1/messages and POST /v1/messages/count_tokens: Anthropic's request shape turned into
// a chat for the model's template, and the output back into content blocks (or SSE events).
#include <algorithm>
#include <limits>

#include "server/anthropic/anthropic.h"
#include "server/http_util.h"
#include "server/output_parts.h"
#include "server/prompt.h"
#include "server/request_parse.h"
#include "server/tool_choice.h"

namespace hearth::server {

namespace anthropic {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }
std::string event(const char* name, const ojson& data) {
    return std::string("event: ") + name + "\ndata: " + dump(data) + "\n\n";
}

ojson to_ojson(const json& j) { return ojson::parse(j.dump()); }

// Text of a `system` value or a tool_result's content: a string or an array of text blocks.
std::string text_of(const json& v, const std::string& name) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) throw ApiError(400, name + " must be a string or an array of text blocks");
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        const std::string bname = name + "[" + std::to_string(i) + "]";
        const json& b = v[i];
        if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
            throw ApiError(400, bname + " must be a content block with a type");
        if (b["type"] != "text")
            throw ApiError(400, bname + ": blocks of type " + b["type"].dump() + " are not supported here");
        const auto t = get_string(b, "text", bname + ".text");
        if (!t) throw ApiError(400, bname + ".text is required");
        if (!out.empty()) out += "\n";
        out += *t;
    }
    return out;
}

// One Anthropic message -> chat messages for the template (tool results become `tool` turns).
void add_message(ojson& out, const json& m, const std::string& name) {
    if (!m.is_object()) throw ApiError(400, name + " must be an object");
    const auto role = get_string(m, "role", name + ".role");
    if (!role || (*role != "user" && *role != "assistant"))
        throw ApiError(400, name + ".role must be \"user\" or \"assistant\"");
    auto c = m.find("content");
    if (c == m.end() || c->is_null()) throw ApiError(400, name + ".content is required");
    if (c->is_string()) {
        out.push_back({{"role", *role}, {"content", c->get<std::string>()}});
        return;
    }
    if (!c->is_array()) throw ApiError(400, name + ".content must be a string or an array of content blocks");
    std::string text, thinking;
    ojson calls = ojson::array();
    for (size_t i = 0; i < c->size(); ++i) {
        const json& b = (*c)[i];
        const std::string bname = name + ".content[" + std::to_string(i) + "]";
        if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
            throw ApiError(400, bname + " must be a content block with a type");
        const std::string type = b["type"];
        if (type == "text") {
            const auto t = get_string(b, "text", bname + ".text");
            if (!t) throw ApiError(400, bname + ".text is required");
            if (!text.empty()) text += "\n";
            text += *t;
        } else if (type == "thinking" && *role == "assistant") {
            thinking += get_string(b, "thinking", bname + ".thinking").value_or("");
        } else if (type == "redacted_thinking" && *role == "assistant") {
            // nothing the model can read
        } else if (type == "tool_use" && *role == "assistant") {
            const auto id = get_string(b, "id", bname + ".id");
            const auto tool = get_string(b, "name", bname + ".name");
            if (!tool || tool->empty()) throw ApiError(400, bname + ".name is required");
            auto input = b.find("input");
            if (input != b.end() && !input->is_null() && !input->is_object())
                throw ApiError(400, bname + ".input must be an object");
            calls.push_back(
                {{"id", id.value_or("")},
                 {"type", "function"},
                 {"function",
                  {{"name", *tool},
                   {"arguments", input != b.end() && input->is_object() ? to_ojson(*input) : ojson::object()}}}});
        } else if (type == "tool_result" && *role == "user") {
            const auto id = get_string(b, "tool_use_id", bname + ".tool_use_id");
            if (!id) throw ApiError(400, bname + ".tool_use_id is required");
            std::string result = text_of(b.contains("content") ? b["content"] : json(), bname + ".content");
            if (get_bool(b, "is_error", bname + ".is_error").value_or(false)) result = "Error: " + result;
            out.push_back({{"role", "tool"}, {"content", result}, {"tool_call_id", *id}});
        } else if (type == "image" || type == "document") {
            throw ApiError(400, bname + ": " + type + " blocks are not supported (the model reads text only)");
        } else {
            throw ApiError(400,
                           bname + ": blocks of type \"" + type + "\" are not supported in " + *role + " messages");
        }
    }
    if (*role == "user" && text.empty() && !out.empty() && out.back()["role"] == "tool") return;
    ojson msg = {{"role", *role}, {"content", text}};
    if (!thinking.empty()) msg["thinking"] = thinking;
    if (!calls.empty()) msg["tool_calls"] = std::move(calls);
    out.push_back(std::move(msg));
}

struct Parsed {
    Request req;
    json tools;  // OpenAI-shaped tools handed to the template and the parser
    std::string model;
    bool stream = false;
};

// The fields both routes read: model, system, messages, tools, tool_choice, thinking.
Parsed parse_chat(ApiEnv& env, const json& body) {
    Parsed p;
    Request& r = p.req;
    r.kind = JobKind::Generate;
    r.model = resolve_model(env.resolver, body);
    p.model = get_string(body, "model", "model").value_or(r.model.name);
    GenerateJob job = default_generate_job();
    apply_options(r.model.options, job, "options.");
    PromptSpec& spec = job.prompt;

    if (auto s = body.find("system"); s != body.end() && !s->is_null()) {
        const std::string sys = text_of(*s, "system");
        spec.messages.push_back({{"role", "system"}, {"content", sys}});
    }
    auto ms = body.find("messages");
    if (ms == body.end() || !ms->is_array() || ms->empty()) throw ApiError(400, "messages must be a non-empty array");
    for (size_t i = 0; i < ms->size(); ++i) add_message(spec.messages, (*ms)[i], "messages[" + std::to_string(i) + "]");

    std::string choice = "auto", forced;
    if (auto tc = body.find("tool_choice"); tc != body.end() && !tc->is_null()) {
        if (!tc->is_object()) throw ApiError(400, "tool_choice must be an object");
        choice = get_string(*tc, "type", "tool_choice.type").value_or("");
        if (choice != "auto" && choice != "any" && choice != "tool" && choice != "none")
            throw ApiError(400, "tool_choice.type must be \"auto\", \"any\", \"tool\" or \"none\"");
        if (choice == "tool") {
            forced = get_string(*tc, "name", "tool_choice.name").value_or("");
            if (forced.empty()) throw ApiError(400, "tool_choice.name is required when tool_choice.type is \"tool\"");
        }
    }
    if (auto ts = body.find("tools"); ts != body.end() && !ts->is_null()) {
        if (!ts->is_array()) throw ApiError(400, "tools must be an array");
        json tools = json::array();
        bool found = false;
        for (size_t i = 0; i < ts->size(); ++i) {
            const json& t = (*ts)[i];
            const std::string tname = "tools[" + std::to_string(i) + "]";
            if (!t.is_object()) throw ApiError(400, tname + " must be an object");
            const auto name = get_string(t, "name", tname + ".name");
            if (!name || name->empty()) throw ApiError(400, tname + ".name is required");
            json fn = {{"name", *name}};
            if (auto d = get_string(t, "description", tname + ".description")) fn["description"] = *d;
            auto schema = t.find("input_schema");
            if (schema != t.end())
                if (std::string err = check_parameters_schema(*schema, tname + ".input_schema"); !err.empty())
                    throw ApiError(400, err);
            fn["parameters"] = schema != t.end() && schema->is_object() ? *schema : json{{"type", "object"}};
            found |= *name == forced;
            tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
        }
        if (!forced.empty() && !found)
            throw ApiError(400, "tool_choice.name \"" + forced + "\" is not one of the tools");
        if (choice != "none" && !tools.empty()) {
            spec.tools = to_ojson(tools);
            p.tools = std::move(tools);
        }
        if ((choice == "any" || choice == "tool") && !p.tools.empty())
            job.force_tool_call = forced;  // a call is required
    } else if (!forced.empty()) {
        throw ApiError(400, "tool_choice.name \"" + forced + "\" is not one of the tools");
    }
    if (auto th = body.find("thinking"); th != body.end() && !th->is_null()) {
        if (!th->is_object()) throw ApiError(400, "thinking must be an object");
        const std::string type = get_string(*th, "type", "thinking.type").value_or("");
        if (type != "enabled" && type != "disabled" && type != "adaptive")
            throw ApiError(400, "thinking.type must be \"enabled\" or \"disabled\"");
        if (type == "enabled")  // Anthropic's minimum; checked, not enforced
            get_int(*th, "budget_tokens", "thinking.budget_tokens", 1024, 1 << 24);
        spec.think = type != "disabled";
    }
    add_model_turns(spec, r.model);
    r.keep_alive = parse_keep_alive(body);
    r.gen = std::move(job);
    return p;
}

void parse_sampling(const json& body, GenerateJob& job) {
    json opts = json::object();
    const auto max = get_int(body, "max_tokens", "max_tokens", 1, 1 << 24);
    if (!max) throw ApiError(400, "max_tokens is required");
    opts["num_predict"] = *max;
    constexpr double kAny = std::numeric_limits<double>::infinity();  // the range is checked here
    if (auto v = get_number(body, "temperature", "temperature", kAny)) {
        if (*v < 0 || *v > 1) throw ApiError(400, "temperature must be between 0 and 1");
        opts["temperature"] = *v;
    }
    if (auto v = get_number(body, "top_p", "top_p", kAny)) {
        if (*v < 0 || *v > 1) throw ApiError(400, "top_p must be between 0 and 1");
        // 0 (in Anthropic's range, not the sampler's) keeps the most likely token alone.
        opts["top_p"] = std::max(*v, static_cast<double>(std::numeric_limits<float>::min()));
    }
    if (auto v = get_int(body, "top_k", "top_k", 0, 1 << 24)) opts["top_k"] = *v;
    if (auto s = body.find("stop_sequences"); s != body.end() && !s->is_null()) {
        if (!s->is_array()) throw ApiError(400, "stop_sequences must be an array of strings");
        for (const json& x : *s)
            if (!x.is_string()) throw ApiError(400, "stop_sequences must be an array of strings");
        opts["stop"] = *s;
    }
    if (auto m = body.find("metadata"); m != body.end() && !m->is_null() && !m->is_object())
        throw ApiError(400, "metadata must be an object");
    apply_options(opts, job, "");
}

const char* stop_reason(const Event& done, bool calls) {
    if (calls) return "tool_use";
    if (done.done_reason == "length") return "max_tokens";
    if (!done.stop_sequence.empty()) return "stop_sequence";
    return "end_turn";
}

ojson usage(int input, int output) { return {{"input_tokens", input}, {"output_tokens", output}}; }

ojson block_of(const OutputPart& p) {
    switch (p.kind) {
    case OutputPart::Kind::Thinking:
        return {{"type", "thinking"}, {"thinking", p.text}, {"signature", ""}};
    case OutputPart::Kind::Text:
        return {{"type", "text"}, {"text", p.text}};
    case OutputPart::Kind::Call:
        break;
    }
    return {{"type", "tool_use"},
            {"id", random_id("toolu_")},  // Anthropic's id shape (the parser's are OpenAI's call_…)
            {"name", p.call.name},
            {"input", to_ojson(p.call.arguments)}};
}

// The SSE events of one streamed message; blocks open and close as the output's kind changes.
struct Streamer {
    Streamer(std::string i, std::string m, OutputSplitter s)
        : id(std::move(i)), model(std::move(m)), splitter(std::move(s)) {}
    std::string id, model;
    OutputSplitter splitter;
    int index = -1;                                  // the open block's index
    OutputPart::Kind open = OutputPart::Kind::Call;  // Call: none open
    bool any_call = false;

    std::string close() {
        if (open == OutputPart::Kind::Call) return "";
        open = OutputPart::Kind::Call;
        return event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}});
    }
    std::string part(const OutputPart& p) {
        std::string out;
        if (p.kind == OutputPart::Kind::Call) {
            out += close();
            any_call = true;
            ojson start = block_of(p);
            const std::string args = dump(start["input"]);
            start["input"] = ojson::object();
            ++index;
            out += event("content_block_start",
                         {{"type", "content_block_start"}, {"index", index}, {"content_block", start}});
            out += event("content_block_delta", {{"type", "content_block_delta"},
                                                 {"index", index},
                                                 {"delta", {{"type", "input_json_delta"}, {"partial_json", args}}}});
            out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}});
            return out;
        }
        const bool thinking = p.kind == OutputPart::Kind::Thinking;
        if (open != p.kind) {
            out += close();
            ++index;
            open = p.kind;
            const ojson block =
                thinking ? ojson{{"type", "thinking"}, {"thinking", ""}} : ojson{{"type", "text"}, {"text", ""}};
            out += event("content_block_start",
                         {{"type", "content_block_start"}, {"index", index}, {"content_block", block}});
        }
        const ojson delta = thinking ? ojson{{"type", "thinking_delta"}, {"thinking", p.text}}
                                     : ojson{{"type", "text_delta"}, {"text", p.text}};
        out += event("content_block_delta", {{"type", "content_block_delta"}, {"index", index}, {"delta", delta}});
        return out;
    }
    std::string render(const Event& e) {
        switch (e.kind) {
        case Event::Kind::Started: {
            ojson msg = {{"id", id},
                         {"type", "message"},
                         {"role", "assistant"},
                         {"model", model},
                         {"content", ojson::array()},
                         {"stop_reason", nullptr},
                         {"stop_sequence", nullptr},
                         {"usage", usage(e.stats.prompt_eval_count, 0)}};
            return event("message_start", {{"type", "message_start"}, {"message", msg}}) +
                   event("ping", {{"type", "ping"}});
        }
        case Event::Kind::Token: {
            std::string out;
            for (const OutputPart& p : splitter.push(e.text)) out += part(p);
            return out;
        }
        case Event::Kind::Done: {
            std::string out;
            for (const OutputPart& p : splitter.finish()) out += part(p);
            if (index < 0) out += part(OutputPart{OutputPart::Kind::Text, "", {}});  // always one block
            out += close();
            ojson delta = {{"stop_reason", stop_reason(e, any_call)},
                           {"stop_sequence", e.stop_sequence.empty() ? ojson(nullptr) : ojson(e.stop_sequence)}};
            out += event("message_delta", {{"type", "message_delta"},
                                           {"delta", delta},
                                           {"usage", usage(e.stats.prompt_eval_count, e.stats.eval_count)}});
            return out + event("message_stop", {{"type", "message_stop"}});
        }
        case Event::Kind::Error:
            return event("error", ojson::parse(error_json(e.status, e.text)));
        default:
            return "";
        }
    }
};

// An EventFn for a reply sent whole at Done, built by `finish`; Errors (and `finish`'s
// exceptions) are answered in Anthropic's shape.
EventFn reply_at_done(std::function<void(const Event&)> on_token,
                      std::function<void(const Event& done, http::Response&)> finish) {
    return server::reply_at_done(std::move(on_token), std::move(finish),
                                 [](http::Response& r, int status, const std::string& message) {
                                     send_error(r, status, message);
                                 });
}

// The whole message, sent at Done.
EventFn whole_message(const Event& first, std::string id, std::string model, const json& tools) {
    struct Gathered {
        explicit Gathered(OutputSplitter s) : splitter(std::move(s)) {}
        OutputSplitter splitter;
        std::string text;
    };
    auto g = std::make_shared<Gathered>(OutputSplitter(first, tools));
    auto finish = [g, id = std::move(id), model = std::move(model)](const Event& e, http::Response& res) {
        ojson content = ojson::array();
        bool calls = false;
        for (const OutputPart& part : g->splitter.split(g->text)) {
            calls |= part.kind == OutputPart::Kind::Call;
            content.push_back(block_of(part));
        }
        if (content.empty()) content.push_back({{"type", "text"}, {"text", ""}});
        ojson j = {{"id", id},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", model},
                   {"content", std::move(content)},
                   {"stop_reason", stop_reason(e, calls)},
                   {"stop_sequence", e.stop_sequence.empty() ? ojson(nullptr) : ojson(e.stop_sequence)},
                   {"usage", usage(e.stats.prompt_eval_count, e.stats.eval_count)}};
        res.status = 200;
        res.set_content(dump(j), "application/json");
    };
    return reply_at_done([g](const Event& e) { g->text += e.text; }, std::move(finish));
}

void messages(ApiEnv& env, const http::Request& hreq, http::Response& res) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Parsed p = parse_chat(env, body);
    parse_sampling(body, p.req.gen);
    p.stream = get_bool(body, "stream", "stream").value_or(false);
    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(p.req));
    reply_from_events(res, st, send_error,
                      [tools = std::move(p.tools), model = std::move(p.model), stream = p.stream](const Event& first) {
                          const std::string id = random_id("msg_");
                          if (!stream) return whole_message(first, id, model, tools);
                          auto s = std::make_shared<Streamer>(id, model, OutputSplitter(first, tools));
                          http::Response head;
                          head.set_header("Cache-Control", "no-cache");
                          return stream_rendered("text/event-stream", [s](const Event& e) { return s->render(e); },
                                                 std::move(head));
                      });
}

// The prompt's length under the model's template: the prompt is processed, nothing generated.
void count_tokens(ApiEnv& env, const http::Request& hreq, http::Response& res) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Parsed p = parse_chat(env, body);
    p.req.gen.options.n_predict = 0;
    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(p.req));
    reply_from_events(res, st, send_error, [](const Event&) {
        return reply_at_done([](const Event&) {}, [](const Event& e, http::Response& res) {
            res.status = 200;
            res.set_content(dump({{"input_tokens", e.stats.prompt_eval_count}}), "application/json");
        });
    });
}

using Handler = void (*)(ApiEnv&, const http::Request&, http::Response&);

http::Handler guarded(ApiEnv& env, Handler h) {
    return [&env, h](const http::Request& req, http::Response& res) {
        try {
            h(env, req, res);
        } catch (const ApiError& e) {
            send_error(res, e.status(), e.what());
        } catch (const std::exception& e) {
            send_error(res, 500, e.what());
        }
    };
}

}  // namespace

const char* error_type(int status) {
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

int wire_status(int status) { return status == 503 ? 529 : status; }

void send_error(http::Response& res, int status, const std::string& message) {
    res.status = wire_status(status);
    if (status == 503) res.set_header("Retry-After", "1");
    res.set_content(error_json(status, message), "application/json");
}

std::string error_json(int status, const std::string& message) {
    const json j = {{"type", "error"}, {"error", {{"type", error_type(status)}, {"message", message}}}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace anthropic

void register_anthropic_routes(http::Server& http, ApiEnv& env) {
    http.Post("/v1/messages", anthropic::guarded(env, anthropic::messages));
    http.Post("/v1/messages/count_tokens", anthropic::guarded(env, anthropic::count_tokens));
}

}  // namespace hearth::server
