// POST /v1/chat/completions and POST /v1/completions, with SSE streaming.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <random>

#include "sampling/json_schema.h"
#include "server/openai/openai.h"
#include "server/prompt.h"
#include "server/request_parse.h"
#include "server/tool_choice.h"

namespace hearth::server::openai {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }
std::string sse(const ojson& j) { return "data: " + dump(j) + "\n\n"; }

ojson bytes_of(const std::string& s) {
    ojson b = ojson::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
}

// One entry of chat's choices[0].logprobs.content.
ojson chat_logprob(const TokenProb& p) {
    ojson top = ojson::array();
    for (const auto& [tok, lp] : p.top) top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", bytes_of(tok)}});
    return {{"token", p.token}, {"logprob", p.logprob}, {"bytes", bytes_of(p.token)}, {"top_logprobs", std::move(top)}};
}

// The legacy completions shape: {tokens, token_logprobs, top_logprobs, text_offset}.
struct LegacyLogprobs {
    ojson j = {{"tokens", ojson::array()}, {"token_logprobs", ojson::array()}, {"top_logprobs", ojson::array()},
               {"text_offset", ojson::array()}};
    size_t offset = 0;
    void add(const TokenProb& p) {
        j["tokens"].push_back(p.token);
        j["token_logprobs"].push_back(p.logprob);
        ojson top = ojson::object();
        for (const auto& [tok, lp] : p.top) top[tok] = lp;
        j["top_logprobs"].push_back(std::move(top));
        j["text_offset"].push_back(offset);
        offset += p.token.size();
    }
};

struct Parsed {
    GenerateJob job;
    bool want_probs = false;
};

// The sampling and generation fields both endpoints share.
Parsed parse_sampling(const json& body, const ResolvedModel& model, bool chat) {
    Parsed out;
    GenerateJob& job = out.job;
    job = default_generate_job();
    SamplingParams& sp = job.options.sampling;
    // OpenAI's defaults: plain temperature sampling without top-k or a repeat penalty.
    sp.temperature = 1.0f;
    sp.top_p = 1.0f;
    sp.top_k = 0;
    sp.repeat_penalty = 1.0f;
    apply_options(model.options, job, "options.");

    json opts = json::object();
    if (auto v = number_in(body, "temperature", 0, 2, "0 and 2")) opts["temperature"] = *v;
    // top_p 0 (in OpenAI's range, not the sampler's) keeps the most likely token alone.
    if (auto v = number_in(body, "top_p", 0, 1, "0 and 1")) opts["top_p"] = std::max(*v, kSmallestTopP);
    if (auto v = number_in(body, "frequency_penalty", -2, 2, "-2 and 2")) opts["frequency_penalty"] = *v;
    if (auto v = number_in(body, "presence_penalty", -2, 2, "-2 and 2")) opts["presence_penalty"] = *v;
    if (auto v = get_int(body, "seed", "seed", INT64_MIN, INT64_MAX)) opts["seed"] = *v;
    if (auto it = body.find("stop"); it != body.end() && !it->is_null()) opts["stop"] = *it;
    // max_completion_tokens replaced max_tokens in chat; both are checked, the newer one wins.
    const auto max_tokens = get_int(body, "max_tokens", "max_tokens", 1, 1 << 24);
    const auto max_completion =
        chat ? get_int(body, "max_completion_tokens", "max_completion_tokens", 1, 1 << 24) : std::nullopt;
    if (auto v = max_completion ? max_completion : max_tokens) opts["num_predict"] = *v;
    apply_options(opts, job, "");

    // logit_bias: {"token id": bias in [-100, 100]}. Whether an id is a token of the model is
    // known only to its runner, which answers 400 naming logit_bias when one is not.
    if (auto it = body.find("logit_bias"); it != body.end() && !it->is_null()) {
        if (!it->is_object())
            throw OaiError(400, "logit_bias must be an object mapping token ids to numbers between -100 and 100",
                           "logit_bias");
        for (const auto& [key, value] : it->items()) {
            int64_t id = -1;
            const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
            const bool whole = ec != std::errc::invalid_argument && end == key.data() + key.size();
            if (whole && (ec == std::errc::result_out_of_range || id > INT32_MAX))  // beyond any vocabulary
                throw OaiError(400, "logit_bias is out of range: " + key + " is not a token id of this model",
                               "logit_bias");
            if (!whole || id < 0)
                throw OaiError(400, "logit_bias keys must be token ids (non-negative integers): " + json(key).dump() +
                                        " is not one", "logit_bias");
            if (!value.is_number())
                throw OaiError(400, "logit_bias[" + key + "] must be a number between -100 and 100", "logit_bias");
            const double b = value.get<double>();
            if (!(b >= -100 && b <= 100))
                throw OaiError(400, "logit_bias[" + key + "] must be between -100 and 100", "logit_bias");
            sp.logit_bias[static_cast<int32_t>(id)] = static_cast<float>(b);
        }
    }

    if (chat) {
        const bool logprobs = get_bool(body, "logprobs", "logprobs").value_or(false);
        const int64_t top = get_int(body, "top_logprobs", "top_logprobs", 0, 20).value_or(0);
        if (top > 0 && !logprobs) throw OaiError(400, "top_logprobs requires logprobs to be true", "top_logprobs");
        out.want_probs = logprobs;
        sp.n_probs = static_cast<int32_t>(top);
    } else {
        const int64_t n = get_int(body, "logprobs", "logprobs", 0, 5).value_or(-1);
        if (auto b = get_int(body, "best_of", "best_of", 0, 20); b && *b > 1)
            throw OaiError(400, "best_of must be 1: only one completion per request is generated", "best_of");
        out.want_probs = n >= 0;
        sp.n_probs = static_cast<int32_t>(std::max<int64_t>(n, 0));
    }
    sp.logprobs = out.want_probs;

    if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
        if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string())
            throw OaiError(400, "response_format must be an object with a type", "response_format");
        const std::string type = (*it)["type"];
        if (type != "text" && type != "json_object" && type != "json_schema")
            throw OaiError(400, "response_format.type must be \"text\", \"json_object\" or \"json_schema\"",
                           "response_format.type");
        if (type == "json_schema") {
            auto js = it->find("json_schema");
            if (js == it->end() || !js->is_object() || !js->contains("schema") || !(*js)["schema"].is_object())
                throw OaiError(400, "response_format.json_schema.schema must be a JSON schema object",
                               "response_format.json_schema");
        }
        try {
            job.grammar = grammar_for_response_format(*it);
        } catch (const std::exception& e) {
            throw OaiError(400, std::string("invalid response_format: ") + e.what(), "response_format");
        }
        job.format = *it;
    }
    if (std::string err = sp.validate(); !err.empty()) throw ApiError(400, err);
    return out;
}

