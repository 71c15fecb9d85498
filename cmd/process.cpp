#include "cmd/process.h"

#include <malloc.h>
#include <pthread.h>

namespace granary::cmd {

TerminationSignals::TerminationSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  // A peer that vanishes mid-reply (a killed client while sendfile() streams to it) must cost
  // an EPIPE, not the server: SIGPIPE killed datanodes under fuse_survival_test.
  signal(SIGPIPE, SIG_IGN);
}

int TerminationSignals::Wait() {
  int sig = 0;
  sigwait(&set_, &sig);
  return sig;
}

void UseHeapForLargeBuffers() {
  mallopt(M_MMAP_THRESHOLD, 128 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace granary::cmd
