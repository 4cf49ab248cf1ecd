// The daemon-facing CLI run as a user would: a real `hearth serve` on a free loopback port
// with its own store, and `hearth create / list / show / cp / run / ps / stop / rm` as
// separate processes against it (stdout, stderr and exit status checked). Also the
// automatic start of a daemon by `hearth list` when none answers.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "http/client.h"
#include "support/paths.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using test::shared_path;

struct Proc {
    int status = -1;
    std::string out, err;
};

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), {}};
}

int free_port() {
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        close(s);
        return 0;
    }
    close(s);
    return ntohs(a.sin_port);
}

// Starts `hearth ARGS` with extra environment, stdin from `stdin_file` (default /dev/null),
// stdout/stderr into files under `dir`. Returns the pid.
pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const std::string& out_file,
            const std::string& err_file, const std::string& stdin_file = "/dev/null", const std::string& cwd = "") {
    const pid_t pid = fork();
    if (pid == 0) {
        for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        unsetenv("HEARTH_API_KEY");
        unsetenv("HEARTH_API_KEYS");
        if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
        const int in = open(stdin_file.c_str(), O_RDONLY);
        const int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        std::vector<char*> argv;
        std::string bin = HEARTH_BINARY;
        argv.push_back(bin.data());
        std::vector<std::string> copy = args;
        for (std::string& a : copy) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    return pid;
}

// Waits for a child; kills it after `limit` (a hang guard, not a timing assertion).
int wait_child(pid_t pid, std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int st = 0;
    for (;;) {
        const pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0) return -1;
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -2;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

// A process that is not our child: gone when it no longer exists or is a zombie.
bool process_gone(pid_t pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto close_paren = line.rfind(')');
    return close_paren != std::string::npos && close_paren + 2 < line.size() && line[close_paren + 2] == 'Z';
}

// Processes of ours whose environment holds `needle` (e.g. HEARTH_MODELS=<a temp dir>).
std::vector<pid_t> pids_with_env(const std::string& needle) {
    std::vector<pid_t> out;
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream env(e.path() / "environ", std::ios::binary);
        std::string all((std::istreambuf_iterator<char>(env)), {});
        size_t start = 0;
        while (start < all.size()) {
            size_t end = all.find('\0', start);
            if (end == std::string::npos) end = all.size();
            if (all.compare(start, end - start, needle) == 0) {
                out.push_back(static_cast<pid_t>(std::stoi(name)));
                break;
            }
            start = end + 1;
        }
    }
    return out;
}

void terminate(pid_t pid) {
    if (pid <= 0 || process_gone(pid)) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500 && !process_gone(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!process_gone(pid)) kill(pid, SIGKILL);
}

bool wait_until_up(int port, pid_t pid) {
    for (int i = 0; i < 1000; ++i) {
        http::Client c("127.0.0.1", port);
        c.set_connection_timeout(std::chrono::seconds(1));
        if (auto r = c.Get("/"); r && r->status == 200) return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

// The first capture group of each match of `pattern`, as numbers.
std::vector<int> captured_numbers(const std::string& text, const std::string& pattern) {
    std::vector<int> out;
    const std::regex re(pattern);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back(std::stoi((*it)[1]));
    return out;
}

int count(const std::string& hay, const std::string& needle) {
    int n = 0;
    for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

// One daemon for the suite, with a model `stories` created through the CLI.
class CliDaemon : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir();
        port_ = free_port();
        env_ = {{"HEARTH_HOST", "127.0.0.1:" + std::to_string(port_)}, {"HEARTH_MODELS", dir_->file("models")},
                {"HEARTH_KEEP_ALIVE", "5m"}};
        daemon_ = spawn({"serve"}, env_, dir_->file("serve.out"), dir_->file("serve.err"));
        up_ = wait_until_up(port_, daemon_);
        if (!up_) return;
        std::ofstream(dir_->file("Modelfile")) << "# a story model\n"
                                                  "FROM " + shared_path("models/stories260K.gguf") + "\n"
                                                  "SYSTEM \"\"\"You tell stories.\nShort ones.\"\"\"\n"
                                                  "PARAMETER temperature 0\n"
                                                  "PARAMETER num_predict 12\n"
                                                  "LICENSE MIT\n";
        create_ = new Proc(cli({"create", "stories", "-f", dir_->file("Modelfile")}));
    }
    static void TearDownTestSuite() {
        if (daemon_ > 0) {
            kill(daemon_, SIGTERM);
            if (wait_child(daemon_, std::chrono::seconds(20)) == -2) ADD_FAILURE() << "the daemon did not stop on SIGTERM";
        }
        delete create_;
        delete dir_;
        create_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override { ASSERT_TRUE(up_) << "hearth serve did not start: " << slurp(dir_->file("serve.err")); }

    static Proc cli(const std::vector<std::string>& args, const std::string& input = "", const std::string& cwd = "") {
        static int n = 0;
        const std::string base = dir_->file("run" + std::to_string(++n));
        std::string in = "/dev/null";
        if (!input.empty()) {
            in = base + ".in";
            std::ofstream(in) << input;
        }
        const pid_t pid = spawn(args, env_, base + ".out", base + ".err", in, cwd);
        Proc p;
        p.status = wait_child(pid);
        p.out = slurp(base + ".out");
        p.err = slurp(base + ".err");
        return p;
    }

    static inline test::TempDir* dir_ = nullptr;
    static inline int port_ = 0;
    static inline pid_t daemon_ = -1;
    static inline bool up_ = false;
    static inline std::map<std::string, std::string> env_;
    static inline Proc* create_ = nullptr;
};

TEST_F(CliDaemon, CreateFromAModelfileThenListAndShow) {
    ASSERT_EQ(create_->status, 0) << create_->out << create_->err;
    EXPECT_NE(create_->err.find("gathering model components"), std::string::npos) << create_->err;
    EXPECT_NE(create_->err.find("success"), std::string::npos) << create_->err;

    const Proc list = cli({"list"});
    ASSERT_EQ(list.status, 0) << list.err;
    // Header and the model, columns aligned like Ollama's table.
    std::istringstream lines(list.out);
    std::string header, row;
    std::getline(lines, header);
    std::getline(lines, row);
    EXPECT_EQ(header.find("NAME"), 0u) << list.out;
    const size_t id_col = header.find("ID"), size_col = header.find("SIZE"), mod_col = header.find("MODIFIED");
    ASSERT_NE(mod_col, std::string::npos) << list.out;
    EXPECT_EQ(row.find("stories:latest"), 0u) << list.out;
    EXPECT_TRUE(std::regex_match(row.substr(id_col, 12), std::regex("[0-9a-f]{12}"))) << row;
    EXPECT_TRUE(std::regex_search(row.substr(size_col), std::regex("^[0-9.]+ (KB|MB)"))) << row;
    EXPECT_NE(row.find("ago", mod_col), std::string::npos) << row;

    const Proc system = cli({"show", "stories", "--system"});
    ASSERT_EQ(system.status, 0) << system.err;
    EXPECT_EQ(system.out, "You tell stories.\nShort ones.\n");

    const Proc params = cli({"show", "stories", "--parameters"});
    ASSERT_EQ(params.status, 0) << params.err;
    EXPECT_TRUE(std::regex_search(params.out, std::regex("temperature +0"))) << params.out;
    EXPECT_TRUE(std::regex_search(params.out, std::regex("num_predict +12"))) << params.out;

    const Proc modelfile = cli({"show", "stories", "--modelfile"});
    ASSERT_EQ(modelfile.status, 0) << modelfile.err;
    EXPECT_NE(modelfile.out.find("FROM "), std::string::npos) << modelfile.out;
    EXPECT_NE(modelfile.out.find("PARAMETER num_predict 12"), std::string::npos) << modelfile.out;
    EXPECT_NE(modelfile.out.find("You tell stories."), std::string::npos) << modelfile.out;

    const Proc info = cli({"show", "stories"});
    ASSERT_EQ(info.status, 0) << info.err;
    EXPECT_TRUE(std::regex_search(info.out, std::regex("  Model\n    architecture +llama\n"))) << info.out;
    EXPECT_TRUE(std::regex_search(info.out, std::regex("    context length +[0-9]+\n"))) << info.out;
    EXPECT_NE(info.out.find("  Capabilities\n    completion\n"), std::string::npos) << info.out;
    EXPECT_TRUE(std::regex_search(info.out, std::regex("  Parameters\n(.*\n)*    temperature +0\n"))) << info.out;
    EXPECT_NE(info.out.find("  System\n    You tell stories.\n    Short ones.\n"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("  License\n    MIT\n"), std::string::npos) << info.out;

    const Proc two = cli({"show", "stories", "--system", "--license"});
    EXPECT_EQ(two.status, 1);
    EXPECT_EQ(two.err.rfind("Error: only one of", 0), 0u) << two.err;
}

TEST_F(CliDaemon, CreateResolvesRelativePathsFromTheModelfileFolder) {
    fs::create_directories(dir_->file("sub"));
    fs::create_symlink(shared_path("models/stories260K.gguf"), dir_->file("sub/weights.gguf"));
    std::ofstream(dir_->file("sub/Modelfile")) << "FROM ./weights.gguf\nTEMPLATE \"{{ messages[0].content }}\"\n";
    // Run from another folder: the path is taken relative to the Modelfile, and the blob the
    // daemon already has is not uploaded again.
    const Proc p = cli({"create", "rel:v1", "-f", dir_->file("sub/Modelfile")}, "", dir_->path().string());
    ASSERT_EQ(p.status, 0) << p.err;
    EXPECT_EQ(p.err.find("copying file"), std::string::npos) << p.err;
    const Proc t = cli({"show", "rel:v1", "--template"});
    EXPECT_EQ(t.out, "{{ messages[0].content }}\n");
    EXPECT_EQ(cli({"rm", "rel:v1"}).status, 0);

    const Proc missing = cli({"create", "x", "-f", dir_->file("nope")});
    EXPECT_EQ(missing.status, 1);
    EXPECT_EQ(missing.err.rfind("Error: cannot read Modelfile", 0), 0u) << missing.err;
    std::ofstream(dir_->file("bad")) << "FROM x\nPARAMETER bogus 1\n";
    const Proc bad = cli({"create", "x", "-f", dir_->file("bad")});
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
}

TEST_F(CliDaemon, CopyThenRemove) {
    ASSERT_EQ(create_->status, 0) << create_->err;
    const Proc cp = cli({"cp", "stories", "tales:v2"});
    ASSERT_EQ(cp.status, 0) << cp.err;
    EXPECT_EQ(cp.out, "copied 'stories' to 'tales:v2'\n");
    EXPECT_NE(cli({"ls"}).out.find("tales:v2"), std::string::npos);
    EXPECT_EQ(cli({"show", "tales:v2", "--system"}).out, "You tell stories.\nShort ones.\n");

    const Proc rm = cli({"rm", "tales:v2"});
    ASSERT_EQ(rm.status, 0) << rm.err;
    EXPECT_EQ(rm.out, "deleted 'tales:v2'\n");
    const Proc list = cli({"list"});
    EXPECT_EQ(list.out.find("tales"), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("stories:latest"), std::string::npos) << list.out;
}

TEST_F(CliDaemon, UnknownModelsAreErrorsWithOllamasMessage) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"show", "nosuchmodel"}, {"rm", "nosuchmodel"}, {"cp", "nosuchmodel", "other"}}) {
        const Proc p = cli(args);
        EXPECT_EQ(p.status, 1) << args[0];
        EXPECT_EQ(p.err.rfind("Error: ", 0), 0u) << p.err;
        EXPECT_NE(p.err.find("not found"), std::string::npos) << p.err;
        EXPECT_EQ(p.out, "");
    }
    const Proc missing_path = cli({"run", "/nonexistent/model.gguf", "hi"});
    EXPECT_EQ(missing_path.status, 1);
    EXPECT_NE(missing_path.err.find("not found"), std::string::npos) << missing_path.err;
}

