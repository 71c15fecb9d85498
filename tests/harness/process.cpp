#include "tests/harness/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace granary::testing {

std::string GranaryBinary() {
  if (const char* env = std::getenv("GRANARY_BINARY")) return env;
#ifdef GRANARY_BINARY
  return GRANARY_BINARY;
#else
  return "build/bin/granary";
#endif
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // The child dies with the test, so a crashed test leaves no server behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    // Nothing else of the test's: a file another test thread holds open in a FUSE mount,
    // inherited here, would make this child's exit wait on that mount's FLUSH (which may wait on
    // this very child, a metanode being killed).
    close_range(3, ~0U, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  reader_ = std::thread([this, fd = fds[0]] { ReadLoop(fd); });
}

Process::~Process() {
  Kill();
  if (reader_.joinable()) reader_.join();
}

void Process::ReadLoop(int fd) {
  std::string partial;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, n);
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::lock_guard lock(mu_);
      lines_.push_back(partial.substr(0, nl));
      partial.erase(0, nl + 1);
      cv_.notify_all();
    }
  }
  close(fd);
  std::lock_guard lock(mu_);
  if (!partial.empty()) lines_.push_back(partial);
  eof_ = true;
  cv_.notify_all();
}

std::optional<std::vector<std::string>> Process::WaitForLine(const std::string& pattern,
                                                             std::chrono::milliseconds timeout) {
  std::regex re(pattern);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  size_t checked = 0;
  while (true) {
    for (; checked < lines_.size(); ++checked) {
      std::smatch m;
      if (std::regex_search(lines_[checked], m, re)) {
        return std::vector<std::string>(m.begin(), m.end());
      }
    }
    if (eof_) return std::nullopt;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
  }
}

std::string Process::Output() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& l : lines_) out += l + "\n";
  return out;
}

void Process::Signal(int sig) {
  if (!reaped_ && pid_ > 0) kill(pid_, sig);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      // Exited, but the reader thread may not have drained the pipe yet: a caller reading
      // Output() next must see everything. Bounded, since a descendant that inherited the pipe
      // (a daemonised mount) can hold it open long after.
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + seconds(2)),
                     [&] { return eof_; });
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    // waitpid has no timed form; a short poll keeps this bounded without a signal handler.
    std::this_thread::sleep_for(milliseconds(5));
  }
}

void Process::Kill() {
  if (reaped_ || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  // A killed process still waits in the kernel for what it cannot abandon (a FUSE request on a
  // file it holds open): say where, rather than hang the test.
  if (!Wait(seconds(60))) {
    std::ifstream stack(fmt::format("/proc/{}/stack", pid_));
    std::stringstream where;
    where << stack.rdbuf();
    std::fprintf(stderr, "process %d did not exit 60 s after SIGKILL; kernel stack:\n%s\n", pid_,
                 where.str().c_str());
  }
}

bool Process::running() {
  if (reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = milliseconds(1);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, milliseconds(50));
  }
  return true;
}

}  // namespace granary::testing
