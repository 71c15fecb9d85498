# Client sessions and reaping (docs/metadata.md "Client sessions and reaping"): a libgranary
# client process killed -9 or stopped while it pins files, against a real cluster.
add_executable(granary-pin-holder ${CMAKE_CURRENT_LIST_DIR}/pin_holder.cpp)
set_target_properties(granary-pin-holder PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
target_include_directories(granary-pin-holder PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(granary-pin-holder PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(granary-pin-holder PRIVATE granary_client)

granary_add_test(session_reap_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/session_reap_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 180)
target_compile_definitions(session_reap_test
  PRIVATE PIN_HOLDER_BINARY="$<TARGET_FILE:granary-pin-holder>")
add_dependencies(session_reap_test granary granary-pin-holder)

# The same through a supervised kernel mount: a crashed and an upgraded server's sessions reaped
# while files stay open across the handoffs (needs /dev/fuse and root, as CI has).
granary_add_test(fuse_session_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuse_session_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 180)

# Stale multipart uploads through `granary server` and boto3.
add_test(NAME s3.multipart_expiry
  COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/s3/test_s3_reap.py
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/s3)
set_tests_properties(s3.multipart_expiry PROPERTIES LABELS integration TIMEOUT 180
  ENVIRONMENT "GRANARY_BINARY=$<TARGET_FILE:granary>")
