# eie_embed_files(OUTPUT TABLE files...)
# Writes a C file that defines `const eie_embedded_file TABLE[]` (see
# lib/embedded.h): {file name, contents} for each file, sorted by name (so
# migrations apply in that order), ended by {NULL, NULL}.
function(eie_embed_files output table)
  set(script ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} -DTABLE=${table} "-DFILES=${ARGN}" -P ${script}
    DEPENDS ${ARGN} ${script}
    COMMENT "Embedding ${table}"
    VERBATIM)
endfunction()
