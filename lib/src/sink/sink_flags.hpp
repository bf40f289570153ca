// mtask-sink's own flags (--output, --journal, -k, --reduce...), registered by one function so
// that mtask-sink, custom sinks and mtask declare them once.
#pragma once

#include "mtask/sink.hpp"

#include <string>

namespace CLI {
class App;
}

namespace mtask {

class sink_flags {
 public:
  // Adds --failures, --output, --journal, --journal-every, --journal-interval-ms and, with
  // `output_modes` (a custom sink brings its own aggregator), -k, --jsonl, --reduce,
  // --reduce-by-key and --per-line, writing into `opts` (which must outlive the parse).
  void add(CLI::App& app, sink_options& opts, bool output_modes);

  // After parsing: sets the options' aggregator from --reduce or --reduce-by-key.
  // Throws: usage_error for --per-line without --reduce, --journal without --output, an unknown
  //         reduce operation.
  void finish() const;

 private:
  sink_options* opts_ = nullptr;
  std::string reduce_, reduce_by_key_;
  bool per_line_ = false;
};

} // namespace mtask
