# Every external dependency is looked up here, once; a missing one names its Debian package.

function(mtask_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "mtask needs ${what}: install it with 'apt-get install ${package}'")
  endif()
endfunction()

# libzmq: Debian's libzmq3-dev ships no CMake package, so look for the header and library.
find_path(MTASK_ZMQ_INCLUDE_DIR zmq.h)
find_library(MTASK_ZMQ_LIBRARY zmq)
mtask_require(MTASK_ZMQ_INCLUDE_DIR "libzmq headers" libzmq3-dev)
mtask_require(MTASK_ZMQ_LIBRARY "libzmq" libzmq3-dev)
find_path(MTASK_CPPZMQ_INCLUDE_DIR zmq.hpp)
mtask_require(MTASK_CPPZMQ_INCLUDE_DIR "cppzmq (zmq.hpp)" cppzmq-dev)
if(NOT TARGET mtask_zmq)
  add_library(mtask_zmq INTERFACE IMPORTED GLOBAL)
  target_include_directories(mtask_zmq INTERFACE ${MTASK_ZMQ_INCLUDE_DIR} ${MTASK_CPPZMQ_INCLUDE_DIR})
  target_link_libraries(mtask_zmq INTERFACE ${MTASK_ZMQ_LIBRARY})
endif()

# msgpack-c for C++ is header-only; its CMake package name changed across versions
# (msgpack, msgpackc-cxx, msgpack-cxx), so normalise it to one target here.
find_path(MTASK_MSGPACK_INCLUDE_DIR msgpack.hpp)
mtask_require(MTASK_MSGPACK_INCLUDE_DIR "msgpack-c for C++" libmsgpack-cxx-dev)
if(NOT TARGET mtask_msgpack)
  add_library(mtask_msgpack INTERFACE IMPORTED GLOBAL)
  target_include_directories(mtask_msgpack INTERFACE ${MTASK_MSGPACK_INCLUDE_DIR})
  target_compile_definitions(mtask_msgpack INTERFACE MSGPACK_NO_BOOST MSGPACK_DEFAULT_API_VERSION=3)
endif()

find_package(fmt QUIET)
mtask_require(fmt_FOUND "fmt" libfmt-dev)
find_package(CLI11 QUIET)
mtask_require(CLI11_FOUND "CLI11" libcli11-dev)
find_package(Threads REQUIRED)
