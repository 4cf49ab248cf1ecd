// The model store: names, digests, blobs (verified / atomic / resumable / concurrent writes),
// manifests, list / cp / rm, pruning. Every test uses its own temp root.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <latch>
#include <set>
#include <thread>

#include "store/store.h"
#include "support/paths.h"

namespace fs = std::filesystem;
using namespace hearth::store;
using hearth::test::TempDir;

namespace {

// Every path under root (files and directories), relative, sorted.
std::vector<std::string> tree(const fs::path& root) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::exists(root, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        out.push_back(fs::relative(it->path(), root).string());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> files_in(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        out.push_back(it->path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const fs::path& p, std::string_view bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string pattern_bytes(size_t n, uint32_t seed = 1) {
    std::string s(n, '\0');
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        s[i] = static_cast<char>(x >> 24);
    }
    return s;
}

// A reader that hands out `bytes` in chunks of at most `chunk`.
Reader chunked(const std::string& bytes, size_t chunk) {
    auto pos = std::make_shared<size_t>(0);
    return [&bytes, chunk, pos](char* buf, size_t cap) -> size_t {
        size_t n = std::min({cap, chunk, bytes.size() - *pos});
        std::copy_n(bytes.data() + *pos, n, buf);
        *pos += n;
        return n;
    };
}

StoreErrorKind kind_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const StoreError& e) {
        return e.kind();
    }
    ADD_FAILURE() << "no StoreError thrown";
    return StoreErrorKind::Io;
}

// Writes the blobs of a small model and returns its manifest (model, template, params, config).
Manifest make_model(const Store& s, const std::string& weights, const std::string& tmpl = "{{ .Prompt }}") {
    Manifest m;
    auto add = [&](std::string_view media, const std::string& bytes) {
        Layer l{std::string(media), s.put_blob(bytes), bytes.size(), ""};
        m.layers.push_back(l);
    };
    add(media_type::kModel, weights);
    add(media_type::kTemplate, tmpl);
    add(media_type::kParams, R"({"stop":["<|end|>"]})");
    ModelConfig c;
    c.model_family = "llama";
    c.model_families = {"llama"};
    c.model_type = "1B";
    c.file_type = "Q4_0";
    c.set_layers(m.layers);
    const std::string cj = c.to_json();
    m.config = Layer{std::string(media_type::kConfig), s.put_blob(cj), cj.size(), ""};
    return m;
}

const std::string kHexA(64, 'a');

class EnvGuard {
public:
    explicit EnvGuard(const char* name) : name_(name) {
        if (const char* v = std::getenv(name)) old_ = v;
    }
    ~EnvGuard() {
        if (old_) ::setenv(name_, old_->c_str(), 1);
        else ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

}  // namespace

// ---- Names

TEST(ModelName, DefaultsAndDisplay) {
    ModelName n = ModelName::parse("llama3");
    EXPECT_EQ(n.host, "registry.ollama.ai");
    EXPECT_EQ(n.ns, "library");
    EXPECT_EQ(n.model, "llama3");
    EXPECT_EQ(n.tag, "latest");
    EXPECT_EQ(n.display(), "llama3:latest");
    EXPECT_EQ(n.full(), "registry.ollama.ai/library/llama3:latest");
    EXPECT_EQ(n.manifest_relpath(), fs::path("registry.ollama.ai/library/llama3/latest"));

    n = ModelName::parse("llama3.2:1b-instruct-q4_K_M");
    EXPECT_EQ(n.model, "llama3.2");
    EXPECT_EQ(n.tag, "1b-instruct-q4_K_M");
    EXPECT_EQ(n.display(), "llama3.2:1b-instruct-q4_K_M");

    n = ModelName::parse("jmorgan/mistral:v1");
    EXPECT_EQ(n.ns, "jmorgan");
    EXPECT_EQ(n.display(), "jmorgan/mistral:v1");

    n = ModelName::parse("registry.ollama.ai/library/qwen2:0.5b");
    EXPECT_EQ(n.display(), "qwen2:0.5b");
    n = ModelName::parse("https://registry.ollama.ai/library/qwen2:0.5b");
    EXPECT_EQ(n.display(), "qwen2:0.5b");
    n = ModelName::parse("http://example.com/team/m");
    EXPECT_EQ(n.full(), "example.com/team/m:latest");
}

TEST(ModelName, HostsWithPortsAndHuggingFace) {
    ModelName n = ModelName::parse("localhost:5000/ns/model");
    EXPECT_EQ(n.host, "localhost:5000");
    EXPECT_EQ(n.ns, "ns");
    EXPECT_EQ(n.model, "model");
    EXPECT_EQ(n.tag, "latest");
    EXPECT_EQ(n.display(), "localhost:5000/ns/model:latest");
    EXPECT_EQ(n.manifest_relpath(), fs::path("localhost:5000/ns/model/latest"));

    n = ModelName::parse("localhost:5000/ns/model:v2");
    EXPECT_EQ(n.host, "localhost:5000");
    EXPECT_EQ(n.tag, "v2");

    n = ModelName::parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
    EXPECT_EQ(n.host, "hf.co");
    EXPECT_EQ(n.ns, "bartowski");
    EXPECT_EQ(n.model, "Llama-3.2-1B-Instruct-GGUF");
    EXPECT_EQ(n.tag, "Q4_K_M");
    EXPECT_EQ(n.display(), "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M");
    EXPECT_EQ(ModelName::parse("hf.co/user/repo").tag, "latest");

    for (const char* bad : {"host:0/ns/m", "host:65536/ns/m", "host:abc/ns/m", "host:/ns/m", "host:1:2/ns/m",
                            ":5000/ns/m"})
        EXPECT_FALSE(ModelName::try_parse(bad)) << bad;
    // A port belongs to a host: a namespace or name cannot have one.
    EXPECT_FALSE(ModelName::try_parse("localhost:5000/model"));
}

TEST(ModelName, CaseIsKeptButMatchesIgnoringIt) {
    ModelName a = ModelName::parse("Llama3:Latest");
    ModelName b = ModelName::parse("llama3:latest");
    EXPECT_EQ(a.display(), "Llama3:Latest");
    EXPECT_NE(a, b);
    EXPECT_TRUE(a.equal_fold(b));
    EXPECT_EQ(a.fold_key(), b.fold_key());
    EXPECT_EQ(ModelName::parse("Registry.Ollama.AI/Library/x:1").display(), "x:1");
    EXPECT_FALSE(a.equal_fold(ModelName::parse("llama3:other")));
}

TEST(ModelName, PartRules) {
    for (const char* good : {"a", "A9", "a_b.c-d", "m:_tag", "m:v1.2-rc_3", "ns.with.dots/m", "9/9:9",
                             "a-b/c-d:e-f"})
        EXPECT_TRUE(ModelName::try_parse(good)) << good;
    for (const char* bad : {"-m", "_m", ".m", "m:.t", "m:-t", "ns/_m", "_ns/m", "m:t/x", "m@sha256:abc", "m m",
                            "m\tx", "m:", "m:t:u", "a/b/c/d", "a/b/c/d:e", "m!", "m:t!", "é"})
        EXPECT_FALSE(ModelName::try_parse(bad)) << bad;
    EXPECT_TRUE(ModelName::try_parse("m:" + std::string(128, 't')));
    EXPECT_FALSE(ModelName::try_parse("m:" + std::string(129, 't')));
    EXPECT_TRUE(ModelName::try_parse(std::string(160, 'n')));
    EXPECT_FALSE(ModelName::try_parse(std::string(161, 'n')));
    EXPECT_FALSE(ModelName::try_parse(std::string(5000, 'n')));
}

TEST(ModelName, ClearErrors) {
    auto message = [](std::string_view s) {
        std::string err;
        EXPECT_FALSE(ModelName::try_parse(s, &err)) << s;
        return err;
    };
    EXPECT_NE(message("../x").find("\"..\""), std::string::npos);
    EXPECT_NE(message("/etc/passwd").find("absolute"), std::string::npos);
    EXPECT_NE(message("a\\b").find("backslash"), std::string::npos);
    EXPECT_NE(message(std::string("a\0b", 3)).find("NUL"), std::string::npos);
    EXPECT_NE(message("m:").find("empty tag"), std::string::npos);
    EXPECT_NE(message("a//b").find("empty path component"), std::string::npos);
    EXPECT_NE(message("a/b/c/d").find("too many"), std::string::npos);
    EXPECT_NE(message("m:t!").find("'!'"), std::string::npos);
    EXPECT_NE(message("").find("empty model name"), std::string::npos);
    try {
        ModelName::parse("bad name");
        FAIL();
    } catch (const StoreError& e) {
        EXPECT_EQ(e.kind(), StoreErrorKind::InvalidName);
        EXPECT_NE(std::string(e.what()).find("bad name"), std::string::npos);
    }
}

TEST(ModelName, PathAttacksAreRejectedAndCreateNothing) {
    TempDir tmp;
    const fs::path root = tmp.path() / "models";
    fs::create_directories(root);
    Store s(root);
    const std::string long_name(3000, 'a');
    const std::vector<std::string> attacks = {
        "../x", "a/../../b", "..", "../..", "/etc/passwd", "/abs/ns/m", "a\\b", "..\\..\\x", "ns\\..\\m",
        std::string("a\0b", 3), std::string("m:t\0", 4), long_name, "x:..", "x:../../y", "a//b", "a/", ".", "./x",
        "x/.", "ns/..:tag", "...", "a..b", "ns/a..b", "m:a..b", "host..x/ns/m", "~/x", "a/b/../../../c"};
    for (const std::string& a : attacks) {
        EXPECT_FALSE(ModelName::try_parse(a)) << a;
        EXPECT_EQ(kind_of([&] { ModelName::parse(a); }), StoreErrorKind::InvalidName) << a;
    }
    // Names built field by field are checked again before any path is built.
    const std::vector<std::string> bad_parts = {"..", "../x", "a/b", "a\\b", "", std::string("a\0b", 3), "/abs",
                                                std::string(400, 'a'), ".", "x/../.."};
    Manifest m;
    m.config = Layer{std::string(media_type::kConfig), Digest{kHexA}, 1, ""};
    for (const std::string& bad : bad_parts) {
        for (int field = 0; field < 4; ++field) {
            ModelName n = ModelName::parse("ns/model:tag");
            std::string* parts[] = {&n.host, &n.ns, &n.model, &n.tag};
            *parts[field] = bad;
            EXPECT_FALSE(n.is_valid());
            EXPECT_EQ(kind_of([&] { s.write_manifest(n, m, false); }), StoreErrorKind::InvalidName);
            EXPECT_EQ(kind_of([&] { s.write_manifest_bytes(n, m.to_json(), false); }), StoreErrorKind::InvalidName);
            EXPECT_EQ(kind_of([&] { s.has_model(n); }), StoreErrorKind::InvalidName);
            EXPECT_EQ(kind_of([&] { s.read_manifest(n); }), StoreErrorKind::InvalidName);
            EXPECT_EQ(kind_of([&] { s.remove(n); }), StoreErrorKind::InvalidName);
            EXPECT_EQ(kind_of([&] { s.copy(ModelName::parse("x"), n); }), StoreErrorKind::InvalidName);
            EXPECT_EQ(kind_of([&] { s.manifest_path(n); }), StoreErrorKind::InvalidName);
        }
    }
    EXPECT_TRUE(tree(tmp.path()) == std::vector<std::string>{"models"}) << "something was created";
}

// ---- Digests

TEST(Digest, ParseAndForms) {
    const std::string hex = Digest::of("hello").hex;
    EXPECT_EQ(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    Digest d = Digest::parse("sha256:" + hex);
    EXPECT_EQ(d.str(), "sha256:" + hex);
    EXPECT_EQ(d.blob_name(), "sha256-" + hex);
    EXPECT_EQ(d.short_id(), "2cf24dba5fb0");
    EXPECT_EQ(Digest::from_blob_name("sha256-" + hex), d);
    EXPECT_EQ(Digest::of(""), Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

TEST(Digest, MalformedRejected) {
    const std::string hex(64, 'a');
    for (const std::string& bad :
         {std::string(""), std::string("sha256:"), "sha256:" + hex.substr(1), "sha256:" + hex + "a",
          "sha256:" + std::string(64, 'A'), "sha512:" + hex, "sha256-" + hex, " sha256:" + hex, "sha256:" + hex + "\n",
          "sha256:" + std::string(63, 'a') + "g", "SHA256:" + hex, hex, "sha256:" + std::string(62, 'a') + "/.",
          "sha256:" + std::string(63, 'a') + std::string(1, '\0')}) {
        EXPECT_FALSE(Digest::try_parse(bad)) << bad;
        EXPECT_EQ(kind_of([&] { Digest::parse(bad); }), StoreErrorKind::InvalidDigest) << bad;
    }
    EXPECT_FALSE(Digest::from_blob_name("sha256:" + hex));
    EXPECT_FALSE(Digest::from_blob_name("sha256-" + hex + "-partial"));

    TempDir tmp;
    Store s(tmp.path());
    Digest evil{"../../../etc/passwd"};
    EXPECT_EQ(kind_of([&] { s.blob_path(evil); }), StoreErrorKind::InvalidDigest);
    EXPECT_EQ(kind_of([&] { s.begin_blob(evil); }), StoreErrorKind::InvalidDigest);
    EXPECT_EQ(kind_of([&] { s.resume_blob(evil); }), StoreErrorKind::InvalidDigest);
    EXPECT_EQ(kind_of([&] { s.pin(evil); }), StoreErrorKind::InvalidDigest);
    EXPECT_TRUE(tree(tmp.path()).empty());
}

// ---- Blobs

TEST(Blobs, PutHasSizeVerify) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(3 << 20);
    const Digest d = Digest::of(bytes);
    EXPECT_FALSE(s.has_blob(d));
    EXPECT_FALSE(s.blob_size(d));
    EXPECT_FALSE(s.verify_blob(d));
    EXPECT_EQ(s.put_blob(bytes), d);
    EXPECT_TRUE(s.has_blob(d));
    EXPECT_EQ(s.blob_size(d), bytes.size());
    EXPECT_TRUE(s.verify_blob(d));
    EXPECT_EQ(s.blob_path(d), tmp.path() / "blobs" / ("sha256-" + d.hex));
    EXPECT_EQ(slurp(s.blob_path(d)), bytes);
    EXPECT_EQ(files_in(s.blobs_dir()), std::vector<std::string>{"sha256-" + d.hex});

    // Corruption on disk is detected.
    {
        int fd = ::open(s.blob_path(d).c_str(), O_WRONLY);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, "X", 1, 1000), 1);
        ::close(fd);
    }
    EXPECT_FALSE(s.verify_blob(d));
}

TEST(Blobs, WrongBytesAreRejectedAndLeaveNothing) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(100000);
    const Digest other = Digest::of("something else");
    try {
        s.write_blob(other, string_reader(bytes));
        FAIL() << "accepted bytes that do not match the digest";
    } catch (const StoreError& e) {
        EXPECT_EQ(e.kind(), StoreErrorKind::DigestMismatch);
        EXPECT_NE(std::string(e.what()).find(other.str()), std::string::npos);
    }
    EXPECT_FALSE(s.has_blob(other));
    EXPECT_TRUE(files_in(s.blobs_dir()).empty());

