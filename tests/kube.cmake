# The Kubernetes API test server (tests/kubeapi/) and the client/runtime tests against it.
add_library(granary_kubeapi STATIC ${CMAKE_CURRENT_LIST_DIR}/kubeapi/store.cpp
                                   ${CMAKE_CURRENT_LIST_DIR}/kubeapi/kubeapi_server.cpp)
target_include_directories(granary_kubeapi PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_options(granary_kubeapi PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(granary_kubeapi PUBLIC granary_common nlohmann_json::nlohmann_json
                                      PRIVATE Boost::system Threads::Threads)

add_executable(granary-kubeapi ${CMAKE_CURRENT_LIST_DIR}/kubeapi/main.cpp)
target_compile_options(granary-kubeapi PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(granary-kubeapi PRIVATE granary_kubeapi CLI11::CLI11)
