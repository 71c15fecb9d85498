# libgranary end to end against real metanode/datanode processes.
granary_add_test(client_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_e2e_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)

granary_add_test(cli_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_server_test.cpp
  DEPS granary_test_harness
  LABELS integration TIMEOUT 300)

# Write-behind: background flushes in order, datanodes killed mid-stream (docs/durability.md).
granary_add_test(write_behind_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/write_behind_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)