    // Right bytes, wrong announced size: rejected as soon as it overflows, or at commit.
    const Digest d = Digest::of(bytes);
    EXPECT_EQ(kind_of([&] { s.write_blob(d, string_reader(bytes), bytes.size() - 1); }), StoreErrorKind::DigestMismatch);
    EXPECT_EQ(kind_of([&] { s.write_blob(d, string_reader(bytes), bytes.size() + 1); }), StoreErrorKind::DigestMismatch);
    EXPECT_TRUE(files_in(s.blobs_dir()).empty());
    EXPECT_EQ(s.write_blob(d, string_reader(bytes), bytes.size()), bytes.size());
    EXPECT_TRUE(s.verify_blob(d));
}

TEST(Blobs, StreamErrorMidwayLeavesNothing) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(5 << 20);
    const Digest d = Digest::of(bytes);
    size_t served = 0;
    Reader failing = [&](char* buf, size_t cap) -> size_t {
        if (served >= bytes.size() / 2) throw std::runtime_error("connection reset");
        size_t n = std::min<size_t>(cap, 64 * 1024);
        std::copy_n(bytes.data() + served, n, buf);
        served += n;
        return n;
    };
    EXPECT_THROW(s.write_blob(d, failing), std::runtime_error);
    EXPECT_FALSE(s.has_blob(d));
    EXPECT_TRUE(files_in(s.blobs_dir()).empty());