ojson parse_messages(const json& body) {
    auto it = body.find("messages");
    if (it == body.end() || !it->is_array() || it->empty())
        throw OaiError(400, "messages must be a non-empty array", "messages");
    ojson out = ojson::array();
    for (size_t i = 0; i < it->size(); ++i) {
        const json& m = (*it)[i];
        const std::string name = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) throw OaiError(400, name + " must be an object", name);
        auto role = get_string(m, "role", name + ".role");
        if (!role || role->empty()) throw OaiError(400, name + ".role is required", name + ".role");
        if (*role == "developer") role = "system";
        ojson msg;
        msg["role"] = *role;
        msg["content"] = content_text(m.contains("content") ? m["content"] : json(), name + ".content", {"text"});
        if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
            if (!tc->is_array()) throw OaiError(400, name + ".tool_calls must be an array", name + ".tool_calls");
            ojson calls = ojson::array();
            for (const json& c : *tc) {
                ojson call = ojson::parse(c.dump());
                // OpenAI sends arguments as a JSON string; templates expect the object.
                if (c.is_object() && c.contains("function") && c["function"].is_object() &&
                    c["function"].contains("arguments") && c["function"]["arguments"].is_string()) {
                    const ojson args = ojson::parse(c["function"]["arguments"].get<std::string>(), nullptr, false);
                    if (!args.is_discarded()) call["function"]["arguments"] = args;
                }
                calls.push_back(std::move(call));
            }
            msg["tool_calls"] = std::move(calls);
        }
        for (const char* extra : {"name", "tool_call_id"})
            if (auto f = m.find(extra); f != m.end() && !f->is_null()) msg[extra] = ojson::parse(f->dump());
        out.push_back(std::move(msg));
    }
    return out;
}

const char* finish_reason(const std::string& done_reason, bool calls) {
    if (calls) return "tool_calls";
    return done_reason == "length" ? "length" : "stop";
}

ojson usage(const Stats& s) {
    return {{"prompt_tokens", s.prompt_eval_count},
            {"completion_tokens", s.eval_count},
            {"total_tokens", s.prompt_eval_count + s.eval_count},
            {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens}}}};
}

