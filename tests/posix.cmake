# POSIX completeness of the mount (issue 23), compared with ext4 on the same machine: special
# files, setgid directories, permission checks as an unprivileged uid, cluster-wide locks across
# two mount processes. Needs /dev/fuse and root, as CI has.
granary_add_test(posix_compare_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/posix_compare_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 240)

granary_add_test(posix_lock_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/posix_lock_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 240)
