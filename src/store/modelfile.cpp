// Modelfile parser and renderer.
#include "store/modelfile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace hearth::store {

ModelfileError::ModelfileError(int line, const std::string& message)
    : std::runtime_error(line > 0 ? "line " + std::to_string(line) + ": " + message : message),
      line_(line),
      message_(message) {}

// ---- Parameters

namespace {

constexpr std::array<ParameterSpec, 30> kParameters = {{
    // Runner options
    {"num_ctx", ParamType::Int, false, false},
    {"num_batch", ParamType::Int, false, false},
    {"num_gpu", ParamType::Int, false, false},
    {"main_gpu", ParamType::Int, false, false},
    {"use_mmap", ParamType::Bool, false, false},
    {"num_thread", ParamType::Int, false, false},
    // Predict options
    {"num_keep", ParamType::Int, false, false},
    {"seed", ParamType::Int, false, false},
    {"num_predict", ParamType::Int, false, false},
    {"top_k", ParamType::Int, false, false},
    {"top_p", ParamType::Float, false, false},
    {"min_p", ParamType::Float, false, false},
    {"typical_p", ParamType::Float, false, false},
    {"repeat_last_n", ParamType::Int, false, false},
    {"temperature", ParamType::Float, false, false},
    {"repeat_penalty", ParamType::Float, false, false},
    {"presence_penalty", ParamType::Float, false, false},
    {"frequency_penalty", ParamType::Float, false, false},
    {"stop", ParamType::String, true, false},
    // Deprecated: accepted, ignored
    {"penalize_newline", ParamType::Bool, false, true},
    {"low_vram", ParamType::Bool, false, true},
    {"f16_kv", ParamType::Bool, false, true},
    {"logits_all", ParamType::Bool, false, true},
    {"vocab_only", ParamType::Bool, false, true},
    {"use_mlock", ParamType::Bool, false, true},
    {"numa", ParamType::Bool, false, true},
    {"mirostat", ParamType::Int, false, true},
    {"mirostat_tau", ParamType::Float, false, true},
    {"mirostat_eta", ParamType::Float, false, true},
    {"tfs_z", ParamType::Float, false, true},
}};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

// The shortest decimal text of a double.
std::string shortest(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

int64_t parse_int(std::string_view name, std::string_view s) {
    std::string_view digits = s;
    if (digits.starts_with('+')) digits.remove_prefix(1);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || digits.starts_with('+') || ec != std::errc() || ptr != digits.data() + digits.size())
        throw std::invalid_argument("invalid int value for " + std::string(name) + ": \"" + std::string(s) + "\"");
    return v;
}

double parse_float(std::string_view name, std::string_view s) {
    std::string_view t = s;
    if (t.starts_with('+')) t.remove_prefix(1);
    double v = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    const bool ok = !t.empty() && !t.starts_with('+') && ec == std::errc() && ptr == t.data() + t.size() &&
                    std::isfinite(v) && std::fabs(v) <= std::numeric_limits<float>::max();
    if (!ok) throw std::invalid_argument("invalid float value for " + std::string(name) + ": \"" + std::string(s) + "\"");
    // Ollama keeps float32: round, then take the shortest text that reads back as that float.
    const float f = static_cast<float>(v);
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, f);
    double back = 0;
    std::from_chars(buf, r.ptr, back);
    return back;
}

bool parse_bool(std::string_view name, std::string_view s) {
    // Go's strconv.ParseBool.
    for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"})
        if (s == t) return true;
    for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"})
        if (s == f) return false;
    throw std::invalid_argument("invalid bool value for " + std::string(name) + ": \"" + std::string(s) + "\"");
}

}  // namespace

std::span<const ParameterSpec> parameter_specs() { return kParameters; }

const ParameterSpec* find_parameter(std::string_view name) {
    for (const ParameterSpec& s : kParameters)
        if (iequals(s.name, name)) return &s;
    return nullptr;
}

