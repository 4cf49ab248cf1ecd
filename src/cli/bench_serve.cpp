// `hearth bench serve`: a serving benchmark in the manner of `vllm bench serve`. It drives a
// running daemon over HTTP with streaming requests (Ollama's /api/generate or OpenAI's
// /v1/completions), keeping exactly `concurrency` requests in flight, and reports request
// throughput, token throughput and TTFT / TPOT / ITL statistics measured at the client as
// the tokens arrive, per concurrency level, as an aligned table or JSON.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "http/client.h"

namespace hearth::cli {

CLI::App* add_bench_serve_command(CLI::App& bench);

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct ServeBenchArgs {
    std::string url = "http://127.0.0.1:11434";
    std::string model;
    std::vector<int> concurrency{1, 2, 4, 8, 16};
    int requests = 64;
    int prompt_len = 128;
    int gen_len = 64;
    int shared_prefix = 0;
    std::string api = "ollama";
    uint64_t seed = 0;
    std::string output = "table";
    std::string api_key;
    double timeout = 600;
    double temperature = -1;  // < 0: the daemon's default
};

// ---- HTTP

// "http://host:port/prefix" -> the client's scheme://host:port and a path prefix.
struct Endpoint {
    std::string origin;
    std::string prefix;
};

Endpoint parse_url(std::string url) {
    if (url.find("://") == std::string::npos) url = "http://" + url;
    const size_t scheme_end = url.find("://") + 3;
    const size_t slash = url.find('/', scheme_end);
    Endpoint e;
    e.origin = url.substr(0, slash);
    if (slash != std::string::npos) e.prefix = url.substr(slash);
    while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
    if (e.origin.size() <= scheme_end) throw std::runtime_error("--url " + url + " names no host");
    return e;
}

std::unique_ptr<http::Client> make_client(const Endpoint& ep, const ServeBenchArgs& a) {
    if (ep.origin.rfind("http://", 0) != 0)
        throw std::runtime_error("--url " + ep.origin + " is not a usable address (plain http:// only)");
    auto c = std::make_unique<http::Client>(ep.origin);  // TCP_NODELAY is always on
    c->set_connection_timeout(10, 0);
    c->set_read_timeout(static_cast<long>(a.timeout), 0);
    c->set_write_timeout(60, 0);
    c->set_keep_alive(true);
    if (!a.api_key.empty()) c->set_default_headers({{"Authorization", "Bearer " + a.api_key}});
    return c;
}

// The message of an error reply in either API's shape, else the body itself.
std::string error_message(const std::string& body) {
    if (std::optional<std::string> m = error_body_message(body)) return *m;
    return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

// ---- Prompts

// What the prompts are made of: word-like tokens of the model's vocabulary (an SPM "▁word" or
// a byte-level BPE "Ġword") when the daemon shows it, else a fixed English word list.
struct Vocabulary {
    std::vector<int32_t> ids;        // empty: no ids (word list)
    std::vector<std::string> words;  // the text of each unit, without its leading space
    int32_t bos = -1;                // put first in id prompts when the model adds BOS
    bool space_prefix = false;       // SPM: the tokenizer adds the leading space of raw text itself
    std::vector<int32_t> end_ids;    // EOS / EOT, biased away in the OpenAI API
};

const char* const kWords[] = {
    "time", "little", "girl", "boy", "day", "sun", "tree", "park", "ball", "friend", "happy", "sad", "big", "small",
    "dog", "cat", "bird", "house", "play", "run", "jump", "walk", "found", "saw", "went", "said", "mom", "dad",
    "toy", "red", "blue", "green", "water", "sky", "flower", "garden", "book", "car", "box", "cake", "apple",
    "river", "hill", "road", "rain", "snow", "wind", "story", "king", "queen", "door", "window", "light", "night",
    "morning", "school", "teacher", "game", "song", "hat", "shoe", "fish", "boat", "bear", "rabbit", "mouse",
    "star", "moon", "cloud", "forest", "sand", "beach", "shell", "table", "chair", "bed", "cup", "milk", "bread",
    "kind", "brave", "quiet", "loud", "warm", "cold", "soft", "new", "old", "long", "fast", "slow", "smile",
    "laugh", "help", "share", "look", "listen", "think", "dream", "paint", "draw", "sing", "dance", "climb"};

bool ascii_letters(const std::string& s, size_t from) {
    if (s.size() < from + 2) return false;
    for (size_t i = from; i < s.size(); ++i)
        if (!std::isalpha(static_cast<unsigned char>(s[i]))) return false;
    return true;
}

Vocabulary vocabulary_from_show(const json& show) {
    Vocabulary v;
    const json info = show.value("model_info", json::object());
    const auto tokens = info.find("tokenizer.ggml.tokens");
    const std::string kind = info.value("tokenizer.ggml.model", std::string());
    if (tokens != info.end() && tokens->is_array() && (kind == "llama" || kind == "gpt2")) {
        const auto types = info.find("tokenizer.ggml.token_type");
        const std::string marker = kind == "llama" ? "\xE2\x96\x81" : "\xC4\xA0";  // ▁ / Ġ
        for (size_t i = 0; i < tokens->size(); ++i) {
            const json& t = (*tokens)[i];
            if (!t.is_string()) continue;
            if (types != info.end() && types->is_array() && i < types->size() && (*types)[i] != 1) continue;
            const std::string s = t.get<std::string>();
            if (s.compare(0, marker.size(), marker) != 0 || !ascii_letters(s, marker.size())) continue;
            v.ids.push_back(static_cast<int32_t>(i));
            v.words.push_back(s.substr(marker.size()));
        }
        v.space_prefix = kind == "llama";
        auto id = [&](const char* key) -> int32_t {
            auto it = info.find(key);
            return it != info.end() && it->is_number_integer() ? it->get<int32_t>() : -1;
        };
        const auto add_bos = info.find("tokenizer.ggml.add_bos_token");
        const bool bos_on = add_bos == info.end() || !add_bos->is_boolean() ? kind == "llama" : add_bos->get<bool>();
        if (bos_on) v.bos = id("tokenizer.ggml.bos_token_id");
        for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
            if (int32_t e = id(key); e >= 0 && std::find(v.end_ids.begin(), v.end_ids.end(), e) == v.end_ids.end())
                v.end_ids.push_back(e);
    }
    if (v.ids.size() < 16) {  // too few words to make varied prompts: use the word list
        v.ids.clear();
        v.words.clear();
        v.bos = -1;
        v.space_prefix = false;
        for (const char* w : kWords) v.words.push_back(w);
    }
    return v;
}

// One request's prompt: token ids sent as /api/generate `context` (then `text` is the last
// word, as raw text, since an empty prompt only loads the model), or text.
struct Prompt {
    std::vector<int32_t> ids;
    std::string text;
};

// Builds prompts of `units` words, the first `shared` of them the same for every prompt.
class PromptMaker {
public:
    PromptMaker(const Vocabulary& v, bool use_ids, uint64_t seed) : v_(v), use_ids_(use_ids && !v.ids.empty()), rng_(seed) {}

    bool uses_ids() const { return use_ids_; }
    // Token overhead of an id prompt beside its words: the BOS.
    int fixed_tokens() const { return use_ids_ && v_.bos >= 0 ? 1 : 0; }

    void set_shared(int shared_units) {
        shared_.clear();
        for (int i = 0; i < shared_units; ++i) shared_.push_back(pick());
    }

    Prompt make(int units, bool with_shared) {
        std::vector<size_t> picks;
        if (with_shared) picks.assign(shared_.begin(), shared_.begin() + std::min<size_t>(shared_.size(), size_t(units)));
        while (int(picks.size()) < std::max(units, 1)) picks.push_back(pick());
        Prompt p;
        if (use_ids_) {
            if (v_.bos >= 0) p.ids.push_back(v_.bos);
            for (size_t i = 0; i + 1 < picks.size(); ++i) p.ids.push_back(v_.ids[picks[i]]);
            // The last word as raw text: SPM adds the space itself, byte-level BPE needs it.
            p.text = (v_.space_prefix ? "" : " ") + v_.words[picks.back()];
            return p;
        }
        for (size_t i = 0; i < picks.size(); ++i) {
            if (i > 0) p.text += ' ';
            p.text += v_.words[picks[i]];
        }
        return p;
    }

private:
    size_t pick() { return std::uniform_int_distribution<size_t>(0, v_.words.size() - 1)(rng_); }

    const Vocabulary& v_;
    bool use_ids_;
    std::mt19937_64 rng_;
    std::vector<size_t> shared_;
};

// ---- One streaming request

struct Outcome {
    bool ok = false;
    int status = 0;  // HTTP status (0: no response)
    std::string error;
    double ttft = 0, e2e = 0;  // seconds from sending
    std::vector<double> itl;   // seconds between content chunks
    int64_t prompt_tokens = 0, output_tokens = 0;
};

class Requester {
public:
    Requester(const ServeBenchArgs& a, const Endpoint& ep, const Vocabulary& v) : a_(a), ep_(ep), v_(v), client_(make_client(ep, a)) {}

    Outcome send(const Prompt& p, int gen_len, uint64_t seed) {
        const bool openai = a_.api == "openai";
        json body = {{"model", a_.model}, {"stream", true}};
        if (openai) {
            body["prompt"] = p.text;
            body["max_tokens"] = gen_len;
            body["seed"] = seed;
            body["stream_options"] = {{"include_usage", true}};
            if (a_.temperature >= 0) body["temperature"] = a_.temperature;
            // Fixed output length: end-of-generation tokens are biased away.
            if (!v_.end_ids.empty()) {
                json bias = json::object();
                for (int32_t id : v_.end_ids) bias[std::to_string(id)] = -100;
                body["logit_bias"] = bias;
            }
        } else {
            body["prompt"] = p.text;
            body["raw"] = true;
            if (!p.ids.empty()) body["context"] = p.ids;
            json options = {{"num_predict", gen_len}, {"seed", seed}};
            if (a_.temperature >= 0) options["temperature"] = a_.temperature;
            body["options"] = options;
        }
        const std::string path = ep_.prefix + (openai ? "/v1/completions" : "/api/generate");

        Outcome out;
        // The receiver does not learn the status: every byte is read as the stream, and the
        // bytes before the first line that counted are kept (all of an error answer, which is
        // one JSON object or plain text). After a bad line the rest is drained, up to a bound,
        // so that an error answer's status still arrives.
        constexpr size_t kMaxKept = 1u << 20;
        std::string buf, raw;  // unparsed bytes; the bytes before the first line that counted
        bool counted = false;  // a line of the stream was taken
        size_t drained = 0;    // bytes after a bad line
        bool done = false;
        Clock::time_point last;
        const Clock::time_point start = Clock::now();
        auto on_content = [&](Clock::time_point t) {
            if (last == Clock::time_point{}) out.ttft = std::chrono::duration<double>(t - start).count();
            else out.itl.push_back(std::chrono::duration<double>(t - last).count());
            last = t;
        };
        // One NDJSON line or SSE event payload; false stops the transfer.
        auto on_line = [&](const std::string& line, Clock::time_point t) -> bool {
            if (line.empty()) return true;
            std::string payload = line;
            if (openai) {
                if (payload.compare(0, 5, "data:") != 0) return true;  // SSE comments, other fields
                payload.erase(0, payload.size() > 5 && payload[5] == ' ' ? 6 : 5);
                if (payload == "[DONE]") {
                    done = true;
                    return true;
                }
            }
            json j;
            try {
                j = json::parse(payload);
            } catch (const std::exception&) {
                out.error = "unparsable stream line: " + payload.substr(0, 120);
                return false;
            }
            if (j.contains("error")) {
                out.error = error_message(payload);
                return false;
            }
            counted = true;
            if (openai) {
                if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
                    const json& c = j["choices"][0];
                    if (c.contains("text") && c["text"].is_string() && !c["text"].get<std::string>().empty()) on_content(t);
                }
                if (j.contains("usage") && j["usage"].is_object()) {
                    out.prompt_tokens = j["usage"].value("prompt_tokens", int64_t(0));
                    out.output_tokens = j["usage"].value("completion_tokens", int64_t(0));
                }
                return true;
            }
            if (j.value("done", false)) {
                done = true;
                out.prompt_tokens = j.value("prompt_eval_count", int64_t(0));
                out.output_tokens = j.value("eval_count", int64_t(0));
                return true;
            }
            if (j.contains("response") && j["response"].is_string() && !j["response"].get<std::string>().empty()) on_content(t);
            return true;
        };
        const http::Receiver receiver = [&](const char* data, size_t n) {
            const Clock::time_point t = Clock::now();
            if (!counted && raw.size() < kMaxKept) raw.append(data, std::min(n, kMaxKept - raw.size()));
            if (!out.error.empty()) return (drained += n) < kMaxKept;
            buf.append(data, n);
            size_t nl;
            while ((nl = buf.find('\n')) != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (!on_line(line, t)) {
                    drained = buf.size();
                    buf.clear();
                    return drained < kMaxKept;
                }
            }
            return true;
        };
        auto res = client_->Post(path, http::Headers{}, body.dump(), "application/json", receiver);
        out.e2e = std::chrono::duration<double>(Clock::now() - start).count();
        if (res && res->status != 200) {
            out.status = res->status;
            out.error = "HTTP " + std::to_string(res->status) + ": " + error_message(raw.empty() ? res->body : raw);
            return out;
        }
        if (!out.error.empty()) return out;
        if (!res) {
            out.error = "HTTP: " + res.error_message();
            return out;
        }
        out.status = res->status;
        if (!buf.empty() && !on_line(buf, Clock::now())) return out;
        if (!done) {
            out.error = "the stream ended before the final object";
            return out;
        }
        if (out.output_tokens == 0) out.output_tokens = static_cast<int64_t>(out.itl.size()) + (last != Clock::time_point{} ? 1 : 0);
        out.ok = true;
        return out;
    }

private:
    const ServeBenchArgs& a_;
    const Endpoint& ep_;
    const Vocabulary& v_;
    std::unique_ptr<http::Client> client_;
};

// ---- Statistics

double mean_of(const std::vector<double>& v) {
    if (v.empty()) return 0;
    double s = 0;
    for (double x : v) s += x;
    return s / double(v.size());
}

// Linear interpolation between closest ranks (numpy's default).
double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double rank = p / 100.0 * double(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(rank));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (rank - double(lo));
}

