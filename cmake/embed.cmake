# eie_embed_files(OUTPUT AVRO files... SQL files...)
# Writes a C file defining two tables, eie_embedded_avro[] and eie_embedded_sql[],
# each entry {file name, contents}, sorted by file name (migrations apply in that order).
function(eie_embed_files output)
  cmake_parse_arguments(EMBED "" "" "AVRO;SQL" ${ARGN})
  set(script ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} "-DAVRO=${EMBED_AVRO}" "-DSQL=${EMBED_SQL}" -P ${script}
    DEPENDS ${EMBED_AVRO} ${EMBED_SQL} ${script}
    COMMENT "Embedding Avro schemas and SQL migrations"
    VERBATIM)
  set(EIE_EMBEDDED_C ${output} PARENT_SCOPE)
endfunction()
