// The exceptions the library throws: one base, one for bad bytes from a peer, one for bad flags.
#pragma once

#include <stdexcept>
#include <string>

namespace mtask {

// Any failure the library reports by throwing; the message reads "context: 'value': reason".
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bytes that arrived from outside the process and do not decode. Never fatal: callers count and drop.
class protocol_error : public error {
 public:
  using error::error;
};

// A flag or argument the user got wrong; the binaries turn it into exit code 2.
class usage_error : public error {
 public:
  using error::error;
};

} // namespace mtask