struct LevelResult {
    int concurrency = 0, requests = 0, completed = 0, failed = 0;
    double duration = 0;
    int64_t input_tokens = 0, output_tokens = 0;
    double first_ttft = 0;
    std::vector<double> ttft, tpot, itl, e2e;  // seconds
    std::string first_error;
};

json level_json(const LevelResult& r) {
    const double d = r.duration > 0 ? r.duration : 1;
    auto ms = [](double s) { return s * 1000.0; };
    json j;
    j["concurrency"] = r.concurrency;
    j["requests"] = r.requests;
    j["completed"] = r.completed;
    j["failed"] = r.failed;
    j["duration_s"] = r.duration;
    j["total_input_tokens"] = r.input_tokens;
    j["total_output_tokens"] = r.output_tokens;
    j["mean_input_tokens"] = r.completed ? double(r.input_tokens) / r.completed : 0.0;
    j["mean_output_tokens"] = r.completed ? double(r.output_tokens) / r.completed : 0.0;
    j["request_throughput"] = r.completed / d;
    j["output_tokens_per_s"] = double(r.output_tokens) / d;
    j["total_tokens_per_s"] = double(r.input_tokens + r.output_tokens) / d;
    j["first_ttft_ms"] = ms(r.first_ttft);
    for (const auto& [name, v] : {std::pair<const char*, const std::vector<double>*>{"ttft", &r.ttft},
                                  {"tpot", &r.tpot}, {"itl", &r.itl}, {"e2el", &r.e2e}}) {
        j[std::string("mean_") + name + "_ms"] = ms(mean_of(*v));
        j[std::string("p50_") + name + "_ms"] = ms(percentile(*v, 50));
        j[std::string("p90_") + name + "_ms"] = ms(percentile(*v, 90));
        j[std::string("p99_") + name + "_ms"] = ms(percentile(*v, 99));
    }
    return j;
}

