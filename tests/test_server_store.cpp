// The daemon on top of the model store, over real loopback HTTP: blob uploads, /api/create
// (Ollama's JSON shape, the legacy Modelfile shape, quantize), /api/tags, /api/show,
// /api/copy, /api/delete, and generation with what a manifest adds (template, system,
// parameters, messages).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "gguf/gguf.h"
#include "http/client.h"
#include "model/synthetic.h"
#include "server/server.h"
#include "server/store_resolver.h"
#include "store/modelfile.h"
#include "store/store.h"
#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

const std::string kStories = "models/stories260K.gguf";
// Renders only the system prompt: the prompt is exactly the model's SYSTEM text.
const std::string kSystemOnly = "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% endif %}{% endfor %}";
// Renders every message's content, back to back.
const std::string kAllContent = "{% for m in messages %}{{ m.content }}{% endfor %}";

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<json> ndjson(const std::string& body) {
    std::vector<json> out;
    size_t start = 0;
    while (start < body.size()) {
        size_t nl = body.find('\n', start);
        if (nl == std::string::npos) nl = body.size();
        if (nl > start) out.push_back(json::parse(body.substr(start, nl - start)));
        start = nl + 1;
    }
    return out;
}

std::vector<std::string> statuses(const std::vector<json>& lines) {
    std::vector<std::string> out;
    for (const json& l : lines) out.push_back(l.value("status", l.contains("error") ? "error: " + l["error"].get<std::string>() : ""));
    return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

class ServerStore : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = std::make_unique<store::Store>(root_.path());
        ServerConfig cfg = test::LoopbackServer::test_config();
        cfg.models_root = root_.path().string();
        cfg.models_dir = loop_.models_dir();
        loop_.start(cfg, store_resolver(*store_, loop_.models_dir()));
    }
    void TearDown() override { loop_.stop(); }

    http::Result post(const std::string& path, const json& body) {
        return loop_.client().Post(path.c_str(), body.dump(), "application/json");
    }
    // POST /api/create; returns the status code and the NDJSON lines.
    std::pair<int, std::vector<json>> create(const json& body) {
        auto r = post("/api/create", body);
        EXPECT_TRUE(r);
        if (!r) return {-1, {}};
        if (r->status != 200) return {r->status, {json::parse(r->body)}};
        return {r->status, ndjson(r->body)};
    }
    store::Digest upload_stories() {
        const std::string bytes = read_all(test::shared_path(kStories));
        const store::Digest d = store::Digest::of(bytes);
        auto r = loop_.client().Post(("/api/blobs/" + d.str()).c_str(), bytes, "application/octet-stream");
        EXPECT_TRUE(r);
        EXPECT_TRUE(r->status == 201 || r->status == 200);
        return d;
    }
    json generate(const json& body) {
        auto r = post("/api/generate", body);
        EXPECT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
        return json::parse(r->body);
    }
    // Greedy text of stories260K for a raw prompt (the model named by its path).
    std::string reference_text(const std::string& prompt, int n) {
        return generate({{"model", test::shared_path(kStories)},
                         {"prompt", prompt},
                         {"raw", true},
                         {"stream", false},
                         {"options", {{"temperature", 0}, {"repeat_penalty", 1.0}, {"num_predict", n}}}})["response"];
    }
    json tags() {
        auto r = loop_.client().Get("/api/tags");
        EXPECT_TRUE(r);
        return json::parse(r->body)["models"];
    }
    json tag(const std::string& name) {
        for (const json& m : tags())
            if (m["name"] == name) return m;
        return nullptr;
    }
    // Every file under the store root (to prove a failed request changed nothing).
    std::set<std::string> store_files() {
        std::set<std::string> out;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(root_.path(), ec), end; !ec && it != end; it.increment(ec))
            if (!it->is_directory()) out.insert(it->path().string());
        return out;
    }

    test::TempDir root_;
    std::unique_ptr<store::Store> store_;
    test::LoopbackServer loop_{{{"legacy.gguf", kStories}}};
};