Parameter Parameter::make(std::string_view name, std::string_view value) {
    const ParameterSpec* spec = find_parameter(name);
    if (!spec) throw std::invalid_argument("unknown parameter '" + std::string(name) + "'");
    Parameter p;
    p.name = std::string(spec->name);
    p.value = std::string(value);
    switch (spec->type) {
        case ParamType::Int: p.typed = parse_int(spec->name, value); break;
        case ParamType::Float: p.typed = parse_float(spec->name, value); break;
        case ParamType::Bool: p.typed = parse_bool(spec->name, value); break;
        case ParamType::String: p.typed = std::string(value); break;
    }
    return p;
}

// ---- FROM

std::optional<Digest> from_blob_digest(std::string_view from) {
    if (!from.starts_with('@')) return std::nullopt;
    return Digest::try_parse(from.substr(1));
}

FromKind classify_from(std::string_view v) {
    if (v.starts_with('@')) return FromKind::Blob;
    if (v.starts_with('/') || v.starts_with("./") || v.starts_with("../") || v.starts_with('~') || v == "." ||
        v == ".." || v.find('\\') != std::string_view::npos)
        return FromKind::File;
    if (v.size() >= 5 && iequals(v.substr(v.size() - 5), ".gguf")) return FromKind::File;
    if (ModelName::try_parse(v)) return FromKind::Model;
    return FromKind::File;
}

// ---- Parser