    // A stream that just ends early (truncated body) fails the digest check.
    const std::string half = bytes.substr(0, bytes.size() / 2);
    EXPECT_EQ(kind_of([&] { s.write_blob(d, string_reader(half)); }), StoreErrorKind::DigestMismatch);
    EXPECT_TRUE(files_in(s.blobs_dir()).empty());

    // A writer dropped before commit removes its temp file.
    {
        BlobWriter w = s.begin_blob(d);
        w.write(half);
        EXPECT_TRUE(fs::exists(w.temp_path()));
        EXPECT_NE(w.temp_path().filename().string().find("sha256-" + d.hex + "-partial-"), std::string::npos);
    }
    EXPECT_TRUE(files_in(s.blobs_dir()).empty());
}

TEST(Blobs, ExistingBlobIsNotRewritten) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(4096);
    const Digest d = s.put_blob(bytes);
    struct stat before;
    ASSERT_EQ(::stat(s.blob_path(d).c_str(), &before), 0);
    bool read = false;
    Reader never = [&](char*, size_t) -> size_t {
        read = true;
        throw std::runtime_error("should not be read");
    };
    EXPECT_EQ(s.write_blob(d, never), bytes.size());
    EXPECT_FALSE(read);
    BlobWriter w = s.begin_blob(d);
    EXPECT_TRUE(w.already_present());
    w.write("ignored");
    EXPECT_EQ(w.commit(), bytes.size());
    struct stat after;
    ASSERT_EQ(::stat(s.blob_path(d).c_str(), &after), 0);
    EXPECT_EQ(before.st_ino, after.st_ino);
    EXPECT_EQ(slurp(s.blob_path(d)), bytes);
    EXPECT_EQ(files_in(s.blobs_dir()).size(), 1u);
}