void print_table(const std::vector<LevelResult>& results) {
    struct Col {
        const char* head;
        const char* key;
        int decimals;
    };
    const Col cols[] = {{"concurrency", "concurrency", 0},     {"requests", "requests", 0},
                        {"completed", "completed", 0},         {"failed", "failed", 0},
                        {"duration s", "duration_s", 2},       {"req/s", "request_throughput", 2},
                        {"out tok/s", "output_tokens_per_s", 1}, {"total tok/s", "total_tokens_per_s", 1},
                        {"in tok", "mean_input_tokens", 1},    {"out tok", "mean_output_tokens", 1},
                        {"TTFT mean ms", "mean_ttft_ms", 1},   {"TTFT p50 ms", "p50_ttft_ms", 1},
                        {"TTFT p99 ms", "p99_ttft_ms", 1},     {"TPOT mean ms", "mean_tpot_ms", 2},
                        {"TPOT p50 ms", "p50_tpot_ms", 2},     {"TPOT p99 ms", "p99_tpot_ms", 2},
                        {"ITL mean ms", "mean_itl_ms", 2},     {"ITL p50 ms", "p50_itl_ms", 2},
                        {"ITL p99 ms", "p99_itl_ms", 2}};
    std::vector<std::vector<std::string>> cells;
    for (const LevelResult& r : results) {
        const json j = level_json(r);
        std::vector<std::string> row;
        for (const Col& c : cols) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.*f", c.decimals, j[c.key].get<double>());
            row.push_back(buf);
        }
        cells.push_back(std::move(row));
    }
    std::vector<size_t> width;
    for (size_t i = 0; i < std::size(cols); ++i) {
        size_t w = std::string(cols[i].head).size();
        for (const auto& row : cells) w = std::max(w, row[i].size());
        width.push_back(w);
    }
    std::string line = "|", rule = "|";
    for (size_t i = 0; i < std::size(cols); ++i) {
        line += " " + std::string(width[i] - std::string(cols[i].head).size(), ' ') + cols[i].head + " |";
        rule += " " + std::string(width[i] - 1, '-') + ": |";
    }
    std::printf("%s\n%s\n", line.c_str(), rule.c_str());
    for (const auto& row : cells) {
        line = "|";
        for (size_t i = 0; i < row.size(); ++i) line += " " + std::string(width[i] - row[i].size(), ' ') + row[i] + " |";
        std::printf("%s\n", line.c_str());
    }
}

