// POST /v1/responses: OpenAI's Responses API, stateless (as Ollama's): `input` items become a
// chat for the model's template, the output comes back as reasoning, message and
// function_call items, whole or as the Responses event stream.
#include <algorithm>
#include <ctime>

#include "sampling/json_schema.h"
#include "server/openai/openai.h"
#include "server/output_parts.h"
#include "server/prompt.h"
#include "server/request_parse.h"

namespace hearth::server::openai {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// The content part types a Responses message may hold.
constexpr std::initializer_list<const char*> kTextParts = {"input_text", "output_text", "text"};

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }
ojson to_ojson(const json& j) { return ojson::parse(j.dump()); }

// `input` (a string or a list of items) after `instructions`, as chat messages.
ojson parse_input(const json& body) {
    ojson msgs = ojson::array();
    if (auto ins = get_string(body, "instructions", "instructions"); ins && !ins->empty())
        msgs.push_back({{"role", "system"}, {"content", *ins}});
    auto in = body.find("input");
    if (in == body.end() || in->is_null()) throw OaiError(400, "input is required", "input");
    if (in->is_string()) {
        msgs.push_back({{"role", "user"}, {"content", in->get<std::string>()}});
        return msgs;
    }
    if (!in->is_array() || in->empty())
        throw OaiError(400, "input must be a string or a non-empty array of items", "input");
    std::string thinking;  // a reasoning item, kept for the assistant turn that follows it
    for (size_t i = 0; i < in->size(); ++i) {
        const json& item = (*in)[i];
        const std::string name = "input[" + std::to_string(i) + "]";
        if (!item.is_object()) throw OaiError(400, name + " must be an object", name);
        const std::string type = get_string(item, "type", name + ".type").value_or("message");
        if (type == "message") {
            auto role = get_string(item, "role", name + ".role");
            if (!role || (*role != "user" && *role != "assistant" && *role != "system" && *role != "developer"))
                throw OaiError(400, name + ".role must be \"user\", \"assistant\", \"system\" or \"developer\"",
                               name + ".role");
            if (*role == "developer") role = "system";
            ojson m = {
                {"role", *role},
                {"content", content_text(item.contains("content") ? item["content"] : json(), name + ".content",
                                         kTextParts, true)}};
            if (*role == "assistant" && !thinking.empty()) m["thinking"] = std::exchange(thinking, "");
            msgs.push_back(std::move(m));
        } else if (type == "function_call") {
            const auto call_id = get_string(item, "call_id", name + ".call_id");
            const auto fn = get_string(item, "name", name + ".name");
            const auto args = get_string(item, "arguments", name + ".arguments");
            if (!call_id || !fn || !args) throw OaiError(400, name + " needs call_id, name and arguments", name);
            ojson parsed = ojson::parse(*args, nullptr, false);
            if (parsed.is_discarded() || !parsed.is_object())
                throw OaiError(400, name + ".arguments must be a JSON object in a string", name + ".arguments");
            ojson call = {{"id", *call_id}, {"type", "function"}, {"function", {{"name", *fn}, {"arguments", parsed}}}};
            // Calls right after an assistant turn (or after each other) belong to that turn.
            if (msgs.empty() || msgs.back()["role"] != "assistant")
                msgs.push_back({{"role", "assistant"}, {"content", ""}});
            ojson& last = msgs.back();
            if (!thinking.empty()) last["thinking"] = std::exchange(thinking, "");
            if (!last.contains("tool_calls")) last["tool_calls"] = ojson::array();
            last["tool_calls"].push_back(std::move(call));
        } else if (type == "function_call_output") {
            const auto call_id = get_string(item, "call_id", name + ".call_id");
            if (!call_id) throw OaiError(400, name + ".call_id is required", name + ".call_id");
            auto out = item.find("output");
            if (out == item.end()) throw OaiError(400, name + ".output is required", name + ".output");
            msgs.push_back(
                {{"role", "tool"},
                 {"content", content_text(*out, name + ".output", kTextParts, true)},
                 {"tool_call_id", *call_id}});
        } else if (type == "reasoning") {
            for (const char* key : {"content", "summary"})
                if (auto c = item.find(key); c != item.end() && c->is_array())
                    for (const json& part : *c)
                        if (part.is_object() && part.contains("text") && part["text"].is_string())
                            thinking += part["text"].get<std::string>();
        } else if (type == "item_reference") {
            throw OaiError(400, name + ": item references need stored responses; this server is stateless",
                           name + ".type");
        } else {
            throw OaiError(400, name + ": items of type \"" + type + "\" are not supported", name + ".type");
        }
    }
    return msgs;
}

