# granary_test_harness: start real `granary` processes (a whole local cluster), wait on their
# output, kill and restart them, clean up.
add_library(granary_test_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/harness/process.cpp
                                        ${CMAKE_CURRENT_LIST_DIR}/harness/cluster.cpp
                                        ${CMAKE_CURRENT_LIST_DIR}/harness/meta_group.cpp
                                        ${CMAKE_CURRENT_LIST_DIR}/harness/small_fs.cpp)
target_include_directories(granary_test_harness PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_definitions(granary_test_harness PRIVATE GRANARY_BINARY="$<TARGET_FILE:granary>")
target_compile_options(granary_test_harness PRIVATE ${GRANARY_WARNINGS})
granary_use_precompiled_headers(granary_test_harness)
target_link_libraries(granary_test_harness PUBLIC granary_client Threads::Threads)
add_dependencies(granary_test_harness granary)
