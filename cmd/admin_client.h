// The metanode connection of the `granary admin` commands.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "client/meta_client.h"
#include "common/status.h"

namespace granary::cmd {

// A client of the metanode (or group) at `meta` whose calls give up after 15 s.
inline Result<std::unique_ptr<client::MetaClient>> ConnectAdmin(
    const std::string& meta, std::chrono::milliseconds attempt_timeout = std::chrono::seconds(3)) {
  client::MetaClientOptions options;
  options.address = meta;
  options.deadline = std::chrono::seconds(15);
  options.attempt_timeout = attempt_timeout;
  return client::MetaClient::Connect(options);
}

}  // namespace granary::cmd
