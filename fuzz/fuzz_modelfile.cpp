// libFuzzer target for the Modelfile parser (store/modelfile): the input is Modelfile text.
//
// Checks (the contract in modelfile.h): parse() throws nothing but ModelfileError, with a line
// inside the text; a Modelfile it accepts has a FROM and renders to text that parses back to
// the same Modelfile (with and without the "hearth show" header); the params and messages blobs
// are JSON that parameters_from_json / messages_from_json read back to the same values; each
// FROM classifies, and a blob FROM yields its digest.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "store/modelfile.h"

using namespace hearth::store;

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "fuzz_modelfile: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::abort();
}

Modelfile reparse(const std::string& text, const char* what) {
    try {
        return Modelfile::parse(text);
    } catch (const ModelfileError& e) {
        finding(what, std::string(e.what()) + "\n--- rendered:\n" + text);
    }
}

// The parameters the params blob keeps: non-deprecated ones, the last value of each (every
// value of `stop`), in params_json's order (sorted by name).
void check_blobs(const Modelfile& mf) {
    std::string params, messages;
    try {
        params = mf.params_json();
        messages = mf.messages_json();
    } catch (const std::exception& e) {
        finding("params_json / messages_json threw", e.what());
    }
    std::vector<Parameter> back;
    try {
        back = Modelfile::parameters_from_json(params);
    } catch (const std::exception& e) {
        finding("parameters_from_json rejected params_json's output", std::string(e.what()) + "\n" + params);
    }
    for (const Parameter& p : back) {
        const ParameterSpec* spec = find_parameter(p.name);
        if (!spec || spec->deprecated) finding("parameters_from_json returned a parameter params_json leaves out", p.name);
        // The typed value must be the one the Modelfile gave (the last one, or one of the stops).
        const bool found = std::any_of(mf.parameters.begin(), mf.parameters.end(), [&](const Parameter& q) {
            return q.name == p.name && q.typed == p.typed;
        });
        if (!found) finding("a parameter changed through the params blob", p.name + " " + p.value + "\n" + params);
    }
    std::vector<Message> msgs;
    try {
        msgs = Modelfile::messages_from_json(messages);
    } catch (const std::exception& e) {
        finding("messages_from_json rejected messages_json's output", std::string(e.what()) + "\n" + messages);
    }
    if (msgs != mf.messages) finding("the messages changed through the messages blob", messages);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    Modelfile mf;
    try {
        mf = Modelfile::parse(text);
    } catch (const ModelfileError& e) {
        const int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
        if (e.line() < 0 || e.line() > lines) finding("an error line outside the text", e.what());
        return 0;
    }
    if (mf.from.empty()) finding("a Modelfile without FROM was accepted");
    for (const std::string& f : mf.from) {
        const FromKind kind = classify_from(f);
        if ((kind == FromKind::Blob) != f.starts_with('@')) finding("a FROM classified wrongly", f);
        if (kind == FromKind::Blob && !from_blob_digest(f)) finding("a blob FROM without a digest was accepted", f);
    }
    for (const Parameter& p : mf.parameters) {
        const ParameterSpec* spec = find_parameter(p.name);
        if (!spec || spec->name != p.name) finding("a parameter name that is not a known lowercase name", p.name);
    }

    const std::string rendered = mf.render();
    if (reparse(rendered, "the rendered Modelfile does not parse") != mf)
        finding("parse(render(m)) != m", "--- rendered:\n" + rendered);
    const std::string shown = mf.render("library/model:latest");
    if (reparse(shown, "the rendered Modelfile with a header does not parse") != mf)
        finding("parse(render(m, header)) != m", "--- rendered:\n" + shown);
    check_blobs(mf);
    return 0;
}
