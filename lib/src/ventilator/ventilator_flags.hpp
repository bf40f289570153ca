// mtask-ventilator's own flags (input, splitting, window, retries...), registered by one function
// so that mtask-ventilator and mtask declare them once.
#pragma once

#include "input/arg_lists.hpp"
#include "ventilator/ventilator.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mtask {

// The flags whose text is converted once parsing is over (sizes, ranges), bound to `opts`.
class ventilator_flags {
 public:
  // Adds -i, -N, -0, --block, --range, --window, --batch, --retries, --max-crashes and
  // --max-held-bytes to `app`, writing into `opts` (which must outlive the parse).
  void add(CLI::App& app, ventilator_options& opts);

  // The argument lists (::: and ::::) the command line ended with: the job's input instead of
  // stdin. Give them before finish(), which checks them against the input flags.
  void set_arg_groups(std::vector<arg_group> groups) { groups_ = std::move(groups); }
  [[nodiscard]] const std::vector<arg_group>& arg_groups() const { return groups_; }

  // After parsing: stores the converted values in the options given to add().
  // Throws: usage_error for a bad --block, --max-held-bytes or --range, and for argument lists
  //         with --input, --range, -N, -0 or --block.
  void finish() const;

 private:
  ventilator_options* opts_ = nullptr;
  bool null_separated_ = false;
  std::string block_, range_, max_held_;
  std::string halt_ = "never";
  std::vector<arg_group> groups_;
};

} // namespace mtask
