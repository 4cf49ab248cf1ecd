// Modelfile parser and renderer: every instruction, quoting, comments, case, typed
// parameters, line-numbered errors, params/messages JSON, and parse(render(x)) == x.
#include <gtest/gtest.h>

#include <random>

#include "store/modelfile.h"

using namespace hearth::store;

namespace {

// The line of the ModelfileError the text raises (-1 when it parses).
int error_line(std::string_view text, std::string* message = nullptr) {
    try {
        Modelfile::parse(text);
    } catch (const ModelfileError& e) {
        if (message) *message = e.what();
        return e.line();
    }
    return -1;
}

}  // namespace

TEST(Modelfile, EveryInstruction) {
    const std::string text = R"(# A Modelfile
FROM llama3.2:1b
ADAPTER ./lora.gguf
TEMPLATE """{{ if .System }}<|system|>
{{ .System }}{{ end }}<|user|>
{{ .Prompt }}"""
SYSTEM You are a helpful "assistant".
PARAMETER temperature 0.7
PARAMETER num_ctx 4096
PARAMETER stop <|user|>
PARAMETER stop "<|end|>"
PARAMETER use_mmap false
LICENSE MIT
LICENSE """Apache
2.0"""
MESSAGE user Hello there
MESSAGE assistant "Hi! How can I help?"
MESSAGE system be brief
MESSAGE tool {"result": 4}
)";
    const Modelfile mf = Modelfile::parse(text);
    ASSERT_EQ(mf.from.size(), 1u);
    EXPECT_EQ(mf.base(), "llama3.2:1b");
    EXPECT_EQ(mf.adapters, std::vector<std::string>{"./lora.gguf"});
    EXPECT_EQ(mf.template_text, "{{ if .System }}<|system|>\n{{ .System }}{{ end }}<|user|>\n{{ .Prompt }}");
    EXPECT_EQ(mf.system, "You are a helpful \"assistant\".");
    ASSERT_EQ(mf.parameters.size(), 5u);
    EXPECT_EQ(mf.parameters[0].name, "temperature");
    EXPECT_EQ(std::get<double>(mf.parameters[0].typed), 0.7);
    EXPECT_EQ(std::get<int64_t>(mf.parameters[1].typed), 4096);
    EXPECT_EQ(mf.parameters[2].value, "<|user|>");
    EXPECT_EQ(mf.parameters[3].value, "<|end|>");
    EXPECT_EQ(std::get<std::string>(mf.parameters[3].typed), "<|end|>");
    EXPECT_EQ(std::get<bool>(mf.parameters[4].typed), false);
    EXPECT_EQ(mf.licenses, (std::vector<std::string>{"MIT", "Apache\n2.0"}));
    ASSERT_EQ(mf.messages.size(), 4u);
    EXPECT_EQ(mf.messages[0], (Message{"user", "Hello there"}));
    EXPECT_EQ(mf.messages[1], (Message{"assistant", "Hi! How can I help?"}));
    EXPECT_EQ(mf.messages[2], (Message{"system", "be brief"}));
    EXPECT_EQ(mf.messages[3], (Message{"tool", "{\"result\": 4}"}));
}

TEST(Modelfile, KeywordsParametersAndRolesIgnoreCase) {
    const Modelfile mf = Modelfile::parse("from base\nParameter Temperature 1\ntemplate t\nSyStEm s\n"
                                          "MESSAGE User hi\nLicense l\nadapter a.gguf\n");
    EXPECT_EQ(mf.base(), "base");
    EXPECT_EQ(mf.parameters[0].name, "temperature");
    EXPECT_EQ(mf.template_text, "t");
    EXPECT_EQ(mf.system, "s");
    EXPECT_EQ(mf.messages[0].role, "user");
    EXPECT_EQ(mf.licenses, std::vector<std::string>{"l"});
    EXPECT_EQ(mf.adapters, std::vector<std::string>{"a.gguf"});
}