namespace {

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {
        if (s_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
    }

    Modelfile run() {
        Modelfile mf;
        while (true) {
            skip_space_and_newlines();
            if (at_end()) break;
            if (s_[pos_] == '#') {
                while (!at_end() && s_[pos_] != '\n') ++pos_;
                continue;
            }
            instruction(mf);
        }
        if (mf.from.empty())
            throw ModelfileError(0, "no FROM instruction (a Modelfile needs FROM <model name, .gguf file or "
                                    "@sha256:digest>)");
        return mf;
    }

private:
    std::string_view s_;
    size_t pos_ = 0;
    int line_ = 1;

    bool at_end() const { return pos_ >= s_.size(); }
    static bool blank(char c) { return c == ' ' || c == '\t'; }
    bool at_line_end() const { return at_end() || s_[pos_] == '\n' || (s_[pos_] == '\r' && (pos_ + 1 >= s_.size() || s_[pos_ + 1] == '\n')); }

    [[noreturn]] void fail(const std::string& msg, int line = 0) const { throw ModelfileError(line ? line : line_, msg); }

    void skip_space_and_newlines() {
        while (!at_end() && (blank(s_[pos_]) || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            if (s_[pos_] == '\n') ++line_;
            ++pos_;
        }
    }
    void skip_blanks() {
        while (!at_end() && blank(s_[pos_])) ++pos_;
    }
    // A run of characters up to a blank or the end of the line.
    std::string_view word() {
        size_t start = pos_;
        while (!at_end() && !blank(s_[pos_]) && !at_line_end()) ++pos_;
        return s_.substr(start, pos_ - start);
    }

    static std::string shown(std::string_view w) {
        std::string out(w.substr(0, 60));
        for (char& c : out)
            if (static_cast<unsigned char>(c) < 0x20) c = '?';
        return out + (w.size() > 60 ? "..." : "");
    }

    void instruction(Modelfile& mf) {
        const std::string_view kw = word();
        const std::string k = lowercase(kw);
        static constexpr std::string_view kKnown[] = {"from", "parameter", "template", "system",
                                                      "adapter", "license", "message"};
        if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown))
            fail("unknown instruction \"" + shown(kw) +
                 "\": expected FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE or MESSAGE");
        std::string upper = k;
        for (char& c : upper) c = static_cast<char>(c - 'a' + 'A');
        skip_blanks();

        if (k == "parameter") {
            const std::string_view name = word();
            if (name.empty()) fail("PARAMETER needs a name and a value");
            if (!std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
                }))
                fail("invalid parameter name \"" + shown(name) + "\"");
            if (!find_parameter(name)) fail("unknown parameter \"" + shown(name) + "\"");
            skip_blanks();
            const int line = line_;
            std::string value = read_value("PARAMETER " + std::string(name));
            try {
                mf.parameters.push_back(Parameter::make(name, value));
            } catch (const std::invalid_argument& e) {
                fail(e.what(), line);
            }
            return;
        }
        if (k == "message") {
            const std::string_view role_word = word();
            if (role_word.empty()) fail("MESSAGE needs a role and a value");
            std::string role = lowercase(role_word);
            if (role != "system" && role != "user" && role != "assistant" && role != "tool")
                fail("invalid message role \"" + shown(role_word) + "\": expected system, user, assistant or tool");
            skip_blanks();
            mf.messages.push_back(Message{std::move(role), read_value("MESSAGE")});
            return;
        }

        const int line = line_;
        std::string value = read_value(upper);
        if (k == "from") {
            if (value.empty()) fail("FROM needs a model name, a file path or @sha256:<digest>", line);
            if (value.starts_with('@') && !from_blob_digest(value))
                fail("invalid blob reference \"" + shown(value) + "\": expected @sha256:<64 lowercase hex digits>", line);
            mf.from.push_back(std::move(value));
        } else if (k == "template") {
            mf.template_text = std::move(value);
        } else if (k == "system") {
            mf.system = std::move(value);
        } else if (k == "adapter") {
            if (value.empty()) fail("ADAPTER needs a file path", line);
            mf.adapters.push_back(std::move(value));
        } else {  // license
            mf.licenses.push_back(std::move(value));
        }
    }

    // After a closing quote: only blanks until the end of the line.
    void expect_line_end(const std::string& what) {
        skip_blanks();
        if (!at_line_end()) fail("unexpected text after the closing quote of " + what);
    }

    std::string read_value(const std::string& what) {
        if (at_line_end()) fail("missing value for " + what);
        const int open_line = line_;
        if (s_.substr(pos_).starts_with("\"\"\"")) {
            size_t close = s_.find("\"\"\"", pos_ + 3);
            if (close == std::string_view::npos)
                fail("unterminated \"\"\" in " + what + " (opened on this line)", open_line);
            std::string value(s_.substr(pos_ + 3, close - pos_ - 3));
            line_ += static_cast<int>(std::count(value.begin(), value.end(), '\n'));
            pos_ = close + 3;
            expect_line_end(what);
            return value;
        }
        if (s_[pos_] == '"') {
            std::string value;
            ++pos_;
            while (true) {
                if (at_end()) fail("unterminated \" in " + what + " (opened on this line)", open_line);
                char c = s_[pos_++];
                if (c == '"') break;
                if (c == '\\' && !at_end() && (s_[pos_] == '"' || s_[pos_] == '\\')) {
                    value += s_[pos_++];
                    continue;
                }
                if (c == '\n') ++line_;
                value += c;
            }
            expect_line_end(what);
            return value;
        }
        size_t start = pos_;
        while (!at_end() && s_[pos_] != '\n') ++pos_;
        std::string_view v = s_.substr(start, pos_ - start);
        while (!v.empty() && (blank(v.back()) || v.back() == '\r')) v.remove_suffix(1);
        if (v.empty()) fail("missing value for " + what);
        return std::string(v);
    }
};

}  // namespace