ojson tool_calls_json(const std::vector<ToolCall>& calls, bool indexed, size_t first_index) {
    ojson out = ojson::array();
    for (size_t i = 0; i < calls.size(); ++i) {
        ojson c;
        if (indexed) c["index"] = first_index + i;
        c["id"] = calls[i].id.empty() ? random_id("call_") : calls[i].id;
        c["type"] = "function";
        c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments.dump()}};
        out.push_back(std::move(c));
    }
    return out;
}

struct Shaper {
    bool chat = true;
    std::string id, model;
    int64_t created = 0;

    ojson base(bool chunk) const {
        ojson j;
        j["id"] = id;
        j["object"] = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
        j["created"] = created;
        j["model"] = model;
        j["system_fingerprint"] = "fp_hearth";
        return j;
    }
    // A streamed chunk with one choice.
    ojson chunk(ojson choice) const {
        ojson j = base(true);
        choice["index"] = 0;
        j["choices"] = ojson::array({std::move(choice)});
        return j;
    }
};

// The mutable state of one stream, touched only by its reply's events (one at a time).
struct StreamState {
    std::unique_ptr<ToolCallStreamFilter> filter;
    size_t n_calls = 0;
    LegacyLogprobs legacy;
};

// How a request's output is parsed, decided by its Started event.
struct OutputMode {
    bool split = false;  // reasoning -> reasoning_content, tool calls parsed
    ToolCallFormat format = ToolCallFormat::None;
    ParseOptions popts;
};

OutputMode output_mode(const Event& first, bool chat, const json& tools) {
    OutputMode m;
    const bool parse_tools = chat && tools.is_array() && !tools.empty();
    m.split = chat && (parse_tools || first.thinking);
    m.format = parse_tools ? first.tool_format : ToolCallFormat::None;
    m.popts.reasoning_open = first.reasoning_open;
    return m;
}

