// Tool-call parsing (template/tool_calls.h). One scanner serves both the one-shot parser and the
// stream filter: it walks the text from a decided offset, copies plain text to the content,
// and at each opening marker hands over to the family's region parser. Every decision it takes
// before the end of the text depends only on the text already seen, so scanning a stream delta
// by delta decides exactly what one scan of the whole text decides; whatever could still change
// (a marker cut in two, a call not yet closed) stays undecided until more text or the end.
#include "template/tool_calls.h"

#include <algorithm>
#include <optional>
#include <random>
#include <utility>

namespace hearth {
namespace {

using json = nlohmann::json;
using sv = std::string_view;
constexpr size_t npos = sv::npos;

constexpr sv kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr sv kHermesOpen = "<tool_call>", kHermesClose = "</tool_call>";
constexpr sv kPythonTag = "<|python_tag|>";
constexpr sv kMistralOpen = "[TOOL_CALLS]";
constexpr sv kFunctionOpen = "<function=", kFunctionClose = "</function>";
constexpr sv kFunctools = "functools";
constexpr sv kAction = "Action:", kFence = "```";
constexpr sv kLlamaBrace = "{";
constexpr sv kDsCallsBegin = "<｜tool▁calls▁begin｜>", kDsCallsEnd = "<｜tool▁calls▁end｜>";
constexpr sv kDsCallBegin = "<｜tool▁call▁begin｜>", kDsCallEnd = "<｜tool▁call▁end｜>";
constexpr sv kDsSep = "<｜tool▁sep｜>";
constexpr size_t kMaxJsonDepth = 128;

// ---- text helpers

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

size_t skip_space(sv t, size_t p) {
    while (p < t.size() && is_space(t[p])) ++p;
    return p;
}

sv trim(sv s) {
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    return s.substr(b, e - b);
}

bool starts_at(sv t, size_t p, sv lit) { return p <= t.size() && t.substr(p).starts_with(lit); }

// t[p..] is a proper prefix of lit (possibly empty): more text could still complete lit there.
bool prefix_of(sv t, size_t p, sv lit) {
    const sv rest = t.substr(std::min(p, t.size()));
    return rest.size() < lit.size() && lit.starts_with(rest);
}

bool valid_utf8(sv s) {
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size() || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4)) return false;
        uint32_t cp = n == 1 ? c : c & (0x7F >> n);
        for (size_t k = 1; k < n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n;
    }
    return true;
}

// A function name taken from raw text (not from JSON): printable, no markup, valid UTF-8.
bool name_chars_ok(sv s) {
    return s.size() <= 256 && std::none_of(s.begin(), s.end(), [](char c) {
               return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F || c == '<' || c == '>' || c == '"';
           });
}
bool valid_name(sv s) { return !s.empty() && name_chars_ok(s) && valid_utf8(s); }

// ---- JSON

enum class Got { Yes, More, No };  // decided yes / needs more text / decided no

struct Span {
    Got got;
    size_t begin = 0, end = 0;
};

// The extent of the JSON object or array starting at t[p] (after whitespace), found by bracket
// matching outside strings. Nesting deeper than kMaxJsonDepth is refused, which also keeps
// nlohmann's recursive operations (compare, dump, destroy) shallow.
Span json_span(sv t, size_t p) {
    p = skip_space(t, p);
    if (p >= t.size()) return {Got::More};
    if (t[p] != '{' && t[p] != '[') return {Got::No};
    std::string closers;
    bool in_string = false, escaped = false;
    for (size_t i = p; i < t.size(); ++i) {
        const char c = t[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (closers.size() >= kMaxJsonDepth) return {Got::No};
            closers.push_back(c == '{' ? '}' : ']');
        } else if (c == '}' || c == ']') {
            if (c != closers.back()) return {Got::No};
            closers.pop_back();
            if (closers.empty()) return {Got::Yes, p, i + 1};
        }
    }
    return {Got::More};
}

