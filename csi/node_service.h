// The CSI Node service (docs/csi.md): stages a volume as a `granary mount` per node and
// bind-mounts it into pods; a restarted plugin finds what it staged in its state dir.
#pragma once

#include <memory>
#include <string>

#include "csi/driver.h"
#include "csi/v1/csi.grpc.pb.h"

namespace granary::client {
class MetaClient;
}

namespace granary::csi::internal {

class NodePlugin : public ::csi::v1::Node::Service {
 public:
  // Reports each staged volume the state dir records and restages one whose mount is gone.
  virtual void Rediscover() = 0;
  // A volume the controller deleted: its records here go too.
  virtual void ForgetVolume(const std::string& volume) = 0;
};

std::unique_ptr<NodePlugin> MakeNodePlugin(const DriverOptions& o, client::MetaClient* meta);

}  // namespace granary::csi::internal