namespace {

// The length of the well-formed UTF-8 sequence at s[i] (no overlongs, surrogates or code
// points past U+10FFFF), or 0.
size_t utf8_length(std::string_view s, size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return 1;
    const size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    uint32_t cp = c & (0x7Fu >> n);
    for (size_t k = 1; k < n; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3Fu);
    }
    const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// Ollama reads a Modelfile rune by rune (Go's bufio.Reader.ReadRune): a byte that does not
// start a well-formed UTF-8 sequence reads as U+FFFD. Doing the same keeps every value valid
// UTF-8, so the params and messages blobs (JSON) can always be written.
std::string replace_invalid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8_length(s, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

}  // namespace

Modelfile Modelfile::parse(std::string_view text) {
    for (size_t i = 0; i < text.size();) {
        const size_t n = utf8_length(text, i);
        if (n == 0) {
            const std::string fixed = replace_invalid_utf8(text);
            return Parser(fixed).run();
        }
        i += n;
    }
    return Parser(text).run();
}

// ---- Rendering

std::string quote_modelfile_value(std::string_view v) {
    const bool bare = !v.empty() && v.find_first_of("\r\n") == std::string_view::npos && v.front() != ' ' &&
                      v.front() != '\t' && v.front() != '"' && v.back() != ' ' && v.back() != '\t';
    if (bare) return std::string(v);
    if (v.find_first_of("\"\\") == std::string_view::npos) return "\"" + std::string(v) + "\"";
    if (v.find("\"\"\"") == std::string_view::npos && v.back() != '"') return "\"\"\"" + std::string(v) + "\"\"\"";
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

std::string Modelfile::render(std::string_view header_name) const {
    std::string out;
    if (!header_name.empty()) {
        out += "# Modelfile generated by \"hearth show\"\n";
        out += "# To build a new Modelfile based on this, replace FROM with:\n";
        out += "# FROM " + std::string(header_name) + "\n\n";
    }
    auto line = [&](std::string_view keyword, std::string_view value) {
        out += keyword;
        out += ' ';
        out += quote_modelfile_value(value);
        out += '\n';
    };
    for (const std::string& f : from) line("FROM", f);
    for (const std::string& a : adapters) line("ADAPTER", a);
    if (template_text) line("TEMPLATE", *template_text);
    if (system) line("SYSTEM", *system);
    for (const Parameter& p : parameters) line("PARAMETER " + p.name, p.value);
    for (const std::string& l : licenses) line("LICENSE", l);
    for (const Message& m : messages) line("MESSAGE " + m.role, m.content);
    return out;
}

std::string Modelfile::params_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const Parameter& p : parameters) {
        const ParameterSpec* spec = find_parameter(p.name);
        if (!spec || spec->deprecated) continue;
        if (spec->repeatable) {
            nlohmann::json& arr = j[p.name];
            if (!arr.is_array()) arr = nlohmann::json::array();
            arr.push_back(p.value);
            continue;
        }
        std::visit([&](const auto& v) { j[p.name] = v; }, p.typed);
    }
    return j.dump();
}

std::string Modelfile::messages_json() const {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const Message& m : messages) arr.push_back(nlohmann::ordered_json{{"role", m.role}, {"content", m.content}});
    return arr.dump();
}

std::vector<Parameter> Modelfile::parameters_from_json(std::string_view text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("params: not JSON (") + e.what() + ")");
    }
    if (!j.is_object()) throw std::invalid_argument("params: not a JSON object");
    auto text_of = [](const nlohmann::json& v) -> std::optional<std::string> {
        if (v.is_string()) return v.get<std::string>();
        if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
        if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
        if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
        if (v.is_number_float()) return shortest(v.get<double>());
        return std::nullopt;
    };
    std::vector<Parameter> out;
    for (const auto& [key, value] : j.items()) {
        if (!find_parameter(key)) continue;
        std::vector<nlohmann::json> items = value.is_array() ? value.get<std::vector<nlohmann::json>>()
                                                             : std::vector<nlohmann::json>{value};
        for (const nlohmann::json& item : items) {
            auto t = text_of(item);
            if (!t) throw std::invalid_argument("params: unsupported value for " + key);
            out.push_back(Parameter::make(key, *t));
        }
    }
    return out;
}

std::vector<Message> Modelfile::messages_from_json(std::string_view text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("messages: not JSON (") + e.what() + ")");
    }
    if (!j.is_array()) throw std::invalid_argument("messages: not a JSON array");
    std::vector<Message> out;
    for (const auto& m : j) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
            throw std::invalid_argument("messages: an entry has no role");
        Message msg;
        msg.role = m["role"].get<std::string>();
        if (auto c = m.find("content"); c != m.end() && c->is_string()) msg.content = c->get<std::string>();
        out.push_back(std::move(msg));
    }
    return out;
}

}  // namespace hearth::store