TEST_F(CliDaemon, RunOneShotPrintsTheAnswerAndTimings) {
    ASSERT_EQ(create_->status, 0) << create_->err;
    cli({"stop", "stories"});  // so the timings include a load
    const Proc p = cli({"run", "stories", "Once upon a time", "--verbose"});
    ASSERT_EQ(p.status, 0) << p.err;
    EXPECT_GT(p.out.size(), 1u);
    EXPECT_EQ(p.out.back(), '\n');
    for (const char* line : {"total duration:", "load duration:", "prompt eval count:", "prompt eval duration:", "prompt eval rate:",
                             "eval count:", "eval duration:", "eval rate:"})
        EXPECT_NE(p.err.find(line), std::string::npos) << line << "\n" << p.err;
    EXPECT_TRUE(std::regex_search(p.err, std::regex("eval count: +12 token\\(s\\)"))) << p.err;  // num_predict 12
    EXPECT_TRUE(std::regex_search(p.err, std::regex("eval rate: +[0-9]+\\.[0-9]{2} tokens/s"))) << p.err;

    // Piped input is the prompt (greedy: the same answer as the argument form).
    const Proc piped = cli({"run", "stories"}, "Once upon a time");
    ASSERT_EQ(piped.status, 0) << piped.err;
    EXPECT_EQ(piped.out, p.out);

    // A .gguf path works as the model name.
    const Proc path = cli({"run", shared_path("models/stories260K.gguf"), "Once upon a time", "--keepalive", "0"});
    ASSERT_EQ(path.status, 0) << path.err;
    EXPECT_GT(path.out.size(), 1u);
    EXPECT_EQ(cli({"run", "stories", "hi", "--format", "yaml"}).status, 1);
}

