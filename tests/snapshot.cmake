# Snapshots and clones (docs/snapshots.md): byte-exact snapshots through rewrites, GC and
# compaction, clones that diverge, a leader killed mid-create; CSI snapshot calls on the socket.
granary_add_test(snapshot_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/snapshot_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 400)
target_compile_definitions(snapshot_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

granary_add_test(csi_snapshot_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/csi_snapshot_test.cpp
  DEPS granary_test_harness granary_client granary_csi granary_proto
  LABELS integration TIMEOUT 180)
