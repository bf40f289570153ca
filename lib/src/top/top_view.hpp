// mtask-top's text: a status_report as a screen (a header, the job's totals, one row per worker).
// Pure, so the layout is tested without a ventilator.
#pragma once

#include "protocol/wire.hpp"

#include <string>

namespace mtask {

// Returns: the report as lines ending in '\n': the job line, the totals line, a column header,
// then the workers, live ones first, busiest first. `ventilator` names where it came from.
std::string render_status(const wire::status_report& r, const std::string& ventilator);

} // namespace mtask
