# The chat page (src/ui): bundled with Node.js at build time and embedded into the binary
# as generated C++ (build-page.cmake). Without Node.js or `npm ci` in src/ui the build still
# succeeds and embeds a fallback page saying how to get the real one.
set(HEARTH_UI_DIR ${CMAKE_CURRENT_SOURCE_DIR}/src/ui)
set(HEARTH_UI_OUT ${CMAKE_CURRENT_BINARY_DIR}/ui)
find_program(HEARTH_NODE node)
if(NOT HEARTH_NODE)
  message(WARNING "chat page: Node.js not found; `hearth serve` will show a fallback page (run scripts/install-deps.sh)")
elseif(NOT EXISTS ${HEARTH_UI_DIR}/node_modules/esbuild/package.json)
  message(WARNING "chat page: src/ui/node_modules missing; `hearth serve` will show a fallback page (run scripts/install-deps.sh)")
endif()
file(GLOB HEARTH_UI_WEB CONFIGURE_DEPENDS ${HEARTH_UI_DIR}/web/*)
set(HEARTH_UI_DEPS ${HEARTH_UI_WEB} ${HEARTH_UI_DIR}/build.mjs ${HEARTH_UI_DIR}/build-page.cmake
    ${HEARTH_UI_DIR}/embed.cmake ${HEARTH_UI_DIR}/fallback.html ${HEARTH_UI_DIR}/package-lock.json)
if(EXISTS ${HEARTH_UI_DIR}/node_modules/.package-lock.json)
  list(APPEND HEARTH_UI_DEPS ${HEARTH_UI_DIR}/node_modules/.package-lock.json)
endif()
add_custom_command(
  OUTPUT ${HEARTH_UI_OUT}/ui_assets.cpp
  COMMAND ${CMAKE_COMMAND} -DUI_DIR=${HEARTH_UI_DIR} -DOUT_DIR=${HEARTH_UI_OUT} -DNODE=${HEARTH_NODE}
          -P ${HEARTH_UI_DIR}/build-page.cmake
  DEPENDS ${HEARTH_UI_DEPS}
  COMMENT "Bundling and embedding the chat page"
  VERBATIM)
add_library(hearth_ui STATIC ${HEARTH_UI_DIR}/routes.cpp ${HEARTH_UI_OUT}/ui_assets.cpp)
target_include_directories(hearth_ui PUBLIC src)
target_link_libraries(hearth_ui PUBLIC hearth_http)
