# geonox: keep the sources named in GEONOX_UNITY_SKIP (paths relative to the top source
# directory) out of a unity build (CMAKE_UNITY_BUILD), as upstream's own
# SKIP_UNITY_BUILD_INCLUSION lists do in releases that have them.  Loaded through
# CMAKE_PROJECT_INCLUDE; the properties are set once every directory has been read, in
# every directory (a source file's properties belong to the directory of its target).
get_property(_geonox_unity_deferred GLOBAL PROPERTY GEONOX_UNITY_DEFERRED)
if(NOT _geonox_unity_deferred)
  set_property(GLOBAL PROPERTY GEONOX_UNITY_DEFERRED ON)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _geonox_unity_skip)
endif()

function(_geonox_directories dir out)
  set(all "${dir}")
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    _geonox_directories("${sub}" more)
    list(APPEND all ${more})
  endforeach()
  set(${out} "${all}" PARENT_SCOPE)
endfunction()

function(_geonox_unity_skip)
  _geonox_directories("${CMAKE_SOURCE_DIR}" dirs)
  list(TRANSFORM GEONOX_UNITY_SKIP PREPEND "${CMAKE_SOURCE_DIR}/" OUTPUT_VARIABLE files)
  set_source_files_properties(${files} DIRECTORY ${dirs}
    PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endfunction()
