# Metanode multi-process tests: a real `granary metanode`, SIGKILLed under load; the admin CLI;
# batched operations and the change feed.
granary_add_test(metanode_process_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/metanode_crash_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/metanode_cli_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/metanode_batch_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration
  TIMEOUT 300)
add_dependencies(metanode_process_test granary)