// The SSE reply: one chunk per token, the finish chunk, usage when asked, [DONE].
EventFn streamed(const Event& first, const Shaper& shaper, const json& tools, bool want_probs, bool include_usage) {
    const OutputMode mode = output_mode(first, shaper.chat, tools);
    auto ss = std::make_shared<StreamState>();
    if (mode.split) ss->filter = std::make_unique<ToolCallStreamFilter>(mode.format, tools, mode.popts);
    return stream_sse([shaper, ss, want_probs, include_usage](const Event& e) -> std::string {
        const bool chat = shaper.chat;
        switch (e.kind) {
        case Event::Kind::Started:
            if (!chat) return "";
            return sse(shaper.chunk({{"delta", {{"role", "assistant"}, {"content", ""}}},
                                     {"logprobs", nullptr}, {"finish_reason", nullptr}}));
        case Event::Kind::Token: {
            std::string text = e.text;
            std::vector<ToolCall> calls;
            std::string reasoning;
            if (ss->filter) {
                text = ss->filter->push(e.text);
                calls = ss->filter->take_tool_calls();
                reasoning = ss->filter->take_reasoning();
            }
            const bool prob = want_probs && e.prob;
            if (text.empty() && calls.empty() && reasoning.empty() && !prob) return "";
            ojson choice;
            if (chat) {
                ojson delta = ojson::object();
                if (!text.empty() || (calls.empty() && reasoning.empty())) delta["content"] = text;
                if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
                if (!calls.empty()) delta["tool_calls"] = tool_calls_json(calls, true, ss->n_calls);
                ss->n_calls += calls.size();
                choice["delta"] = std::move(delta);
                choice["logprobs"] = prob ? ojson{{"content", ojson::array({chat_logprob(*e.prob)})}} : ojson(nullptr);
            } else {
                choice["text"] = text;
                if (prob) {
                    LegacyLogprobs one;
                    one.offset = ss->legacy.offset;
                    one.add(*e.prob);
                    ss->legacy.offset = one.offset;
                    choice["logprobs"] = std::move(one.j);
                } else {
                    choice["logprobs"] = nullptr;
                }
            }
            choice["finish_reason"] = nullptr;
            return sse(shaper.chunk(std::move(choice)));
        }
        case Event::Kind::Done: {
            std::string out;
            if (ss->filter) {
                ParsedOutput rest = ss->filter->finish();
                if (!rest.content.empty() || !rest.tool_calls.empty() || !rest.reasoning.empty()) {
                    ojson delta = ojson::object();
                    if (!rest.content.empty()) delta["content"] = rest.content;
                    if (!rest.reasoning.empty()) delta["reasoning_content"] = rest.reasoning;
                    if (!rest.tool_calls.empty()) delta["tool_calls"] = tool_calls_json(rest.tool_calls, true, ss->n_calls);
                    ss->n_calls += rest.tool_calls.size();
                    out += sse(shaper.chunk({{"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
                }
            }
            ojson last;
            if (chat) last["delta"] = ojson::object();
            else last["text"] = "";
            last["logprobs"] = nullptr;
            last["finish_reason"] = finish_reason(e.done_reason, ss->n_calls > 0);
            out += sse(shaper.chunk(std::move(last)));
            if (include_usage) {
                ojson u = shaper.base(true);
                u["choices"] = ojson::array();
                u["usage"] = usage(e.stats);
                out += sse(u);
            }
            return out + "data: [DONE]\n\n";
        }
        case Event::Kind::Error:
            return sse(ojson::parse(error_json(e.status, e.text, "", ""))) + "data: [DONE]\n\n";
        default: return "";
        }
    });
}

// The whole reply, sent at Done: the text (and log-probabilities) gathered token by token.
EventFn whole(const Event& first, const Shaper& shaper, const json& tools, bool want_probs) {
    struct Gathered {
        std::string text;
        ojson chat_lp = ojson::array();
        LegacyLogprobs legacy;
    };
    auto g = std::make_shared<Gathered>();
    const bool chat = shaper.chat;
    auto on_token = [g, chat, want_probs](const Event& e) {
        g->text += e.text;
        if (want_probs && e.prob) {
            if (chat) g->chat_lp.push_back(chat_logprob(*e.prob));
            else g->legacy.add(*e.prob);
        }
    };
    auto finish = [g, shaper, tools, want_probs, mode = output_mode(first, chat, tools)](const Event& e,
                                                                                        http::Response& res) {
        const bool chat = shaper.chat;
        std::string& text = g->text;
        ojson choice;
        choice["index"] = 0;
        bool calls = false;
        if (chat) {
            ojson msg = {{"role", "assistant"}};
            if (mode.split) {
                ParsedOutput out = parse_model_output(mode.format, text, tools, mode.popts);
                text = std::move(out.content);
                calls = !out.tool_calls.empty();
                msg["content"] = text.empty() && calls ? ojson(nullptr) : ojson(text);
                if (!out.reasoning.empty()) msg["reasoning_content"] = out.reasoning;
                if (calls) msg["tool_calls"] = tool_calls_json(out.tool_calls, false, 0);
            } else {
                msg["content"] = text;
            }
            choice["message"] = std::move(msg);
            choice["logprobs"] = want_probs ? ojson{{"content", std::move(g->chat_lp)}} : ojson(nullptr);
        } else {
            choice["text"] = text;
            choice["logprobs"] = want_probs ? std::move(g->legacy.j) : ojson(nullptr);
        }
        choice["finish_reason"] = finish_reason(e.done_reason, calls);
        ojson j = shaper.base(false);
        j["choices"] = ojson::array({std::move(choice)});
        j["usage"] = usage(e.stats);
        res.status = 200;
        res.set_content(dump(j), "application/json; charset=utf-8");
    };
    return reply_at_done(std::move(on_token), std::move(finish));
}

void handle(ApiEnv& env, const http::Request& hreq, http::Response& res, bool chat) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Request r;
    r.kind = JobKind::Generate;
    r.model = resolve_model(env.resolver, body);
    Shaper shaper{chat, random_id(chat ? "chatcmpl-" : "cmpl-"), get_string(body, "model", "model").value_or(r.model.name),
                  static_cast<int64_t>(std::time(nullptr))};
    r.keep_alive = parse_keep_alive(body);
    if (auto n = get_int(body, "n", "n", 1, 128); n && *n != 1)
        throw OaiError(400, "n must be 1: only one choice per request is supported", "n");
    const bool stream = get_bool(body, "stream", "stream").value_or(false);
    bool include_usage = false;
    if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) throw OaiError(400, "stream_options must be an object", "stream_options");
        include_usage = get_bool(*it, "include_usage", "stream_options.include_usage").value_or(false);
    }

    Parsed parsed = parse_sampling(body, r.model, chat);
    GenerateJob& job = parsed.job;
    json tools;
    if (chat) {
        // reasoning_effort: "none" turns thinking off, a level turns it on (Ollama's mapping).
        if (auto effort = get_string(body, "reasoning_effort", "reasoning_effort")) {
            if (*effort != "none" && *effort != "minimal" && *effort != "low" && *effort != "medium" && *effort != "high")
                throw OaiError(400, "reasoning_effort must be \"none\", \"minimal\", \"low\", \"medium\" or \"high\"",
                               "reasoning_effort");
            job.prompt.think = *effort != "none";
            if (*effort != "none") job.prompt.think_level = *effort == "minimal" ? "low" : *effort;
        }
        job.prompt.messages = parse_messages(body);
        std::string choice = "auto", forced;
        if (auto it = body.find("tool_choice"); it != body.end() && !it->is_null()) {
            if (it->is_string()) choice = it->get<std::string>();
            else if (!it->is_object()) throw OaiError(400, "tool_choice must be a string or an object", "tool_choice");
            else if (it->contains("function") && (*it)["function"].is_object() && (*it)["function"].contains("name") &&
                     (*it)["function"]["name"].is_string())
                forced = (*it)["function"]["name"].get<std::string>(), choice = "required";
            if (choice != "auto" && choice != "none" && choice != "required")
                throw OaiError(400, "tool_choice must be \"auto\", \"none\", \"required\" or an object", "tool_choice");
        }
        if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
            if (!it->is_array()) throw OaiError(400, "tools must be an array", "tools");
            for (size_t i = 0; i < it->size(); ++i) {
                const json& t = (*it)[i];
                const std::string where = "tools[" + std::to_string(i) + "]";
                if (!t.is_object()) throw OaiError(400, where + " must be an object", where);
                const json& fn = t.contains("function") ? t["function"] : t;
                if (!fn.is_object()) throw OaiError(400, where + ".function must be an object", where + ".function");
                if (auto p = fn.find("parameters"); p != fn.end())
                    if (std::string err = check_parameters_schema(*p, where + ".function.parameters"); !err.empty())
                        throw OaiError(400, err, where + ".function.parameters");
            }
            if (choice != "none" && !it->empty()) {
                job.prompt.tools = ojson::parse(it->dump());
                tools = *it;
            }
            if (choice == "required" && !tools.empty()) job.force_tool_call = forced;  // only a call may be written
        }
        add_model_turns(job.prompt, r.model);
    } else {
        std::string prompt;
        auto it = body.find("prompt");
        if (it != body.end() && it->is_string()) prompt = it->get<std::string>();
        else if (it != body.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string()) prompt = (*it)[0];
        else throw OaiError(400, "prompt must be a string (or an array of one string)", "prompt");
        if (prompt.empty()) throw OaiError(400, "prompt must not be empty", "prompt");
        if (!get_string(body, "suffix", "suffix").value_or("").empty())
            throw OaiError(400, "suffix is not supported", "suffix");
        if (get_bool(body, "echo", "echo").value_or(false)) throw OaiError(400, "echo is not supported", "echo");
        job.prompt.raw = true;
        job.prompt.text = std::move(prompt);
    }
    const bool want_probs = parsed.want_probs;
    r.gen = std::move(job);

    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(r));
    reply_from_events(res, st, oai_error_reply,
                      [shaper, tools, stream, want_probs, include_usage](const Event& first) -> EventFn {
                          return stream ? streamed(first, shaper, tools, want_probs, include_usage)
                                        : whole(first, shaper, tools, want_probs);
                      });
}

}  // namespace

