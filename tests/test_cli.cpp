// The `hearth` binary run as a user would: exit codes, stdout, stderr.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "support/paths.h"
#include "tensor/cpu.h"

namespace hearth {
namespace {

using test::shared_path;

struct CliRun {
    int status;
    std::string out;
};

// Runs `hearth ARGS` through the shell; stderr goes to `err_file` when given; `env` is
// prefixed to the command (e.g. "HEARTH_ISA=avx2 ").
CliRun hearth(const std::string& args, const std::string& err_file = "/dev/null", const std::string& env = "") {
    const std::string cmd = env + std::string(HEARTH_BINARY) + " " + args + " 2>" + err_file;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {-1, ""};
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), {}};
}

TEST(Cli, GenerateGreedyIdsMatchTheReference) {
    std::ifstream f(shared_path("models/stories260K.reference.json"));
    const auto refs = nlohmann::json::parse(f);
    const auto& r = refs[1];
    std::string ids;
    for (int id : r["prompt_ids"]) ids += std::to_string(id) + " ";
    const CliRun run = hearth("generate -m " + shared_path("models/stories260K.gguf") + " --prompt-ids '" + ids +
                           "' -n 100 --temp 0 --ids -t 2");
    ASSERT_EQ(run.status, 0);
    std::string want;
    for (int id : r["generated_ids"]) want += (want.empty() ? "" : " ") + std::to_string(id);
    EXPECT_EQ(run.out, want + "\n");
}

TEST(Cli, GenerateTextStreamsTheContinuationAndTimingsGoToStderr) {
    test::TempDir dir;
    const CliRun run = hearth("generate -m " + shared_path("models/stories260K.gguf") +
                               " -p 'Once upon a time' -n 20 --temp 0",
                           dir.file("err"));
    ASSERT_EQ(run.status, 0);
    EXPECT_GT(run.out.size(), 20u);
    const std::string err = slurp(dir.file("err"));
    EXPECT_NE(err.find("tok/s"), std::string::npos) << err;
}

TEST(Cli, TokenizePrintsIds) {
    const CliRun run = hearth("tokenize -m " + shared_path("models/stories260K.gguf") + " 'Once upon a time'");
    ASSERT_EQ(run.status, 0);
    EXPECT_EQ(run.out, "1 403 407 261 378\n");
    const CliRun nobos = hearth("tokenize --no-bos -m " + shared_path("models/stories260K.gguf") + " 'Once upon a time'");
    EXPECT_EQ(nobos.out, "403 407 261 378\n");
}

TEST(Cli, BenchJsonHasLlamaBenchFields) {
    const CliRun run = hearth("bench -m " + shared_path("models/stories260K.gguf") + " -p 16 -n 8 -r 2 -t 1 -o json");
    ASSERT_EQ(run.status, 0) << run.out;
    const auto j = nlohmann::json::parse(run.out);
    ASSERT_EQ(j.size(), 2u);
    for (const char* key : {"model_filename", "model_type", "model_size", "n_threads", "n_prompt", "n_gen", "avg_ns",
                            "stddev_ns", "avg_ts", "stddev_ts", "samples_ts"})
        EXPECT_TRUE(j[0].contains(key)) << key;
    EXPECT_EQ(j[0]["n_prompt"], 16);
    EXPECT_EQ(j[1]["n_gen"], 8);
    EXPECT_EQ(j[1]["samples_ts"].size(), 2u);
    EXPECT_GT(j[1]["avg_ts"].get<double>(), 0.0);
}

