# The S3 gateway against real clients: a boto3 pytest module (every operation, auth, bad input,
# files <-> objects) and aws-cli / s3cmd / rclone / virtual-host / metrics in a shell script.
add_test(NAME s3.boto3_api
  COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/s3/test_s3_api.py
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/s3)
set_tests_properties(s3.boto3_api PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "GRANARY_BINARY=$<TARGET_FILE:granary>")
add_test(NAME s3.real_clients
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/s3/clients_test.sh $<TARGET_FILE:granary>)
set_tests_properties(s3.real_clients PROPERTIES LABELS integration TIMEOUT 300)
add_test(NAME s3.checksums
  COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/s3/test_s3_checksums.py
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/s3)
set_tests_properties(s3.checksums PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "GRANARY_BINARY=$<TARGET_FILE:granary>")
add_test(NAME s3.compat
  COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${CMAKE_CURRENT_LIST_DIR}/s3/test_s3_compat.py
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/s3)
set_tests_properties(s3.compat PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "GRANARY_BINARY=$<TARGET_FILE:granary>")