// Exactly one JSON object or array, surrounded by nothing but whitespace.
std::optional<json> parse_json_text(sv s) {
    const Span span = json_span(s, 0);
    if (span.got != Got::Yes || skip_space(s, span.end) != s.size()) return std::nullopt;
    json j = json::parse(s.data() + span.begin, s.data() + span.end, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

// Arguments must end up an object: absent/null is {}, a JSON string is decoded.
std::optional<json> normalize_args(const json* a) {
    if (!a || a->is_null()) return json::object();
    if (a->is_object()) return *a;
    if (a->is_string()) {
        const sv s = trim(a->get_ref<const std::string&>());
        if (s.empty()) return json::object();
        if (auto j = parse_json_text(s); j && j->is_object()) return j;
    }
    return std::nullopt;
}

const json* field(const json& o, const char* key) {
    const auto it = o.find(key);
    return it == o.end() ? nullptr : &*it;
}

// One call object in any of the JSON spellings: {"name"|"tool_name", "arguments"|"parameters",
// "id"|"tool_call_id"}, or OpenAI's {"type": "function", "function": {...}, "id"}.
std::optional<ToolCall> call_from_object(const json& o) {
    if (!o.is_object()) return std::nullopt;
    if (const json* type = field(o, "type"); type && type->is_string() && *type != "function") return std::nullopt;
    const json* fn = field(o, "function");
    const json& body = fn && fn->is_object() ? *fn : o;
    const json* name = field(body, "name");
    if (!name) name = field(body, "tool_name");
    if (!name || !name->is_string() || name->get_ref<const std::string&>().empty()) return std::nullopt;
    const json* args = field(body, "arguments");
    if (!args) args = field(body, "parameters");
    auto parsed = normalize_args(args);
    if (!parsed) return std::nullopt;
    ToolCall call{"", name->get<std::string>(), std::move(*parsed)};
    const json* id = field(o, "id");
    if (!id) id = field(o, "tool_call_id");
    if (id && id->is_string()) call.id = id->get<std::string>();
    return call;
}

// An object (one call) or a non-empty array of call objects; all of them must be calls.
bool calls_from_value(const json& v, std::vector<ToolCall>& out) {
    if (v.is_object()) {
        auto c = call_from_object(v);
        if (c) out.push_back(std::move(*c));
        return c.has_value();
    }
    if (!v.is_array() || v.empty()) return false;
    for (const json& item : v) {
        auto c = call_from_object(item);
        if (!c) return false;
        out.push_back(std::move(*c));
    }
    return true;
}

bool calls_from_text(sv s, std::vector<ToolCall>& out) {
    const auto j = parse_json_text(trim(s));
    return j && calls_from_value(*j, out);
}

// ---- regions: the text a tool-call marker opens

// got == Yes: t[start, end) is decided; its calls are taken when `valid` and every name is
// known, else the whole region stays content. No: the marker opens nothing (it becomes content).
struct Region {
    Got got;
    size_t end = 0;
    std::vector<ToolCall> calls{};
    bool valid = true;
};

Region region_no() { return {Got::No}; }
Region region_more(bool final) { return {final ? Got::No : Got::More}; }

// A JSON object/array of calls starting at t[p].
Region json_calls_region(sv t, size_t p, bool final) {
    const Span s = json_span(t, p);
    if (s.got != Got::Yes) return s.got == Got::More ? region_more(final) : region_no();
    Region r{Got::Yes, s.end};
    r.valid = calls_from_text(t.substr(s.begin, s.end - s.begin), r.calls);
    return r;
}

Region hermes_region(sv t, size_t p, bool final) {
    const size_t body = p + kHermesOpen.size();
    const size_t close = t.find(kHermesClose, body);
    const size_t next_open = t.find(kHermesOpen, body);
    if (close != npos && (next_open == npos || close < next_open)) {
        Region r{Got::Yes, close + kHermesClose.size()};
        r.valid = calls_from_text(t.substr(body, close - body), r.calls);
        return r;
    }
    // No closing tag (yet): at the end, or when another call opens first, take the JSON alone.
    if (!final && next_open == npos) return {Got::More};
    return json_calls_region(t, body, final);
}

// Llama 3.x bare JSON at t[p] == '{': a call object, and a ';' that separates it from the next.
Region llama_object_region(sv t, size_t p, bool final) {
    const Span s = json_span(t, p);
    if (s.got != Got::Yes) return s.got == Got::More ? region_more(final) : region_no();
    Region r{Got::Yes, s.end};
    const auto j = parse_json_text(t.substr(s.begin, s.end - s.begin));
    r.valid =
        j && j->is_object() && (j->contains("parameters") || j->contains("arguments")) && calls_from_value(*j, r.calls);
    const size_t q = skip_space(t, s.end);
    if (q == t.size() && !final) return {Got::More};
    if (q < t.size() && t[q] == ';') r.end = q + 1;
    return r;
}

// Does '{' at t[p] start what may be a Llama 3 call ({"name" or {"type")?
Got llama_object_start(sv t, size_t p) {
    const size_t q = skip_space(t, p + 1);
    Got got = Got::No;
    for (sv key : {sv("\"name\""), sv("\"type\"")}) {
        if (starts_at(t, q, key)) return Got::Yes;
        if (prefix_of(t, q, key)) got = Got::More;
    }
    return got;
}

// <|python_tag|> then a JSON call, or code for the `python` tool (running to the end).
Region python_tag_region(sv t, size_t p, bool final) {
    const size_t q = skip_space(t, p + kPythonTag.size());
    if (q == t.size()) return region_more(final);
    if (t[q] == '{') return llama_object_region(t, q, final);
    if (!final) return {Got::More};
    const sv code = trim(t.substr(q));
    if (!valid_utf8(code)) return region_no();
    Region r{Got::Yes, t.size()};
    r.calls.push_back(ToolCall{"", "python", json{{"code", std::string(code)}}});
    return r;
}

// <function=NAME>{json}</function> (the closing tag may be missing).
Region functionary_region(sv t, size_t p, bool final) {
    const size_t name_at = p + kFunctionOpen.size();
    const size_t gt = t.find('>', name_at);
    if (gt == npos) {
        return name_chars_ok(t.substr(name_at)) ? region_more(final) : region_no();
    }
    const sv name = t.substr(name_at, gt - name_at);
    if (!valid_name(name)) return region_no();
    const Span s = json_span(t, gt + 1);
    if (s.got != Got::Yes) return s.got == Got::More ? region_more(final) : region_no();
    Region r{Got::Yes, s.end};
    if (prefix_of(t, s.end, kFunctionClose) && !final) return {Got::More};
    if (starts_at(t, s.end, kFunctionClose)) r.end = s.end + kFunctionClose.size();
    const json args = json::parse(t.data() + s.begin, t.data() + s.end, nullptr, false);
    auto parsed = args.is_discarded() ? std::nullopt : normalize_args(&args);
    r.valid = parsed.has_value();
    if (parsed) r.calls.push_back(ToolCall{"", std::string(name), std::move(*parsed)});
    return r;
}

// functools[{...}, ...]
Region firefunction_region(sv t, size_t p, bool final) {
    const size_t q = skip_space(t, p + kFunctools.size());
    if (q == t.size()) return region_more(final);
    if (t[q] != '[') return region_no();
    return json_calls_region(t, q, final);
}

// Action: ```json [{"tool_name": .., "parameters": ..}] ``` (the fence is optional).
Region command_r_region(sv t, size_t p, bool final) {
    size_t q = skip_space(t, p + kAction.size());
    if (q == t.size() || (prefix_of(t, q, kFence) && q < t.size())) return region_more(final);
    const bool fenced = starts_at(t, q, kFence);
    if (fenced) {
        q += kFence.size();
        if (prefix_of(t, q, "json") && q < t.size()) return region_more(final);
        if (starts_at(t, q, "json")) q += 4;
    }
    Region r = json_calls_region(t, q, final);
    if (r.got != Got::Yes) return r;
    // "directly-answer" is Command-R's way of calling nothing.
    std::erase_if(r.calls,
                  [](const ToolCall& c) { return c.name == "directly-answer" || c.name == "directly_answer"; });
    if (fenced) {
        const size_t f = skip_space(t, r.end);
        if (prefix_of(t, f, kFence) && !final) return {Got::More};
        if (starts_at(t, f, kFence)) r.end = f + kFence.size();
    }
    return r;
}

// One DeepSeek call between <｜tool▁call▁begin｜> and <｜tool▁call▁end｜>: R1's
// "function<｜tool▁sep｜>NAME\n```json\n{..}\n```" or V3.1's "NAME<｜tool▁sep｜>{..}".
std::optional<ToolCall> deepseek_call(sv inner) {
    const size_t sep = inner.find(kDsSep);
    if (sep == npos) return std::nullopt;
    const sv head = trim(inner.substr(0, sep)), tail = inner.substr(sep + kDsSep.size());
    sv name, args;
    if (head.empty() || head == "function") {
        const size_t stop = tail.find_first_of("\n`{");
        name = trim(tail.substr(0, stop));
        args = stop == npos ? sv{} : tail.substr(stop);
    } else {
        name = head;
        args = tail;
    }
    args = trim(args);
    if (args.starts_with(kFence)) {
        args.remove_prefix(kFence.size());
        if (args.starts_with("json")) args.remove_prefix(4);
        if (args.ends_with(kFence)) args.remove_suffix(kFence.size());
    }
    if (!valid_name(name)) return std::nullopt;
    std::optional<json> parsed = json::object();
    if (!trim(args).empty()) {
        const auto j = parse_json_text(trim(args));
        parsed = j ? normalize_args(&*j) : std::nullopt;
    }
    if (!parsed) return std::nullopt;
    return ToolCall{"", std::string(name), std::move(*parsed)};
}

// <｜tool▁calls▁begin｜> (or a bare <｜tool▁call▁begin｜>), calls, <｜tool▁calls▁end｜>. The outer
// end marker may be missing (the distilled models' own template never writes it for one call).
Region deepseek_region(sv t, size_t p, bool final) {
    size_t q = starts_at(t, p, kDsCallsBegin) ? p + kDsCallsBegin.size() : p;
    Region r{Got::Yes, q};
    for (;;) {
        q = skip_space(t, q);
        if (starts_at(t, q, kDsCallsEnd)) {
            r.end = q + kDsCallsEnd.size();
            break;
        }
        if (starts_at(t, q, kDsCallBegin)) {
            const size_t body = q + kDsCallBegin.size();
            const size_t close = t.find(kDsCallEnd, body);
            if (close == npos) {
                if (!final) return {Got::More};
                break;
            }
            auto call = deepseek_call(t.substr(body, close - body));
            if (call)
                r.calls.push_back(std::move(*call));
            else
                r.valid = false;
            q = r.end = close + kDsCallEnd.size();
            continue;
        }
        if (!final && (prefix_of(t, q, kDsCallsEnd) || prefix_of(t, q, kDsCallBegin))) return {Got::More};
        break;
    }
    if (r.calls.empty() && r.valid) return region_no();
    return r;
}

// ---- the scanner

struct Names {
    bool any = true;
    std::vector<std::string> list;
    bool known(const std::string& n) const { return any || std::find(list.begin(), list.end(), n) != list.end(); }
};

Names names_of(const json& tools) {
    Names n;
    if (!tools.is_array() || tools.empty()) return n;
    n.any = false;
    for (const json& t : tools) {
        if (!t.is_object()) continue;
        const json* fn = field(t, "function");
        const json& body = fn && fn->is_object() ? *fn : t;
        if (const json* name = field(body, "name"); name && name->is_string())
            n.list.push_back(name->get<std::string>());
    }
    return n;
}

const std::vector<sv>& openers(ToolCallFormat f) {
    static const std::vector<sv> none{kThinkOpen}, hermes{kThinkOpen, kHermesOpen}, llama{kThinkOpen, kPythonTag},
        mistral{kThinkOpen, kMistralOpen}, functionary{kThinkOpen, kFunctionOpen, kPythonTag},
        firefunction{kThinkOpen, kFunctools}, command_r{kThinkOpen, kAction},
        deepseek{kThinkOpen, kDsCallsBegin, kDsCallBegin};
    switch (f) {
        case ToolCallFormat::None: return none;
        case ToolCallFormat::Hermes: return hermes;
        case ToolCallFormat::Llama3Json: return llama;
        case ToolCallFormat::MistralNemo: return mistral;
        case ToolCallFormat::FunctionaryV31: return functionary;
        case ToolCallFormat::FireFunctionV2: return firefunction;
        case ToolCallFormat::CommandR: return command_r;
        case ToolCallFormat::DeepSeekR1: return deepseek;
    }
    return none;
}

struct Opener {
    size_t pos = npos;
    sv marker;
    bool partial = false;  // t[pos..] may become the marker with more text
};

// The earliest opening marker at or after `from`, or a possible one cut off by the end.
Opener find_opener(ToolCallFormat f, sv t, size_t from, bool final) {
    Opener best;
    auto consider = [&](size_t pos, sv marker, bool partial) {
        if (pos < best.pos) best = {pos, marker, partial};
    };
    for (sv m : openers(f)) {
        if (const size_t p = t.find(m, from); p != npos) consider(p, m, false);
        if (final) continue;
        for (size_t k = std::min(m.size() - 1, t.size() - from); k > 0; --k)
            if (t.substr(t.size() - k) == m.substr(0, k)) {
                consider(t.size() - k, m, true);
                break;
            }
    }
    if (f == ToolCallFormat::Llama3Json)
        for (size_t p = t.find('{', from); p != npos && p < best.pos; p = t.find('{', p + 1)) {
            const Got g = llama_object_start(t, p);
            if (g == Got::Yes || (g == Got::More && !final)) {
                consider(p, kLlamaBrace, g == Got::More);
                break;
            }
        }
    return best;
}

Region parse_region(sv marker, sv t, size_t p, bool final) {
    if (marker == kHermesOpen) return hermes_region(t, p, final);
    if (marker == kPythonTag) return python_tag_region(t, p, final);
    if (marker == kLlamaBrace) return llama_object_region(t, p, final);
    if (marker == kMistralOpen) return json_calls_region(t, p + kMistralOpen.size(), final);
    if (marker == kFunctionOpen) return functionary_region(t, p, final);
    if (marker == kFunctools) return firefunction_region(t, p, final);
    if (marker == kAction) return command_r_region(t, p, final);
    return deepseek_region(t, p, final);
}

std::string new_id(ToolCallFormat f, const ParseOptions& options) {
    if (options.id_generator) return options.id_generator();
    static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const bool mistral = f == ToolCallFormat::MistralNemo;
    std::string id = mistral ? "" : "call_";
    for (int i = 0; i < (mistral ? 9 : 24); ++i) id += kAlnum[rng() % 62];
    return id;
}

struct Sink {
    std::string content, reasoning;
    std::vector<ToolCall> calls;
};

struct ScanConfig {
    ToolCallFormat format;
    const Names& names;
    const ParseOptions& options;
};

// Decides t[pos, ...) as far as it can; returns the offset up to which the text is decided
// (all of it when final). Never looks before pos, so a caller may drop the decided prefix.
size_t scan(const ScanConfig& cfg, sv t, size_t pos, bool final, bool& in_reasoning, Sink& out) {
    while (pos < t.size()) {
        if (in_reasoning) {
            const size_t close = t.find(kThinkClose, pos);
            if (close == npos) {
                size_t keep = t.size();
                if (!final)
                    for (size_t k = std::min(kThinkClose.size() - 1, t.size() - pos); k > 0; --k)
                        if (t.substr(t.size() - k) == kThinkClose.substr(0, k)) {
                            keep = t.size() - k;
                            break;
                        }
                out.reasoning.append(t.substr(pos, keep - pos));
                return keep;
            }
            out.reasoning.append(t.substr(pos, close - pos));
            pos = close + kThinkClose.size();
            in_reasoning = false;
            continue;
        }
        const Opener o = find_opener(cfg.format, t, pos, final);
        if (o.pos == npos) {
            out.content.append(t.substr(pos));
            return t.size();
        }
        out.content.append(t.substr(pos, o.pos - pos));
        pos = o.pos;
        if (o.partial) return pos;
        if (o.marker == kThinkOpen) {
            in_reasoning = true;
            pos += kThinkOpen.size();
            continue;
        }
        Region r = parse_region(o.marker, t, pos, final);
        if (r.got == Got::More) return pos;
        if (r.got == Got::No) {
            out.content.append(o.marker);
            pos += o.marker.size();
            continue;
        }
        const bool take = r.valid && std::all_of(r.calls.begin(), r.calls.end(),
                                                 [&](const ToolCall& c) { return cfg.names.known(c.name); });
        if (take) {
            for (ToolCall& c : r.calls) {
                if (c.id.empty()) c.id = new_id(cfg.format, cfg.options);
                out.calls.push_back(std::move(c));
            }
        } else {
            out.content.append(t.substr(pos, r.end - pos));
        }
        pos = r.end;
    }
    return pos;
}

bool contains(sv s, sv what) { return s.find(what) != npos; }

}  // namespace

const char* tool_call_format_name(ToolCallFormat f) {
    switch (f) {
        case ToolCallFormat::None: return "none";
        case ToolCallFormat::Hermes: return "hermes";
        case ToolCallFormat::Llama3Json: return "llama3-json";
        case ToolCallFormat::MistralNemo: return "mistral-nemo";
        case ToolCallFormat::FunctionaryV31: return "functionary-v3.1";
        case ToolCallFormat::FireFunctionV2: return "firefunction-v2";
        case ToolCallFormat::CommandR: return "command-r";
        case ToolCallFormat::DeepSeekR1: return "deepseek-r1";
    }
    return "none";
}

ToolCallFormat detect_tool_call_format(std::string_view tmpl) {
    // Most specific markers first: functionary's template also mentions <|python_tag|> and
    // ipython, firefunction's uses Llama 3 headers.
    if (contains(tmpl, "tool▁calls▁begin") || contains(tmpl, "tool▁call▁begin")) return ToolCallFormat::DeepSeekR1;
    if (contains(tmpl, kMistralOpen)) return ToolCallFormat::MistralNemo;
    if (contains(tmpl, kFunctionOpen)) return ToolCallFormat::FunctionaryV31;
    if (contains(tmpl, "functools[")) return ToolCallFormat::FireFunctionV2;
    if (contains(tmpl, "<|CHATBOT_TOKEN|>") && contains(tmpl, kAction)) return ToolCallFormat::CommandR;
    if (contains(tmpl, kHermesOpen)) return ToolCallFormat::Hermes;
    if (contains(tmpl, "<|start_header_id|>") &&
        (contains(tmpl, kPythonTag) || contains(tmpl, "ipython") || contains(tmpl, "\"parameters\"")))
        return ToolCallFormat::Llama3Json;
    return ToolCallFormat::None;
}

bool prompt_opens_reasoning(std::string_view prompt) {
    size_t e = prompt.size();
    while (e > 0 && is_space(prompt[e - 1])) --e;
    return prompt.substr(0, e).ends_with(kThinkOpen);
}

ParsedOutput parse_model_output(ToolCallFormat format, std::string_view text, const nlohmann::json& tools,
                                const ParseOptions& options) {
    const Names names = names_of(tools);
    bool in_reasoning = options.reasoning_open;
    if (!in_reasoning) {  // "</think>" before any "<think>": the prompt opened the block
        const size_t close = text.find(kThinkClose);
        in_reasoning = close != npos && text.substr(0, close).find(kThinkOpen) == npos;
    }
    Sink sink;
    scan(ScanConfig{format, names, options}, text, 0, true, in_reasoning, sink);
    return ParsedOutput{std::string(trim(sink.content)), std::string(trim(sink.reasoning)), std::move(sink.calls)};
}

// ---- streaming

void ToolCallStreamFilter::Emitter::add(std::string_view s) {
    if (!started) {
        const size_t b = skip_space(s, 0);
        s.remove_prefix(b);
    }
    size_t e = s.size();
    while (e > 0 && is_space(s[e - 1])) --e;
    if (e == 0) {
        held_space.append(s);
        return;
    }
    out += held_space;
    out.append(s.substr(0, e));
    held_space.assign(s.substr(e));
    started = true;
}

std::string ToolCallStreamFilter::Emitter::take() { return std::exchange(out, {}); }

ToolCallStreamFilter::ToolCallStreamFilter(ToolCallFormat format, nlohmann::json tools, ParseOptions options)
    : format_(format), options_(std::move(options)), in_reasoning_(options_.reasoning_open) {
    Names n = names_of(tools);
    any_tool_ = n.any;
    tool_names_ = std::move(n.list);
}

void ToolCallStreamFilter::advance(bool final) {
    const Names names{any_tool_, tool_names_};
    Sink sink;
    done_ = scan(ScanConfig{format_, names, options_}, buffer_, done_, final, in_reasoning_, sink);
    buffer_.erase(0, done_);  // the scanner never looks back
    done_ = 0;
    content_.add(sink.content);
    reasoning_.add(sink.reasoning);
    for (ToolCall& c : sink.calls) calls_.push_back(std::move(c));
}

std::string ToolCallStreamFilter::push(std::string_view delta) {
    buffer_.append(delta);
    advance(false);
    return content_.take();
}

std::string ToolCallStreamFilter::take_reasoning() { return reasoning_.take(); }

std::vector<ToolCall> ToolCallStreamFilter::take_tool_calls() { return std::exchange(calls_, {}); }

ParsedOutput ToolCallStreamFilter::finish() {
    advance(true);
    return ParsedOutput{content_.take(), reasoning_.take(), take_tool_calls()};
}

}  // namespace hearth
