# nullfs: a null FUSE file system (discards writes, reads zeros) — the transport limit that
# bench/mount.sh measures beside `granary mount`.
pkg_check_modules(NULLFS_FUSE3 REQUIRED IMPORTED_TARGET fuse3)
add_executable(nullfs ${CMAKE_CURRENT_LIST_DIR}/nullfs.cpp)
set_target_properties(nullfs PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
target_compile_options(nullfs PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(nullfs PRIVATE PkgConfig::NULLFS_FUSE3 Threads::Threads)
