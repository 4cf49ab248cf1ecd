// template/ owns chat-template rendering: a sandboxed Jinja2 interpreter (lexer, parser,
// values, filters, tests, builtins) that renders a model's `tokenizer.chat_template` the way
// HuggingFace transformers does (jinja2 ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loopcontrols, transformers' tojson / raise_exception / strftime_now).
// Values are JSON-like data plus namespaces and callables; rendering is bounded by a step
// budget, a call-depth limit and an output-size cap. Every failure is a TemplateError.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace hearth {

// What went wrong, roughly in jinja2's exception vocabulary.
enum class TemplateErrorKind {
    Syntax,     // TemplateSyntaxError (parse time; line/column set)
    Raised,     // raise_exception(msg) from the template: what() is exactly msg
    Type,       // TypeError / ValueError / ZeroDivisionError and the like
    Undefined,  // UndefinedError: an undefined value was called, indexed, added, ...
    Security,   // SecurityError: the sandbox refused (list.append, dict.update, ...)
    Limit,      // step budget, call depth, nesting or output size exceeded
};

class TemplateError : public std::runtime_error {
public:
    TemplateError(TemplateErrorKind kind, const std::string& message, int line = 0, int column = 0);
    TemplateErrorKind kind() const { return kind_; }
    int line() const { return line_; }      // 1-based; 0 when unknown
    int column() const { return column_; }  // 1-based byte column; 0 when unknown

private:
    TemplateErrorKind kind_;
    int line_;
    int column_;
};

struct RenderOptions {
    uint64_t max_steps = 10'000'000;      // expression/statement evaluations (loops included)
    size_t max_output_bytes = 16u << 20;  // also bounds every intermediate string
    int max_call_depth = 200;             // nested macro / caller calls
    // jinja2's default Undefined raises when an attribute or item of an undefined value is taken
    // (`missing.attr`); that is what transformers does and the default here. When true, such
    // lookups yield another undefined instead, so `missing.a.b` renders as "".
    bool lenient_undefined = false;
    // strftime_now's clock (broken-down time). Empty: the current local time.
    std::function<std::tm()> now;
    // A fixed clock for tests and reproducible renders (month 1..12); tm_wday/tm_yday are filled.
    static std::function<std::tm()> fixed_time(int year, int month, int day, int hour = 0, int minute = 0,
                                               int second = 0);
};

struct Program;  // parsed template (template/ast.h)

// A parsed template is immutable: copies share it, and render() may run concurrently on several
// threads.
class Template {
public:
    Template();  // the empty template (renders "")

    // Parses with transformers' settings (trim_blocks, lstrip_blocks, loopcontrols, one trailing
    // newline dropped). Throws TemplateError(Syntax) with the line and column of the problem.
    static Template parse(std::string_view source);

    // Renders with `context`'s top-level keys as variables (messages, tools,
    // add_generation_prompt, bos_token, eos_token, ...). Pass an ordered_json to keep the key
    // order that tojson and dict.items() show; nlohmann::json sorts keys.
    std::string render(const nlohmann::json& context, const RenderOptions& options = {}) const;
    std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

private:
    explicit Template(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
    std::shared_ptr<const Program> program_;
};

using ChatTemplate = Template;

// ChatML fallback for models whose GGUF has no tokenizer.chat_template:
//   <|im_start|>{role}\n{content}<|im_end|>\n ... then <|im_start|>assistant\n when
//   add_generation_prompt is true. Non-string content renders as empty text.
const char* default_chat_template();

}  // namespace hearth