TEST(Modelfile, QuotingForms) {
    // Triple quotes keep everything raw, newlines and quotes included.
    Modelfile mf = Modelfile::parse("FROM m\nTEMPLATE \"\"\"\n  \"a\" \\n b\n\"\"\"\n");
    EXPECT_EQ(mf.template_text, "\n  \"a\" \\n b\n");
    // Double quotes: \" and \\ are escapes, other backslashes stay; may span lines.
    mf = Modelfile::parse("FROM m\nSYSTEM \"say \\\"hi\\\" \\\\ C:\\new\"\n");
    EXPECT_EQ(mf.system, "say \"hi\" \\ C:\\new");
    mf = Modelfile::parse("FROM m\nSYSTEM \"line one\nline two\"\nPARAMETER seed 1\n");
    EXPECT_EQ(mf.system, "line one\nline two");
    EXPECT_EQ(mf.parameters.size(), 1u);
    // Quotes keep surrounding blanks; bare values are trimmed; "" is an empty value.
    mf = Modelfile::parse("FROM m\nSYSTEM \"  padded  \"\nLICENSE    spaced out   \t\nTEMPLATE \"\"\n");
    EXPECT_EQ(mf.system, "  padded  ");
    EXPECT_EQ(mf.licenses[0], "spaced out");
    EXPECT_EQ(mf.template_text, "");
    // Quotes inside a bare value are just characters; so is a '#'.
    mf = Modelfile::parse("FROM m\nSYSTEM a \"b\" c # not a comment\n");
    EXPECT_EQ(mf.system, "a \"b\" c # not a comment");
    // Blanks after a closing quote are fine.
    mf = Modelfile::parse("FROM m\nSYSTEM \"\"\"x\"\"\"   \nLICENSE \"y\"\t\n");
    EXPECT_EQ(mf.system, "x");
    EXPECT_EQ(mf.licenses[0], "y");
    // A template whose text ends right at the closing quotes on one line.
    mf = Modelfile::parse("FROM m\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"");
    EXPECT_EQ(mf.template_text, "{{ .Prompt }}");
}

TEST(Modelfile, CommentsBlankLinesCrlfAndBom) {
    const Modelfile mf = Modelfile::parse("\xEF\xBB\xBF# header\r\n\r\n   # indented comment\r\n"
                                          "FROM m\r\n\tSYSTEM s\r\nTEMPLATE \"\"\"a\r\nb\"\"\"\r\n#end");
    EXPECT_EQ(mf.base(), "m");
    EXPECT_EQ(mf.system, "s");
    EXPECT_EQ(mf.template_text, "a\r\nb");  // raw inside quotes
}

// Found by fuzz_modelfile: bytes that are not UTF-8 made params_json / messages_json throw
// (nlohmann refuses to write them). As Ollama reads runes, each such byte reads as U+FFFD.
TEST(Modelfile, InvalidUtf8ReadsAsReplacementCharacters) {
    const Modelfile mf = Modelfile::parse("FROM m\xff\nPARAMETER stop a\xC0\xAF" "b\nSYSTEM \xE2\x82\n"
                                          "MESSAGE user \xED\xA0\x80 \xF0\x9F\x8C\xA7\n");
    const std::string r = "\xEF\xBF\xBD";
    EXPECT_EQ(mf.base(), "m" + r);
    EXPECT_EQ(mf.parameters.at(0).value, "a" + r + r + "b");  // an overlong '/' is two bad bytes
    EXPECT_EQ(mf.system, r + r);                                // a truncated sequence, byte by byte
    EXPECT_EQ(mf.messages.at(0).content, r + r + r + " \xF0\x9F\x8C\xA7");  // a surrogate; a valid emoji stays
    EXPECT_EQ(mf.params_json(), "{\"stop\":[\"a" + r + r + "b\"]}");
    EXPECT_EQ(Modelfile::messages_from_json(mf.messages_json()), mf.messages);
    EXPECT_EQ(Modelfile::parse(mf.render()), mf);
}

TEST(Modelfile, RepeatedInstructions) {
    const Modelfile mf = Modelfile::parse("FROM model.gguf\nFROM ./mmproj.gguf\nTEMPLATE one\nTEMPLATE two\n"
                                          "SYSTEM a\nSYSTEM b\nPARAMETER stop x\nPARAMETER stop y\n");
    EXPECT_EQ(mf.from, (std::vector<std::string>{"model.gguf", "./mmproj.gguf"}));
    EXPECT_EQ(mf.template_text, "two");
    EXPECT_EQ(mf.system, "b");
    EXPECT_EQ(mf.parameters.size(), 2u);
}

TEST(Modelfile, ParameterTypes) {
    const Modelfile mf = Modelfile::parse(
        "FROM m\nPARAMETER num_predict -1\nPARAMETER seed +42\nPARAMETER top_k 40\nPARAMETER top_p 0.9\n"
        "PARAMETER min_p 1e-2\nPARAMETER typical_p 1\nPARAMETER repeat_penalty 1.1\nPARAMETER repeat_last_n 64\n"
        "PARAMETER presence_penalty -0.5\nPARAMETER frequency_penalty .25\nPARAMETER num_batch 512\n"
        "PARAMETER num_thread 8\nPARAMETER num_keep 4\nPARAMETER num_gpu 0\nPARAMETER main_gpu 0\n"
        "PARAMETER use_mmap True\nPARAMETER temperature 0.1\nPARAMETER mirostat 2\n");
    auto typed = [&](std::string_view name) -> const ParamValue& {
        for (const Parameter& p : mf.parameters)
            if (p.name == name) return p.typed;
        throw std::runtime_error("missing " + std::string(name));
    };
    EXPECT_EQ(std::get<int64_t>(typed("num_predict")), -1);
    EXPECT_EQ(std::get<int64_t>(typed("seed")), 42);
    EXPECT_EQ(std::get<double>(typed("min_p")), 0.01);
    EXPECT_EQ(std::get<double>(typed("typical_p")), 1.0);
    EXPECT_EQ(std::get<double>(typed("frequency_penalty")), 0.25);
    EXPECT_EQ(std::get<double>(typed("temperature")), 0.1);  // float32 0.1, shown as 0.1
    EXPECT_EQ(std::get<double>(typed("repeat_penalty")), 1.1);
    EXPECT_TRUE(std::get<bool>(typed("use_mmap")));
    EXPECT_EQ(std::get<int64_t>(typed("mirostat")), 2);
    EXPECT_EQ(mf.parameters[1].value, "+42");  // the text is kept as written

    EXPECT_TRUE(find_parameter("NUM_CTX"));
    EXPECT_EQ(find_parameter("stop")->type, ParamType::String);
    EXPECT_FALSE(find_parameter("unknown"));
    EXPECT_THROW(Parameter::make("num_ctx", "4k"), std::invalid_argument);
    EXPECT_THROW(Parameter::make("temperature", "warm"), std::invalid_argument);
    EXPECT_THROW(Parameter::make("temperature", "nan"), std::invalid_argument);
    EXPECT_THROW(Parameter::make("temperature", "1e300"), std::invalid_argument);
    EXPECT_THROW(Parameter::make("use_mmap", "yes"), std::invalid_argument);
    EXPECT_THROW(Parameter::make("seed", "99999999999999999999"), std::invalid_argument);
    EXPECT_THROW(Parameter::make("seed", "++1"), std::invalid_argument);
}

TEST(Modelfile, ErrorsCarryLineNumbers) {
    std::string m;
    EXPECT_EQ(error_line("FROM m\n\nBOGUS thing\n", &m), 3);
    EXPECT_NE(m.find("unknown instruction \"BOGUS\""), std::string::npos) << m;
    EXPECT_NE(m.find("line 3"), std::string::npos) << m;

    EXPECT_EQ(error_line("FROM m\nPARAMETER nope 1\n", &m), 2);
    EXPECT_NE(m.find("unknown parameter \"nope\""), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\n# c\nPARAMETER num_ctx big\n", &m), 3);
    EXPECT_NE(m.find("invalid int value for num_ctx"), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nPARAMETER temperature\n", &m), 2);
    EXPECT_NE(m.find("missing value"), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nPARAMETER\n"), 2);
    EXPECT_EQ(error_line("FROM m\nPARAMETER num-ctx 1\n", &m), 2);
    EXPECT_NE(m.find("invalid parameter name"), std::string::npos) << m;

    EXPECT_EQ(error_line("SYSTEM s\n", &m), 0);
    EXPECT_NE(m.find("no FROM"), std::string::npos) << m;
    EXPECT_EQ(error_line("", &m), 0);
    EXPECT_EQ(error_line("# only a comment\n"), 0);

    // Unterminated quotes report the line where they opened.
    EXPECT_EQ(error_line("FROM m\nSYSTEM ok\nTEMPLATE \"\"\"never\nclosed\n\n", &m), 3);
    EXPECT_NE(m.find("unterminated \"\"\""), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\n\n\nSYSTEM \"open\nstill open", &m), 4);
    EXPECT_NE(m.find("unterminated \""), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nSYSTEM \"ends with escape\\\"", &m), 2);

    EXPECT_EQ(error_line("FROM m\nSYSTEM \"quoted\" trailing\n", &m), 2);
    EXPECT_NE(m.find("after the closing quote"), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nTEMPLATE \"\"\"a\nb\"\"\" x\n", &m), 3);

    EXPECT_EQ(error_line("FROM m\nMESSAGE wizard hi\n", &m), 2);
    EXPECT_NE(m.find("invalid message role \"wizard\""), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nMESSAGE user\n"), 2);
    EXPECT_EQ(error_line("FROM\n", &m), 1);
    EXPECT_NE(m.find("missing value for FROM"), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nSYSTEM    \t\n"), 2);
    EXPECT_EQ(error_line("FROM \"\"\n"), 1);
    EXPECT_EQ(error_line("FROM @sha256:1234\n", &m), 1);
    EXPECT_NE(m.find("invalid blob reference"), std::string::npos) << m;
    EXPECT_EQ(error_line("FROM m\nSYSTEM\"x\"\n"), 2);  // the keyword needs a blank after it
    EXPECT_EQ(error_line("FROM m\n\"quoted\" start\n"), 2);

    // The line count runs through multi-line values.
    EXPECT_EQ(error_line("FROM m\nTEMPLATE \"\"\"1\n2\n3\"\"\"\nSYSTEM \"a\nb\"\nOOPS\n"), 7);
    try {
        Modelfile::parse("FROM m\nOOPS\n");
        FAIL();
    } catch (const ModelfileError& e) {
        EXPECT_EQ(e.line(), 2);
        EXPECT_EQ(std::string(e.what()), "line 2: " + e.message());
    }
}

TEST(Modelfile, FromKinds) {
    EXPECT_EQ(classify_from("llama3.2"), FromKind::Model);
    EXPECT_EQ(classify_from("hf.co/user/repo:Q4_K_M"), FromKind::Model);
    EXPECT_EQ(classify_from("registry.ollama.ai/library/qwen2:0.5b"), FromKind::Model);
    EXPECT_EQ(classify_from("./model.gguf"), FromKind::File);
    EXPECT_EQ(classify_from("model.GGUF"), FromKind::File);
    EXPECT_EQ(classify_from("/abs/path/model"), FromKind::File);
    EXPECT_EQ(classify_from("~/models/x.gguf"), FromKind::File);
    EXPECT_EQ(classify_from("../weights"), FromKind::File);
    EXPECT_EQ(classify_from("C:\\models\\x"), FromKind::File);
    EXPECT_EQ(classify_from("dir with spaces"), FromKind::File);
    const std::string digest = "sha256:" + std::string(64, 'e');
    EXPECT_EQ(classify_from("@" + digest), FromKind::Blob);
    EXPECT_EQ(from_blob_digest("@" + digest), Digest::parse(digest));
    EXPECT_FALSE(from_blob_digest(digest));
    EXPECT_EQ(Modelfile::parse("FROM @" + digest + "\n").base(), "@" + digest);
}

TEST(Modelfile, RenderOllamaStyle) {
    Modelfile mf;
    mf.from = {"/models/blobs/sha256-" + std::string(64, 'a')};
    mf.template_text = "{{ if .System }}<|system|>\n{{ .System }}{{ end }}\"x\" {{ .Prompt }}";
    mf.system = "Be concise.";
    mf.parameters = {Parameter::make("stop", "<|end|>"), Parameter::make("stop", "<|user|>"),
                     Parameter::make("temperature", "0.6")};
    mf.licenses = {"MIT License\nCopyright"};
    mf.messages = {{"user", "hi"}, {"assistant", " leading space"}};
    const std::string expected =
        "# Modelfile generated by \"hearth show\"\n"
        "# To build a new Modelfile based on this, replace FROM with:\n"
        "# FROM llama3.2:latest\n"
        "\n"
        "FROM /models/blobs/sha256-" + std::string(64, 'a') + "\n"
        "TEMPLATE \"\"\"{{ if .System }}<|system|>\n{{ .System }}{{ end }}\"x\" {{ .Prompt }}\"\"\"\n"
        "SYSTEM Be concise.\n"
        "PARAMETER stop <|end|>\n"
        "PARAMETER stop <|user|>\n"
        "PARAMETER temperature 0.6\n"
        "LICENSE \"MIT License\nCopyright\"\n"
        "MESSAGE user hi\n"
        "MESSAGE assistant \" leading space\"\n";
    EXPECT_EQ(mf.render("llama3.2:latest"), expected);
    EXPECT_EQ(Modelfile::parse(expected), mf);
    // Without a header name there is no comment header.
    EXPECT_EQ(mf.render().rfind("FROM ", 0), 0u);
    // Adapters follow FROM; every FROM is kept.
    mf.adapters = {"./adapter.gguf"};
    mf.from.push_back("./mmproj.gguf");
    const std::string r = mf.render();
    EXPECT_EQ(r.substr(0, r.find("TEMPLATE")), "FROM /models/blobs/sha256-" + std::string(64, 'a') +
                                                  "\nFROM ./mmproj.gguf\nADAPTER ./adapter.gguf\n");
    EXPECT_EQ(Modelfile::parse(r), mf);
}

TEST(Modelfile, QuoteChoices) {
    EXPECT_EQ(quote_modelfile_value("plain text"), "plain text");
    EXPECT_EQ(quote_modelfile_value(""), "\"\"");
    EXPECT_EQ(quote_modelfile_value(" lead"), "\" lead\"");
    EXPECT_EQ(quote_modelfile_value("two\nlines"), "\"two\nlines\"");
    EXPECT_EQ(quote_modelfile_value("\"quoted\""), "\"\\\"quoted\\\"\"");
    EXPECT_EQ(quote_modelfile_value("say \"hi\"\nok"), "\"\"\"say \"hi\"\nok\"\"\"");
    EXPECT_EQ(quote_modelfile_value("has \"\"\" inside\n"), "\"has \\\"\\\"\\\" inside\n\"");
    EXPECT_EQ(quote_modelfile_value("back\\slash "), "\"\"\"back\\slash \"\"\"");
    // Ending in a quote rules out """ (the closing quotes would be ambiguous): escaped.
    EXPECT_EQ(quote_modelfile_value("a\n\"b\""), "\"a\n\\\"b\\\"\"");
}

TEST(Modelfile, RoundTripTrickyValues) {
    const std::vector<std::string> values = {
        "", " ", "\t", "\n", "\r", "\r\n", "x", " x", "x ", "\"", "\"\"", "\"\"\"", "\"\"\"\"", "a\"", "\"a",
        "a\"\"\"b", "\\", "\\\\", "\\\"", "a\\", "#hash", "# not a comment\nline", "\"\"\"\n", "\n\"\"\"",
        std::string("nul\0byte", 8), "ümlaut ✓", "x\"\"\"\n\"", "PARAMETER stop x", "\n\nFROM evil\n",
        "ends with quote\n\"", "trailing backslash\n\\"};
    for (const std::string& v : values) {
        Modelfile mf;
        mf.from = {"base"};
        mf.template_text = v;
        mf.system = v;
        mf.licenses = {v, v};
        mf.messages = {{"user", v}, {"tool", v}};
        mf.parameters = {Parameter::make("stop", v)};
        if (!v.empty()) mf.adapters = {v};
        const std::string text = mf.render("x");
        Modelfile back;
        try {
            back = Modelfile::parse(text);
        } catch (const ModelfileError& e) {
            ADD_FAILURE() << "value " << testing::PrintToString(v) << ": " << e.what() << "\n" << text;
            continue;
        }
        EXPECT_EQ(back, mf) << "value " << testing::PrintToString(v) << "\n" << text;
    }
}

TEST(Modelfile, RoundTripRandom) {
    std::mt19937 rng(1234);
    const std::vector<std::string> alphabet = {"a", "Z", " ", "\t", "\n", "\r", "\"", "\\", "#", "'", "\xC3\xA9",
                                               std::string(1, '\0'), "{{", "}}", ":", "@"};
    auto random_value = [&](size_t max_len) {
        std::string s;
        size_t n = rng() % (max_len + 1);
        for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
        return s;
    };
    const std::vector<std::string> roles = {"system", "user", "assistant", "tool"};
    for (int iter = 0; iter < 3000; ++iter) {
        Modelfile mf;
        mf.from = {"base:tag"};
        if (rng() % 2) mf.from.push_back("./extra.gguf");
        if (rng() % 2) mf.template_text = random_value(12);
        if (rng() % 2) mf.system = random_value(12);
        for (size_t i = rng() % 3; i > 0; --i) mf.licenses.push_back(random_value(10));
        for (size_t i = rng() % 3; i > 0; --i) mf.messages.push_back({roles[rng() % roles.size()], random_value(10)});
        for (size_t i = rng() % 3; i > 0; --i) mf.parameters.push_back(Parameter::make("stop", random_value(8)));
        if (rng() % 2) mf.parameters.push_back(Parameter::make("num_ctx", std::to_string(rng() % 100000)));
        const std::string text = mf.render(rng() % 2 ? "name:tag" : "");
        Modelfile back;
        try {
            back = Modelfile::parse(text);
        } catch (const ModelfileError& e) {
            FAIL() << e.what() << "\n" << testing::PrintToString(text);
        }
        ASSERT_EQ(back, mf) << testing::PrintToString(text);
    }
}

TEST(Modelfile, ParamsAndMessagesJson) {
    const Modelfile mf = Modelfile::parse(
        "FROM m\nPARAMETER temperature 0.7\nPARAMETER stop <|a|>\nPARAMETER num_ctx 4096\nPARAMETER stop \"b c\"\n"
        "PARAMETER use_mmap false\nPARAMETER temperature 0.5\nPARAMETER mirostat 1\nPARAMETER top_p 0.9\n"
        "MESSAGE user hi\nMESSAGE assistant \"hello \\\"you\\\"\"\n");
    EXPECT_EQ(mf.params_json(),
              R"({"num_ctx":4096,"stop":["<|a|>","b c"],"temperature":0.5,"top_p":0.9,"use_mmap":false})");
    EXPECT_EQ(mf.messages_json(),
              R"([{"role":"user","content":"hi"},{"role":"assistant","content":"hello \"you\""}])");

    const std::vector<Parameter> back = Modelfile::parameters_from_json(mf.params_json());
    std::vector<std::string> shown;
    for (const Parameter& p : back) shown.push_back(p.name + "=" + p.value);
    EXPECT_EQ(shown, (std::vector<std::string>{"num_ctx=4096", "stop=<|a|>", "stop=b c", "temperature=0.5",
                                               "top_p=0.9", "use_mmap=false"}));
    EXPECT_EQ(Modelfile::messages_from_json(mf.messages_json()), mf.messages);
    // Values stored as other JSON types still render as their parameter's type.
    const auto loose = Modelfile::parameters_from_json(R"({"temperature":1,"num_ctx":2048.0,"unknown":3})");
    ASSERT_EQ(loose.size(), 2u);
    EXPECT_EQ(loose[0].name, "num_ctx");
    EXPECT_EQ(std::get<int64_t>(loose[0].typed), 2048);
    EXPECT_EQ(std::get<double>(loose[1].typed), 1.0);
    EXPECT_THROW(Modelfile::parameters_from_json("[1]"), std::invalid_argument);
    EXPECT_THROW(Modelfile::messages_from_json("{}"), std::invalid_argument);
    EXPECT_EQ(Modelfile().params_json(), "{}");
}

TEST(Modelfile, HostileInputDoesNotCrash) {
    std::mt19937 rng(99);
    const std::string pieces[] = {"FROM ", "PARAMETER ", "stop ", "num_ctx ", "\"", "\"\"\"", "\\", "\n", "\r",
                                  " ", "#", "MESSAGE ", "user ", "x", "\xFF", std::string(1, '\0'), "TEMPLATE "};
    for (int iter = 0; iter < 5000; ++iter) {
        std::string text;
        for (size_t i = rng() % 24; i > 0; --i) text += pieces[rng() % std::size(pieces)];
        try {
            Modelfile mf = Modelfile::parse(text);
            EXPECT_EQ(Modelfile::parse(mf.render()), mf);
        } catch (const ModelfileError& e) {
            EXPECT_GE(e.line(), 0);
        }
    }
}
