# The POSIX door through a real kernel mount (needs /dev/fuse and root, as CI has).
granary_add_test(fuse_posix_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuse_posix_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 180)

granary_add_test(fuse_cluster_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuse_cluster_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)
target_compile_definitions(fuse_posix_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# bench/mount.sh's phases scaled down, then a create/open/unlink storm: the daemon must survive
# without a memory error. GRANARY_BINARY=build-asan/bin/granary runs the daemon under ASan.
granary_add_test(fuse_stress_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuse_stress_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 120)

# The mount and the S3 gateway over one volume (`granary server`, boto3).
granary_add_test(fuse_s3_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuse_s3_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 180)
target_compile_definitions(fuse_s3_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# Mount survival: the serving process replaced by upgrade (5x) and by SIGKILL under the
# supervisor while a reader streams 1 GiB and a writer appends with fsync.
granary_add_test(fuse_survival_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuse_survival_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)