// ---- The benchmark

// Checks that the daemon answers and takes our key; returns /api/show's verbose answer for
// the model (null when the daemon has no /api/show or cannot show it).
json preflight(const ServeBenchArgs& a, const Endpoint& ep) {
    auto c = make_client(ep, a);
    const std::string where = a.url;
    auto show = c->Post(ep.prefix + "/api/show", json{{"model", a.model}, {"verbose", true}}.dump(), "application/json");
    if (!show) throw std::runtime_error("cannot reach the daemon at " + where + ": " + show.error_message());
    if (show->status == 401 || show->status == 403)
        throw std::runtime_error("the daemon at " + where + " refused the request (HTTP " + std::to_string(show->status) +
                                 "): " + error_message(show->body) + " (use --api-key or HEARTH_API_KEY)");
    // A daemon without /api/show (an OpenAI-only server) still gets benchmarked: the warm-up
    // request then tells whether the model exists.
    if (show->status == 200) {
        try {
            return json::parse(show->body);
        } catch (const std::exception&) {
        }
    }
    return nullptr;
}

LevelResult run_level(const ServeBenchArgs& a, const Endpoint& ep, const Vocabulary& v, const std::vector<Prompt>& prompts,
                      int concurrency, uint64_t seed_base) {
    LevelResult r;
    r.concurrency = concurrency;
    r.requests = static_cast<int>(prompts.size());
    std::vector<Outcome> outcomes(prompts.size());
    std::atomic<size_t> next{0};
    std::vector<std::unique_ptr<Requester>> clients;
    for (int i = 0; i < concurrency; ++i) clients.push_back(std::make_unique<Requester>(a, ep, v));
    const Clock::time_point start = Clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < concurrency; ++i)
        threads.emplace_back([&, i] {
            for (size_t k; (k = next.fetch_add(1)) < prompts.size();) outcomes[k] = clients[i]->send(prompts[k], a.gen_len, seed_base + k);
        });
    for (auto& t : threads) t.join();
    r.duration = std::chrono::duration<double>(Clock::now() - start).count();
    for (size_t k = 0; k < outcomes.size(); ++k) {
        const Outcome& o = outcomes[k];
        if (!o.ok) {
            r.failed++;
            if (r.first_error.empty()) r.first_error = o.error;
            continue;
        }
        r.completed++;
        r.input_tokens += o.prompt_tokens;
        r.output_tokens += o.output_tokens;
        if (k == 0) r.first_ttft = o.ttft;
        r.ttft.push_back(o.ttft);
        r.e2e.push_back(o.e2e);
        if (o.output_tokens > 1) r.tpot.push_back((o.e2e - o.ttft) / double(o.output_tokens - 1));
        r.itl.insert(r.itl.end(), o.itl.begin(), o.itl.end());
    }
    return r;
}

