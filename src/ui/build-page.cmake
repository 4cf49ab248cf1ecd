# Build step of the chat page (run with cmake -P by ui.cmake): bundles src/ui/web with
# build.mjs when Node.js and the npm packages of src/ui are there, else takes the fallback
# page (fallback.html, which says how to get the real one), then embeds the result.
#
#   cmake -DUI_DIR=src/ui -DOUT_DIR=build/ui -DNODE=/usr/bin/node -P build-page.cmake
cmake_minimum_required(VERSION 3.25)

set(dist "${OUT_DIR}/dist")
file(REMOVE_RECURSE "${dist}")
file(MAKE_DIRECTORY "${dist}")
set(bundled false)
set(missing "")
if(NOT NODE OR NOT EXISTS "${NODE}")
  set(missing "node")
endif()
foreach(pkg esbuild marked dompurify highlight.js)
  if(NOT EXISTS "${UI_DIR}/node_modules/${pkg}/package.json")
    list(APPEND missing "${pkg} (npm)")
  endif()
endforeach()
if(missing STREQUAL "")
  execute_process(COMMAND "${NODE}" "${UI_DIR}/build.mjs" "${dist}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "chat page: node build.mjs failed (${rc})")
  endif()
  set(files "index.html;app.js;app.css;icon.svg")
  set(bundled true)
else()
  list(JOIN missing ", " missing)
  message(WARNING "chat page: ${missing} missing, so `hearth serve` gets the fallback page that says how "
                  "to build the real one. Run scripts/install-deps.sh (npm ci in src/ui), then rebuild.")
  configure_file("${UI_DIR}/fallback.html" "${dist}/index.html" COPYONLY)
  set(files "index.html")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" "-DIN_DIR=${dist}" "-DOUT=${OUT_DIR}/ui_assets.cpp" "-DFILES=${files}"
                        "-DBUNDLED=${bundled}" -P "${UI_DIR}/embed.cmake" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "chat page: embedding failed")
endif()