TEST(Blobs, ResumeAPartialWrite) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes((3 << 20) + 123);
    const Digest d = Digest::of(bytes);
    const fs::path partial = s.blobs_dir() / ("sha256-" + d.hex + "-partial");
    const size_t cut = 1234567;
    {
        BlobWriter w = s.resume_blob(d, bytes.size());
        EXPECT_EQ(w.offset(), 0u);
        EXPECT_EQ(w.temp_path(), partial);
        w.write(bytes.data(), cut);
        // The download drops here: the writer goes away without commit.
    }
    ASSERT_TRUE(fs::exists(partial));
    EXPECT_EQ(fs::file_size(partial), cut);
    EXPECT_FALSE(s.has_blob(d));
    {
        // A stream error during the second attempt keeps what arrived.
        BlobWriter w = s.resume_blob(d, bytes.size());
        EXPECT_EQ(w.offset(), cut);
        size_t served = 0;
        Reader failing = [&](char* buf, size_t cap) -> size_t {
            if (served >= 100000) throw std::runtime_error("timeout");
            size_t n = std::min<size_t>(cap, 50000);
            std::copy_n(bytes.data() + cut + served, n, buf);
            served += n;
            return n;
        };
        EXPECT_THROW(w.write_from(failing), std::runtime_error);
    }
    EXPECT_EQ(fs::file_size(partial), cut + 100000);
    BlobWriter w = s.resume_blob(d, bytes.size());
    ASSERT_EQ(w.offset(), cut + 100000);
    std::string rest = bytes.substr(w.offset());
    w.write_from(chunked(rest, 70000));
    EXPECT_EQ(w.commit(), bytes.size());
    EXPECT_TRUE(s.verify_blob(d));
    EXPECT_EQ(files_in(s.blobs_dir()), std::vector<std::string>{"sha256-" + d.hex});

    // Resuming a finished blob: nothing to do.
    BlobWriter again = s.resume_blob(d);
    EXPECT_TRUE(again.already_present());
    EXPECT_EQ(again.commit(), bytes.size());
    EXPECT_EQ(files_in(s.blobs_dir()).size(), 1u);
}

TEST(Blobs, ResumeOfABadPartial) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(10000);
    const Digest d = Digest::of(bytes);
    const fs::path partial = s.blobs_dir() / ("sha256-" + d.hex + "-partial");
    fs::create_directories(s.blobs_dir());

    // Longer than the blob can be: starts over.
    spit(partial, std::string(20000, 'x'));
    {
        BlobWriter w = s.resume_blob(d, bytes.size());
        EXPECT_EQ(w.offset(), 0u);
        w.write(bytes);
        w.commit();
    }
    EXPECT_TRUE(s.verify_blob(d));

    // Wrong bytes in the partial: the commit fails and drops the partial.
    const std::string other = pattern_bytes(10000, 7);
    const Digest d2 = Digest::of(other);
    const fs::path partial2 = s.blobs_dir() / ("sha256-" + d2.hex + "-partial");
    spit(partial2, std::string(5000, 'z'));
    {
        BlobWriter w = s.resume_blob(d2, other.size());
        EXPECT_EQ(w.offset(), 5000u);
        w.write(other.substr(5000));
        EXPECT_EQ(kind_of([&] { w.commit(); }), StoreErrorKind::DigestMismatch);
    }
    EXPECT_FALSE(fs::exists(partial2));
    EXPECT_FALSE(s.has_blob(d2));

    // abort(true) discards a resumable partial on purpose.
    {
        BlobWriter w = s.resume_blob(d2);
        w.write(other.substr(0, 10));
        w.abort(true);
    }
    EXPECT_FALSE(fs::exists(partial2));
}

TEST(Blobs, SecondResumerIsBusy) {
    TempDir tmp;
    Store s(tmp.path());
    const Digest d = Digest::of("payload");
    BlobWriter a = s.resume_blob(d);
    a.write("pay");
    EXPECT_EQ(kind_of([&] { s.resume_blob(d); }), StoreErrorKind::Busy);
    a.write("load");
    a.commit();
    EXPECT_TRUE(s.verify_blob(d));
    BlobWriter b = s.resume_blob(d);
    EXPECT_TRUE(b.already_present());
}

