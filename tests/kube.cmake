# The Kubernetes API test server (tests/kubeapi/) and the client/runtime tests against it.
find_package(OpenSSL REQUIRED)
add_library(granary_kubeapi STATIC ${CMAKE_CURRENT_LIST_DIR}/kubeapi/store.cpp
                                   ${CMAKE_CURRENT_LIST_DIR}/kubeapi/kubeapi_server.cpp)
target_include_directories(granary_kubeapi PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_options(granary_kubeapi PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(granary_kubeapi PUBLIC granary_common nlohmann_json::nlohmann_json
                                      PRIVATE Boost::system OpenSSL::SSL Threads::Threads)

add_executable(granary-kubeapi ${CMAKE_CURRENT_LIST_DIR}/kubeapi/main.cpp)
target_compile_options(granary-kubeapi PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(granary-kubeapi PRIVATE granary_kubeapi CLI11::CLI11)

granary_add_test(kube_client_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kube_client_test.cpp
  DEPS granary_kube granary_kubeapi
  LABELS unit TIMEOUT 60)
# Designated initializers leave defaulted option fields out on purpose.
target_compile_options(kube_client_test PRIVATE -Wno-missing-field-initializers)

granary_add_test(kube_runtime_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kube_runtime_test.cpp
  DEPS granary_operator_runtime granary_kubeapi
  LABELS unit TIMEOUT 60)
target_compile_options(kube_runtime_test PRIVATE -Wno-missing-field-initializers)

granary_add_test(kube_kubeapi_process_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kube_kubeapi_process_test.cpp
  DEPS granary_kube granary_test_harness
  LABELS integration TIMEOUT 60)
target_compile_definitions(kube_kubeapi_process_test
                           PRIVATE GRANARY_KUBEAPI_BINARY="$<TARGET_FILE:granary-kubeapi>")
add_dependencies(kube_kubeapi_process_test granary-kubeapi)
# The TLS tests build kubeconfig base64 with cpprest's helper; cpprest's U() breaks fmt.
find_package(cpprestsdk CONFIG REQUIRED)
target_link_libraries(kube_client_test PRIVATE cpprestsdk::cpprest)
target_compile_definitions(kube_client_test PRIVATE _TURN_OFF_PLATFORM_STRING)
