# `granary operator` (issue 14): generated objects, decisions and CRD schemas (unit); the
# reconcilers against the API test server and a real `granary server` (integration); the chart.
granary_add_test(operator_objects_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/operator_objects_test.cpp
  DEPS granary_operator yaml-cpp
  LABELS unit TIMEOUT 60)
target_compile_definitions(operator_objects_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

granary_add_test(operator_e2e_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/operator_e2e_test.cpp
  DEPS granary_operator granary_kubeapi granary_test_harness
  LABELS integration TIMEOUT 120)

add_test(NAME operator_helm_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/operator_helm_test.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(operator_helm_test PROPERTIES LABELS unit TIMEOUT 60)

granary_add_test(operator_process_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/operator_process_test.cpp
  DEPS granary_kube granary_test_harness
  LABELS integration TIMEOUT 60)
target_compile_definitions(operator_process_test
                           PRIVATE GRANARY_KUBEAPI_BINARY="$<TARGET_FILE:granary-kubeapi>")
add_dependencies(operator_process_test granary-kubeapi)
target_compile_definitions(operator_e2e_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(operator_e2e_test PRIVATE yaml-cpp)

# The real kubectl applies crds/ and deploy/samples/ while `granary operator` reconciles them.
add_test(NAME operator_kubectl_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/operator_kubectl_test.sh $<TARGET_FILE:granary>
          $<TARGET_FILE:granary-kubeapi> ${PROJECT_SOURCE_DIR})
set_tests_properties(operator_kubectl_test PROPERTIES LABELS integration TIMEOUT 180)

# One image version everywhere (issue 19): CMake's project version, the chart, CRDs, samples, docs.
add_test(NAME operator_version_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/operator_version_test.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(operator_version_test PROPERTIES LABELS unit TIMEOUT 60)

# The training samples' checkpoint code, run for real: safe on success, loud on failure.
add_test(NAME operator_samples_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/operator_samples_test.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(operator_samples_test PROPERTIES LABELS unit TIMEOUT 60)