TEST(Blobs, ConcurrentWritersOfTheSameBlob) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(2 << 20, 3);
    const Digest d = Digest::of(bytes);
    for (int round = 0; round < 5; ++round) {
        std::latch start(2);
        std::atomic<int> ok{0};
        auto writer = [&] {
            start.arrive_and_wait();
            try {
                if (s.write_blob(d, chunked(bytes, 32 * 1024)) == bytes.size()) ++ok;
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
            }
        };
        std::thread t1(writer), t2(writer);
        t1.join();
        t2.join();
        EXPECT_EQ(ok.load(), 2);
        EXPECT_TRUE(s.verify_blob(d));
        EXPECT_EQ(files_in(s.blobs_dir()), std::vector<std::string>{"sha256-" + d.hex});
        s.prune();  // unreferenced: removed, so the next round races again
        EXPECT_FALSE(s.has_blob(d));
    }
}

TEST(Blobs, ConcurrentResumersEndWithOneBlob) {
    TempDir tmp;
    Store s(tmp.path());
    const std::string bytes = pattern_bytes(1 << 20, 5);
    const Digest d = Digest::of(bytes);
    std::latch start(2);
    std::atomic<int> busy{0};
    auto writer = [&] {
        start.arrive_and_wait();
        for (int attempt = 0; attempt < 10000; ++attempt) {
            try {
                BlobWriter w = s.resume_blob(d, bytes.size());
                if (!w.already_present()) w.write(bytes.substr(w.offset()));
                w.commit();
                return;
            } catch (const StoreError& e) {
                if (e.kind() != StoreErrorKind::Busy) {
                    ADD_FAILURE() << e.what();
                    return;
                }
                ++busy;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        ADD_FAILURE() << "never got the partial";
    };
    std::thread t1(writer), t2(writer);
    t1.join();
    t2.join();
    EXPECT_TRUE(s.verify_blob(d));
    EXPECT_EQ(files_in(s.blobs_dir()), std::vector<std::string>{"sha256-" + d.hex});
}

TEST(Blobs, ImportFile) {
    TempDir tmp;
    Store s(tmp.path() / "models");
    const std::string bytes = pattern_bytes(300000, 9);
    const fs::path src = tmp.path() / "model.gguf";
    spit(src, bytes);

    ImportResult r = s.import_file(src);
    EXPECT_EQ(r.digest, Digest::of(bytes));
    EXPECT_EQ(r.size, bytes.size());
    EXPECT_TRUE(r.copied);
    EXPECT_TRUE(s.verify_blob(r.digest));

    ImportResult again = s.import_file(src);
    EXPECT_EQ(again.digest, r.digest);
    EXPECT_FALSE(again.copied);
    EXPECT_FALSE(s.import_file(src, r.digest).copied);
    // The store's own blob file is already the right blob.
    EXPECT_FALSE(s.import_file(s.blob_path(r.digest)).copied);
    EXPECT_FALSE(s.import_file(s.blob_path(r.digest), r.digest).copied);

    // A wrong expected digest: nothing is stored.
    const fs::path src2 = tmp.path() / "other.bin";
    spit(src2, "other bytes");
    const Digest wrong = Digest::of("not these");
    EXPECT_EQ(kind_of([&] { s.import_file(src2, wrong); }), StoreErrorKind::DigestMismatch);
    EXPECT_EQ(files_in(s.blobs_dir()), std::vector<std::string>{"sha256-" + r.digest.hex});
    EXPECT_EQ(kind_of([&] { s.import_file(tmp.path() / "missing.gguf"); }), StoreErrorKind::NotFound);
    EXPECT_EQ(kind_of([&] { s.import_file(tmp.path()); }), StoreErrorKind::Io);
}

// ---- Manifests

TEST(Manifests, JsonMatchesOllama) {
    const std::string h1(64, '1'), h2(64, '2'), h3(64, '3');
    Manifest m;
    m.config = Layer{std::string(media_type::kConfig), Digest{h1}, 485, ""};
    m.layers.push_back(Layer{std::string(media_type::kModel), Digest{h2}, 2019377376, ""});
    m.layers.push_back(Layer{std::string(media_type::kTemplate), Digest{h3}, 1429, "library/llama3"});
    const std::string expected =
        R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
        R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:)" + h1 +
        R"(","size":485},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + h2 +
        R"(","size":2019377376},{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:)" + h3 +
        R"(","size":1429,"from":"library/llama3"}]})";
    EXPECT_EQ(m.to_json(), expected);
    EXPECT_EQ(Manifest::parse(expected), m);
    EXPECT_EQ(m.total_size(), 485u + 2019377376u + 1429u);
    EXPECT_EQ(m.find(media_type::kModel)->digest.hex, h2);
    EXPECT_EQ(m.find(media_type::kSystem), nullptr);
    EXPECT_EQ(m.digests().size(), 3u);

    // Pretty-printed / reordered JSON with extra fields parses too.
    const std::string loose = "{\n  \"layers\": [], \"extra\": 1, \"schemaVersion\": 2,\n  \"config\": {\"size\": 2, "
                              "\"digest\": \"sha256:" + h1 + "\", \"mediaType\": \"x\"}\n}";
    Manifest l = Manifest::parse(loose);
    EXPECT_EQ(l.config.size, 2u);
    EXPECT_TRUE(l.layers.empty());
}

