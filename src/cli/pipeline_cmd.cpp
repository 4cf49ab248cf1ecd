// `hearth pipeline-supervise -- mpirun ... hearth serve --pipeline`: keeps a pipeline group
// (cluster/pipeline_group.h) serving. The group ends as a whole when a stage dies (mpirun) or
// stops answering (the watchdog's MPI_Abort); the supervisor then starts the command again
// after a short pause. It exits with the command's status when the command ends cleanly
// (exit 0) or on SIGINT/SIGTERM, which it passes to the command's process group first.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"

namespace hearth::cli {

namespace {

std::atomic<int> g_child{0};       // the running command's pid (its own process group)
std::atomic<bool> g_stop{false};

void on_signal(int sig) {
    g_stop = true;
    const int pid = g_child.load();
    if (pid > 0) ::kill(-pid, sig);
}

struct SuperviseArgs {
    std::vector<std::string> command;
    int max_restarts = -1;    // < 0: forever
    double pause_s = 1.0;
};

int supervise(const SuperviseArgs& a) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::vector<char*> argv;
    for (const std::string& s : a.command) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    for (int restarts = 0;; ++restarts) {
        const auto t0 = std::chrono::steady_clock::now();
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("pipeline-supervise: fork failed");
        if (pid == 0) {
            ::setpgid(0, 0);  // its own group: a signal reaches mpirun and its ranks
            ::execvp(argv[0], argv.data());
            std::fprintf(stderr, "hearth pipeline-supervise: cannot run %s\n", argv[0]);
            ::_exit(127);
        }
        ::setpgid(pid, pid);
        g_child = pid;
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        g_child = 0;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        const double ran = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (g_stop || code == 0) return code;
        if (code == 127) return code;  // the command does not exist: restarting will not help
        if (a.max_restarts >= 0 && restarts >= a.max_restarts) {
            std::fprintf(stderr, "hearth pipeline-supervise: the command ended (status %d) after %.1f s; no restarts left\n", code, ran);
            return code;
        }
        std::fprintf(stderr, "hearth pipeline-supervise: the command ended (status %d) after %.1f s; starting it again\n", code, ran);
        std::fflush(stderr);
        std::this_thread::sleep_for(std::chrono::duration<double>(a.pause_s));
        if (g_stop) return code;
    }
}

}  // namespace

void add_pipeline_supervise_command(CLI::App& app) {
    auto a = std::make_shared<SuperviseArgs>();
    CLI::App* cmd = app.add_subcommand(
        "pipeline-supervise", "Run a command (mpirun ... hearth serve --pipeline) and start it again whenever it fails");
    cmd->add_option("--max-restarts", a->max_restarts, "Restarts before giving up (default: forever)");
    cmd->add_option("--pause", a->pause_s, "Seconds between an exit and the restart")->capture_default_str();
    cmd->add_option("command", a->command, "The command, after --")->required();
    cmd->callback([a] {
        const int code = supervise(*a);
        if (code != 0) throw CLI::RuntimeError(code);
    });
}

}  // namespace hearth::cli