void bench_serve(ServeBenchArgs a) {
    if (a.model.empty()) throw std::runtime_error("--model is required");
    if (a.api_key.empty())
        if (const char* k = std::getenv("HEARTH_API_KEY")) a.api_key = k;
    for (int c : a.concurrency)
        if (c < 1 || c > 1024) throw CLI::ValidationError("--concurrency", "levels must be between 1 and 1024");
    if (a.shared_prefix >= a.prompt_len)
        throw CLI::ValidationError("--shared-prefix", "must be smaller than --prompt-len");
    const Endpoint ep = parse_url(a.url);
    const json show = preflight(a, ep);
    const Vocabulary vocab = vocabulary_from_show(show.is_object() ? show : json::object());
    const bool openai = a.api == "openai";
    PromptMaker maker(vocab, !openai, a.seed);

    // Warm-up, which also calibrates how many words make prompt-len tokens: id prompts are
    // exact up to the last word's tokenization; text prompts scale by the measured ratio.
    // Warm-up prompts are random, so the shared prefix is first computed in the measured run.
    Requester warm(a, ep, vocab);
    double tokens_per_word = 1.0;
    int words = std::max(1, a.prompt_len - maker.fixed_tokens());
    std::fprintf(stderr, "hearth bench serve: %s at %s (%s API), warming up\n", a.model.c_str(), a.url.c_str(), a.api.c_str());
    for (int probe = 0; probe < 3; ++probe) {
        const Outcome o = warm.send(maker.make(words, false), std::max(2, std::min(a.gen_len, 8)), a.seed);
        if (o.status == 404) throw std::runtime_error("model \"" + a.model + "\" not found at " + a.url + " (" + o.error + ")");
        if (!o.ok) throw std::runtime_error("the warm-up request failed: " + o.error);
        if (o.prompt_tokens <= 0) break;  // the API reports no prompt tokens: keep the estimate
        if (o.prompt_tokens == a.prompt_len) break;
        if (maker.uses_ids()) {
            words = std::max(1, words + (a.prompt_len - static_cast<int>(o.prompt_tokens)));
        } else {
            tokens_per_word = std::max(0.05, double(o.prompt_tokens) / words);
            words = std::max(1, static_cast<int>(std::lround(words + (a.prompt_len - o.prompt_tokens) / tokens_per_word)));
        }
    }
    const int fixed = maker.fixed_tokens();
    const int shared_words =
        a.shared_prefix <= 0 ? 0
        : maker.uses_ids()   ? std::max(0, a.shared_prefix - fixed)
                             : std::max(0, static_cast<int>(std::lround(a.shared_prefix / tokens_per_word)));
    maker.set_shared(std::min(shared_words, words));

    std::vector<LevelResult> results;
    uint64_t seed = a.seed + 1;
    for (int c : a.concurrency) {
        std::vector<Prompt> prompts;
        for (int i = 0; i < a.requests; ++i) prompts.push_back(maker.make(words, a.shared_prefix > 0));
        std::fprintf(stderr, "hearth bench serve: concurrency %d, %d requests\n", c, a.requests);
        LevelResult r = run_level(a, ep, vocab, prompts, c, seed);
        seed += static_cast<uint64_t>(a.requests);
        if (r.failed > 0)
            std::fprintf(stderr, "hearth bench serve: %d of %d requests failed (first: %s)\n", r.failed, r.requests, r.first_error.c_str());
        results.push_back(std::move(r));
    }

    if (a.output == "json") {
        json arr = json::array();
        for (const LevelResult& r : results) {
            json j = level_json(r);
            j["model"] = a.model;
            j["api"] = a.api;
            j["prompt_len"] = a.prompt_len;
            j["gen_len"] = a.gen_len;
            j["shared_prefix"] = a.shared_prefix;
            arr.push_back(std::move(j));
        }
        std::printf("%s\n", arr.dump(2).c_str());
        return;
    }
    std::printf("model %s, %s API at %s: prompt %d tokens%s, generation %d tokens, %d requests per level\n\n", a.model.c_str(),
                a.api.c_str(), a.url.c_str(), a.prompt_len,
                a.shared_prefix > 0 ? (" (" + std::to_string(a.shared_prefix) + " shared)").c_str() : "", a.gen_len, a.requests);
    print_table(results);
}

}  // namespace