TEST(Manifests, MalformedRejected) {
    const std::string cfg = R"("config":{"mediaType":"x","digest":"sha256:)" + kHexA + R"(","size":1})";
    for (const std::string& bad : {
             std::string("not json"), std::string("[]"), std::string("{}"),
             R"({"schemaVersion":1,)" + cfg + R"(,"layers":[]})",
             std::string(R"({"schemaVersion":2,"layers":[]})"),
             R"({"schemaVersion":2,)" + cfg + "}",
             R"({"schemaVersion":2,)" + cfg + R"(,"layers":{}})",
             R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"mediaType":"x","digest":"sha256:abc","size":1}]})",
             R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"mediaType":"x","digest":"sha256:)" + kHexA +
                 R"(","size":-1}]})",
             R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"mediaType":"x","digest":"sha256:)" + kHexA +
                 R"(","size":1.5}]})",
             R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"digest":"sha256:)" + kHexA + R"(","size":1}]})",
         })
        EXPECT_EQ(kind_of([&] { Manifest::parse(bad); }), StoreErrorKind::Corrupt) << bad;
}

TEST(Manifests, ConfigBlobJson) {
    ModelConfig c;
    c.model_family = "llama";
    c.model_families = {"llama"};
    c.model_type = "8.0B";
    c.file_type = "Q4_0";
    c.diff_ids = {Digest{std::string(64, '1')}, Digest{std::string(64, '2')}};
    const std::string expected =
        R"({"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"8.0B",)"
        R"("file_type":"Q4_0","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" +
        std::string(64, '1') + R"(","sha256:)" + std::string(64, '2') + R"("]}})";
    EXPECT_EQ(c.to_json(), expected);
    EXPECT_EQ(ModelConfig::parse(expected), c);
    ModelConfig empty;
    EXPECT_NE(empty.to_json().find(R"("model_families":null)"), std::string::npos);
    EXPECT_EQ(kind_of([] { ModelConfig::parse("{"); }), StoreErrorKind::Corrupt);
}

TEST(Manifests, WriteReadRoundTripInOllamaLayout) {
    TempDir tmp;
    Store s(tmp.path());
    const Manifest m = make_model(s, pattern_bytes(5000));
    const ModelName name = ModelName::parse("llama3:8b");
    const Digest id = s.write_manifest(name, m);
    const fs::path file = tmp.path() / "manifests" / "registry.ollama.ai" / "library" / "llama3" / "8b";
    ASSERT_TRUE(fs::is_regular_file(file));
    EXPECT_EQ(s.manifest_path(name), file);
    EXPECT_EQ(slurp(file), m.to_json());
    EXPECT_EQ(id, Digest::of(slurp(file)));
    EXPECT_EQ(s.read_manifest(name), m);
    EXPECT_EQ(s.read_manifest_bytes(name), m.to_json());
    EXPECT_TRUE(s.has_model(name));
    EXPECT_FALSE(s.has_model(ModelName::parse("llama3:70b")));
    EXPECT_FALSE(s.find_manifest(ModelName::parse("llama3:70b")));
    EXPECT_EQ(kind_of([&] { s.read_manifest(ModelName::parse("nope")); }), StoreErrorKind::NotFound);
    for (const std::string& f : files_in(file.parent_path())) EXPECT_EQ(f, "8b");  // no temp files

    // Verbatim bytes (as a registry sends them) keep their digest.
    std::string pretty = m.to_json();
    pretty.insert(1, "\n  ");
    pretty += "\n";
    const ModelName other = ModelName::parse("example.com/team/model:v1");
    EXPECT_EQ(s.write_manifest_bytes(other, pretty), Digest::of(pretty));
    EXPECT_EQ(slurp(s.manifest_path(other)), pretty);
    EXPECT_EQ(s.read_manifest(other), m);
    EXPECT_EQ(kind_of([&] { s.write_manifest_bytes(other, "{broken"); }), StoreErrorKind::Corrupt);
    EXPECT_EQ(slurp(s.manifest_path(other)), pretty);
}

TEST(Manifests, ReferencedBlobsMustBePresent) {
    TempDir tmp;
    Store s(tmp.path());
    Manifest m = make_model(s, "weights");
    Manifest missing = m;
    missing.layers.push_back(Layer{std::string(media_type::kLicense), Digest::of("never stored"), 12, ""});
    const ModelName name = ModelName::parse("m");
    EXPECT_EQ(kind_of([&] { s.write_manifest(name, missing); }), StoreErrorKind::NotFound);
    Manifest wrong_size = m;
    wrong_size.layers[0].size += 1;
    EXPECT_EQ(kind_of([&] { s.write_manifest(name, wrong_size); }), StoreErrorKind::Corrupt);
    EXPECT_FALSE(s.has_model(name));
    EXPECT_FALSE(fs::exists(s.manifests_dir() / "registry.ollama.ai"));
    s.write_manifest(name, missing, /*check_blobs=*/false);  // allowed when asked for
    EXPECT_TRUE(s.has_model(name));
}