struct Parsed {
    Request req;
    json tools;  // chat-shaped tools for the template and the parser
    ojson echo;  // fields the response object repeats
    bool stream = false;
};

Parsed parse(ApiEnv& env, const json& body) {
    for (const char* key : {"previous_response_id", "conversation"})
        if (auto it = body.find(key); it != body.end() && !it->is_null())
            throw OaiError(
                400,
                std::string(key) + " is not supported: this server is stateless (send the whole conversation in input)",
                key);
    if (get_bool(body, "store", "store").value_or(false))
        throw OaiError(400, "store must be false: this server is stateless and keeps no responses", "store");
    if (auto bg = get_bool(body, "background", "background"); bg && *bg)
        throw OaiError(400, "background is not supported", "background");

    Parsed p;
    Request& r = p.req;
    r.kind = JobKind::Generate;
    r.model = resolve_model(env.resolver, body);
    r.keep_alive = parse_keep_alive(body);
    p.stream = get_bool(body, "stream", "stream").value_or(false);
    GenerateJob job = default_generate_job();
    SamplingParams& sp = job.options.sampling;
    sp.temperature = 1.0f;  // OpenAI's defaults, as /v1/chat/completions
    sp.top_p = 1.0f;
    sp.top_k = 0;
    sp.repeat_penalty = 1.0f;
    apply_options(r.model.options, job, "options.");
    json opts = json::object();
    const auto temperature = number_in(body, "temperature", 0, 2, "0 and 2");
    if (temperature) opts["temperature"] = *temperature;
    const auto top_p = number_in(body, "top_p", 0, 1, "0 and 1");
    if (top_p) opts["top_p"] = std::max(*top_p, kSmallestTopP);  // 0: the most likely token alone
    const auto max = get_int(body, "max_output_tokens", "max_output_tokens", 1, 1 << 24);
    if (max) opts["num_predict"] = *max;
    // Checked for OpenAI's range, though output log-probabilities are not returned here.
    get_int(body, "top_logprobs", "top_logprobs", 0, 20);
    apply_options(opts, job, "");

    job.prompt.messages = parse_input(body);
    std::string choice = "auto", forced;
    if (auto tc = body.find("tool_choice"); tc != body.end() && !tc->is_null()) {
        if (tc->is_string())
            choice = tc->get<std::string>();
        else if (tc->is_object() && tc->value("type", "") == "function" && (*tc).contains("name") &&
                 (*tc)["name"].is_string())
            forced = (*tc)["name"].get<std::string>(), choice = "required";
        else
            throw OaiError(
                400, "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}",
                "tool_choice");
        if (choice != "auto" && choice != "none" && choice != "required")
            throw OaiError(
                400, "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}",
                "tool_choice");
    }
    ojson echo_tools = ojson::array();
    if (auto ts = body.find("tools"); ts != body.end() && !ts->is_null()) {
        if (!ts->is_array()) throw OaiError(400, "tools must be an array", "tools");
        json tools = json::array();
        bool found = false;
        for (size_t i = 0; i < ts->size(); ++i) {
            const json& t = (*ts)[i];
            const std::string tname = "tools[" + std::to_string(i) + "]";
            if (!t.is_object()) throw OaiError(400, tname + " must be an object", tname);
            const std::string type = get_string(t, "type", tname + ".type").value_or("");
            if (type != "function")
                throw OaiError(400, tname + ".type must be \"function\" (other tools are not supported)",
                               tname + ".type");
            const auto name = get_string(t, "name", tname + ".name");
            if (!name || name->empty()) throw OaiError(400, tname + ".name is required", tname + ".name");
            json fn = {{"name", *name}};
            if (auto d = get_string(t, "description", tname + ".description")) fn["description"] = *d;
            auto params = t.find("parameters");
            if (params != t.end() && !params->is_null() && !params->is_object())
                throw OaiError(400, tname + ".parameters must be a JSON schema object", tname + ".parameters");
            fn["parameters"] = params != t.end() && params->is_object() ? *params : json{{"type", "object"}};
            found |= *name == forced;
            tools.push_back({{"type", "function"}, {"function", fn}});
            echo_tools.push_back(to_ojson(t));
        }
        if (!forced.empty() && !found)
            throw OaiError(400, "tool_choice names \"" + forced + "\", which is not one of the tools", "tool_choice");
        if (choice != "none" && !tools.empty()) {
            job.prompt.tools = to_ojson(tools);
            p.tools = std::move(tools);
        }
        if (choice == "required" && !p.tools.empty()) job.force_tool_call = forced;  // only a call can be written
    } else if (!forced.empty()) {
        throw OaiError(400, "tool_choice names \"" + forced + "\", which is not one of the tools", "tool_choice");
    }

    ojson format = {{"type", "text"}};
    if (auto text = body.find("text"); text != body.end() && !text->is_null()) {
        if (!text->is_object()) throw OaiError(400, "text must be an object", "text");
        if (auto f = text->find("format"); f != text->end() && !f->is_null()) {
            if (!f->is_object() || !f->contains("type") || !(*f)["type"].is_string())
                throw OaiError(400, "text.format must be an object with a type", "text.format");
            const std::string type = (*f)["type"];
            json rf = {{"type", type}};
            if (type == "json_schema") {
                if (!f->contains("schema") || !(*f)["schema"].is_object())
                    throw OaiError(400, "text.format.schema must be a JSON schema object", "text.format.schema");
                rf["json_schema"] = {{"name", f->value("name", "response")}, {"schema", (*f)["schema"]}};
            } else if (type != "text" && type != "json_object") {
                throw OaiError(400, "text.format.type must be \"text\", \"json_object\" or \"json_schema\"",
                               "text.format.type");
            }
            try {
                job.grammar = grammar_for_response_format(rf);
            } catch (const std::exception& e) {
                throw OaiError(400, std::string("invalid text.format: ") + e.what(), "text.format");
            }
            job.format = rf;
            format = to_ojson(*f);
        }
    }
    if (auto rs = body.find("reasoning"); rs != body.end() && !rs->is_null()) {
        if (!rs->is_object()) throw OaiError(400, "reasoning must be an object", "reasoning");
        if (auto effort = get_string(*rs, "effort", "reasoning.effort")) {
            if (*effort != "none" && *effort != "minimal" && *effort != "low" && *effort != "medium" && *effort != "high")
                throw OaiError(400, "reasoning.effort must be \"none\", \"minimal\", \"low\", \"medium\" or \"high\"",
                               "reasoning.effort");
            job.prompt.think = *effort != "none";
            if (*effort != "none") job.prompt.think_level = *effort == "minimal" ? "low" : *effort;
        }
    }
    if (std::string err = sp.validate(); !err.empty()) throw ApiError(400, err);
    add_model_turns(job.prompt, r.model);

    ojson& e = p.echo;
    e["instructions"] = body.contains("instructions") && body["instructions"].is_string()
                            ? ojson(body["instructions"].get<std::string>())
                            : ojson(nullptr);
    e["max_output_tokens"] = max ? ojson(*max) : ojson(nullptr);
    e["model"] = get_string(body, "model", "model").value_or(r.model.name);
    e["parallel_tool_calls"] = get_bool(body, "parallel_tool_calls", "parallel_tool_calls").value_or(true);
    e["temperature"] = temperature.value_or(1.0);
    e["text"] = {{"format", format}};
    e["tool_choice"] =
        body.contains("tool_choice") && !body["tool_choice"].is_null() ? to_ojson(body["tool_choice"]) : ojson("auto");
    e["tools"] = std::move(echo_tools);
    e["top_p"] = top_p.value_or(1.0);
    e["metadata"] =
        body.contains("metadata") && body["metadata"].is_object() ? to_ojson(body["metadata"]) : ojson::object();
    r.gen = std::move(job);
    return p;
}