TEST_F(ServerStore, BlobUploadVerifiesTheDigest) {
    const std::string bytes = read_all(test::shared_path(kStories));
    const store::Digest d = store::Digest::of(bytes);
    http::Client c = loop_.client();
    auto r = c.Head(("/api/blobs/" + d.str()).c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    r = c.Head("/api/blobs/sha256:xyz");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);

    // Bytes that do not match the digest: 400, nothing left behind.
    const auto before = store_files();
    std::string wrong = bytes;
    wrong[1000] ^= 1;
    r = c.Post(("/api/blobs/" + d.str()).c_str(), wrong, "application/octet-stream");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("digest mismatch"), std::string::npos);
    EXPECT_EQ(store_files(), before);
    EXPECT_FALSE(store_->has_blob(d));

    // The right bytes, sent chunked (as Ollama's clients do): 201, then 200 when present.
    size_t off = 0;
    const http::Provider provider = [&](std::string& out) {
        const size_t n = std::min<size_t>(64 << 10, bytes.size() - off);
        if (n == 0) return false;
        out.append(bytes, off, n);
        off += n;
        return true;
    };
    r = c.Post("/api/blobs/" + d.str(), http::Headers{}, provider, "application/octet-stream");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201);
    EXPECT_TRUE(store_->verify_blob(d));
    r = c.Head(("/api/blobs/" + d.str()).c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    r = c.Post(("/api/blobs/" + d.str()).c_str(), bytes, "application/octet-stream");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(ServerStore, CreateFromBlobThenTagsShowAndGenerate) {
    const store::Digest blob = upload_stories();
    auto [status, lines] = create({{"model", "stories-sys"},
                                   {"files", {{"stories260K.gguf", blob.str()}}},
                                   {"template", kSystemOnly},
                                   {"system", "Once upon a time"},
                                   {"license", json::array({"MIT", "CC-BY"})},
                                   {"parameters", {{"num_predict", 5}, {"temperature", 0}, {"repeat_penalty", 1.0}, {"stop", {"zzz"}}}}});
    ASSERT_EQ(status, 200) << lines[0].dump();
    const auto st = statuses(lines);
    EXPECT_EQ(st.front(), "gathering model components");
    EXPECT_TRUE(contains(st, "parsing GGUF"));
    EXPECT_TRUE(contains(st, "using existing layer " + blob.str()));
    EXPECT_TRUE(contains(st, "creating new layer " + store::Digest::of(kSystemOnly).str()));
    EXPECT_TRUE(contains(st, "writing manifest"));
    EXPECT_EQ(st.back(), "success");

    // /api/tags: Ollama's shape, the digest is the manifest's sha256.
    const json t = tag("stories-sys:latest");
    ASSERT_FALSE(t.is_null()) << tags().dump();
    EXPECT_EQ(t["model"], "stories-sys:latest");
    EXPECT_EQ(t["digest"], store::Digest::of(store_->read_manifest_bytes(store::ModelName::parse("stories-sys"))).hex);
    EXPECT_EQ(t["size"], store_->read_manifest(store::ModelName::parse("stories-sys")).total_size());
    EXPECT_EQ(t["details"]["format"], "gguf");
    EXPECT_EQ(t["details"]["family"], "llama");
    EXPECT_EQ(t["details"]["families"], json::array({"llama"}));
    EXPECT_EQ(t["details"]["quantization_level"], "F32");
    EXPECT_FALSE(t["details"]["parameter_size"].get<std::string>().empty());
    EXPECT_FALSE(tag("legacy:latest").is_null());  // the --models-dir folder is still listed

    // /api/show: the Modelfile reads back into the same model.
    auto r = post("/api/show", {{"model", "stories-sys"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json show = json::parse(r->body);
    const std::string mf_text = show["modelfile"];
    EXPECT_EQ(mf_text.rfind("# Modelfile generated by \"hearth show\"\n", 0), 0u);
    const store::Modelfile mf = store::Modelfile::parse(mf_text);
    EXPECT_EQ(mf.base(), store_->blob_path(blob).string());
    EXPECT_EQ(mf.template_text, kSystemOnly);
    EXPECT_EQ(mf.system, "Once upon a time");
    EXPECT_EQ(mf.licenses, (std::vector<std::string>{"MIT", "CC-BY"}));
    EXPECT_EQ(json::parse(mf.params_json()), json::parse(R"({"num_predict":5,"temperature":0.0,"repeat_penalty":1.0,"stop":["zzz"]})"));
    EXPECT_EQ(show["template"], kSystemOnly);
    EXPECT_EQ(show["system"], "Once upon a time");
    EXPECT_EQ(show["license"], "MIT\nCC-BY");
    EXPECT_NE(show["parameters"].get<std::string>().find("num_predict                    5"), std::string::npos);
    const std::string params_text = show["parameters"];  // sorted by name, no trailing newline
    EXPECT_EQ(params_text.substr(params_text.rfind('\n') + 1), "temperature                    0");
    EXPECT_NE(show["parameters"].get<std::string>().find("stop                           \"zzz\""), std::string::npos);
    EXPECT_EQ(show["details"]["family"], "llama");
    EXPECT_EQ(show["model_info"]["general.architecture"], "llama");

    // Generation honours the system prompt, the template and the parameters: the prompt is
    // the SYSTEM text, so the greedy output equals a raw run of that text.
    const json g = generate({{"model", "stories-sys"}, {"prompt", "ignored by the template"}, {"stream", false}});
    EXPECT_EQ(g["eval_count"], 5);
    EXPECT_EQ(g["done_reason"], "length");
    EXPECT_EQ(g["response"], reference_text("Once upon a time", 5));
}

TEST_F(ServerStore, TagsReadOnlyManifestsAndConfigBlobs) {
    const store::Digest blob = upload_stories();
    ASSERT_EQ(create({{"model", "listed"},
                      {"files", {{"m.gguf", blob.str()}}},
                      {"template", kSystemOnly},
                      {"system", "Once upon a time"},
                      {"parameters", {{"num_predict", 5}}}})
                  .first,
              200);
    const json before = tag("listed:latest");
    ASSERT_FALSE(before.is_null()) << tags().dump();
    EXPECT_EQ(before["details"]["family"], "llama");
    EXPECT_EQ(before["details"]["quantization_level"], "F32");

    // Damage every blob but the config: the GGUF is no longer one, the system layer is gone,
    // the template and params layers hold junk. Listing reads none of them.
    const store::Manifest m = store_->read_manifest(store::ModelName::parse("listed"));
    for (const store::Layer& l : m.layers) {
        const fs::path p = store_->blob_path(l.digest);
        fs::remove(p);
        if (l.media_type == store::media_type::kSystem) continue;
        std::ofstream(p, std::ios::binary) << "{% not json, not a template, not GGUF";
    }
    const json after = tag("listed:latest");
    ASSERT_FALSE(after.is_null()) << tags().dump();
    EXPECT_EQ(after, before);
    EXPECT_EQ(after["digest"], store::Digest::of(store_->read_manifest_bytes(store::ModelName::parse("listed"))).hex);
    EXPECT_EQ(after["size"], m.total_size());
    EXPECT_EQ(after["details"]["format"], "gguf");
    EXPECT_EQ(after["details"]["families"], json::array({"llama"}));
    EXPECT_FALSE(after["details"]["parameter_size"].get<std::string>().empty());
}

TEST_F(ServerStore, RequestsReuseTheManifestsLayersUntilItChanges) {
    const store::Digest blob = upload_stories();
    ASSERT_EQ(create({{"model", "cached"}, {"files", {{"m.gguf", blob.str()}}}, {"template", kSystemOnly}, {"system", "first"}}).first,
              200);
    const ModelResolver resolver = store_resolver(*store_, "");
    auto first = resolver.resolve("cached");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->system, "first");

    // The system blob changes on disk behind the store's back: the manifest did not change,
    // so its layers are not read again.
    const fs::path system_blob = store_->blob_path(store::Digest::of("first"));
    fs::remove(system_blob);
    std::ofstream(system_blob, std::ios::binary) << "tampered";
    auto again = resolver.resolve("cached");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->system, "first");
    EXPECT_EQ(again->stored, first->stored);  // the very same read
    const json g = generate({{"model", "cached"}, {"prompt", "x"}, {"stream", false}, {"options", {{"num_predict", 1}}}});
    EXPECT_EQ(g["done"], true);

    // A copy has the same manifest: its own name, the same layers.
    auto r = post("/api/copy", {{"source", "cached"}, {"destination", "cached-copy"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    auto copy = resolver.resolve("cached-copy");
    ASSERT_TRUE(copy);
    EXPECT_EQ(copy->name, "cached-copy:latest");
    EXPECT_EQ(copy->stored->name.display(), "cached-copy:latest");
    EXPECT_EQ(copy->system, "first");
    EXPECT_EQ(resolver.resolve("cached")->name, "cached:latest");

    // A new manifest (a new digest) is read afresh.
    ASSERT_EQ(create({{"model", "cached"}, {"from", "cached"}, {"system", "second"}}).first, 200);
    auto changed = resolver.resolve("cached");
    ASSERT_TRUE(changed);
    EXPECT_EQ(changed->system, "second");
    EXPECT_NE(changed->digest, first->digest);
    r = post("/api/show", {{"model", "cached"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(json::parse(r->body)["system"], "second");
}

TEST_F(ServerStore, LegacyModelfileFromPathWithMessages) {
    const std::string path = test::shared_path(kStories);
    const std::string modelfile = "FROM " + path + "\nTEMPLATE \"\"\"" + kAllContent +
                                  "\"\"\"\nPARAMETER num_predict 6\nPARAMETER temperature 0\nPARAMETER repeat_penalty 1\n"
                                  "MESSAGE user Once upon\n";
    auto [status, lines] = create({{"name", "stories-msg:v1"}, {"modelfile", modelfile}});
    ASSERT_EQ(status, 200) << lines[0].dump();
    const auto st = statuses(lines);
    const store::Digest file_digest = store::Digest::of(read_all(path));
    EXPECT_TRUE(contains(st, "copying file " + file_digest.str() + " 100%")) << json(st).dump();
    EXPECT_EQ(st.back(), "success");
    const store::Manifest m = store_->read_manifest(store::ModelName::parse("stories-msg:v1"));
    ASSERT_NE(m.find(store::media_type::kModel), nullptr);
    EXPECT_EQ(m.find(store::media_type::kModel)->digest, file_digest);
    ASSERT_NE(m.find(store::media_type::kMessages), nullptr);

    // The MESSAGE turn comes before the chat's own: "Once upon" + " a time".
    auto r = post("/api/chat", {{"model", "stories-msg:v1"},
                                {"messages", {{{"role", "user"}, {"content", " a time"}}}},
                                {"stream", false}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json chat = json::parse(r->body);
    EXPECT_EQ(chat["eval_count"], 6);
    EXPECT_EQ(chat["message"]["content"], reference_text("Once upon a time", 6));

    // stream:false answers one object.
    auto one = post("/api/create", {{"model", "stories-msg:v2"}, {"from", "stories-msg:v1"}, {"stream", false}});
    ASSERT_TRUE(one);
    EXPECT_EQ(one->status, 200);
    EXPECT_EQ(json::parse(one->body), json({{"status", "success"}}));
    // Inherited layers name the model they came from; parameters are inherited too.
    const store::Manifest m2 = store_->read_manifest(store::ModelName::parse("stories-msg:v2"));
    EXPECT_EQ(m2.find(store::media_type::kModel)->from, "stories-msg:v1");
    EXPECT_EQ(m2.find(store::media_type::kParams)->digest, m.find(store::media_type::kParams)->digest);
}

TEST_F(ServerStore, CreateFromAFileStreamsCopyProgressAndChecksTheGguf) {
    const std::string path = test::shared_path(kStories);
    const std::string bytes = read_all(path);
    const store::Digest d = store::Digest::of(bytes);
    const uint64_t total = bytes.size();
    auto copy_line = [&](uint64_t done) {
        return json{{"status", "copying file " + d.str() + " " + std::to_string(done * 100 / total) + "%"},
                    {"digest", d.str()},
                    {"total", total},
                    {"completed", done}};
    };
    auto copying = [](const std::vector<json>& lines) {
        std::vector<json> out;
        for (const json& l : lines)
            if (l.value("status", "").rfind("copying file ", 0) == 0) out.push_back(l);
        return out;
    };
    // A line each time another percent is reached after a 1 MiB chunk, then 100%.
    std::vector<json> expected;
    int last_pct = -1;
    for (uint64_t done = std::min<uint64_t>(total, 1u << 20);; done = std::min<uint64_t>(total, done + (1u << 20))) {
        const int pct = static_cast<int>(done * 100 / total);
        if (pct != last_pct && pct < 100) expected.push_back(copy_line(done));
        last_pct = pct;
        if (done == total) break;
    }
    expected.push_back(copy_line(total));
    auto [status, lines] = create({{"model", "copied"}, {"from", path}});
    ASSERT_EQ(status, 200) << lines[0].dump();
    EXPECT_EQ(copying(lines), expected);
    const auto st = statuses(lines);
    EXPECT_EQ(st.front(), "gathering model components");
    EXPECT_EQ(st[1 + expected.size()], "parsing GGUF");
    EXPECT_TRUE(store_->verify_blob(d));
    // The blob is there now: only the final line.
    auto again = create({{"model", "copied-again"}, {"from", path}});
    ASSERT_EQ(again.first, 200);
    EXPECT_EQ(copying(again.second), std::vector<json>{copy_line(total)});

    // Files that are not GGUF: Ollama's words for a wrong or missing magic, the reader's for
    // a broken GGUF; nothing is written.
    const auto before = store_files();
    test::TempDir tmp;
    auto write = [&](const std::string& name, const std::string& content) {
        std::ofstream(tmp.file(name), std::ios::binary) << content;
        return tmp.file(name);
    };
    auto error_of = [&](const std::string& file) {
        auto [code, out] = create({{"model", "bad"}, {"from", file}});
        EXPECT_EQ(code, 400) << file;
        return out.empty() ? std::string() : out[0].value("error", "");
    };
    for (const std::string& f : {write("text.gguf", "not a model at all"), write("short.gguf", "GG"), write("empty.gguf", "")})
        EXPECT_EQ(error_of(f), "supplied file was not in GGUF format: " + f);
    const std::string cut = write("cut.gguf", bytes.substr(0, 100));
    EXPECT_EQ(error_of(cut).rfind("cannot read " + cut + " as GGUF: ", 0), 0u) << error_of(cut);
    EXPECT_EQ(store_files(), before);
}

TEST_F(ServerStore, CreateWithQuantize) {
    test::TempDir tmp;
    MakeModelOptions o;
    o.preset = "tiny";
    o.type = "f16";
    o.vocab = test::shared_path(kStories);
    o.output = tmp.file("tiny-f16.gguf");
    make_synthetic_model(o);

    auto [status, lines] = create({{"model", "tiny:q8"}, {"from", o.output}, {"quantize", "Q8_0"}});
    ASSERT_EQ(status, 200) << lines[0].dump();
    const auto st = statuses(lines);
    EXPECT_TRUE(contains(st, "quantizing F16 model to Q8_0")) << json(st).dump();
    EXPECT_EQ(st.back(), "success");
    const store::Manifest m = store_->read_manifest(store::ModelName::parse("tiny:q8"));
    const gguf::File f = gguf::File::open(store_->blob_path(m.find(store::media_type::kModel)->digest).string());
    EXPECT_EQ(f.get_u64("general.file_type"), 7u);  // LLAMA_FTYPE_MOSTLY_Q8_0
    EXPECT_EQ(tag("tiny:q8")["details"]["quantization_level"], "Q8_0");
    const json g = generate({{"model", "tiny:q8"}, {"prompt", "hi"}, {"stream", false}, {"options", {{"num_predict", 2}}}});
    EXPECT_EQ(g["done"], true);

    // A quantized model is not quantized again.
    auto again = create({{"model", "tiny:q4"}, {"from", "tiny:q8"}, {"quantize", "q4_0"}});
    EXPECT_EQ(again.first, 400);
    EXPECT_NE(again.second[0]["error"].get<std::string>().find("only supported for F32, F16 and BF16"), std::string::npos);
    EXPECT_EQ(create({{"model", "tiny:x"}, {"from", o.output}, {"quantize", "q9_9"}}).first, 400);
}

TEST_F(ServerStore, CopyAndDelete) {
    const store::Digest blob = upload_stories();
    ASSERT_EQ(create({{"model", "orig"}, {"files", {{"m.gguf", blob.str()}}}}).first, 200);

    auto r = post("/api/copy", {{"source", "orig"}, {"destination", "me/copy:v1"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(tag("me/copy:v1").is_null());
    EXPECT_EQ(tag("me/copy:v1")["digest"], tag("orig:latest")["digest"]);
    r = post("/api/copy", {{"source", "missing"}, {"destination", "x"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    r = post("/api/copy", {{"source", "orig"}, {"destination", "../evil"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);

    // Delete a loaded model: it is unloaded and gone.
    generate({{"model", "me/copy:v1"}, {"prompt", "a"}, {"stream", false}, {"options", {{"num_predict", 1}}}});
    http::Client c = loop_.client();
    auto d = c.Delete("/api/delete", json{{"model", "ME/Copy:v1"}}.dump(), "application/json");  // names fold case
    ASSERT_TRUE(d);
    EXPECT_EQ(d->status, 200) << d->body;
    EXPECT_TRUE(tag("me/copy:v1").is_null());
    d = c.Delete("/api/delete", json{{"model", "me/copy:v1"}}.dump(), "application/json");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->status, 404);
    r = post("/api/generate", {{"model", "me/copy:v1"}, {"prompt", "a"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    bool unloaded = false;
    for (int i = 0; i < 500 && !unloaded; ++i) {
        auto ps = c.Get("/api/ps");
        unloaded = ps && json::parse(ps->body)["models"].empty();
        if (!unloaded) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(unloaded);
    // The blob is still used by "orig".
    EXPECT_TRUE(store_->has_blob(blob));
    EXPECT_EQ(generate({{"model", "orig"}, {"prompt", "a"}, {"stream", false}, {"options", {{"num_predict", 1}}}})["done"], true);

    // Re-creating a model replaces it; layers nothing else uses go.
    ASSERT_EQ(create({{"model", "orig"}, {"from", "orig"}, {"system", "first"}}).first, 200);
    ASSERT_EQ(create({{"model", "orig"}, {"from", "orig"}, {"system", "second"}}).first, 200);
    EXPECT_FALSE(store_->has_blob(store::Digest::of("first")));
    EXPECT_TRUE(store_->has_blob(store::Digest::of("second")));
    EXPECT_TRUE(store_->has_blob(blob));
    r = post("/api/show", {{"model", "orig"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(json::parse(r->body)["system"], "second");

    // Deleting the last model that uses the uploaded blob frees it.
    d = c.Delete("/api/delete", json{{"name", "orig"}}.dump(), "application/json");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->status, 200);
    EXPECT_FALSE(store_->has_blob(blob));
    EXPECT_TRUE(store_->list().empty());
}

TEST_F(ServerStore, BadCreateRequestsChangeNothing) {
    const store::Digest blob = upload_stories();
    ASSERT_EQ(create({{"model", "base"}, {"files", {{"m.gguf", blob.str()}}}}).first, 200);
    const auto before = store_files();
    auto expect_400 = [&](const json& body, const std::string& fragment) {
        auto [status, lines] = create(body);
        EXPECT_EQ(status, 400) << body.dump();
        ASSERT_FALSE(lines.empty());
        EXPECT_NE(lines[0].value("error", "").find(fragment), std::string::npos) << lines[0].dump();
    };
    expect_400({{"model", "../x"}, {"from", "base"}}, "invalid model name");
    expect_400({{"model", ""}, {"from", "base"}}, "model is required");
    expect_400({{"model", "x:-bad"}, {"from", "base"}}, "invalid model name");
    expect_400({{"model", "x"}, {"from", "base"}, {"template", "{% if %}"}}, "template error");
    expect_400({{"model", "x"}, {"from", "base"}, {"parameters", {{"bogus", 1}}}}, "unknown parameter 'bogus'");
    expect_400({{"model", "x"}, {"from", "base"}, {"parameters", {{"num_ctx", "many"}}}}, "num_ctx");
    expect_400({{"model", "x"}, {"from", "base"}, {"parameters", {{"top_k", 1.5}}}}, "top_k");
    expect_400({{"model", "x"}, {"from", "base"}, {"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "role");
    expect_400({{"model", "x"}}, "neither 'from' or 'files'");
    expect_400({{"model", "x"}, {"files", {{"../m.gguf", blob.str()}}}}, "file path must be relative");
    expect_400({{"model", "x"}, {"files", {{"m.gguf", store::Digest::of("nothing").str()}}}}, "not found");
    expect_400({{"model", "x"}, {"modelfile", "FROM base\nPARAMETER nope 1\n"}}, "line 2");
    expect_400({{"model", "x"}, {"modelfile", "FROM base\nADAPTER /tmp/lora.gguf\n"}}, "adapters");
    expect_400({{"model", "x"}, {"from", "/no/such/file.gguf"}}, "no such file");
    auto [status, lines] = create({{"model", "x"}, {"from", "never-created"}});
    EXPECT_EQ(status, 404);
    EXPECT_EQ(store_files(), before);
    EXPECT_FALSE(store_->has_model(store::ModelName::parse("x")));
}

TEST_F(ServerStore, GoTemplateLayerFallsBackToTheGgufTemplate) {
    // A manifest as Ollama's registry writes one: a Go template layer.
    const store::ImportResult model = store_->import_file(test::shared_path(kStories));
    const std::string go_template = "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}";
    const store::Digest tmpl = store_->put_blob(go_template);
    store::Manifest m;
    m.layers = {{std::string(store::media_type::kModel), model.digest, model.size, ""},
                {std::string(store::media_type::kTemplate), tmpl, go_template.size(), ""}};
    store::ModelConfig config;
    config.model_family = "llama";
    config.set_layers(m.layers);
    const std::string config_bytes = config.to_json();
    m.config = {std::string(store::media_type::kConfig), store_->put_blob(config_bytes), config_bytes.size(), ""};
    store_->write_manifest(store::ModelName::parse("gotmpl"), m);

    const ModelResolver resolver = store_resolver(*store_, "");
    const auto resolved = resolver.resolve("gotmpl");
    ASSERT_TRUE(resolved);
    EXPECT_FALSE(resolved->template_override.has_value());
    EXPECT_EQ(resolved->name, "gotmpl:latest");
    EXPECT_EQ(resolved->path, store_->blob_path(model.digest).string());
    // The manifest as read while resolving (what /api/show uses, without reading it again).
    ASSERT_TRUE(resolved->stored);
    EXPECT_EQ(resolved->stored->digest.hex, resolved->digest);
    EXPECT_EQ(resolved->stored->template_text, go_template);
    EXPECT_FALSE(resolved->stored->template_is_jinja);

    auto r = post("/api/chat", {{"model", "gotmpl"},
                                {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                {"stream", false},
                                {"options", {{"num_predict", 3}}}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    r = post("/api/show", {{"model", "gotmpl"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    EXPECT_NE(json::parse(r->body)["template"], go_template);
}

TEST(ServerStoreNone, StoreRoutesNeedAStore) {
    test::LoopbackServer loop({});
    ServerConfig cfg = test::LoopbackServer::test_config();
    loop.start(cfg, directory_resolver(""));
    auto r = loop.client().Post("/api/create", json{{"model", "x"}, {"from", "y"}}.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(json::parse(r->body)["error"], "no model store configured");
}

}  // namespace
}  // namespace hearth::server
