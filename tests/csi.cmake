# The CSI plugin over its unix socket: every call against the spec's expectations (csi_test), and
# end to end through real staged FUSE mounts and bind mounts (csi_e2e_test, needs root + /dev/fuse).
granary_add_test(csi_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/csi_test.cpp
  DEPS granary_test_harness granary_client granary_csi granary_proto
  LABELS integration TIMEOUT 120)

granary_add_test(csi_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/csi_e2e_test.cpp
  DEPS granary_test_harness granary_client granary_csi granary_proto
  LABELS integration TIMEOUT 240)
