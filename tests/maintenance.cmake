# Failure detection, repair, reconciliation, scrub and garbage collection on real processes.
granary_add_test(maintenance_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/maintenance_test.cpp
  DEPS granary_test_harness granary_client granary_placement granary_datanode
  LABELS integration TIMEOUT 300)

# PG moves: dual writes to old and new members while a joining datanode fills (docs/maintenance.md).
granary_add_test(rebalance_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/rebalance_test.cpp
  DEPS granary_test_harness granary_client granary_placement
  LABELS integration TIMEOUT 400)

# Repair on report: corrupt copies found by reads (replicated and EC) are rewritten, reports
# against good copies change nothing (docs/maintenance.md "Repair on report").
granary_add_test(read_repair_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/read_repair_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)