CLI::App* add_bench_serve_command(CLI::App& bench) {
    auto a = std::make_shared<ServeBenchArgs>();
    CLI::App* cmd = bench.add_subcommand("serve", "Benchmark a running daemon over HTTP (like `vllm bench serve`)");
    // Default: the daemon the other commands talk to (HEARTH_HOST).
    if (const char* h = std::getenv("HEARTH_HOST"); h && *h) a->url = h;
    cmd->add_option("--url", a->url, "Daemon address (default: HEARTH_HOST)")->capture_default_str();
    cmd->add_option("-m,--model", a->model, "Model name, as the daemon knows it")->required();
    cmd->add_option("--concurrency", a->concurrency, "Requests in flight, one run per level")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--requests", a->requests, "Requests per concurrency level")->check(CLI::Range(1, 1000000))->capture_default_str();
    cmd->add_option("--prompt-len", a->prompt_len, "Prompt tokens per request")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    cmd->add_option("--gen-len", a->gen_len, "Tokens to generate per request")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    cmd->add_option("--shared-prefix", a->shared_prefix, "Leading prompt tokens shared by every request (a system prompt)")
        ->check(CLI::Range(0, 1 << 20))
        ->capture_default_str();
    cmd->add_option("--api", a->api, "ollama (/api/generate) or openai (/v1/completions)")
        ->check(CLI::IsMember({"ollama", "openai"}))
        ->capture_default_str();
    // Random by default: a fixed seed would repeat the previous run's prompts, which the
    // daemon's prefix cache still holds, and report cache hits as speed.
    a->seed = std::random_device{}();
    cmd->add_option("--seed", a->seed, "Seed of the prompts and of each request's sampling (default: random)");
    cmd->add_option("--temperature", a->temperature, "Sampling temperature (default: the daemon's)")->check(CLI::Range(0.0, 100.0));
    cmd->add_option("--api-key", a->api_key, "Bearer key (default: $HEARTH_API_KEY)");
    cmd->add_option("--timeout", a->timeout, "Seconds to wait for a response")->check(CLI::Range(1.0, 86400.0))->capture_default_str();
    cmd->add_option("-o,--output", a->output, "Output format: table or json")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
    cmd->callback([a] { bench_serve(*a); });
    return cmd;
}

}  // namespace hearth::cli