TEST(Manifests, NamesMatchIgnoringCase) {
    TempDir tmp;
    Store s(tmp.path());
    const Manifest m1 = make_model(s, "one");
    const Manifest m2 = make_model(s, "two");
    s.write_manifest(ModelName::parse("MyUser/Mistral:Q4"), m1);
    EXPECT_TRUE(s.has_model(ModelName::parse("myuser/mistral:q4")));
    EXPECT_EQ(s.read_manifest(ModelName::parse("MYUSER/MISTRAL:Q4")), m1);
    EXPECT_EQ(s.resolve(ModelName::parse("myuser/mistral:q4")).display(), "MyUser/Mistral:Q4");
    // Writing under another spelling reuses the existing one: no second directory.
    s.write_manifest(ModelName::parse("myuser/MISTRAL:q4"), m2);
    EXPECT_EQ(tree(s.manifests_dir()),
              (std::vector<std::string>{"registry.ollama.ai", "registry.ollama.ai/MyUser", "registry.ollama.ai/MyUser/Mistral",
                                        "registry.ollama.ai/MyUser/Mistral/Q4"}));
    EXPECT_EQ(s.read_manifest(ModelName::parse("MyUser/Mistral:Q4")), m2);
    // A new tag goes into the existing model directory, spelled as given.
    s.write_manifest(ModelName::parse("myuser/mistral:Latest"), m1);
    auto list = s.list();
    ASSERT_EQ(list.size(), 2u);
    std::vector<std::string> shown;
    for (const ModelInfo& i : list) shown.push_back(i.name.display());
    std::sort(shown.begin(), shown.end());
    EXPECT_EQ(shown, (std::vector<std::string>{"MyUser/Mistral:Latest", "MyUser/Mistral:Q4"}));
}

TEST(Manifests, ListShowsNameIdSizeAndTime) {
    TempDir tmp;
    Store s(tmp.path());
    EXPECT_TRUE(s.list().empty());  // no directories yet
    const Manifest a = make_model(s, pattern_bytes(1000, 1));
    const Manifest b = make_model(s, pattern_bytes(2000, 2), "other template");
    s.write_manifest(ModelName::parse("alpha"), a);
    s.write_manifest(ModelName::parse("hf.co/user/beta:Q8_0"), b);
    fs::last_write_time(s.manifest_path(ModelName::parse("alpha")),
                        fs::file_time_type::clock::now() - std::chrono::hours(5));
    // Junk that is not a manifest of a valid name is skipped.
    fs::create_directories(s.manifests_dir() / "registry.ollama.ai" / "library" / "bad name");
    spit(s.manifests_dir() / "registry.ollama.ai" / "library" / "bad name" / "latest", a.to_json());
    spit(s.manifests_dir() / "registry.ollama.ai" / "library" / "alpha" / ".latest.tmp-1234", a.to_json());
    spit(s.manifests_dir() / "registry.ollama.ai" / "library" / "alpha" / "broken", "{not json");
    spit(s.manifests_dir() / "stray-file", "x");

    const auto list = s.list();
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].name.display(), "hf.co/user/beta:Q8_0");  // newest first
    EXPECT_EQ(list[1].name.display(), "alpha:latest");
    EXPECT_EQ(list[0].size, b.total_size());
    EXPECT_EQ(list[1].size, a.total_size());
    EXPECT_EQ(list[1].digest, Digest::of(a.to_json()));
    EXPECT_EQ(list[1].id(), Digest::of(a.to_json()).hex.substr(0, 12));
    EXPECT_LT(list[1].modified, list[0].modified);
}

TEST(Manifests, CopyAndRemove) {
    TempDir tmp;
    Store s(tmp.path());
    const Manifest a = make_model(s, pattern_bytes(3000, 1));
    const Manifest c = make_model(s, pattern_bytes(3000, 3));
    const ModelName na = ModelName::parse("a:1"), nb = ModelName::parse("team/b:2"), nc = ModelName::parse("c");
    s.write_manifest(na, a);
    s.write_manifest(nc, c);
    s.copy(na, nb);
    EXPECT_EQ(slurp(s.manifest_path(nb)), slurp(s.manifest_path(na)));
    EXPECT_EQ(s.list().size(), 3u);
    EXPECT_EQ(kind_of([&] { s.copy(ModelName::parse("missing"), nb); }), StoreErrorKind::NotFound);

    // rm a: its blobs are still used by b.
    PruneReport r = s.remove(na);
    EXPECT_TRUE(r.removed_blobs.empty());
    EXPECT_FALSE(s.has_model(na));
    for (const Digest& d : a.digests()) EXPECT_TRUE(s.has_blob(d));
    EXPECT_EQ(kind_of([&] { s.remove(na); }), StoreErrorKind::NotFound);

    // rm b (another spelling): now a's blobs go, except those c shares (the params blob).
    r = s.remove(ModelName::parse("Team/B:2"));
    const std::vector<Digest> c_digests = c.digests();
    std::set<Digest> still_used(c_digests.begin(), c_digests.end());
    std::set<Digest> expect_removed;
    for (const Digest& d : a.digests())
        if (!still_used.count(d)) expect_removed.insert(d);
    EXPECT_EQ(std::set<Digest>(r.removed_blobs.begin(), r.removed_blobs.end()), expect_removed);
    EXPECT_GT(r.bytes_freed, 3000u);
    for (const Digest& d : expect_removed) EXPECT_FALSE(s.has_blob(d));
    for (const Digest& d : c.digests()) EXPECT_TRUE(s.has_blob(d));
    // Empty directories of removed models are gone; c's remain.
    EXPECT_EQ(tree(s.manifests_dir()),
              (std::vector<std::string>{"registry.ollama.ai", "registry.ollama.ai/library", "registry.ollama.ai/library/c",
                                        "registry.ollama.ai/library/c/latest"}));
}

