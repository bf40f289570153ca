// What a job's input is, as one comparable line: a restarted ventilator must prove it reads the same
// input as the job it continues, or its task ids would name other tasks and its results would be
// merged into the old output. The sink keeps the fingerprint with the job (and in its journal).
#pragma once

#include "input/range.hpp"
#include "input/splitter.hpp"

#include <optional>
#include <string>

namespace mtask {

// Returns: for --range, the range and nothing else ("range 1:100:1"); for a file (or stdin
//          redirected from one), its device and inode, size, mtime, where reading starts, the
//          FNV-1a hash of its first MiB from there, and the splitting flags ("file dev=D ino=I
//          size=N mtime=S.NS offset=O head=HEX sep=0a lines=1 block=0"); "" for a pipe, a
//          terminal or a socket, whose bytes cannot be read again to be checked.
// The path is not part of it: the same file renamed is the same input; a copy is not (another
// inode). Not caught: a change beyond the first MiB that keeps size and mtime (`touch -r`).
// Throws: error "cannot read 'PATH': reason" when the file cannot be read.
std::string input_fingerprint(const std::string& path, const split_options& split,
                              const std::optional<range_spec>& range);

} // namespace mtask