void add_chat_routes(http::Server& http, ApiEnv& env) {
    http.Post("/v1/chat/completions", guarded(env, [](ApiEnv& e, const http::Request& q, http::Response& s) {
                  handle(e, q, s, true);
              }));
    http.Post("/v1/completions", guarded(env, [](ApiEnv& e, const http::Request& q, http::Response& s) {
                  handle(e, q, s, false);
              }));
}

std::string content_text(const json& c, const std::string& name, std::initializer_list<const char*> types,
                         bool type_param) {
    if (c.is_null()) return "";
    if (c.is_string()) return c.get<std::string>();
    if (!c.is_array()) throw OaiError(400, name + " must be a string or an array of content parts", name);
    std::string out;
    for (size_t i = 0; i < c.size(); ++i) {
        const json& part = c[i];
        const std::string pname = name + "[" + std::to_string(i) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            throw OaiError(400, pname + " must be an object with a type", pname);
        const std::string type = part["type"];
        bool known = false;
        for (const char* t : types) known = known || type == t;
        if (!known)
            throw OaiError(400, pname + ": content of type \"" + type + "\" is not supported",
                           type_param ? pname + ".type" : pname);
        const auto text = get_string(part, "text", pname + ".text");
        if (!text) throw OaiError(400, pname + ".text is required", pname + ".text");
        out += *text;
    }
    return out;
}

}  // namespace hearth::server::openai
