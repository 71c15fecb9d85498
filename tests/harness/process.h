// Multi-process test support: start `granary` roles as real processes, wait for what they print
// (with a deadline, never a sleep), kill them with any signal, and always clean up.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/test_support.h"

namespace granary::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Path of the built `granary` binary (from the GRANARY_BINARY compile definition, or
// $GRANARY_BINARY).
std::string GranaryBinary();

// A child process whose stdout+stderr are captured line by line.
class Process {
 public:
  // Starts `argv` (argv[0] is the program path). Throws std::runtime_error if fork/exec fails.
  explicit Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();  // SIGKILL + reap if still running

  pid_t pid() const { return pid_; }

  // Waits until some output line matches `pattern` (ECMAScript regex); returns the match and
  // its groups ([0] is the whole match), or nullopt when the deadline passes or the process
  // exits first.
  std::optional<std::vector<std::string>> WaitForLine(
      const std::string& pattern, std::chrono::milliseconds timeout = seconds(30));
  std::string Output() const;  // everything printed so far

  void Signal(int sig);
  // Waits for exit; returns the exit status as from waitpid, or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout = seconds(30));
  // SIGKILL and reap.
  void Kill();
  bool running();

 private:
  void ReadLoop(int fd);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

// Polls `condition` until it is true or `timeout` passes. For state that has no line to wait
// on (a file appearing, a metric reaching a value).
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = seconds(30));

}  // namespace granary::testing
