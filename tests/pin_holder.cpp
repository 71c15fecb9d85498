// granary-pin-holder META VOLUME NAME BYTES: a libgranary client that leaves behind what a client
// killed mid-work leaves — a file it wrote, unlinked while still open, and a staged object (an S3
// PUT whose body never finished) — then prints what it holds and waits to be killed or stopped.
// With --reopen-on-continue it opens a new file after SIGCONT (a reaped client that lives on).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "client/granary.h"
#include "client/meta_client.h"
#include "client/object_client.h"

using granary::Status;
using namespace granary::client;

namespace {
int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "pin-holder: %s: %s\n", what, s.ToString().c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s META VOLUME NAME BYTES [--reopen-on-continue]\n", argv[0]);
    return 2;
  }
  // SIGCONT resumes a stopped process even when blocked; blocked in every thread (before any is
  // started), it also stays pending for sigwait below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCONT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  const std::string volume = argv[2], name = argv[3];
  const size_t bytes = std::stoul(argv[4]);
  const bool reopen = argc > 5 && std::string(argv[5]) == "--reopen-on-continue";
  ClientOptions o;
  o.meta = argv[1];
  auto client = Client::Connect(o);
  if (!client.ok()) return Fail("connect", client.status());
  std::vector<uint8_t> data(bytes, 0x5a);

  auto file = (*client)->Open(volume, name, {.create = true, .truncate = true});
  if (!file.ok()) return Fail("open", file.status());
  if (Status s = (*file)->Pwrite(data, 0); !s.ok()) return Fail("write", s);
  if (Status s = (*file)->Flush(); !s.ok()) return Fail("flush", s);
  if (Status s = (*client)->Remove(volume, name); !s.ok()) return Fail("unlink", s);

  auto objects = ObjectClient::Connect(**client);
  if (!objects.ok()) return Fail("object client", objects.status());
  auto vol = (*client)->meta().VolumeGet(volume);
  if (!vol.ok()) return Fail("volume", vol.status());
  auto staged = (*objects)->Stage(vol->id(), 0, 0, 0644);
  if (!staged.ok()) return Fail("stage", staged.status());
  if (Status s = staged->file->Pwrite(data, 0); !s.ok()) return Fail("staged write", s);
  if (Status s = staged->file->Flush(); !s.ok()) return Fail("staged flush", s);

  std::printf("holding unlinked=%lu staged=%lu client=%016lx\n", (*file)->ino(), staged->attr.ino(),
              (*client)->meta().client_id());
  std::fflush(stdout);
  if (!reopen) {
    for (;;) pause();  // until SIGKILL
  }
  int sig = 0;
  sigwait(&set, &sig);
  // Works on after waking, as a client stopped past its lease would.
  auto again = (*client)->Open(volume, name + ".after", {.create = true, .truncate = true});
  if (!again.ok()) return Fail("open after continue", again.status());
  if (Status s = (*again)->Close(); !s.ok()) return Fail("close after continue", s);
  std::printf("reopened\n");
  std::fflush(stdout);
  for (;;) pause();
}