TEST(Cli, BenchMarkdownTable) {
    const CliRun run = hearth("bench -m " + shared_path("models/stories260K.gguf") + " -p 8 -n 4 -d 8 -r 1 -t 1");
    ASSERT_EQ(run.status, 0);
    EXPECT_NE(run.out.find("| pp8 @ d8 |"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("| tg4 @ d8 |"), std::string::npos) << run.out;
}

TEST(Cli, PerplexityPrintsAFiniteValue) {
    test::TempDir dir;
    std::ofstream(dir.file("t.txt")) << std::string(
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a "
        "big red ball in the park. She ran to get it, but a dog got it first. Lily was sad, but then the dog brought "
        "the ball back to her. They played together all day and became best friends. The end. ");
    const CliRun run = hearth("perplexity -m " + shared_path("models/stories260K.gguf") + " -f " + dir.file("t.txt") + " -c 32");
    ASSERT_EQ(run.status, 0);
    const auto at = run.out.find("PPL = ");
    ASSERT_NE(at, std::string::npos) << run.out;
    const double ppl = std::stod(run.out.substr(at + 6));
    EXPECT_GT(ppl, 1.0);
    EXPECT_LT(ppl, 100.0);  // a trained model on its own kind of text
}

TEST(Cli, ErrorsAreClearAndExitNonZero) {
    test::TempDir dir;
    CliRun r = hearth("generate -m /nonexistent.gguf -p hi", dir.file("e1"));
    EXPECT_NE(r.status, 0);
    std::ofstream(dir.file("bad.gguf")) << "not a gguf file at all";
    r = hearth("generate -m " + dir.file("bad.gguf") + " -p hi", dir.file("e2"));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(slurp(dir.file("e2")).find("gguf"), std::string::npos) << slurp(dir.file("e2"));
    r = hearth("quantize " + shared_path("models/stories260K.gguf") + " " + dir.file("o.gguf") + " q9_9", dir.file("e3"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(slurp(dir.file("e3")).find("q9_9"), std::string::npos);
}

// HEARTH_ISA forces each kernel family the CPU has: every one gives llama.cpp's greedy ids
// for stories260K, and `hearth bench` reports the family it ran. A family the CPU lacks and an
// unknown name are clear errors.
TEST(Cli, EveryKernelFamilyGivesTheReferenceGreedyIds) {
    std::ifstream f(shared_path("models/stories260K.reference.json"));
    const auto refs = nlohmann::json::parse(f);
    const auto& r = refs[2];
    std::string ids, want;
    for (int id : r["prompt_ids"]) ids += std::to_string(id) + " ";
    for (int id : r["generated_ids"]) want += (want.empty() ? "" : " ") + std::to_string(id);
    int families = 0;
    for (IsaFamily fam : {IsaFamily::Scalar, IsaFamily::Avx2, IsaFamily::Avx2Vnni, IsaFamily::Avx512, IsaFamily::Amx,
                          IsaFamily::Neon, IsaFamily::NeonDotprod}) {
        const std::string env = std::string("HEARTH_ISA=") + isa_family_name(fam) + " ";
        test::TempDir dir;
        if (!isa_family_supported(fam)) {
            const CliRun run = hearth("generate -m " + shared_path("models/stories260K.gguf") + " -p hi -n 1", dir.file("e"), env);
            EXPECT_EQ(run.status, 1) << isa_family_name(fam);
            EXPECT_NE(slurp(dir.file("e")).find("best kernel family"), std::string::npos) << slurp(dir.file("e"));
            continue;
        }
        ++families;
        const CliRun run = hearth("generate -m " + shared_path("models/stories260K.gguf") + " --prompt-ids '" + ids +
                                      "' -n 100 --temp 0 --ids -t 2",
                                  "/dev/null", env);
        ASSERT_EQ(run.status, 0) << isa_family_name(fam);
        EXPECT_EQ(run.out, want + "\n") << isa_family_name(fam);
        const CliRun bench = hearth("bench -m " + shared_path("models/stories260K.gguf") + " -p 8 -n 0 -r 1 -t 1 -o json",
                                    "/dev/null", env);
        ASSERT_EQ(bench.status, 0);
        EXPECT_EQ(nlohmann::json::parse(bench.out)[0]["isa"], isa_family_name(fam));
    }
    EXPECT_GE(families, 1);
    test::TempDir dir;
    for (const char* bad : {"HEARTH_ISA=sve ", "HEARTH_ISA=avx1024 "}) {
        const CliRun run = hearth("generate -m " + shared_path("models/stories260K.gguf") + " -p hi -n 1", dir.file("e"), bad);
        EXPECT_EQ(run.status, 1) << bad;
        EXPECT_NE(slurp(dir.file("e")).find("HEARTH_ISA"), std::string::npos) << slurp(dir.file("e"));
    }
}

TEST(Cli, FixedSeedGivesIdenticalSampledOutput) {
    auto cmd = [](int seed) {
        return "generate -m " + shared_path("models/stories260K.gguf") +
               " -p 'Once upon a time' -n 40 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --ids --seed " + std::to_string(seed);
    };
    const CliRun a = hearth(cmd(1234)), b = hearth(cmd(1234)), c = hearth(cmd(99));
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(c.status, 0);
    EXPECT_EQ(a.out, b.out);
    EXPECT_NE(a.out, c.out);
}

// One forward pass over the reference sequence: at every generated position the top entry
// is llama.cpp's token and its log-probability agrees with llama.cpp's F32-KV probability.
TEST(Cli, DevLogitsMatchTheReferenceDistribution) {
    std::ifstream f(shared_path("models/synthetic/references.json"));
    const auto refs = nlohmann::json::parse(f);
    const auto& r = refs[0];
    ASSERT_EQ(r["type"], "f32");
    std::vector<int> seq = r["prompt_ids"].get<std::vector<int>>();
    const std::vector<int> gen = r["generated_ids"].get<std::vector<int>>();
    seq.insert(seq.end(), gen.begin(), gen.begin() + 8);
    std::string ids;
    for (int id : seq) ids += std::to_string(id) + " ";
    const CliRun run = hearth("dev logits -m " + shared_path(r["file"].get<std::string>()) + " --kv-type f32 --prompt-ids '" + ids + "' --top 3");
    ASSERT_EQ(run.status, 0);
    std::istringstream lines(run.out);
    std::string line;
    size_t pos = 0, checked = 0;
    const size_t n_prompt = r["prompt_ids"].size();
    while (std::getline(lines, line)) {
        const auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j["pos"], pos);
        ASSERT_EQ(j["top"].size(), 3u);
        if (pos + 1 >= n_prompt && pos + 1 - n_prompt < 8) {
            const auto& want = r["top5_kv_f32"][pos + 1 - n_prompt];
            EXPECT_EQ(j["top"][0][0], want[0][0]) << "pos " << pos;
            EXPECT_NEAR(std::exp(j["top"][0][1].get<double>()), want[0][1].get<double>(), 1e-3) << "pos " << pos;
            ++checked;
        }
        ++pos;
    }
    EXPECT_EQ(pos, seq.size());
    EXPECT_EQ(checked, 8u);
}

TEST(Cli, DevEmbedPrintsAUnitVectorAndGenerateRefusesEmbeddingModels) {
    const std::string model = shared_path("models/synthetic/bert-mean-f32.gguf");
    const CliRun run = hearth("dev embed -m " + model + " 'hello world'");
    ASSERT_EQ(run.status, 0);
    const auto v = nlohmann::json::parse(run.out).get<std::vector<double>>();
    ASSERT_EQ(v.size(), 64u);
    double n = 0;
    for (double x : v) n += x * x;
    EXPECT_NEAR(n, 1.0, 1e-5);
    test::TempDir dir;
    const CliRun gen = hearth("generate -m " + model + " -p hi", dir.file("err"));
    EXPECT_EQ(gen.status, 1);
    EXPECT_NE(slurp(dir.file("err")).find("embedding model"), std::string::npos) << slurp(dir.file("err"));
}

TEST(Cli, MakeModelThenQuantizeThenGenerate) {
    test::TempDir dir;
    ASSERT_EQ(hearth("dev make-model " + dir.file("f16.gguf") + " --preset tiny --type f16 -t 2").status, 0);
    ASSERT_EQ(hearth("quantize " + dir.file("f16.gguf") + " " + dir.file("q4.gguf") + " q4_K_M -t 2").status, 0);
    const CliRun g = hearth("generate -m " + dir.file("q4.gguf") + " --prompt-ids '1 300 301' -n 5 --temp 0 --ids");
    ASSERT_EQ(g.status, 0);
    int count = 0;
    for (char c : g.out) count += c == ' ' ? 1 : 0;
    EXPECT_EQ(count, 4) << g.out;
}

}  // namespace
}  // namespace hearth
