# Datanode multi-process tests: real `granary datanode` processes, a fake metanode in the test.
granary_add_test(datanode_process_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/datanode_chain_test.cpp
  DEPS granary_test_harness granary_common
  LABELS integration
  TIMEOUT 180)
add_dependencies(datanode_process_test granary)