TEST_F(CliDaemon, ReplThroughAPipe) {
    ASSERT_EQ(create_->status, 0) << create_->err;
    const std::string input =
        "/set parameter num_predict 5\n"
        "/set parameter bogus 1\n"
        "/show system\n"
        "Once upon a time\n"
        "\"\"\"There was a cat.\n"
        "It was big.\n"
        "\"\"\"\n"
        "/set system Be brief.\n"
        "/show system\n"
        "/show parameters\n"
        "/frobnicate\n"
        "/bye\n"
        "this is never sent\n";
    const Proc p = cli({"run", "stories", "-i", "--verbose"}, input);
    ASSERT_EQ(p.status, 0) << p.err;
    EXPECT_NE(p.out.find("Set parameter 'num_predict' to '5'\n"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("Couldn't set parameter: "), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("You tell stories.\nShort ones.\n"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("Set system message.\nBe brief.\n"), std::string::npos) << p.out;
    EXPECT_TRUE(std::regex_search(p.out, std::regex("User defined parameters:\nnum_predict +5\n"))) << p.out;
    EXPECT_NE(p.out.find("Unknown command '/frobnicate'"), std::string::npos) << p.out;
    // Two messages were sent (the multi-line one as one message), each answered with 5 tokens;
    // the second prompt carries the first exchange, so it is longer.
    EXPECT_EQ(count(p.err, "total duration:"), 2) << p.err;
    EXPECT_EQ(count(p.err, "eval count:           5 token(s)"), 2) << p.err;
    const std::vector<int> prompt_counts = captured_numbers(p.err, "prompt eval count: +([0-9]+)");
    ASSERT_EQ(prompt_counts.size(), 2u) << p.err;
    EXPECT_GT(prompt_counts[1], prompt_counts[0] + 5);

    // Ctrl-D (end of input) leaves cleanly too; /clear forgets the conversation.
    const Proc eof = cli({"run", "stories", "-i", "--verbose"}, "/set parameter num_predict 3\nhello\n/clear\nhello\n");
    ASSERT_EQ(eof.status, 0) << eof.err;
    EXPECT_NE(eof.out.find("Cleared session context"), std::string::npos);
    const std::vector<int> counts = captured_numbers(eof.err, "prompt eval count: +([0-9]+)");
    ASSERT_EQ(counts.size(), 2u) << eof.err;
    EXPECT_EQ(counts[0], counts[1]);
}

TEST_F(CliDaemon, PsShowsTheLoadedModelAndStopUnloadsIt) {
    ASSERT_EQ(create_->status, 0) << create_->err;
    ASSERT_EQ(cli({"run", "stories", "Hello", "--keepalive", "10m"}).status, 0);
    const Proc ps = cli({"ps"});
    ASSERT_EQ(ps.status, 0) << ps.err;
    EXPECT_EQ(ps.out.find("NAME"), 0u) << ps.out;
    for (const char* col : {"ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"}) EXPECT_NE(ps.out.find(col), std::string::npos) << col;
    EXPECT_NE(ps.out.find("stories"), std::string::npos) << ps.out;
    EXPECT_NE(ps.out.find("100% CPU"), std::string::npos) << ps.out;
    EXPECT_TRUE(std::regex_search(ps.out, std::regex("(9|10) minutes from now"))) << ps.out;

    const Proc stop = cli({"stop", "stories"});
    ASSERT_EQ(stop.status, 0) << stop.err;
    EXPECT_EQ(cli({"ps"}).out.find("stories"), std::string::npos);
    const Proc again = cli({"stop", "stories"});
    EXPECT_EQ(again.status, 1);
    EXPECT_EQ(again.err, "Error: couldn't find model \"stories\" to stop\n");
}

TEST_F(CliDaemon, RunPullsAMissingModelThenPullAndPushShowProgress) {
    ASSERT_EQ(create_->status, 0) << create_->err;
    // The daemon is also a (read-only) registry: pull a model from it under a new name.
    const std::string remote = "127.0.0.1:" + std::to_string(port_) + "/library/stories:latest";
    const Proc run = cli({"run", "--insecure", remote, "Once upon a time"});
    ASSERT_EQ(run.status, 0) << run.err;
    EXPECT_GT(run.out.size(), 1u);
    // Not a terminal: plain lines, one per status and one per finished layer.
    EXPECT_EQ(run.err.rfind("pulling manifest\n", 0), 0u) << run.err;
    EXPECT_TRUE(std::regex_search(run.err, std::regex("\npulling [0-9a-f]{12}: 100% 1\\.2 MB\n"))) << run.err;
    EXPECT_NE(run.err.find("\nsuccess\n"), std::string::npos) << run.err;
    EXPECT_NE(cli({"list"}).out.find(remote), std::string::npos);

    const Proc pull = cli({"pull", "--insecure", remote});
    ASSERT_EQ(pull.status, 0) << pull.err;
    EXPECT_NE(pull.err.find("writing manifest\nsuccess\n"), std::string::npos) << pull.err;
    const Proc push = cli({"push", "--insecure", remote});  // a hearth daemon does not take pushes
    EXPECT_EQ(push.status, 1);
    EXPECT_TRUE(std::regex_search(push.err, std::regex("\npushing [0-9a-f]{12}: 100% 1\\.2 MB\n"))) << push.err;
    EXPECT_NE(push.err.find("\nError: "), std::string::npos) << push.err;
    EXPECT_EQ(cli({"rm", remote}).status, 0);
}

TEST_F(CliDaemon, EveryCommandHasHelp) {
    for (const char* cmd : {"run", "pull", "push", "list", "ls", "ps", "show", "stop", "rm", "cp", "create"}) {
        const Proc p = cli({cmd, "--help"});
        EXPECT_EQ(p.status, 0) << cmd;
        EXPECT_NE(p.out.find("Usage"), std::string::npos) << cmd << ": " << p.out;
    }
    EXPECT_NE(cli({"run", "--help"}).out.find("--keepalive"), std::string::npos);
    EXPECT_NE(cli({"show", "--help"}).out.find("--modelfile"), std::string::npos);
}

TEST(CliAutostart, ListStartsADaemonWhenNoneAnswers) {
    test::TempDir dir;
    const int port = free_port();
    const std::map<std::string, std::string> env = {{"HEARTH_HOST", "127.0.0.1:" + std::to_string(port)},
                                                    {"HEARTH_MODELS", dir.file("models")}};
    const pid_t pid = spawn({"list"}, env, dir.file("out"), dir.file("err"));
    const int status = wait_child(pid);
    const std::string out = slurp(dir.file("out")), err = slurp(dir.file("err"));
    std::smatch m;
    const bool said = std::regex_search(err, m, std::regex("hearth: started a daemon on 127\\.0\\.0\\.1:([0-9]+) \\(pid ([0-9]+), log: (.*)\\)\n"));
    const pid_t daemon = said ? static_cast<pid_t>(std::stoi(m[2])) : -1;
    // Whatever happens below, no daemon is left behind.
    struct Cleanup {
        std::string needle;
        pid_t pid;
        ~Cleanup() {
            terminate(pid);
            for (pid_t p : pids_with_env(needle)) terminate(p);
        }
    } cleanup{"HEARTH_MODELS=" + dir.file("models"), daemon};

    ASSERT_EQ(status, 0) << err;
    ASSERT_TRUE(said) << err;
    EXPECT_EQ(std::stoi(m[1]), port);
    EXPECT_EQ(m[3].str(), dir.file("logs/server.log"));
    EXPECT_EQ(out.rfind("NAME", 0), 0u) << out;
    EXPECT_NE(slurp(dir.file("logs/server.log")).find("listening"), std::string::npos);

    // The daemon it started keeps serving: a second command finds it and starts nothing.
    const pid_t again = spawn({"ps"}, env, dir.file("out2"), dir.file("err2"));
    EXPECT_EQ(wait_child(again), 0) << slurp(dir.file("err2"));
    EXPECT_EQ(slurp(dir.file("err2")), "");
    EXPECT_FALSE(process_gone(daemon));

    // Commands that never start one say how to.
    terminate(daemon);
    const pid_t rm = spawn({"rm", "x"}, env, dir.file("out3"), dir.file("err3"));
    EXPECT_EQ(wait_child(rm), 1);
    EXPECT_NE(slurp(dir.file("err3")).find("Error: could not connect to the hearth daemon"), std::string::npos)
        << slurp(dir.file("err3"));
}

}  // namespace
}  // namespace hearth