// The output items and the response object around them, for one request.
struct Builder {
    std::string id;
    int64_t created = 0;
    ojson echo;
    ojson output = ojson::array();

    ojson response(const char* status, const Event* done) const {
        ojson j = {{"id", id}, {"object", "response"}, {"created_at", created}, {"status", status}, {"error", nullptr}};
        j["incomplete_details"] =
            done && done->done_reason == "length" ? ojson{{"reason", "max_output_tokens"}} : ojson(nullptr);
        for (const auto& [k, v] : echo.items()) j[k] = v;
        j["output"] = output;
        j["previous_response_id"] = nullptr;
        j["reasoning"] = {{"effort", nullptr}, {"summary", nullptr}};
        j["store"] = false;
        j["truncation"] = "disabled";
        if (done) {
            const Stats& s = done->stats;
            j["usage"] = {{"input_tokens", s.prompt_eval_count},
                          {"input_tokens_details", {{"cached_tokens", s.cached_tokens}}},
                          {"output_tokens", s.eval_count},
                          {"output_tokens_details", {{"reasoning_tokens", 0}}},
                          {"total_tokens", s.prompt_eval_count + s.eval_count}};
        } else {
            j["usage"] = nullptr;
        }
        return j;
    }
};

ojson message_item(const std::string& id, const std::string& text, const char* status) {
    return {{"id", id},
            {"type", "message"},
            {"status", status},
            {"role", "assistant"},
            {"content", ojson::array({{{"type", "output_text"},
                                       {"text", text},
                                       {"annotations", ojson::array()},
                                       {"logprobs", ojson::array()}}})}};
}
ojson reasoning_item(const std::string& id, const std::string& text) {
    return {{"id", id},
            {"type", "reasoning"},
            {"summary", ojson::array()},
            {"content", ojson::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}
ojson call_item(const std::string& id, const ToolCall& c, const std::string& args, const char* status) {
    return {{"id", id},
            {"type", "function_call"},
            {"status", status},
            {"arguments", args},
            {"call_id", c.id.empty() ? random_id("call_") : c.id},
            {"name", c.name}};
}

const char* final_status(const Event& done) { return done.done_reason == "length" ? "incomplete" : "completed"; }

// The Responses event stream: items open and close as the output's kind changes.
struct Streamer {
    Streamer(Builder builder, OutputSplitter s) : b(std::move(builder)), splitter(std::move(s)) {}
    Builder b;
    OutputSplitter splitter;
    int64_t seq = 0;
    enum class Open { None, Reasoning, Message } open = Open::None;
    std::string item_id, text;

    std::string ev(const char* type, ojson data) {
        ojson j = {{"type", type}, {"sequence_number", seq++}};
        for (auto& [k, v] : data.items()) j[k] = std::move(v);
        return std::string("event: ") + type + "\ndata: " + dump(j) + "\n\n";
    }
    int index() const { return static_cast<int>(b.output.size()); }
    std::string close() {
        if (open == Open::None) return "";
        std::string out;
        const bool msg = open == Open::Message;
        const ojson part = msg ? ojson{{"type", "output_text"},
                                       {"text", text},
                                       {"annotations", ojson::array()},
                                       {"logprobs", ojson::array()}}
                               : ojson{{"type", "reasoning_text"}, {"text", text}};
        const ojson where = {{"item_id", item_id}, {"output_index", index()}, {"content_index", 0}};
        ojson done = where;
        done["text"] = text;
        out += ev(msg ? "response.output_text.done" : "response.reasoning_text.done", done);
        ojson pd = where;
        pd["part"] = part;
        out += ev("response.content_part.done", pd);
        const ojson item = msg ? message_item(item_id, text, "completed") : reasoning_item(item_id, text);
        out += ev("response.output_item.done", {{"output_index", index()}, {"item", item}});
        b.output.push_back(item);
        open = Open::None;
        text.clear();
        return out;
    }
    std::string part(const OutputPart& p) {
        std::string out;
        if (p.kind == OutputPart::Kind::Call) {
            out += close();
            const std::string id = random_id("fc_");
            const std::string args = p.call.arguments.dump();
            ojson item = call_item(id, p.call, "", "in_progress");
            out += ev("response.output_item.added", {{"output_index", index()}, {"item", item}});
            out += ev("response.function_call_arguments.delta",
                      {{"item_id", id}, {"output_index", index()}, {"delta", args}});
            out += ev("response.function_call_arguments.done",
                      {{"item_id", id}, {"output_index", index()}, {"arguments", args}});
            item["arguments"] = args;
            item["status"] = "completed";
            out += ev("response.output_item.done", {{"output_index", index()}, {"item", item}});
            b.output.push_back(std::move(item));
            return out;
        }
        const Open want = p.kind == OutputPart::Kind::Thinking ? Open::Reasoning : Open::Message;
        const bool msg = want == Open::Message;
        if (open != want) {
            out += close();
            open = want;
            item_id = random_id(msg ? "msg_" : "rs_");
            ojson item = msg ? message_item(item_id, "", "in_progress") : reasoning_item(item_id, "");
            item["content"] = ojson::array();
            out += ev("response.output_item.added", {{"output_index", index()}, {"item", item}});
            const ojson part = msg ? ojson{{"type", "output_text"},
                                           {"text", ""},
                                           {"annotations", ojson::array()},
                                           {"logprobs", ojson::array()}}
                                   : ojson{{"type", "reasoning_text"}, {"text", ""}};
            out += ev("response.content_part.added",
                      {{"item_id", item_id}, {"output_index", index()}, {"content_index", 0}, {"part", part}});
        }
        text += p.text;
        ojson d = {{"item_id", item_id}, {"output_index", index()}, {"content_index", 0}, {"delta", p.text}};
        if (msg) d["logprobs"] = ojson::array();
        out += ev(msg ? "response.output_text.delta" : "response.reasoning_text.delta", d);
        return out;
    }
    std::string render(const Event& e) {
        switch (e.kind) {
        case Event::Kind::Started: {
            std::string out = ev("response.created", {{"response", b.response("in_progress", nullptr)}});
            return out + ev("response.in_progress", {{"response", b.response("in_progress", nullptr)}});
        }
        case Event::Kind::Token: {
            std::string out;
            for (const OutputPart& p : splitter.push(e.text)) out += part(p);
            return out;
        }
        case Event::Kind::Done: {
            std::string out;
            for (const OutputPart& p : splitter.finish()) out += part(p);
            out += close();
            const char* status = final_status(e);
            const std::string type = std::string("response.") + status;
            return out + ev(type.c_str(), {{"response", b.response(status, &e)}});
        }
        case Event::Kind::Error: {
            const ojson err = ojson::parse(error_json(e.status, e.text, "", ""))["error"];
            return ev("error", {{"code", err["type"]}, {"message", e.text}, {"param", nullptr}});
        }
        default:
            return "";
        }
    }
};

// The whole reply, sent at Done: the output gathered token by token, split into items.
EventFn whole(const Event& first, Builder b, const json& tools) {
    struct Gathered {
        Gathered(Builder builder, OutputSplitter s) : b(std::move(builder)), splitter(std::move(s)) {}
        Builder b;
        OutputSplitter splitter;
        std::string text;
    };
    auto g = std::make_shared<Gathered>(std::move(b), OutputSplitter(first, tools));
    auto finish = [g](const Event& e, http::Response& res) {
        Builder& b = g->b;
        std::string msg;
        auto flush = [&] {
            if (!msg.empty()) b.output.push_back(message_item(random_id("msg_"), std::exchange(msg, ""), "completed"));
        };
        for (const OutputPart& part : g->splitter.split(g->text)) {
            if (part.kind == OutputPart::Kind::Text) {
                msg += part.text;
                continue;
            }
            flush();
            if (part.kind == OutputPart::Kind::Thinking)
                b.output.push_back(reasoning_item(random_id("rs_"), part.text));
            else
                b.output.push_back(call_item(random_id("fc_"), part.call, part.call.arguments.dump(), "completed"));
        }
        flush();
        if (b.output.empty()) b.output.push_back(message_item(random_id("msg_"), "", "completed"));
        res.status = 200;
        res.set_content(dump(b.response(final_status(e), &e)), "application/json; charset=utf-8");
    };
    return reply_at_done([g](const Event& e) { g->text += e.text; }, std::move(finish));
}

void responses(ApiEnv& env, const http::Request& hreq, http::Response& res) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Parsed p = parse(env, body);
    auto built = std::make_shared<Builder>(
        Builder{random_id("resp_"), static_cast<int64_t>(std::time(nullptr)), std::move(p.echo), ojson::array()});
    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(p.req));
    reply_from_events(res, st, oai_error_reply,
                      [built, tools = std::move(p.tools), stream = p.stream](const Event& first) -> EventFn {
                          if (!stream) return whole(first, std::move(*built), tools);
                          auto s = std::make_shared<Streamer>(std::move(*built), OutputSplitter(first, tools));
                          return stream_sse([s](const Event& e) { return s->render(e); });
                      });
}

}  // namespace

void add_responses_routes(http::Server& http, ApiEnv& env) { http.Post("/v1/responses", guarded(env, responses)); }

}  // namespace hearth::server::openai
