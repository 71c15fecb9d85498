#include "cmd/metanode_processes.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/log.h"

namespace granary::cmd {

namespace {

struct Member {
  int id = 0;
  std::string address;
  std::vector<std::string> args;
  pid_t pid = -1;
};

// Reads the child's stdout until its "listening meta=" line (bounded), then lets it go.
Status WaitListening(int fd, int id, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[512];
  for (;;) {
    if (out.find("listening meta=") != std::string::npos && out.find('\n') != std::string::npos) {
      return Status::Ok();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return Unavailable(fmt::format("metanode {} exited during start", id));
    out.append(buf, static_cast<size_t>(n));
  }
  return Unavailable(fmt::format("metanode {} did not start within {} s", id,
                                 std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
}

struct Child {
  pid_t pid = -1;
  int out = -1;  // the child's stdout
};

// Forks and execs the member. PR_SET_PDEATHSIG follows the *thread* that forks: call it from a
// thread that lives as long as the members (main or the supervisor).
Result<Child> Fork(const Member& m) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Internal("pipe: " + std::string(strerror(errno)));
  std::vector<char*> argv;
  static char exe[] = "/proc/self/exe";
  argv.push_back(exe);
  std::vector<std::string> args = m.args;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Internal("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    // The members die with the server, even when it is killed.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    dup2(pipefd[1], STDOUT_FILENO);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  return Child{pid, pipefd[0]};
}

Status AwaitStart(Child& c, int id) {
  Status s = WaitListening(c.out, id, std::chrono::seconds(60));
  close(c.out);
  c.out = -1;
  if (!s.ok()) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    c.pid = -1;
  }
  return s;
}

Result<pid_t> Spawn(const Member& m) {
  auto child = Fork(m);
  GRANARY_TRY(child);
  GRANARY_TRY(AwaitStart(*child, m.id));
  return child->pid;
}

}  // namespace

struct MetanodeProcesses::Impl {
  MetanodeProcessesOptions options;
  std::vector<Member> members;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread supervisor;

  void Supervise() {
    std::unique_lock lock(mu);
    while (!stopping) {
      // A timer, not synchronisation: exits are looked for twice a second.
      cv.wait_for(lock, std::chrono::milliseconds(500));
      if (stopping) break;
      for (Member& m : members) {
        int status = 0;
        if (m.pid <= 0 || waitpid(m.pid, &status, WNOHANG) != m.pid) continue;
        GLOG_WARN("event=metanode_member_exited id={} {}={}; restarting", m.id,
                  WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        m.pid = -1;
        lock.unlock();
        auto pid = Spawn(m);
        lock.lock();
        if (pid.ok()) {
          m.pid = *pid;
          GLOG_INFO("event=metanode_member_restarted id={} address={}", m.id, m.address);
        } else {
          GLOG_ERROR("event=metanode_member_restart_failed id={} error=\"{}\"", m.id,
                     pid.status().ToString());
        }
      }
    }
  }
};

MetanodeProcesses::MetanodeProcesses(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetanodeProcesses::~MetanodeProcesses() { Stop(); }

Result<std::unique_ptr<MetanodeProcesses>> MetanodeProcesses::Start(
    MetanodeProcessesOptions options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(options.data + "/meta/db", ec)) {
    return Status(Code::PRECONDITION_FAILED,
                  fmt::format("{}/meta holds the metadata of a server started with one metanode; "
                              "a group of {} starts from an empty data dir",
                              options.data, options.ports.size()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::string peers;
  for (size_t i = 1; i <= options.ports.size(); ++i) {
    Member m;
    m.id = static_cast<int>(i);
    m.address = fmt::format("{}:{}", options.host, options.ports[i - 1]);
    peers += fmt::format("{}{}={}", peers.empty() ? "" : ",", i, m.address);
    impl->members.push_back(std::move(m));
  }
  for (Member& m : impl->members) {
    m.args = {"metanode",
              "--data",
              fmt::format("{}/meta-{}", options.data, m.id),
              "--listen",
              m.address,
              "--admin",
              options.host + ":0",
              "--id",
              std::to_string(m.id),
              "--peers",
              peers,
              "--secret-key-file",
              options.data + "/secret.key"};
    m.args.insert(m.args.end(), options.extra_flags.begin(), options.extra_flags.end());
  }
  // Members start together (each waits for the others only through Raft), forked from this
  // thread, which lives as long as they do.
  std::vector<Child> children;
  for (const Member& m : impl->members) {
    auto child = Fork(m);
    if (!child.ok()) {
      for (Child& c : children) kill(c.pid, SIGKILL);
      return child.status();
    }
    children.push_back(*child);
  }
  Status failed;
  for (size_t i = 0; i < children.size(); ++i) {
    Status s = AwaitStart(children[i], impl->members[i].id);
    impl->members[i].pid = children[i].pid;
    if (!s.ok() && failed.ok()) failed = s;
  }
  std::unique_ptr<MetanodeProcesses> group(new MetanodeProcesses(std::move(impl)));
  if (!failed.ok()) return failed;  // the destructor stops those that started
  Impl* g = group->impl_.get();
  g->supervisor = std::thread([g] { g->Supervise(); });
  return group;
}

std::string MetanodeProcesses::addresses() const {
  std::string out;
  for (const Member& m : impl_->members) out += (out.empty() ? "" : ",") + m.address;
  return out;
}

void MetanodeProcesses::Stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping && !impl_->supervisor.joinable()) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->supervisor.joinable()) impl_->supervisor.join();
  for (Member& m : impl_->members) {
    if (m.pid > 0) kill(m.pid, SIGTERM);
  }
  for (Member& m : impl_->members) {
    if (m.pid > 0) waitpid(m.pid, nullptr, 0);
    m.pid = -1;
  }
}

}  // namespace granary::cmd