TEST(Prune, UnreferencedBlobsAndStalePartials) {
    TempDir tmp;
    Store s(tmp.path());
    const Manifest m = make_model(s, "kept weights");
    s.write_manifest(ModelName::parse("kept"), m);
    const Digest orphan = s.put_blob("orphan bytes");
    const Digest pinned = s.put_blob("pinned bytes");
    const auto old = fs::file_time_type::clock::now() - std::chrono::hours(48);
    const auto recent = fs::file_time_type::clock::now() - std::chrono::minutes(90);
    auto make = [&](const std::string& name, fs::file_time_type t) {
        spit(s.blobs_dir() / name, "partial bytes");
        fs::last_write_time(s.blobs_dir() / name, t);
    };
    const std::string hb(64, 'b'), hc(64, 'c'), hd(64, 'd'), he(64, 'e');
    make("sha256-" + hb + "-partial", old);             // stale resumable partial
    make("sha256-" + hc + "-partial", recent);          // recent resumable partial: kept
    make("sha256-" + hd + "-partial-0123456789abcdef", recent);  // temp older than an hour
    make("sha256-" + he + "-partial-fedcba9876543210", fs::file_time_type::clock::now());  // live temp
    spit(s.blobs_dir() / "README", "not ours");          // unknown names are left alone
    fs::create_directories(s.manifests_dir() / "registry.ollama.ai" / "library" / "empty" / "dir");
    const fs::path kept_dir = s.manifests_dir() / "registry.ollama.ai" / "library" / "kept";
    spit(kept_dir / ".latest.tmp-0011223344556677", "crashed write");
    fs::last_write_time(kept_dir / ".latest.tmp-0011223344556677", old);
    spit(kept_dir / ".latest.tmp-8899aabbccddeeff", "write in progress");

    Store::Pin pin = s.pin(pinned);
    PruneReport r = s.prune();
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.removed_blobs, std::vector<Digest>{orphan});
    std::vector<std::string> partials = r.removed_partials;
    std::sort(partials.begin(), partials.end());
    EXPECT_EQ(partials, (std::vector<std::string>{"sha256-" + hb + "-partial", "sha256-" + hd + "-partial-0123456789abcdef"}));
    EXPECT_FALSE(s.has_blob(orphan));
    EXPECT_TRUE(s.has_blob(pinned));
    for (const Digest& d : m.digests()) EXPECT_TRUE(s.has_blob(d));
    EXPECT_TRUE(fs::exists(s.blobs_dir() / ("sha256-" + hc + "-partial")));
    EXPECT_TRUE(fs::exists(s.blobs_dir() / ("sha256-" + he + "-partial-fedcba9876543210")));
    EXPECT_TRUE(fs::exists(s.blobs_dir() / "README"));
    EXPECT_FALSE(fs::exists(s.manifests_dir() / "registry.ollama.ai" / "library" / "empty"));
    EXPECT_TRUE(s.has_model(ModelName::parse("kept")));
    EXPECT_EQ(r.removed_manifest_temps, std::vector<std::string>{(kept_dir / ".latest.tmp-0011223344556677").string()});
    EXPECT_EQ(files_in(kept_dir), (std::vector<std::string>{".latest.tmp-8899aabbccddeeff", "latest"}));

    pin.release();
    r = s.prune();
    EXPECT_EQ(r.removed_blobs, std::vector<Digest>{pinned});

    // Ages are options.
    PruneOptions all;
    all.partial_max_age = std::chrono::seconds(-1);
    all.temp_max_age = std::chrono::seconds(-1);
    r = s.prune(all);
    EXPECT_EQ(r.removed_partials.size(), 2u);
}

TEST(Prune, AnUnreadableManifestStopsBlobRemoval) {
    TempDir tmp;
    Store s(tmp.path());
    const Manifest m = make_model(s, "weights");
    s.write_manifest(ModelName::parse("good"), m);
    const Digest orphan = s.put_blob("orphan");
    fs::create_directories(s.manifests_dir() / "registry.ollama.ai" / "library" / "broken");
    spit(s.manifests_dir() / "registry.ollama.ai" / "library" / "broken" / "latest", "{truncated");
    PruneReport r = s.prune();
    EXPECT_TRUE(r.removed_blobs.empty());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].find("broken"), std::string::npos);
    EXPECT_TRUE(s.has_blob(orphan));
}

TEST(Prune, AtStartHonoursNoPrune) {
    TempDir tmp;
    Store s(tmp.path());
    const Digest orphan = s.put_blob("orphan");
    EnvGuard guard("HEARTH_NOPRUNE");
    ::setenv("HEARTH_NOPRUNE", "1", 1);
    PruneReport r = s.prune_at_start();
    EXPECT_TRUE(r.skipped);
    EXPECT_TRUE(s.has_blob(orphan));
    ::setenv("HEARTH_NOPRUNE", "", 1);  // empty means unset, as in Ollama
    r = s.prune_at_start();
    EXPECT_FALSE(r.skipped);
    EXPECT_FALSE(s.has_blob(orphan));
}

TEST(Store, DefaultRoot) {
    EnvGuard models("HEARTH_MODELS");
    EnvGuard home("HOME");
    ::setenv("HEARTH_MODELS", "/srv/hearth-models", 1);
    EXPECT_EQ(default_models_root(), fs::path("/srv/hearth-models"));
    EXPECT_EQ(Store::open_default().root(), fs::path("/srv/hearth-models"));
    ::unsetenv("HEARTH_MODELS");
    ::setenv("HOME", "/home/someone", 1);
    EXPECT_EQ(default_models_root(), fs::path("/home/someone/.hearth/models"));
    ::setenv("HEARTH_MODELS", "", 1);
    EXPECT_EQ(default_models_root(), fs::path("/home/someone/.hearth/models"));
}

TEST(Store, ConstructionTouchesNothing) {
    TempDir tmp;
    Store s(tmp.path() / "models");
    EXPECT_TRUE(s.list().empty());
    EXPECT_FALSE(s.has_model(ModelName::parse("x")));
    EXPECT_FALSE(s.has_blob(Digest::of("x")));
    EXPECT_TRUE(s.prune().removed_blobs.empty());
    EXPECT_FALSE(fs::exists(tmp.path() / "models"));
}
